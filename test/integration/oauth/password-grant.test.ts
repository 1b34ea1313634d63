import { secretNames } from '../../../shared/secrets/secret-store';
import {
  api,
  expectNoSecrets,
  startHarness,
  storedRefreshToken,
  testConnection,
  TestClock,
  USERS,
  type Harness,
} from '../../support/harness';

/**
 * The legacy password grant (ROPC) end to end, with the real MSAL against the Entra emulator and
 * a real Dovecot: the password is written once through the admin API and kept only in the secret
 * store; refreshes use the refresh token; the password signs in again only when Entra refuses
 * the refresh token for good; Entra's refusals come back with a remedy about the password.
 */
const clock = new TestClock();
let harness: Harness;
const bodies: string[] = [];
const NAME = 'genesys-in';
const NEW_PASSWORD = 'Support-Pass-2-after-reset';

beforeAll(async () => {
  harness = await startHarness({ mailboxes: { dovecot: true }, clock });
  harness.secretsSeen.add(USERS.support.password);
  harness.secretsSeen.add(NEW_PASSWORD);
  // ROPC cannot show a consent page: a Global Administrator consented for the tenant.
  harness.entra.grantAdminConsent(harness.env.ENTRA_CLIENT_ID!);
  const defined = await api(harness.baseUrl, 'PUT', `/api/connections/${NAME}`, {
    mailbox: USERS.support.username,
    profile: 'imap',
    grant: 'password',
  });
  expect(defined.status).toBe(201);
}, 60_000);

afterAll(async () => {
  try {
    expectNoSecrets(harness.secretsSeen, [...harness.logs, ...bodies]);
  } finally {
    await harness.close();
  }
});

async function call(method: string, path: string, body?: unknown) {
  const response = await api(harness.baseUrl, method, path, body);
  bodies.push(response.text);
  return response;
}
const setPassword = (password: string) => call('PUT', `/api/connections/${NAME}/password`, { password });
const authorize = () => call('POST', `/api/connections/${NAME}/authorize`);
const passwordSignIns = () => harness.entra.stats.requests['token:password'] ?? 0;

it('asks for the password before it can authorize, and changes nothing', async () => {
  const { status, json } = await authorize();
  expect(status).toBe(409);
  expect(json).toMatchObject({ code: 'password_required' });
  expect(json.remedy).toBe(
    `Set it, then Authorize: in the console, the connection's More → Set password (API: \`PUT /api/connections/${NAME}/password\`).`,
  );
  expect((await harness.broker.registry.get(NAME))?.status).toBe('new');
});

it('refuses a bad password body, and a password on a connection of another grant', async () => {
  for (const body of [
    '{"password":',
    { password: '' },
    { password: 7 },
    { password: 'x', extra: 1 },
    ['x'],
  ]) {
    const response = await call('PUT', `/api/connections/${NAME}/password`, body);
    expect(response.status).toBe(400);
  }
  await call('PUT', '/api/connections/not-ropc', { mailbox: USERS.support.username, profile: 'imap' });
  expect((await call('PUT', '/api/connections/not-ropc/password', { password: 'x' })).status).toBe(400);
  expect(await harness.broker.secrets.get(secretNames.password('not-ropc'))).toBeUndefined();
  expect((await call('PUT', '/api/connections/nobody/password', { password: 'x' })).status).toBe(404);
});

it('a wrong password: AADSTS50126 with the remedy to set the current one; nothing is stored', async () => {
  expect((await setPassword('not-the-password')).status).toBe(204);
  const { status, json } = await authorize();
  expect(status).toBe(409);
  expect(json).toMatchObject({ code: 'authorization_failed', aadsts: 'AADSTS50126' });
  expect(json.remedy).toBe(
    `Set the account's current password, then Authorize again: in the console, the connection's More → Set password (API: \`PUT /api/connections/${NAME}/password\`).`,
  );
  expect(await harness.broker.secrets.get(secretNames.cache(NAME))).toBeUndefined();
  expect((await harness.broker.registry.get(NAME))?.status).toBe('new');
});

it('authorizes with the password, which is never returned, and Test connection logs in over IMAP', async () => {
  expect((await setPassword(USERS.support.password)).status).toBe(204);
  const { status, json } = await authorize();
  expect(status).toBe(200);
  expect(json).toMatchObject({
    signedInAs: USERS.support.username,
    connection: { status: 'authorized', grant: 'password' },
  });
  expect(await storedRefreshToken(harness, NAME)).toBeDefined();
  const view = await call('GET', `/api/connections/${NAME}`);
  expect(view.text).not.toContain(USERS.support.password);
  expect((await testConnection(harness, NAME, bodies)).json).toMatchObject({
    ok: true,
    protocol: 'imap',
    details: { totalCount: 12 },
  });
});

it('refreshes with the refresh token, not the password', async () => {
  const before = passwordSignIns();
  const { json } = await call('POST', `/api/connections/${NAME}/refresh`);
  expect(json).toMatchObject({ result: 'refreshed' });
  expect(passwordSignIns()).toBe(before);
});

it('signs in with the password again when the refresh token expired (90 days unused)', async () => {
  clock.advance(91 * 24 * 60 * 60 * 1000);
  const before = passwordSignIns();
  const { json } = await call('POST', `/api/connections/${NAME}/refresh`);
  expect(json).toMatchObject({ result: 'refreshed' });
  expect(passwordSignIns()).toBe(before + 1);
  expect((await harness.broker.registry.get(NAME))?.status).toBe('authorized');
});

it('signs in with the password again when Entra no longer knows the refresh token (AADSTS70000)', async () => {
  // As after the sandbox started over: the stored refresh token is one the sign-in service never issued.
  harness.entra.faults.forgetRefreshTokens();
  const before = passwordSignIns();
  const { json } = await call('POST', `/api/connections/${NAME}/refresh`);
  expect(json).toMatchObject({ result: 'refreshed' });
  expect(passwordSignIns()).toBe(before + 1);
  expect((await harness.broker.registry.get(NAME))?.status).toBe('authorized');
});

it('a reset password ends the grant with the remedy to set the new one; after that it works again', async () => {
  harness.entra.faults.resetPassword(USERS.support.username, NEW_PASSWORD);
  const { status, json } = await call('POST', `/api/connections/${NAME}/refresh`);
  expect(status).toBe(409);
  expect(json).toMatchObject({ code: 'reauthorization_required', aadsts: 'AADSTS50126' });
  expect(String(json.remedy)).toContain('/password');
  expect(await setPassword(NEW_PASSWORD)).toMatchObject({ status: 204 });
  expect((await authorize()).json).toMatchObject({ connection: { status: 'authorized' } });
});

it('says the password grant cannot do MFA (AADSTS50076), as a remedy an admin can act on', async () => {
  harness.entra.faults.requireMfa(USERS.support.username, true);
  try {
    const { json } = await authorize();
    expect(json).toMatchObject({ status: 409, aadsts: 'AADSTS50076' });
    expect(String(json.remedy)).toMatch(/password grant cannot/);
  } finally {
    harness.entra.faults.requireMfa(USERS.support.username, false);
  }
});

it.each([
  ['smtp', 'smtp'],
  ['ews', 'ews'],
])('the password grant serves profile %s as well (Test connection over %s)', async (profile, protocol) => {
  const name = `ropc-${profile}`;
  await call('PUT', `/api/connections/${name}`, {
    mailbox: USERS.support.username,
    profile,
    grant: 'password',
  });
  expect((await call('PUT', `/api/connections/${name}/password`, { password: NEW_PASSWORD })).status).toBe(
    204,
  );
  expect((await call('POST', `/api/connections/${name}/authorize`)).status).toBe(200);
  expect((await testConnection(harness, name, bodies)).json).toMatchObject({ ok: true, protocol });
});

it('deletes the password with the connection', async () => {
  expect(await harness.broker.secrets.get(secretNames.password(NAME))).toBeDefined();
  expect((await call('DELETE', `/api/connections/${NAME}`)).status).toBe(204);
  expect(await harness.broker.secrets.get(secretNames.password(NAME))).toBeUndefined();
});
