import { TableConnectionRegistry } from '../../../../shared/connections/table-registry';
import { authorizeConnection, startHarness, TestClock, type Harness } from '../../../support/harness';

/**
 * Regression: a refresh made seven HTTPS round trips (1 Entra, 2 Key Vault, 4 Table: lease acquire,
 * row read, row write, lease release). The lease now lives in the registry row: claimed with the
 * ETag of the row the sweep's page carries, given back by the write that records the outcome. Counted
 * at the clients (each call is one request to the stand-in): 1 Entra + 2 Key Vault + 2 Table.
 */
const clock = new TestClock();
let harness: Harness;

beforeAll(async () => {
  harness = await startHarness({ clock, brokerOverrides: { tokenMemoryTtlMs: 0 } });
  expect(await authorizeConnection(harness, 'counted')).toBe(200);
}, 60_000);

afterAll(() => harness.close());

it('a sweep refreshes a due connection in 1 Entra, 2 Key Vault and 2 Table round trips (plus the page)', async () => {
  clock.advance(50 * 60 * 1000); // inside the refresh margin
  const registry = harness.broker.registry;
  if (!(registry instanceof TableConnectionRegistry))
    throw new Error('the broker keeps its registry in Table storage');
  const { client } = registry;
  const calls: string[] = [];
  for (const method of [
    'getEntity',
    'updateEntity',
    'createEntity',
    'deleteEntity',
    'upsertEntity',
  ] as const) {
    const original = (client[method] as (...args: unknown[]) => unknown).bind(client);
    jest.spyOn(client, method).mockImplementation(((...args: unknown[]) => {
      calls.push(method);
      return original(...args);
    }) as never);
  }
  const secretsGet = jest.spyOn(harness.broker.secrets, 'get');
  const secretsSet = jest.spyOn(harness.broker.secrets, 'set');
  const entraBefore = harness.entra.stats.requests['token:refresh_token'] ?? 0;
  try {
    const summary = await harness.broker.refresher.refreshDue({ actor: 'timer' });
    expect(summary).toMatchObject({ due: 1, refreshed: 1 });
  } finally {
    jest.restoreAllMocks();
  }
  expect((harness.entra.stats.requests['token:refresh_token'] ?? 0) - entraBefore).toBe(1);
  expect(secretsGet.mock.calls.length + secretsSet.mock.calls.length).toBe(2);
  expect(calls).toEqual(['updateEntity', 'updateEntity']);
  expect((await harness.broker.registry.get('counted'))?.leaseOwner).toBeUndefined();
});
