/**
 * The Entra ID emulator's resource owner password credentials grant (`grant_type=password`, the
 * broker's legacy grant for IMAP/POP/SMTP clients) against the REAL @azure/msal-node
 * (`acquireTokenByUsernamePassword`), plus the raw wire shape of its answers.
 */
import {
  AuthError,
  ConfidentialClientApplication,
  PublicClientApplication,
  type AuthenticationResult,
} from '@azure/msal-node';
import { startEntraEmulator, type EntraEmulator, type UserInfo } from '../../../sandbox/entra';
import { testPki } from '../../support/pki';

const OUTLOOK = 'https://outlook.office.com';
const IMAP = `${OUTLOOK}/IMAP.AccessAsUser.All`;
const SMTP = `${OUTLOOK}/SMTP.Send`;

let emu: EntraEmulator;
let app: { clientId: string; clientSecret: string };
/** Registered without any consent. */
let unconsented: { clientId: string; clientSecret: string };
const realFetch = globalThis.fetch;

beforeAll(async () => {
  globalThis.fetch = (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    if (url.hostname !== '127.0.0.1')
      return Promise.reject(new Error(`test network guard: refused ${url.toString()}`));
    return realFetch(input, init);
  };
  emu = await startEntraEmulator({ pki: testPki() });
  const a = emu.registerApp({ redirectUris: [], displayName: 'Mail gateway' });
  app = { clientId: a.clientId, clientSecret: a.clientSecret ?? '' };
  emu.grantAdminConsent(app.clientId);
  const b = emu.registerApp({ redirectUris: [], displayName: 'Unconsented' });
  unconsented = { clientId: b.clientId, clientSecret: b.clientSecret ?? '' };
});

afterAll(async () => {
  globalThis.fetch = realFetch;
  await emu.close();
});

function cca(
  opts: { tenant?: string; clientId?: string; clientSecret?: string } = {},
): ConfidentialClientApplication {
  return new ConfidentialClientApplication({
    auth: {
      clientId: opts.clientId ?? app.clientId,
      authority: `${emu.url}/${opts.tenant ?? emu.tenants.primary.tenantId}`,
      knownAuthorities: [new URL(emu.url).host],
      clientSecret: opts.clientSecret ?? app.clientSecret,
    },
  });
}

let userCount = 0;
function newUser(): UserInfo {
  userCount++;
  return emu.addUser({ username: `ropc${userCount}@contoso.test`, password: `Pw-${userCount}!` });
}

/** The one call into MSAL's password grant (deprecated by MSAL: the legacy grant is what is under test). */
async function ropc(
  client: ConfidentialClientApplication | PublicClientApplication,
  username: string,
  password: string,
  scopes = [IMAP],
): Promise<AuthenticationResult> {
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- the legacy grant is the point of this test
  const result = await client.acquireTokenByUsernamePassword({ username, password, scopes });
  if (!result) throw new Error('acquireTokenByUsernamePassword returned null');
  return result;
}

async function failure(p: Promise<unknown>): Promise<AuthError> {
  const outcome = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(outcome instanceof AuthError)) throw new Error(`expected an MSAL AuthError, got ${String(outcome)}`);
  return outcome;
}

async function postToken(
  form: Record<string, string>,
  segment = emu.tenants.primary.tenantId,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${emu.url}/${segment}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('password grant with msal-node', () => {
  it('issues IMAP/SMTP tokens with a refresh token that acquireTokenSilent can redeem', async () => {
    const user = newUser();
    const client = cca();
    const before = emu.stats.requests['token:password'] ?? 0;
    const result = await ropc(client, user.username, user.password, [IMAP, SMTP]);
    expect(emu.stats.requests['token:password']).toBe(before + 1);
    const checked = emu.verifyAccessToken(result.accessToken, OUTLOOK);
    expect(checked.valid).toBe(true);
    expect(checked.claims).toMatchObject({
      aud: OUTLOOK,
      scp: 'IMAP.AccessAsUser.All SMTP.Send',
      upn: user.username,
      oid: user.oid,
      amr: ['pwd'],
      appid: app.clientId,
      appidacr: '1',
    });
    expect(result.scopes).toEqual(expect.arrayContaining([IMAP, SMTP]));
    expect(result.idToken).not.toBe('');
    expect(result.account?.username).toBe(user.username);
    const cache = JSON.parse(client.getTokenCache().serialize()) as { RefreshToken: object };
    expect(Object.keys(cache.RefreshToken)).toHaveLength(1);

    const refreshes = emu.stats.refreshes;
    const again = await client.acquireTokenSilent({
      account: result.account!,
      scopes: [IMAP],
      forceRefresh: true,
    });
    expect(emu.stats.refreshes).toBe(refreshes + 1);
    expect(again.accessToken).not.toBe(result.accessToken);
    expect(emu.verifyAccessToken(again.accessToken, OUTLOOK).valid).toBe(true);
  });

  it('serves public clients without a secret', async () => {
    const pub = emu.registerApp({ redirectUris: [], publicClient: true });
    emu.grantAdminConsent(pub.clientId);
    const user = newUser();
    const pca = new PublicClientApplication({
      auth: {
        clientId: pub.clientId,
        authority: `${emu.url}/${emu.tenants.primary.tenantId}`,
        knownAuthorities: [new URL(emu.url).host],
      },
    });
    const result = await ropc(pca, user.username, user.password);
    expect(emu.verifyAccessToken(result.accessToken, OUTLOOK).claims).toMatchObject({ appidacr: '0' });
  });

  interface Override {
    username?: string;
    password?: string;
    client?: ConfidentialClientApplication;
  }
  type Flag = 'federateUser' | 'requireMfa' | 'requireMfaRegistration' | 'conditionalAccessBlock';
  const flag =
    (f: Flag | 'disableUser' | 'expirePassword') =>
    (u: UserInfo): Override => {
      emu.faults[f](u.username);
      return {};
    };
  const cases: [string, string, number, string, (u: UserInfo) => Override][] = [
    ['unknown user', 'invalid_grant', 50034, '', () => ({ username: 'nobody@contoso.test' })],
    ['wrong password', 'invalid_grant', 50126, '', () => ({ password: 'wrong' })],
    ['federated account', 'invalid_grant', 50126, '', flag('federateUser')],
    ['MFA required', 'invalid_grant', 50076, 'basic_action', flag('requireMfa')],
    ['MFA registration required', 'invalid_grant', 50079, 'basic_action', flag('requireMfaRegistration')],
    ['Conditional Access block', 'invalid_grant', 53003, 'message_only', flag('conditionalAccessBlock')],
    ['disabled account', 'invalid_grant', 50057, '', flag('disableUser')],
    ['expired password', 'invalid_grant', 50055, 'user_password_expired', flag('expirePassword')],
    ['no consent', 'invalid_grant', 65001, 'consent_required', () => ({ client: cca(unconsented) })],
    ['/common authority', 'invalid_request', 9001023, '', () => ({ client: cca({ tenant: 'common' }) })],
  ];
  it.each(cases)('%s → %s AADSTS%i %s', async (_name, error, code, subError, setup) => {
    const user = newUser();
    const s = setup(user);
    const err = await failure(
      ropc(s.client ?? cca(), s.username ?? user.username, s.password ?? user.password),
    );
    expect(err.errorCode).toBe(error);
    expect(err.errorMessage).toContain(`AADSTS${code}:`);
    expect(err.subError).toBe(subError);
  });
});

describe('password grant on the wire', () => {
  it('answers in Entra shape: tokens by scope, refresh token usable, errors with trace fields', async () => {
    const user = newUser();
    const base = { grant_type: 'password', client_id: app.clientId, client_secret: app.clientSecret };
    const creds = { ...base, username: user.username, password: user.password };
    const ok = await postToken({ ...creds, scope: `${IMAP} openid profile offline_access` });
    expect(ok.status).toBe(200);
    expect(Object.keys(ok.body).sort().join(' ')).toBe(
      'access_token client_info expires_in ext_expires_in id_token refresh_token scope token_type',
    );
    expect(ok.body).toMatchObject({ token_type: 'Bearer', scope: `${IMAP} openid profile offline_access` });
    const bare = await postToken({ ...creds, scope: IMAP });
    expect(bare.body.refresh_token).toBeUndefined();
    expect(bare.body.id_token).toBeUndefined();
    const refreshed = await postToken({
      ...base,
      grant_type: 'refresh_token',
      refresh_token: String(ok.body.refresh_token),
      scope: IMAP,
    });
    expect(refreshed.status).toBe(200);

    const wrong = await postToken({ ...creds, password: 'nope', scope: IMAP });
    expect(wrong.status).toBe(400);
    expect(wrong.body).toEqual({
      error: 'invalid_grant',
      error_description: expect.stringMatching(
        /^AADSTS50126: Error validating credentials due to invalid username or password\.\r\nTrace ID: .+\r\nCorrelation ID: .+\r\nTimestamp: .+Z$/,
      ) as unknown,
      error_codes: [50126],
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/) as unknown,
      trace_id: expect.any(String) as unknown,
      correlation_id: expect.any(String) as unknown,
      error_uri: `${emu.url}/error?code=50126`,
    });
    const unknown = await postToken({ ...creds, username: 'ghost@contoso.test', scope: IMAP });
    expect(String(unknown.body.error_description)).toContain(
      `AADSTS50034: The user account {EmailHidden} does not exist in the ${emu.tenants.primary.tenantId} directory.`,
    );
  });

  it('rejects missing parameters and a confidential client without credentials', async () => {
    const user = newUser();
    const base = { grant_type: 'password', client_id: app.clientId, client_secret: app.clientSecret };
    for (const [missing, form] of [
      ['username', { ...base, password: user.password, scope: IMAP }],
      ['password', { ...base, username: user.username, scope: IMAP }],
      ['scope', { ...base, username: user.username, password: user.password }],
    ] as const) {
      const res = await postToken(form);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: 'invalid_request', error_codes: [900144] });
      expect(String(res.body.error_description)).toContain(
        `AADSTS900144: The request body must contain the following parameter: '${missing}'.`,
      );
    }
    const noSecret = await postToken({
      grant_type: 'password',
      client_id: app.clientId,
      username: user.username,
      password: user.password,
      scope: IMAP,
    });
    expect(noSecret.status).toBe(401);
    expect(noSecret.body).toMatchObject({ error: 'invalid_client', error_codes: [7000218] });
  });
});
