import { backoffMs, shouldRefresh } from '../../shared/oauth/refresh';

const NOW = new Date('2026-11-23T12:00:00Z');
const settings = { marginMinutes: 15, keepaliveDays: 7 };
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
