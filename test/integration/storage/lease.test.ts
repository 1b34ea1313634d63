import { BrokerError } from '../../../shared/errors';
import { TableLeaseStore } from '../../../shared/storage/table-lease';
import { testStorageSettings, uniqueTablePrefix } from '../../support/storage';

const tablePrefix = uniqueTablePrefix('lea');
const MINUTE = 60_000;

/** A clock the test moves by hand. */
function manualClock(start = '2026-01-01T00:00:00.000Z') {
  let ms = Date.parse(start);
  return {
    now: () => new Date(ms),
    advance: (by: number) => {
      ms += by;
    },
  };
}

/** Stores sharing one table, as instances of the app would, each with its own clock if given. */
function store(now?: () => Date): TableLeaseStore {
  return new TableLeaseStore({ settings: testStorageSettings(), tablePrefix, now });
}

describe('TableLeaseStore (Azurite)', () => {
  it('lets exactly one of 20 concurrent acquirers win', async () => {
    const stores = Array.from({ length: 20 }, () => store());
    const leases = await Promise.all(stores.map((s, i) => s.acquire('race', `owner-${i}`, MINUTE)));
    const winners = leases.filter((lease) => lease !== undefined);
    expect(winners).toHaveLength(1);
    expect(winners[0]?.resource).toBe('race');

    const row = await stores[0]!.client.getEntity<{ owner: string; expiresAt: string }>('lease', 'race');
    expect(row.owner).toBe(`owner-${leases.findIndex((lease) => lease !== undefined)}`);
    await winners[0]!.release();
  });

  it('refuses an unexpired lease, even to the same owner, and lets the next acquire after release', async () => {
    const leases = store();
    const first = await leases.acquire('sales', 'a', MINUTE);
    expect(first).toBeDefined();
    expect(await leases.acquire('sales', 'b', MINUTE)).toBeUndefined();
    expect(await leases.acquire('sales', 'a', MINUTE)).toBeUndefined();

    await first!.release();
    await first!.release(); // twice is fine
    const second = await leases.acquire('sales', 'b', MINUTE);
    expect(second).toBeDefined();
    await second!.release();
  });

  it('keeps leases on different resources apart', async () => {
    const leases = store();
    const [a, b] = await Promise.all([
      leases.acquire('one', 'x', MINUTE),
      leases.acquire('two', 'x', MINUTE),
    ]);
    expect(a).toBeDefined();
    expect(b).toBeDefined();
    await Promise.all([a!.release(), b!.release()]);
  });

  it('lets an expired lease be taken over, by one of many, and not before it expires', async () => {
    const clock = manualClock();
    const first = await store(clock.now).acquire('expiry', 'old', MINUTE);
    expect(first).toBeDefined();

    clock.advance(MINUTE - 1);
    expect(await store(clock.now).acquire('expiry', 'early', MINUTE)).toBeUndefined();

    clock.advance(1); // now === expiresAt: expired
    const takers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => store(clock.now).acquire('expiry', `new-${i}`, MINUTE)),
    );
    expect(takers.filter((lease) => lease !== undefined)).toHaveLength(1);

    const row = await store().client.getEntity<{ owner: string; expiresAt: string }>('lease', 'expiry');
    expect(row.owner).toMatch(/^new-\d$/);
    expect(row.expiresAt).toBe(new Date(clock.now().getTime() + MINUTE).toISOString());
    await takers.find((lease) => lease !== undefined)!.release();
  });

  it("does not delete the new holder's lease on a stale release", async () => {
    const clock = manualClock();
    const stale = await store(clock.now).acquire('stale', 'slow', 1000);
    clock.advance(1001);
    const current = await store(clock.now).acquire('stale', 'fast', MINUTE);
    expect(current).toBeDefined();

    await expect(stale!.release()).resolves.toBeUndefined();
    expect(await store(clock.now).acquire('stale', 'third', MINUTE)).toBeUndefined();
    const row = await store().client.getEntity<{ owner: string }>('lease', 'stale');
    expect(row.owner).toBe('fast');

    await current!.release();
    await expect(stale!.release()).resolves.toBeUndefined(); // the row is gone: still fine
    expect(await store(clock.now).acquire('stale', 'third', MINUTE)).toBeDefined();
  });

  it('treats a row with an unreadable expiry as expired', async () => {
    const leases = store();
    await leases.client.createEntity({
      partitionKey: 'lease',
      rowKey: 'garbled',
      owner: 'x',
      expiresAt: 'soon',
    });
    const lease = await leases.acquire('garbled', 'y', MINUTE);
    expect(lease).toBeDefined();
    await lease!.release();
  });

  it.each([
    ['an upper-case name', 'Sales'],
    ['a slash', 'a/b'],
    ['a hash', 'a#b'],
    ['an empty name', ''],
    ['64 characters', 'a'.repeat(64)],
    ['a space', 'a b'],
  ])('rejects a resource with %s', async (_label, resource) => {
    await expect(store().acquire(resource, 'x', MINUTE)).rejects.toMatchObject({
      code: 'invalid_request',
    });
  });

  it('accepts a 63-character resource and rejects a bad owner or TTL', async () => {
    const leases = store();
    const long = await leases.acquire('a'.repeat(63), 'x', MINUTE);
    expect(long).toBeDefined();
    await long!.release();
    await expect(leases.acquire('ok', '', MINUTE)).rejects.toBeInstanceOf(BrokerError);
    await expect(leases.acquire('ok', 'x', 0)).rejects.toBeInstanceOf(BrokerError);
    await expect(leases.acquire('ok', 'x', Number.NaN)).rejects.toBeInstanceOf(BrokerError);
  });
});
