import { randomBytes } from 'node:crypto';
import type { AuthSession } from '../../../shared/oauth/auth-session';
import { TableAuthSessionStore, sessionRowKey } from '../../../shared/oauth/table-session-store';
import { testStorageSettings, uniqueTablePrefix } from '../../support/storage';

const store = new TableAuthSessionStore({
  settings: testStorageSettings(),
  tablePrefix: uniqueTablePrefix('ses'),
});

function session(expiresOn: Date, overrides: Partial<AuthSession> = {}): AuthSession {
  return {
    state: randomBytes(32).toString('base64url'),
    connection: 'sales',
    codeVerifier: randomBytes(32).toString('base64url'),
    nonce: randomBytes(16).toString('base64url'),
    browserBindingHash: randomBytes(32).toString('base64url'),
    startedBy: 'admin@contoso.com',
    binding: { createdAt: '2026-12-01T08:00:00.000Z', grantFingerprint: 'Zm9v', authorizedAt: '' },
    createdAt: new Date().toISOString(),
    expiresOn: expiresOn.toISOString(),
    ...overrides,
  };
}

const inTenMinutes = () => new Date(Date.now() + 10 * 60_000);

describe('TableAuthSessionStore (Azurite)', () => {
  it('creates, peeks and consumes once', async () => {
    const s = session(inTenMinutes());
    await store.create(s);
    expect(await store.peek(s.state)).toEqual(s);
    expect(await store.peek(s.state)).toEqual(s);

    // The state is not the key, nor stored.
    const raw = await store.client.getEntity('session', sessionRowKey(s.state));
    expect(raw.rowKey).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(raw)).not.toContain(s.state);

    expect(await store.consume(s.state)).toEqual(s);
    expect(await store.consume(s.state)).toBeUndefined();
    expect(await store.peek(s.state)).toBeUndefined();
    expect(await store.consume('never-issued')).toBeUndefined();
  });

  it('gives a session to exactly one of 20 concurrent consumers', async () => {
    const s = session(inTenMinutes());
    await store.create(s);
    const results = await Promise.all(Array.from({ length: 20 }, () => store.consume(s.state)));
    const winners = results.filter((r) => r !== undefined);
    expect(winners).toEqual([s]);
  });

  it('purges expired sessions only', async () => {
    const now = new Date();
    const expired = [1, 2, 3].map((m) => session(new Date(now.getTime() - m * 60_000)));
    const live = session(inTenMinutes());
    await Promise.all([...expired, live].map((s) => store.create(s)));

    expect(await store.purgeExpired(now)).toBe(3);
    for (const s of expired) expect(await store.peek(s.state)).toBeUndefined();
    expect(await store.peek(live.state)).toEqual(live);
    expect(await store.purgeExpired(now)).toBe(0);
  });
});
