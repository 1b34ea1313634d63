import { health } from '../../../../functions/health';
import { serve } from '../../../../functions/route';
import { secretNames } from '../../../../shared/secrets/secret-store';
import {
  api,
  authorizeConnection,
  expectNoSecrets,
  startHarness,
  storedRefreshToken,
  TestClock,
  USERS,
  type Harness,
} from '../../../support/harness';

const MINUTE = 60_000;

/** Refresh against the Entra emulator with a shared, controllable clock (no real waiting). */
describe('refresh', () => {
  const clock = new TestClock();
  let harness: Harness;

  beforeAll(async () => {
    // Every refresh rewrites the cache here, so each test sees its rotation in the store (the
    // write interval has its own tests in cache-write-interval.test.ts).
    harness = await startHarness({
      clock,
      brokerOverrides: { tokenMemoryTtlMs: 0 },
      env: { REFRESH_CACHE_WRITE_HOURS: '0' },
    });
  });
  afterAll(async () => {
    expectNoSecrets(harness.secretsSeen, harness.logs);
    await harness.close();
  });

  async function published(name: string) {
    return harness.broker.secrets.get(secretNames.token(name));
  }

  it('the timer refreshes a connection whose token enters the margin, rotating the refresh token', async () => {
    harness.entra.faults.revokeRotatedRefreshTokens = true;
    expect(await authorizeConnection(harness, 'timer-a')).toBe(200);
    const before = await published('timer-a');
    const rtBefore = await storedRefreshToken(harness, 'timer-a');

    const early = await harness.broker.refresher.refreshDue({ actor: 'timer' });
    expect(early).toMatchObject({ due: 0, refreshed: 0 });

    clock.advance(50 * MINUTE); // 60-minute tokens: 10 minutes left, inside the 15-minute margin
    const refreshesBefore = harness.entra.stats.refreshes;
    const sweep = await harness.broker.refresher.refreshDue({ actor: 'timer' });
    expect(sweep).toMatchObject({ due: 1, refreshed: 1, failed: 0 });
    expect(harness.entra.stats.refreshes).toBe(refreshesBefore + 1);

    const after = await published('timer-a');
    expect(after?.value).not.toBe(before?.value);
    // MSAL dates a token in whole seconds from when it asked, so a slow round trip (a loaded CI
    // machine) publishes one second less of the 60 minutes; never more than the 60.
    const expiresOnMs = after?.expiresOn?.getTime() ?? 0;
    expect(expiresOnMs).toBeLessThanOrEqual(clock.ms + 3600_000);
    expect(expiresOnMs).toBeGreaterThanOrEqual(clock.ms + 3600_000 - 2000);
    expect(after?.tags?.expiresOn).toBe(after?.expiresOn?.toISOString());
    expect(await storedRefreshToken(harness, 'timer-a')).not.toBe(rtBefore);
    harness.secretsSeen.add(String(after?.value));

    const view = await api(harness.baseUrl, 'GET', '/api/connections/timer-a');
    expect(view.json).toMatchObject({
      status: 'authorized',
      lastRefreshAt: clock.date().toISOString(),
      tokenExpiresOn: after?.expiresOn?.toISOString(),
      consecutiveFailures: 0,
      nextAttemptAt: null,
      lastError: null,
    });
  });

  it('refreshes on demand through POST /refresh', async () => {
    const refreshesBefore = harness.entra.stats.refreshes;
    const response = await api(harness.baseUrl, 'POST', '/api/connections/timer-a/refresh');
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({ result: 'refreshed', reason: 'forced' });
    expect(harness.entra.stats.refreshes).toBe(refreshesBefore + 1);
    expect((await api(harness.baseUrl, 'POST', '/api/connections/nobody/refresh')).status).toBe(404);
    expect((await api(harness.baseUrl, 'GET', '/api/connections/timer-a/refresh')).status).toBe(405);
  });

  it('the token route refreshes a token inside the margin once, whatever the number of callers', async () => {
    clock.advance(50 * MINUTE);
    const refreshesBefore = harness.entra.stats.refreshes;
    const responses = await Promise.all(
      Array.from({ length: 25 }, () => api(harness.baseUrl, 'GET', '/api/connections/timer-a/token')),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(25).fill(200));
    expect(new Set(responses.map((r) => r.json.access_token)).size).toBe(1);
    expect(harness.entra.stats.refreshes).toBe(refreshesBefore + 1);
    expect(responses[0]?.json.expires_in).toBe(3600);
    for (const r of responses) harness.secretsSeen.add(String(r.json.access_token));
  });

  it('never hands out an expired token: when Entra is down and the token expired, 503 with the reason', async () => {
    clock.advance(70 * MINUTE); // expired
    harness.entra.faults.failNext(100, { status: 503, endpoint: 'token' });
    try {
      const response = await api(harness.baseUrl, 'GET', '/api/connections/timer-a/token');
      expect(response.status).toBe(503);
      expect(response.json).toMatchObject({ code: 'token_unavailable' });
      expect(String(response.json.detail)).toMatch(/temporarily unavailable/i);
      expect(response.headers.get('retry-after')).toBeTruthy();
      const view = await api(harness.baseUrl, 'GET', '/api/connections/timer-a');
      expect(view.json).toMatchObject({ status: 'degraded', consecutiveFailures: 1 });
      expect(view.json.lastError).toMatchObject({
        code: expect.stringMatching(/^(temporarily_unavailable|server_error)$/),
      });
      expect(Date.parse(String(view.json.nextAttemptAt))).toBeGreaterThan(clock.ms);
    } finally {
      harness.entra.faults.reset();
    }
  });

  it('a transient failure never becomes reauthorization_required, and retries wait for their backoff', async () => {
    harness.entra.faults.failNext(1000, { status: 429, retryAfterSeconds: 120, endpoint: 'token' });
    clock.advance(2 * 60 * MINUTE); // past the previous test's backoff
    try {
      let attempts = 0;
      for (let round = 0; round < 12; round++) {
        const sweep = await harness.broker.refresher.refreshDue({ actor: 'timer' });
        expect(sweep).toMatchObject({ refreshed: 0, failed: 1 });
        attempts += sweep.refreshed + sweep.failed;
        // Within the backoff nothing is tried again, whoever asks.
        const again = await harness.broker.refresher.refreshDue({ actor: 'timer' });
        expect(again.due).toBe(0);
        const connection = await harness.broker.registry.get('timer-a');
        expect(connection?.status).toBe('degraded');
        const wait = Date.parse(connection?.nextAttemptAt ?? '') - clock.ms;
        expect(wait).toBeGreaterThanOrEqual(120_000);
        clock.advance(wait + 1);
      }
      expect(attempts).toBe(12);
      const connection = await harness.broker.registry.get('timer-a');
      expect(connection?.consecutiveFailures).toBeGreaterThanOrEqual(12);
    } finally {
      harness.entra.faults.reset();
    }
    const sweep = await harness.broker.refresher.refreshDue({ actor: 'timer' });
    expect(sweep.refreshed).toBe(1);
    const recovered = await harness.broker.registry.get('timer-a');
    expect(recovered).toMatchObject({
      status: 'authorized',
      consecutiveFailures: 0,
      degradedSince: undefined,
    });
    const view = await api(harness.baseUrl, 'GET', '/api/connections/timer-a');
    expect(view.json.recentEvents).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          type: 'connection.degraded',
          fromStatus: 'authorized',
          toStatus: 'degraded',
        }),
        expect.objectContaining({
          type: 'connection.recovered',
          fromStatus: 'degraded',
          toStatus: 'authorized',
        }),
      ]),
    );
  });

  describe.each<[string, (username: string) => void, number, string]>([
    [
      'revoked consent',
      (u) => {
        harness.entra.faults.revokeConsent(u);
      },
      65001,
      'invalid_grant',
    ],
    [
      'a password reset',
      (u) => {
        harness.entra.faults.resetPassword(u);
      },
      50173,
      'invalid_grant',
    ],
    [
      'MFA now required',
      (u) => {
        harness.entra.faults.requireMfa(u);
      },
      50076,
      'interaction_required',
    ],
    [
      'a Conditional Access block',
      (u) => {
        harness.entra.faults.conditionalAccessBlock(u);
      },
      53003,
      '',
    ],
  ])('a definitive refusal: %s', (_label, inject, aadsts, error) => {
    const name = `dead-${String(aadsts)}`;
    const user = { username: `user${String(aadsts)}@contoso.test`, password: 'Pass-1' };

    it(`marks ${name} reauthorization_required with AADSTS${String(aadsts)} and a remedy`, async () => {
      harness.entra.addUser({ ...user, tenantId: harness.entra.tenants.primary.tenantId });
      expect(await authorizeConnection(harness, name, user)).toBe(200);
      const cacheBefore = await harness.broker.secrets.get(secretNames.cache(name));
      inject(user.username);
      const response = await api(harness.baseUrl, 'POST', `/api/connections/${name}/refresh`);
      expect(response.status).toBe(409);
      expect(response.json).toMatchObject({
        code: 'reauthorization_required',
        aadsts: `AADSTS${String(aadsts)}`,
      });
      const view = await api(harness.baseUrl, 'GET', `/api/connections/${name}`);
      expect(view.json).toMatchObject({ status: 'reauthorization_required' });
      expect(view.json.lastError).toMatchObject({ code: 'reauthorization_required', aadsts });
      expect((view.json.lastError as { remedy: string }).remedy).toMatch(/authorize/i);
      expect(view.json.recentEvents).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            type: 'connection.reauthorization_required',
            aadsts,
            toStatus: 'reauthorization_required',
          }),
        ]),
      );
      if (error) expect(harness.logs.some((line) => line.includes(`"error":"${error}"`))).toBe(true);
      // The refused grant is not deleted: the cache is kept as it was (nothing to lose by keeping it).
      expect((await harness.broker.secrets.get(secretNames.cache(name)))?.version).toBe(cacheBefore?.version);
      // The timer leaves it alone.
      clock.advance(60 * MINUTE);
      const before = await harness.broker.registry.get(name);
      await harness.broker.refresher.refreshDue({ actor: 'timer' });
      expect((await harness.broker.registry.get(name))?.etag).toBe(before?.etag);
      const token = await api(harness.baseUrl, 'GET', `/api/connections/${name}/token`);
      expect(token.status).toBe(409);
      expect(token.json.code).toBe('reauthorization_required');
    });
  });

  it('a wrong client secret makes the broker unhealthy and leaves connections untouched', async () => {
    expect(await authorizeConnection(harness, 'config-a', USERS.agent)).toBe(200);
    clock.advance(50 * MINUTE);
    const before = await harness.broker.registry.get('config-a');
    const misconfigured = harness.secondBroker({ ENTRA_CLIENT_SECRET: 'not-the-secret-at-all' });
    const sweep = await misconfigured.refresher.refreshDue({ actor: 'timer' });
    expect(sweep.stoppedForConfiguration).toBe(true);
    expect(sweep.refreshed).toBe(0);
    const after = await harness.broker.registry.get('config-a');
    expect(after?.status).toBe(before?.status);
    expect(after?.consecutiveFailures).toBe(before?.consecutiveFailures);
    expect(misconfigured.healthState.configurationProblem).toMatchObject({ aadsts: 7000215 });
    const answer = await serve(health)(misconfigured, {
      method: 'GET',
      url: new URL('http://localhost/api/health'),
      headers: { get: () => null },
      params: {},
      text: () => Promise.resolve(''),
      correlationId: 'test',
    });
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body ?? '{}')).toMatchObject({
      status: 'unhealthy',
      checks: { entra_credentials: 'configuration_error' },
      configurationProblem: { aadsts: 'AADSTS7000215' },
    });
  });
});
