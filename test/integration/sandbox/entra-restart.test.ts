/**
 * What `npm start`'s sandbox relies on across a restart, against the REAL @azure/msal-node: an
 * emulator restored from `snapshot()` is the same tenant, app, users (object ids) and signing key,
 * and redeems the refresh tokens the one before issued; its plain-HTTP sign-in listener serves the
 * pages a browser visits (named in discovery, so MSAL's authorize URL points there) and nothing else.
 */
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { startEntraEmulator, type EntraEmulator } from '../../../sandbox/entra';
import { signIn } from '../../../sandbox/entra/sign-in-driver';
import { keepSandboxState, readSandboxState } from '../../../sandbox/state-file';
import { testPki } from '../../support/pki';

const REDIRECT = 'http://localhost:3999/api/callback';
const EWS = 'https://outlook.office365.com/EWS.AccessAsUser.All';
const USER = { username: 'support@contoso.test', password: 'Support-Pass-1' };

const running: EntraEmulator[] = [];
afterAll(async () => {
  for (const emulator of running) await emulator.close();
});

async function start(options: Parameters<typeof startEntraEmulator>[0]): Promise<EntraEmulator> {
  const emulator = await startEntraEmulator(options);
  running.push(emulator);
  return emulator;
}

function client(
  emulator: EntraEmulator,
  clientId: string,
  clientSecret: string,
): ConfidentialClientApplication {
  const tenant = emulator.tenants.primary.tenantId;
  return new ConfidentialClientApplication({
    auth: {
      clientId,
      clientSecret,
      authority: `${emulator.url}/${tenant}`,
      knownAuthorities: [new URL(emulator.url).host],
    },
  });
}

it('a restored emulator keeps tenant, app, users and key, and redeems the refresh tokens issued before', async () => {
  const pki = testPki();
  const first = await start({ pki, browserPort: 0 });
  const user = first.addUser({ ...USER, tenantId: first.tenants.primary.tenantId });
  const app = first.registerApp({ displayName: 'ews-oauth-broker (sandbox)', redirectUris: [REDIRECT] });
  const msal = client(first, app.clientId, app.clientSecret!);

  // MSAL builds the authorize URL from discovery: the plain-HTTP sign-in listener.
  const authorizeUrl = await msal.getAuthCodeUrl({ scopes: [EWS], redirectUri: REDIRECT });
  expect(authorizeUrl.startsWith(`${first.browserUrl}/`)).toBe(true);
  expect(first.browserUrl).toMatch(/^http:\/\/localhost:\d+$/);
  const page = await (await fetch(authorizeUrl)).text();
  expect(page).toContain('ews-oauth-broker (sandbox)');
  // Only the browser's pages: the token endpoint and keys stay HTTPS.
  const tenant = first.tenants.primary.tenantId;
  expect((await fetch(`${first.browserUrl}/${tenant}/oauth2/v2.0/token`, { method: 'POST' })).status).toBe(
    404,
  );
  expect((await fetch(`${first.browserUrl}/${tenant}/discovery/v2.0/keys`)).status).toBe(404);

  const callback = await signIn(authorizeUrl, { ...USER, consent: 'accept' });
  const redeemed = await msal.acquireTokenByCode({
    code: callback.searchParams.get('code') ?? '',
    scopes: [EWS],
    redirectUri: REDIRECT,
  });
  const cache = msal.getTokenCache().serialize();
  const accessTokenBefore = redeemed.accessToken;
  const snapshot = JSON.parse(JSON.stringify(first.snapshot())) as ReturnType<EntraEmulator['snapshot']>;
  await first.close();
  running.splice(running.indexOf(first), 1);

  // On the same port, as `npm start` does (SANDBOX_ENTRA_PORT): MSAL's cache is keyed by the authority host.
  const port = Number(new URL(first.localUrl).port);
  const second = await start({ pki, port, browserPort: 0, restore: snapshot });
  expect(second.tenants.primary).toEqual(first.tenants.primary);
  expect(second.findUser(USER.username)?.oid).toBe(user.oid);
  expect(second.findApp(app.clientId)).toMatchObject({
    clientSecret: app.clientSecret,
    displayName: app.displayName,
  });
  // The same signing key: an access token issued before the restart still verifies.
  expect(second.verifyAccessToken(accessTokenBefore, 'https://outlook.office365.com').valid).toBe(true);

  const again = client(second, app.clientId, app.clientSecret!);
  again.getTokenCache().deserialize(cache);
  const [account] = await again.getTokenCache().getAllAccounts();
  const refreshed = await again.acquireTokenSilent({ account: account!, scopes: [EWS], forceRefresh: true });
  expect(refreshed.uniqueId).toBe(user.oid);
  expect(second.stats.refreshes).toBe(1);
}, 60_000);

it('keeps the state file whole and private, and starts over from a damaged one', async () => {
  const emulator = await start({ pki: testPki() });
  const app = emulator.registerApp({ redirectUris: [REDIRECT] });
  const file = join(mkdtempSync(join(tmpdir(), 'sandbox-state-')), 'sandbox.json');
  const kept = keepSandboxState(file, () => ({
    version: 1,
    clientId: app.clientId,
    entra: emulator.snapshot(),
  }));
  kept.flush();
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(readSandboxState(file)).toMatchObject({ clientId: app.clientId, entra: { version: 1 } });
  writeFileSync(file, '{"version":1,"clientId":"x","entra":{');
  expect(readSandboxState(file)).toBeUndefined();
});
