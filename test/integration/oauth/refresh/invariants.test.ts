import { secretNames } from '../../../../shared/secrets/secret-store';
import {
  authorizeConnection,
  expectNoSecrets,
  startHarness,
  storedRefreshToken,
  type Harness,
} from '../../../support/harness';

/**
 * The invariant of README "Keeping tokens fresh": the last good refresh token is never lost — not by a failed write at any step, a
 * concurrent refresh, nor an answer without a new refresh token. Faults are injected into the
 * Key Vault emulator (real SecretClient), the Entra emulator, and at the registry boundary.
 */
describe('refresh invariants (Key Vault)', () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await startHarness({
      keyVault: true,
      // Every refresh writes the cache: these tests prove the write order of each step.
      env: { REFRESH_CACHE_WRITE_HOURS: '0' },
      brokerOverrides: {
        tokenMemoryTtlMs: 0,
        keyVault: {
          pollIntervalMs: 10,
          retryDelayInMs: 20,
          maxRetryDelayInMs: 100,
          maxRetries: 2,
          maxRetryAfterSeconds: 1,
        },
      },
    });
  });
  afterAll(async () => {
    expectNoSecrets(harness.secretsSeen, harness.logs);
    await harness.close();
  });
  afterEach(() => {
    harness.entra.faults.reset();
    harness.keyVault!.faults.clear();
    jest.restoreAllMocks();
  });

  async function refreshNow(name: string) {
    return harness.broker.refresher.refresh(name, { actor: 'test', force: true });
  }

  it.each([
    ['after Entra answered, before the cache was written', /-cache$/],
    ['between the cache and the published token', /-token$/],
  ])(
    'a failed write %s leaves a refresh token that works',
    async (_label, failing) => {
      // Entra keeps a rotated-out refresh token valid (it does not revoke on rotation).
      harness.entra.faults.revokeRotatedRefreshTokens = false;
      const name = `crash-${failing.source.includes('cache') ? 'cache' : 'token'}`;
      expect(await authorizeConnection(harness, name)).toBe(200);
      const rtBefore = await storedRefreshToken(harness, name);

      harness.keyVault!.faults.failNext(20, { status: 503, operation: 'set', name: failing });
      const failed = await refreshNow(name);
      expect(failed).toMatchObject({ result: 'failed', status: 'degraded' });
      harness.keyVault!.faults.clear();

      if (failing.source.includes('cache')) expect(await storedRefreshToken(harness, name)).toBe(rtBefore);
      const recovered = await refreshNow(name);
      expect(recovered).toMatchObject({ result: 'refreshed', status: 'authorized' });
      expect(await storedRefreshToken(harness, name)).not.toBe(rtBefore);
    },
    60_000,
  );

  it('a failure during the status update keeps the new tokens', async () => {
    harness.entra.faults.revokeRotatedRefreshTokens = true;
    expect(await authorizeConnection(harness, 'crash-status')).toBe(200);
    const spy = jest
      .spyOn(harness.broker.registry, 'updateState')
      .mockRejectedValueOnce(new Error('storage went away'));
    await expect(refreshNow('crash-status')).rejects.toThrow('storage went away');
    expect(spy).toHaveBeenCalled();
    spy.mockRestore();
    // The cache holds the rotated refresh token (the old one is revoked under strict rotation):
    // the next refresh works only because the cache was written before the status.
    const again = await refreshNow('crash-status');
    expect(again).toMatchObject({ result: 'refreshed', status: 'authorized' });
  });

  it('an answer without a new refresh token keeps the old one', async () => {
    harness.entra.faults.revokeRotatedRefreshTokens = true;
    expect(await authorizeConnection(harness, 'no-new-rt')).toBe(200);
    const rtBefore = await storedRefreshToken(harness, 'no-new-rt');
    harness.entra.faults.omitRefreshToken = true;
    expect(await refreshNow('no-new-rt')).toMatchObject({ result: 'refreshed' });
    expect(await storedRefreshToken(harness, 'no-new-rt')).toBe(rtBefore);
    harness.entra.faults.omitRefreshToken = false;
    expect(await refreshNow('no-new-rt')).toMatchObject({ result: 'refreshed' });
    expect(await storedRefreshToken(harness, 'no-new-rt')).not.toBe(rtBefore);
  });

  it('two instances refreshing one connection at once redeem it once; the later one uses the rotated token', async () => {
    harness.entra.faults.revokeRotatedRefreshTokens = true; // reusing a rotated-out token would fail loudly
    expect(await authorizeConnection(harness, 'race')).toBe(200);
    const other = harness.secondBroker();
    harness.entra.faults.latencyMs = 300; // keep the first refresh in flight while the others start
    const refreshesBefore = harness.entra.stats.refreshes;
    const outcomes = await Promise.all([
      harness.broker.refresher.refresh('race', { actor: 'timer', force: true }),
      other.refresher.refresh('race', { actor: 'manual', force: true }),
      harness.broker.tokenReader.read('race').then(
        () => ({ result: 'served' }),
        (error: unknown) => ({ result: String(error) }),
      ),
    ]);
    harness.entra.faults.latencyMs = 0;
    const results = outcomes.map((o) => o.result);
    expect(results.filter((r) => r === 'refreshed')).toHaveLength(1);
    expect(results).toContain('busy');
    expect(harness.entra.stats.refreshes).toBe(refreshesBefore + 1);
    // Sequentially, the other instance re-reads the cache under the lease and uses the rotated token.
    expect(await other.refresher.refresh('race', { actor: 'manual', force: true })).toMatchObject({
      result: 'refreshed',
    });
    expect(await harness.broker.refresher.refresh('race', { actor: 'timer', force: true })).toMatchObject({
      result: 'refreshed',
    });
  });

  it('one connection hanging never holds up the others beyond its slot', async () => {
    const names = ['slot-a', 'slot-b', 'slot-c', 'slot-d', 'slot-e'];
    for (const name of names) expect(await authorizeConnection(harness, name)).toBe(200);
    const fast = harness.secondBroker({}, { refresh: { slotTimeoutMs: 800, leaseMs: 5_000 } });
    const realGet = fast.secrets.get.bind(fast.secrets);
    jest
      .spyOn(fast.secrets, 'get')
      .mockImplementation((secretName: string) =>
        secretName === secretNames.cache('slot-a') ? new Promise(() => undefined) : realGet(secretName),
      );
    // Make all five due.
    for (const name of names) {
      const connection = await fast.registry.get(name);
      await fast.registry.updateState(
        name,
        { tokenExpiresOn: new Date(Date.now() + 60_000).toISOString() },
        connection!.etag,
      );
    }
    const started = Date.now();
    const sweep = await fast.refresher.refreshDue({ actor: 'timer', concurrency: 2 });
    const elapsed = Date.now() - started;
    expect(sweep.refreshed).toBeGreaterThanOrEqual(4);
    expect(sweep.failed).toBe(1);
    expect((await fast.registry.get('slot-a'))?.lastError?.code).toBe('timeout');
    for (const name of names.slice(1)) expect((await fast.registry.get(name))?.status).toBe('authorized');
    // Not a figure to assert tightly (timed tests flake); only that the hang did not serialize the run.
    expect(elapsed).toBeLessThan(10_000);
  }, 60_000);

  it('Key Vault throttling and an Entra outage leave every connection usable once they pass', async () => {
    const names = ['storm-a', 'storm-b'];
    for (const name of names) expect(await authorizeConnection(harness, name)).toBe(200);
    harness.keyVault!.faults.failNext(1000, { status: 429, retryAfterSeconds: 1, operation: 'any' });
    for (const name of names)
      expect(await refreshNow(name)).toMatchObject({ result: 'failed', status: 'degraded' });
    harness.keyVault!.faults.clear();
    harness.entra.faults.failNext(1000, { status: 503, endpoint: 'token' });
    for (const name of names)
      expect(await refreshNow(name)).toMatchObject({ result: 'failed', status: 'degraded' });
    harness.entra.faults.reset();
    for (const name of names)
      expect(await refreshNow(name)).toMatchObject({ result: 'refreshed', status: 'authorized' });
  }, 120_000);
});
