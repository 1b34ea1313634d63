import type { EntraFailure } from '../../../shared/oauth/entra-errors';
import {
  backoffMs,
  nextStateAfterFailure,
  refreshOutcomeError,
  shouldRefresh,
} from '../../../shared/oauth/refresh';
import { cacheWriteDue } from '../../../shared/connections/state';

const NOW = new Date('2026-11-23T12:00:00Z');
const settings = { marginMs: 15 * 60_000, keepaliveMs: 7 * 86_400_000 };
const minutes = (n: number) => new Date(NOW.getTime() + n * 60_000).toISOString();
const days = (n: number) => new Date(NOW.getTime() + n * 86_400_000).toISOString();

type Subject = Parameters<typeof shouldRefresh>[0];

const authorized: Subject = {
  status: 'authorized',
  tokenExpiresOn: minutes(50),
  lastRefreshAt: minutes(-10),
  authorizedAt: days(-30),
  nextAttemptAt: undefined,
};

describe('shouldRefresh', () => {
  it.each<[string, Partial<Subject>, boolean, string]>([
    ['a fresh token', {}, false, 'fresh'],
    ['a token expiring within the margin', { tokenExpiresOn: minutes(14) }, true, 'expiring'],
    ['a token expiring exactly at the margin', { tokenExpiresOn: minutes(15) }, true, 'expiring'],
    ['an expired token', { tokenExpiresOn: minutes(-5) }, true, 'expiring'],
    ['no published token', { tokenExpiresOn: undefined }, true, 'missing-token'],
    ['a refresh token unused for the keep-alive period', { lastRefreshAt: days(-7) }, true, 'keepalive'],
    ['a refresh token used within the keep-alive period', { lastRefreshAt: days(-6) }, false, 'fresh'],
    [
      'never refreshed, authorized long ago',
      { lastRefreshAt: undefined, authorizedAt: days(-8) },
      true,
      'keepalive',
    ],
    [
      'a degraded connection whose backoff has not ended',
      { status: 'degraded', tokenExpiresOn: minutes(5), nextAttemptAt: minutes(3) },
      false,
      'backoff',
    ],
    [
      'a degraded connection whose backoff ended',
      { status: 'degraded', tokenExpiresOn: minutes(5), nextAttemptAt: minutes(-1) },
      true,
      'expiring',
    ],
    ['a new connection', { status: 'new' }, false, 'not-authorized'],
    ['a disabled connection', { status: 'disabled', tokenExpiresOn: minutes(1) }, false, 'disabled'],
    [
      'a connection needing re-authorization',
      { status: 'reauthorization_required', tokenExpiresOn: minutes(1) },
      false,
      'needs-reauthorization',
    ],
  ])('%s', (_label, overrides, should, reason) => {
    const decision = shouldRefresh({ ...authorized, ...overrides }, NOW, settings);
    expect(decision).toEqual({ should, reason });
  });

  it('lets an admin force a refresh during backoff but not of a dead grant', () => {
    expect(
      shouldRefresh({ ...authorized, status: 'degraded', nextAttemptAt: minutes(30) }, NOW, settings, true),
    ).toEqual({
      should: true,
      reason: 'forced',
    });
    expect(
      shouldRefresh({ ...authorized, status: 'reauthorization_required' }, NOW, settings, true).should,
    ).toBe(false);
  });
});

describe('backoffMs', () => {
  it.each([
    [1, 60_000],
    [2, 120_000],
    [3, 240_000],
    [6, 1_920_000],
    [7, 3_600_000],
    [50, 3_600_000],
  ])('after %i failures waits about %i ms', (failures, expected) => {
    expect(backoffMs(failures, undefined, () => 0.5)).toBeCloseTo(expected);
    expect(backoffMs(failures, undefined, () => 0)).toBeCloseTo(expected * 0.8);
    expect(backoffMs(failures, undefined, () => 1)).toBeCloseTo(expected * 1.2);
  });

  it('honours a longer Retry-After', () => {
    expect(backoffMs(1, 600, () => 0.5)).toBe(600_000);
    expect(backoffMs(7, 5, () => 0.5)).toBe(3_600_000);
  });

  it('bounds a broken connection to about two dozen attempts a day', () => {
    let elapsed = 0;
    let attempts = 0;
    while (elapsed < 86_400_000) {
      attempts += 1;
      elapsed += backoffMs(attempts, undefined, () => 0);
    }
    expect(attempts).toBeLessThan(40);
  });
});

describe('nextStateAfterFailure', () => {
  const failure = (kind: EntraFailure['kind'], extra: Partial<EntraFailure> = {}): EntraFailure => ({
    kind,
    error: kind === 'definitive' ? 'invalid_grant' : 'temporarily_unavailable',
    aadsts: kind === 'definitive' ? 700082 : undefined,
    message: 'what Entra said',
    remedy: 'what to do',
    ...extra,
  });
  type Before = Parameters<typeof nextStateAfterFailure>[0];
  const healthy: Before = {
    status: 'authorized',
    consecutiveFailures: 0,
    degradedSince: undefined,
    lastError: undefined,
  };
  const degradedFor = (minutesAgo: number, lastFailureMinutesAgo: number): Before => ({
    status: 'degraded',
    consecutiveFailures: 3,
    degradedSince: minutes(-minutesAgo),
    lastError: {
      code: 'temporarily_unavailable',
      message: 'x',
      aadsts: undefined,
      remedy: undefined,
      at: minutes(-lastFailureMinutesAgo),
    },
  });
  const half = () => 0.5; // no jitter: backoff = the exponential step exactly

  it.each<[string, Before, EntraFailure, Record<string, unknown> | 'configuration']>([
    ["the app's own credential fails: nothing changes", healthy, failure('configuration'), 'configuration'],
    [
      'a definitive failure ends the grant, announced',
      healthy,
      failure('definitive'),
      {
        eventType: 'connection.reauthorization_required',
        status: 'reauthorization_required',
        consecutiveFailures: 1,
        nextAttemptAt: undefined,
        lastErrorCode: 'reauthorization_required',
        notify: 'connection.reauthorization_required',
      },
    ],
    [
      'a first transient failure degrades, retried after a minute, not announced yet',
      healthy,
      failure('transient'),
      {
        eventType: 'connection.degraded',
        status: 'degraded',
        consecutiveFailures: 1,
        nextAttemptAt: minutes(1),
        lastErrorCode: 'temporarily_unavailable',
        degradedSince: NOW.toISOString(),
        notify: undefined,
      },
    ],
    [
      'a transient failure that crosses the 30-minute threshold is announced once',
      degradedFor(31, 16),
      failure('transient'),
      {
        eventType: 'connection.refresh_failed',
        status: 'degraded',
        consecutiveFailures: 4,
        notify: 'connection.degraded',
      },
    ],
    [
      'the next failures after the announcement stay quiet',
      degradedFor(60, 20),
      failure('transient'),
      {
        eventType: 'connection.refresh_failed',
        status: 'degraded',
        degradedSince: minutes(-60),
        notify: undefined,
      },
    ],
    [
      'many transient failures never become reauthorization_required',
      { ...degradedFor(6 * 24 * 60, 60), consecutiveFailures: 500 },
      failure('transient'),
      { status: 'degraded', consecutiveFailures: 501, nextAttemptAt: minutes(60) },
    ],
    [
      'a Retry-After longer than the backoff is honoured',
      healthy,
      failure('transient', { retryAfterSeconds: 600 }),
      { status: 'degraded', nextAttemptAt: minutes(10) },
    ],
  ])('%s', (_label, before, thrown, expected) => {
    const effect = nextStateAfterFailure(before, thrown, NOW, 30 * 60_000, half);
    if (expected === 'configuration') {
      expect(effect).toEqual({ kind: 'configuration' });
      return;
    }
    if (effect.kind !== 'state') throw new Error('expected a state change');
    const seen: Record<string, unknown> = {
      eventType: effect.eventType,
      status: effect.state.status,
      consecutiveFailures: effect.state.consecutiveFailures,
      nextAttemptAt: effect.state.nextAttemptAt,
      lastErrorCode: effect.state.lastError?.code,
      degradedSince: effect.state.degradedSince,
      notify: effect.notify?.type,
    };
    expect(Object.fromEntries(Object.keys(expected).map((key) => [key, seen[key]]))).toEqual(expected);
  });
});

describe('cacheWriteDue', () => {
  const hoursAgo = (n: number) => new Date(NOW.getTime() - n * 3_600_000);
  const base = {
    changed: true,
    signedInAgain: false,
    statusChanges: false,
    storedAt: hoursAgo(1),
    now: NOW,
    intervalHours: 24,
  };
  it.each<[string, Partial<typeof base> & { storedAt?: Date | undefined }, boolean]>([
    ['a routine refresh of a cache stored an hour ago', {}, false],
    ['a cache stored just under the interval ago', { storedAt: hoursAgo(23.9) }, false],
    ['a cache stored the interval ago', { storedAt: hoursAgo(24) }, true],
    [
      'nothing changed in the cache (no new refresh token)',
      { changed: false, storedAt: hoursAgo(48) },
      false,
    ],
    ["the connection's status changes (it recovers)", { statusChanges: true }, true],
    ['the account signed in again (password grant)', { signedInAgain: true }, true],
    ['no stored version known', { storedAt: undefined }, true],
    ['an interval of 0: every refresh', { intervalHours: 0 }, true],
  ])('%s', (_label, input, expected) => {
    expect(cacheWriteDue({ ...base, ...input })).toBe(expected);
  });
});

describe('refreshOutcomeError for a consumer', () => {
  it('regression: token_unavailable said the same twice ("No valid access token… No valid access token is available.")', () => {
    const error = refreshOutcomeError(
      { connection: 'support-in', result: 'skipped', reason: 'fresh' },
      'consumer',
    );
    expect(error.code).toBe('token_unavailable');
    expect(error.message).toBe(
      'No valid access token for support-in right now. The refresh gave no token that lives long enough.',
    );
    expect(error.message.match(/valid access token/g)).toHaveLength(1);
  });

  it('says where the last error is: the console first, the API call in brackets', () => {
    const error = refreshOutcomeError(
      { connection: 'support-in', result: 'skipped', reason: 'backoff' },
      'consumer',
    );
    expect(error.message).toBe(
      'No valid access token for support-in right now. The last refresh failed; the broker is waiting before it tries again.',
    );
    expect(error.remedy).toBe(
      "Try again shortly. The connection's last error says why: in the console, on its row (API: `GET /api/connections/support-in`).",
    );
  });
});
