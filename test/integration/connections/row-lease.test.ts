import { RowLeaseStore } from '../../../shared/connections/row-lease';
import { TableConnectionRegistry } from '../../../shared/connections/table-registry';
import { parseConnectionDefinition } from '../../../shared/connections/connection';
import { testStorageSettings, uniqueTablePrefix } from '../../support/storage';

/** A connection's lease in its registry row (Azurite), as every instance of the app shares it. */
const registry = new TableConnectionRegistry({
  settings: testStorageSettings(),
  tablePrefix: uniqueTablePrefix('rle'),
});
const MINUTE = 60_000;

function manualClock(start = '2026-01-01T00:00:00.000Z') {
  let ms = Date.parse(start);
  return {
    now: () => new Date(ms),
    advance: (by: number) => {
      ms += by;
    },
  };
}

async function define(name: string) {
  await registry.upsertDefinition(
    name,
    parseConnectionDefinition({ mailbox: 'a@contoso.test', profile: 'ews' }),
  );
}

describe('RowLeaseStore (Azurite)', () => {
  it('lets exactly one of 20 concurrent acquirers win', async () => {
    await define('race');
    const stores = Array.from({ length: 20 }, () => new RowLeaseStore(registry));
    const leases = await Promise.all(stores.map((s, i) => s.acquire('race', `owner-${i}`, MINUTE)));
    const winners = leases.filter((lease) => lease !== undefined);
    expect(winners).toHaveLength(1);
    const row = await registry.get('race');
    expect(row?.leaseOwner).toBe(`owner-${leases.findIndex((lease) => lease !== undefined)}`);
    await winners[0]!.release();
    expect((await registry.get('race'))?.leaseOwner).toBeUndefined();
  });

  it('refuses an unexpired lease, even to the same owner, and lets the next acquire after release', async () => {
    await define('sales');
    const leases = new RowLeaseStore(registry);
    const first = await leases.acquire('sales', 'a', MINUTE);
    expect(first).toBeDefined();
    expect(await leases.acquire('sales', 'b', MINUTE)).toBeUndefined();
    expect(await leases.acquire('sales', 'a', MINUTE)).toBeUndefined();
    await first!.release();
    const second = await leases.acquire('sales', 'b', MINUTE);
    expect(second).toBeDefined();
    await second!.release();
  });

  it('lets another take over an expired lease; the old holder gives back nothing it no longer holds', async () => {
    await define('expiring');
    const clock = manualClock();
    const leases = new RowLeaseStore(registry, clock.now);
    const first = await leases.acquire('expiring', 'a', MINUTE);
    clock.advance(MINUTE + 1);
    const second = await leases.acquire('expiring', 'b', MINUTE);
    expect(second).toBeDefined();
    await first!.release();
    expect((await registry.get('expiring'))?.leaseOwner).toBe('b');
    await second!.release();
  });

  it("keeps the connection's state through a claim and a release (only the two lease columns change)", async () => {
    await define('stateful');
    const before = (await registry.get('stateful'))!;
    await registry.updateState(
      'stateful',
      { status: 'authorized', consecutiveFailures: 2 },
      before.etag,
      before,
    );
    const lease = await new RowLeaseStore(registry).acquire('stateful', 'a', MINUTE);
    await lease!.release();
    expect(await registry.get('stateful')).toMatchObject({
      status: 'authorized',
      consecutiveFailures: 2,
      mailbox: 'a@contoso.test',
    });
  });

  it('grants a lease on a connection that has no row (there is nothing to protect)', async () => {
    const lease = await new RowLeaseStore(registry).acquire('no-such-row', 'a', MINUTE);
    expect(lease).toBeDefined();
    await lease!.release();
    expect(await registry.get('no-such-row')).toBeUndefined();
  });
});
