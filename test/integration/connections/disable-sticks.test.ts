import { secretNames } from '../../../shared/secrets/secret-store';
import { api, authorizeConnection, startHarness, USERS, type Harness } from '../../support/harness';

/**
 * A disable sticks, and a sign-in completes only for the connection it was started for: the auth
 * session is bound to the connection's row, grant fields and last authorization, checked under the
 * connection's lease; disable and enable take that lease too.
 */
let harness: Harness;

beforeAll(async () => {
  harness = await startHarness();
}, 60_000);

afterAll(() => harness.close());

async function snapshot(name: string) {
  const connection = await harness.broker.registry.get(name);
  const cache = await harness.broker.secrets.get(secretNames.cache(name));
  const token = await harness.broker.secrets.get(secretNames.token(name));
  return { status: connection?.status, cache: cache?.version, token: token?.version };
}

async function events(name: string): Promise<string[]> {
  const { json } = await api(harness.baseUrl, 'GET', `/api/connections/${name}/events`);
  return (json.events as { type: string }[]).map((event) => event.type);
}

it('regression: a sign-in started before a disable completed and re-enabled the connection', async () => {
  await api(harness.baseUrl, 'PUT', '/api/connections/disabled-midway', {
    mailbox: USERS.support.username,
    profile: 'ews',
  });
  const status = await authorizeConnection(harness, 'disabled-midway', USERS.support, undefined, async () => {
    expect((await api(harness.baseUrl, 'POST', '/api/connections/disabled-midway/disable')).status).toBe(200);
  });
  expect(status).toBe(409);
  expect(await snapshot('disabled-midway')).toEqual({
    status: 'disabled',
    cache: undefined,
    token: undefined,
  });
  expect((await events('disabled-midway'))[0]).toBe('authorization.failed');
});

it('regression: a popup left open across ?reset=true stored its tokens into the reset connection', async () => {
  const name = 'reset-midway';
  const definition = { mailbox: USERS.support.username, profile: 'ews' };
  expect(await authorizeConnection(harness, name, USERS.support, definition)).toBe(200);
  const status = await authorizeConnection(harness, name, USERS.support, definition, async () => {
    // An unchanged definition: ?reset=true resets all the same.
    const reset = await api(harness.baseUrl, 'PUT', `/api/connections/${name}?reset=true`, definition);
    expect(reset.json).toMatchObject({ status: 'new' });
  });
  expect(status).toBe(409);
  expect(await snapshot(name)).toEqual({ status: 'new', cache: undefined, token: undefined });
  const types = await events(name);
  expect(types.slice(0, 2)).toEqual(['authorization.failed', 'connection.reset']);
});

it('refuses a sign-in that outlived a change of the grant fields', async () => {
  const name = 'redefined-midway';
  await api(harness.baseUrl, 'PUT', `/api/connections/${name}`, {
    mailbox: USERS.support.username,
    profile: 'ews',
  });
  const status = await authorizeConnection(harness, name, USERS.support, undefined, async () => {
    // Still `new`, so the edit is allowed without a reset; the pending sign-in was for EWS.
    const edit = await api(harness.baseUrl, 'PUT', `/api/connections/${name}`, {
      mailbox: USERS.support.username,
      profile: 'graph-mail',
    });
    expect(edit.status).toBe(200);
  });
  expect(status).toBe(409);
  expect(await snapshot(name)).toEqual({ status: 'new', cache: undefined, token: undefined });
});

it('?reset=true with an unchanged body deletes the tokens and returns the connection to new', async () => {
  const name = 'reset-unchanged';
  const definition = { mailbox: USERS.support.username, profile: 'ews' };
  expect(await authorizeConnection(harness, name, USERS.support, definition)).toBe(200);
  const { status, json } = await api(
    harness.baseUrl,
    'PUT',
    `/api/connections/${name}?reset=true`,
    definition,
  );
  expect(status).toBe(200);
  expect(json).toMatchObject({ status: 'new', authorizedAt: null });
  expect(await snapshot(name)).toEqual({ status: 'new', cache: undefined, token: undefined });
  expect((await events(name))[0]).toBe('connection.reset');
});

it('regression: a refresh in flight re-applied authorized over a concurrent disable', async () => {
  const name = 'refresh-vs-disable';
  expect(await authorizeConnection(harness, name)).toBe(200);
  harness.entra.faults.latencyMs = 1500;
  try {
    const refresh = api(harness.baseUrl, 'POST', `/api/connections/${name}/refresh`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const disable = api(harness.baseUrl, 'POST', `/api/connections/${name}/disable`);
    const [refreshed, disabled] = await Promise.all([refresh, disable]);
    expect(refreshed.status).toBe(200);
    expect(disabled.json).toMatchObject({ status: 'disabled' });
  } finally {
    harness.entra.faults.latencyMs = 0;
  }
  expect((await harness.broker.registry.get(name))?.status).toBe('disabled');
  // Disabled means disabled: a forced refresh and the token route leave it so.
  await api(harness.baseUrl, 'POST', `/api/connections/${name}/refresh`);
  expect((await api(harness.baseUrl, 'GET', `/api/connections/${name}/token`)).status).toBe(409);
  expect((await harness.broker.registry.get(name))?.status).toBe('disabled');
});

it("regression: the ETag retry re-applied a refresh's state over a disable written in between", async () => {
  const name = 'etag-vs-disable';
  expect(await authorizeConnection(harness, name)).toBe(200);
  const seen = (await harness.broker.registry.get(name))!;
  // Someone disables the connection after the refresh read the row (its etag is now stale).
  await harness.broker.registry.updateState(name, { status: 'disabled' }, seen.etag, seen);
  const after = await harness.broker.state.changeState(
    seen,
    { status: 'authorized', consecutiveFailures: 0 },
    {
      type: 'connection.refreshed',
      actor: 'timer',
    },
  );
  expect(after.status).toBe('disabled');
  expect((await harness.broker.registry.get(name))?.status).toBe('disabled');
});
