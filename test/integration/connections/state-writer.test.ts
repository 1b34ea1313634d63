import { authorizeConnection, servedOr, startHarness, type Harness } from '../../support/harness';

/**
 * One writer of a connection's state (shared/connections/state.ts), and it alone tells the token
 * reader's memory to drop a connection: no caller has to remember (the callback used to forget).
 */
let harness: Harness;

beforeAll(async () => {
  harness = await startHarness();
}, 60_000);

afterAll(() => harness.close());

const read = (name: string) => harness.broker.tokenReader.read(name);

it('regression: after a new sign-in the callback left the old token in memory — the next read serves the new one', async () => {
  expect(await authorizeConnection(harness, 'reauthorized')).toBe(200);
  const before = (await read('reauthorized')).access_token;
  harness.secretsSeen.add(before);
  expect(await authorizeConnection(harness, 'reauthorized')).toBe(200);
  const after = (await read('reauthorized')).access_token;
  harness.secretsSeen.add(after);
  expect(after).not.toBe(before);
});

it('a state change written through the writer applies to the very next read, without waiting for any memory', async () => {
  expect(await authorizeConnection(harness, 'written')).toBe(200);
  expect(await servedOr(read('written'))).toBe('served');
  const row = (await harness.broker.registry.get('written'))!;
  await harness.broker.state.changeState(
    row,
    { status: 'disabled' },
    { type: 'connection.disabled', actor: 'test' },
  );
  expect(await servedOr(read('written'))).toBe('connection_disabled');
});

it('a definition change and a removal apply at once too', async () => {
  expect(await authorizeConnection(harness, 'removed')).toBe(200);
  expect(await servedOr(read('removed'))).toBe('served');
  const row = (await harness.broker.registry.get('removed'))!;
  await harness.broker.state.remove(row, { type: 'connection.deleted', actor: 'test' });
  expect(await servedOr(read('removed'))).toBe('connection_not_found');
});
