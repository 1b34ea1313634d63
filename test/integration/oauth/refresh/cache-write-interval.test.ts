import { secretNames } from '../../../../shared/secrets/secret-store';
import {
  authorizeConnection,
  expectNoSecrets,
  startHarness,
  storedRefreshToken,
  TestClock,
  type Harness,
} from '../../../support/harness';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/**
 * The token cache is rewritten when it is REFRESH_CACHE_WRITE_HOURS old (default 24), on a status
 * change and on every authorization, not on every refresh: Entra keeps a rotated-out refresh token
 * valid for its own lifetime, so the stored one stays usable in between. Against the Key Vault
 * emulator, whose `stats` count the writes.
 */
describe('cache write interval (Key Vault)', () => {
  const clock = new TestClock();
  let harness: Harness;

  beforeAll(async () => {
    // A 3-hour interval: the test clock must stay within the day the emulators' managed-identity
    // token lives (the Azure SDK caches it by the real clock). The default (24) is a config test.
    harness = await startHarness({
      clock,
      keyVault: true,
      env: { REFRESH_CACHE_WRITE_HOURS: '3' },
      brokerOverrides: { tokenMemoryTtlMs: 0 },
    });
  });
  afterEach(() => {
    harness.entra.faults.reset();
  });
  afterAll(async () => {
    expectNoSecrets(harness.secretsSeen, harness.logs);
    await harness.close();
  });

  const cacheVersion = async (name: string) =>
    (await harness.broker.secrets.get(secretNames.cache(name)))?.version;
  const refreshNow = (broker = harness.broker, name: string) =>
    broker.refresher.refresh(name, { actor: 'test', force: true });

  it('a refresh within the interval publishes the new token and leaves the stored cache alone: one vault write', async () => {
    expect(await authorizeConnection(harness, 'steady')).toBe(200);
    const version = await cacheVersion('steady');
    const rt = await storedRefreshToken(harness, 'steady');

    const writes: number[] = [];
    for (let i = 0; i < 3; i++) {
      clock.advance(50 * MINUTE);
      const before = harness.keyVault!.stats.writes;
      expect(await refreshNow(undefined, 'steady')).toMatchObject({
        result: 'refreshed',
        status: 'authorized',
      });
      writes.push(harness.keyVault!.stats.writes - before);
    }
    expect(writes).toEqual([1, 1, 1]); // the published token only
    expect(await cacheVersion('steady')).toBe(version);
    expect(await storedRefreshToken(harness, 'steady')).toBe(rt);
  });

  it('rewrites the cache once it is REFRESH_CACHE_WRITE_HOURS (3) old, naming the version before it', async () => {
    expect(await authorizeConnection(harness, 'daily')).toBe(200);
    const first = await harness.broker.secrets.get(secretNames.cache('daily'));
    clock.advance(2 * HOUR);
    expect(await refreshNow(undefined, 'daily')).toMatchObject({ result: 'refreshed' });
    expect(await cacheVersion('daily')).toBe(first?.version);

    clock.advance(1 * HOUR);
    const before = harness.keyVault!.stats.byOperation.set;
    expect(await refreshNow(undefined, 'daily')).toMatchObject({ result: 'refreshed' });
    expect(harness.keyVault!.stats.byOperation.set - before).toBe(2); // cache + published token
    const second = await harness.broker.secrets.get(secretNames.cache('daily'));
    expect(second?.version).not.toBe(first?.version);
    expect(second?.tags?.previousVersion).toBe(first?.version);
    expect(await storedRefreshToken(harness, 'daily')).not.toBe(undefined);
  });

  it('after a refresh that did not write the cache, the process dies: another instance refreshes from the older stored token', async () => {
    expect(await authorizeConnection(harness, 'crash')).toBe(200);
    const storedRt = await storedRefreshToken(harness, 'crash');
    clock.advance(50 * MINUTE);
    const instanceA = harness.secondBroker();
    expect(await refreshNow(instanceA, 'crash')).toMatchObject({ result: 'refreshed' });
    // Instance A held the newer refresh token only in memory and is gone now.
    expect(await storedRefreshToken(harness, 'crash')).toBe(storedRt);

    clock.advance(50 * MINUTE);
    const instanceB = harness.secondBroker();
    const refreshesBefore = harness.entra.stats.refreshes;
    expect(await refreshNow(instanceB, 'crash')).toMatchObject({ result: 'refreshed', status: 'authorized' });
    expect(harness.entra.stats.refreshes).toBe(refreshesBefore + 1);
  });

  it('what the interval relies on: were rotated-out tokens revoked, the next refresh from the store would need a new sign-in', async () => {
    harness.entra.faults.revokeRotatedRefreshTokens = true;
    expect(await authorizeConnection(harness, 'strict')).toBe(200);
    clock.advance(50 * MINUTE);
    expect(await refreshNow(harness.secondBroker(), 'strict')).toMatchObject({ result: 'refreshed' });
    expect(await refreshNow(harness.secondBroker(), 'strict')).toMatchObject({
      result: 'failed',
      status: 'reauthorization_required',
    });
  });

  it('writes the cache on a status change: a degraded connection that recovers stores its newest refresh token', async () => {
    expect(await authorizeConnection(harness, 'recovering')).toBe(200);
    const version = await cacheVersion('recovering');
    clock.advance(50 * MINUTE);
    harness.entra.faults.failNext(3, { status: 503, endpoint: 'token' });
    const failed = await refreshNow(undefined, 'recovering');
    expect(failed).toMatchObject({ result: 'failed', status: 'degraded' });
    expect(await cacheVersion('recovering')).toBe(version);

    harness.entra.faults.reset(); // Entra answers again
    clock.advance(10 * MINUTE);
    expect(await refreshNow(undefined, 'recovering')).toMatchObject({
      result: 'refreshed',
      status: 'authorized',
    });
    expect(await cacheVersion('recovering')).not.toBe(version);
  });

  it('writes the cache on every authorization, even within the interval', async () => {
    expect(await authorizeConnection(harness, 'again')).toBe(200);
    const version = await cacheVersion('again');
    clock.advance(5 * MINUTE);
    expect(await authorizeConnection(harness, 'again')).toBe(200);
    expect(await cacheVersion('again')).not.toBe(version);
  });
});
