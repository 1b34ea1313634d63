/**
 * The Entra ID emulator against the REAL @azure/msal-node ConfidentialClientApplication and
 * @azure/identity ManagedIdentityCredential.
 *
 * MSAL configuration: authority `${url}/${tenantId}` plus `knownAuthorities: [host:port]`. With
 * the host in knownAuthorities MSAL builds the cloud-discovery metadata from the host itself and
 * never calls https://login.microsoftonline.com/common/discovery/instance; it then reads
 * `${authority}/v2.0/.well-known/openid-configuration` from the emulator. A fetch guard below
 * fails the test if anything (MSAL uses global fetch) leaves 127.0.0.1.
 */
import { randomUUID } from 'node:crypto';
import {
  AuthError,
  ConfidentialClientApplication,
  CryptoProvider,
  ResponseMode,
  type AuthenticationResult,
} from '@azure/msal-node';
import { ManagedIdentityCredential } from '@azure/identity';
import { startEntraEmulator, type EntraEmulator, type UserInfo } from '../../../sandbox/entra';
import { signIn } from '../../../sandbox/entra/sign-in-driver';
import { testPki } from '../../support/pki';

const REDIRECT = 'http://localhost:3999/api/callback';
const EWS = 'https://outlook.office365.com/EWS.AccessAsUser.All';
const SCOPES = [EWS, 'offline_access'];
const DAY = 24 * 60 * 60 * 1000;

let emu: EntraEmulator;
let clockOffset = 0;
let app: { clientId: string; clientSecret: string };
let alice: UserInfo;
const hostsContacted = new Set<string>();
const realFetch = globalThis.fetch;

beforeAll(async () => {
  globalThis.fetch = (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    hostsContacted.add(url.hostname);
    if (url.hostname !== '127.0.0.1')
      return Promise.reject(new Error(`test network guard: refused ${url.toString()}`));
    return realFetch(input, init);
  };
  emu = await startEntraEmulator({ pki: testPki(), now: () => Date.now() + clockOffset });
  const registered = emu.registerApp({
    redirectUris: [REDIRECT],
    displayName: 'Mail broker',
    roles: ['Mail.Send'],
  });
  app = { clientId: registered.clientId, clientSecret: registered.clientSecret ?? '' };
  alice = emu.addUser({ username: 'alice@contoso.test', password: 'Alice-pw1', displayName: 'Alice Adams' });
});

afterAll(async () => {
  globalThis.fetch = realFetch;
  await emu.close();
  expect([...hostsContacted]).toEqual(['127.0.0.1']);
});

afterEach(() => {
  clockOffset = 0;
  emu.faults.reset();
});

function client(
  opts: {
    tenant?: string;
    clientId?: string;
    clientSecret?: string;
    clientAssertion?: () => Promise<string>;
  } = {},
): ConfidentialClientApplication {
  return new ConfidentialClientApplication({
    auth: {
      clientId: opts.clientId ?? app.clientId,
      authority: `${emu.url}/${opts.tenant ?? emu.tenants.primary.tenantId}`,
      knownAuthorities: [new URL(emu.url).host],
      ...(opts.clientAssertion
        ? { clientAssertion: opts.clientAssertion }
        : { clientSecret: opts.clientSecret ?? app.clientSecret }),
    },
  });
}

let userCount = 0;
function newUser(tenantId?: string): UserInfo {
  userCount++;
  const tenant = tenantId === emu.tenants.other.tenantId ? 'fabrikam.test' : 'contoso.test';
  return emu.addUser({
    username: `user${userCount}@${tenant}`,
    password: `pw-${userCount}`,
    ...(tenantId ? { tenantId } : {}),
  });
}

interface SignedIn {
  cca: ConfidentialClientApplication;
  result: AuthenticationResult;
  nonce: string;
}

async function signInWithMsal(user: UserInfo, cca = client()): Promise<SignedIn> {
  const pkce = await new CryptoProvider().generatePkceCodes();
  const nonce = randomUUID();
  const state = randomUUID();
  const url = await cca.getAuthCodeUrl({
    scopes: SCOPES,
    redirectUri: REDIRECT,
    codeChallenge: pkce.challenge,
    codeChallengeMethod: 'S256',
    nonce,
    state,
    loginHint: user.username,
  });
  const callback = await signIn(url, { username: user.username, password: user.password });
  expect(callback.searchParams.get('state')).toBe(state);
  const code = callback.searchParams.get('code');
  if (!code) throw new Error(`no code in ${callback.toString()}`);
  const result = await cca.acquireTokenByCode({
    code,
    codeVerifier: pkce.verifier,
    nonce,
    redirectUri: REDIRECT,
    scopes: SCOPES,
  });
  return { cca, result, nonce };
}

function cachedRefreshToken(cca: ConfidentialClientApplication): string {
  const cache = JSON.parse(cca.getTokenCache().serialize()) as {
    RefreshToken: Record<string, { secret: string }>;
  };
  const tokens = Object.values(cache.RefreshToken);
  expect(tokens).toHaveLength(1);
  return tokens[0]?.secret ?? '';
}

async function failure(p: Promise<unknown>): Promise<AuthError> {
  const outcome = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(outcome instanceof AuthError)) throw new Error(`expected an MSAL AuthError, got ${String(outcome)}`);
  return outcome;
}

async function expectAadsts(
  p: Promise<unknown>,
  code: number,
  errorCode: string,
  subError?: string,
): Promise<AuthError> {
  const err = await failure(p);
  expect(err.errorCode).toBe(errorCode);
  expect(err.errorMessage).toContain(`AADSTS${code}:`);
  if (subError !== undefined) expect(err.subError).toBe(subError);
  return err;
}

async function authorizeUrl(
  params: Record<string, string>,
  tenant = emu.tenants.primary.tenantId,
): Promise<string> {
  const pkce = await new CryptoProvider().generatePkceCodes();
  const url = new URL(`${emu.url}/${tenant}/oauth2/v2.0/authorize`);
  const all: Record<string, string> = {
    client_id: app.clientId,
    response_type: 'code',
    redirect_uri: REDIRECT,
    scope: `openid profile offline_access ${EWS}`,
    state: 'st-1',
    code_challenge: pkce.challenge,
    code_challenge_method: 'S256',
    ...params,
  };
  for (const [k, v] of Object.entries(all)) url.searchParams.set(k, v);
  return url.toString();
}

describe('discovery', () => {
  it('serves OpenID configuration for tenant id, domain, organizations and common', async () => {
    const tid = emu.tenants.primary.tenantId;
    for (const segment of [tid, 'contoso.test']) {
      const doc = (await (
        await fetch(`${emu.url}/${segment}/v2.0/.well-known/openid-configuration`)
      ).json()) as Record<string, unknown>;
      expect(doc.issuer).toBe(`${emu.url}/${tid}/v2.0`);
      expect(doc.token_endpoint).toBe(`${emu.url}/${tid}/oauth2/v2.0/token`);
      expect(doc.jwks_uri).toBe(`${emu.url}/${tid}/discovery/v2.0/keys`);
      expect(doc.response_modes_supported).toEqual(['query', 'fragment', 'form_post']);
    }
    for (const segment of ['organizations', 'common']) {
      const doc = (await (
        await fetch(`${emu.url}/${segment}/v2.0/.well-known/openid-configuration`)
      ).json()) as Record<string, unknown>;
      expect(doc.issuer).toBe(`${emu.url}/{tenantid}/v2.0`);
      expect(doc.authorization_endpoint).toBe(`${emu.url}/${segment}/oauth2/v2.0/authorize`);
    }
    const unknown = await fetch(`${emu.url}/nowhere.test/v2.0/.well-known/openid-configuration`);
    expect(unknown.status).toBe(400);
    const body = (await unknown.json()) as Record<string, unknown>;
    expect(body.error_codes).toEqual([90002]);
    expect(String(body.error_description)).toMatch(
      /^AADSTS90002: Tenant 'nowhere.test' not found.*\r\nTrace ID: .+\r\nCorrelation ID: .+\r\nTimestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/s,
    );
  });

  it('serves JWKS and instance discovery for its own host', async () => {
    const jwks = (await (await fetch(`${emu.url}/common/discovery/v2.0/keys`)).json()) as {
      keys: Record<string, unknown>[];
    };
    expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', use: 'sig', e: 'AQAB' });
    const authz = `${emu.url}/${emu.tenants.primary.tenantId}/oauth2/v2.0/authorize`;
    const res = await fetch(
      `${emu.url}/common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent(authz)}`,
    );
    const host = new URL(emu.url).host;
    expect(await res.json()).toEqual({
      tenant_discovery_endpoint: `${emu.url}/${emu.tenants.primary.tenantId}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    });
  });
});

describe('authorization code + PKCE with msal-node', () => {
  it('signs in through the HTML pages, consents, and redeems the code with verifier and nonce', async () => {
    const consentsBefore = emu.stats.consentsGranted;
    const { result, nonce } = await signInWithMsal(alice);
    expect(emu.stats.consentsGranted).toBe(consentsBefore + 1);
    expect(result.idTokenClaims).toMatchObject({
      aud: app.clientId,
      iss: `${emu.url}/${emu.tenants.primary.tenantId}/v2.0`,
      tid: emu.tenants.primary.tenantId,
      oid: alice.oid,
      preferred_username: 'alice@contoso.test',
      name: 'Alice Adams',
      nonce,
      ver: '2.0',
    });
    expect(result.account?.homeAccountId).toBe(`${alice.oid}.${emu.tenants.primary.tenantId}`);
    expect(result.scopes).toContain(EWS);
    const verified = emu.verifyAccessToken(result.accessToken, 'https://outlook.office365.com');
    expect(verified.valid).toBe(true);
    expect(verified.claims).toMatchObject({
      scp: 'EWS.AccessAsUser.All',
      upn: 'alice@contoso.test',
      appid: app.clientId,
      oid: alice.oid,
    });
    expect(emu.verifyAccessToken(result.accessToken, 'https://vault.azure.net')).toMatchObject({
      valid: false,
      reason: 'audience mismatch',
    });
  });

  it('does not show the consent page again once the user consented', async () => {
    const before = emu.stats.requests.consent ?? 0;
    await signInWithMsal(alice);
    expect(emu.stats.requests.consent ?? 0).toBe(before);
  });

  it('rejects a PKCE mismatch (AADSTS501481) without consuming the code, and a second redemption (AADSTS54005)', async () => {
    const cca = client();
    const pkce = await new CryptoProvider().generatePkceCodes();
    const url = await cca.getAuthCodeUrl({
      scopes: SCOPES,
      redirectUri: REDIRECT,
      codeChallenge: pkce.challenge,
      codeChallengeMethod: 'S256',
    });
    const code = (await signIn(url, alice)).searchParams.get('code')!;
    const wrong = await new CryptoProvider().generatePkceCodes();
    await expectAadsts(
      cca.acquireTokenByCode({ code, codeVerifier: wrong.verifier, redirectUri: REDIRECT, scopes: SCOPES }),
      501481,
      'invalid_grant',
    );
    await expectAadsts(
      cca.acquireTokenByCode({ code, redirectUri: REDIRECT, scopes: SCOPES }),
      501481,
      'invalid_grant',
    );
    await cca.acquireTokenByCode({
      code,
      codeVerifier: pkce.verifier,
      redirectUri: REDIRECT,
      scopes: SCOPES,
    });
    await expectAadsts(
      cca.acquireTokenByCode({ code, codeVerifier: pkce.verifier, redirectUri: REDIRECT, scopes: SCOPES }),
      54005,
      'invalid_grant',
    );
  });

  it('expires codes after 10 minutes by the emulator clock (AADSTS70008)', async () => {
    const cca = client();
    const pkce = await new CryptoProvider().generatePkceCodes();
    const url = await cca.getAuthCodeUrl({
      scopes: SCOPES,
      redirectUri: REDIRECT,
      codeChallenge: pkce.challenge,
      codeChallengeMethod: 'S256',
    });
    const code = (await signIn(url, alice)).searchParams.get('code')!;
    clockOffset = 11 * 60 * 1000;
    await expectAadsts(
      cca.acquireTokenByCode({ code, codeVerifier: pkce.verifier, redirectUri: REDIRECT, scopes: SCOPES }),
      70008,
      'invalid_grant',
    );
  });

  it('rejects a wrong client secret with invalid_client AADSTS7000215', async () => {
    await expectAadsts(
      client({ clientSecret: 'not-the-secret' }).acquireTokenByClientCredential({
        scopes: ['https://graph.microsoft.com/.default'],
      }),
      7000215,
      'invalid_client',
    );
  });

  it('issues app tokens for client credentials with the app roles', async () => {
    const result = await client().acquireTokenByClientCredential({
      scopes: ['https://graph.microsoft.com/.default'],
    });
    const verified = emu.verifyAccessToken(result!.accessToken, 'https://graph.microsoft.com');
    expect(verified).toMatchObject({
      valid: true,
      claims: { roles: ['Mail.Send'], appid: app.clientId, idtyp: 'app' },
    });
  });

  it('returns the code in an auto-submitting form for response_mode=form_post', async () => {
    const cca = client();
    const url = await cca.getAuthCodeUrl({
      scopes: SCOPES,
      redirectUri: REDIRECT,
      responseMode: ResponseMode.FORM_POST,
      state: 'fp',
    });
    const result = await signIn(url, alice);
    expect(result.searchParams.get('state')).toBe('fp');
    const code = result.searchParams.get('code')!;
    const tokens = await cca.acquireTokenByCode({ code, redirectUri: REDIRECT, scopes: SCOPES });
    expect(tokens.accessToken).toBeTruthy();
  });
});

describe('refresh tokens', () => {
  it('with faults.revokeRotatedRefreshTokens, rotates the refresh token and rejects the old one', async () => {
    emu.faults.revokeRotatedRefreshTokens = true;
    const user = newUser();
    const { cca, result } = await signInWithMsal(user);
    const first = cachedRefreshToken(cca);
    const refreshes = emu.stats.refreshes;
    const again = await cca.acquireTokenSilent({
      account: result.account!,
      scopes: SCOPES,
      forceRefresh: true,
    });
    expect(emu.stats.refreshes).toBe(refreshes + 1);
    expect(again.accessToken).not.toBe(result.accessToken);
    const second = cachedRefreshToken(cca);
    expect(second).not.toBe(first);
    const err = await expectAadsts(
      client().acquireTokenByRefreshToken({ refreshToken: first, scopes: SCOPES }),
      70000,
      'invalid_grant',
    );
    expect(err.errorMessage).toMatch(/revoked/);
    // The current one still works (and rotates again).
    const viaSecond = await client().acquireTokenByRefreshToken({ refreshToken: second, scopes: SCOPES });
    expect(viaSecond?.accessToken).toBeTruthy();
  });

  it('keeps a rotated-out refresh token valid until its own 90-day lifetime ends, as Entra does', async () => {
    const user = newUser();
    const { cca } = await signInWithMsal(user);
    const rt = cachedRefreshToken(cca);
    const rotated = await client().acquireTokenByRefreshToken({ refreshToken: rt, scopes: SCOPES });
    expect(rotated?.accessToken).toBeTruthy();
    // Used again after a newer one was issued: still valid, and a day later too.
    clockOffset = DAY;
    const again = await client().acquireTokenByRefreshToken({ refreshToken: rt, scopes: SCOPES });
    expect(again?.accessToken).toBeTruthy();
    // Using it does not extend it: 90 days after its issue it has expired, whatever happened since.
    clockOffset = 91 * DAY;
    await expectAadsts(
      client().acquireTokenByRefreshToken({ refreshToken: rt, scopes: SCOPES }),
      700082,
      'invalid_grant',
    );
  });

  it('expires refresh tokens unused for 90 days (AADSTS700082) and omits them without offline_access', async () => {
    const user = newUser();
    const { cca } = await signInWithMsal(user);
    const rt = cachedRefreshToken(cca);
    clockOffset = 91 * DAY;
    await expectAadsts(
      client().acquireTokenByRefreshToken({ refreshToken: rt, scopes: SCOPES }),
      700082,
      'invalid_grant',
    );

    clockOffset = 0;
    const url = await authorizeUrl({
      scope: `openid profile ${EWS}`,
      code_challenge_method: 'plain',
      code_challenge: 'v'.repeat(43),
    });
    const code = (await signIn(url, user)).searchParams.get('code')!;
    const res = await fetch(`${emu.url}/${emu.tenants.primary.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        client_id: app.clientId,
        client_secret: app.clientSecret,
        code,
        redirect_uri: REDIRECT,
        code_verifier: 'v'.repeat(43),
        scope: EWS,
      }),
    });
    const body = (await res.json()) as Record<string, unknown>;
    expect(res.status).toBe(200);
    expect(body).toMatchObject({
      token_type: 'Bearer',
      expires_in: 3600,
      ext_expires_in: 3600,
      scope: `${EWS} openid profile`,
    });
    expect(body.refresh_token).toBeUndefined();
    expect(body.id_token).toBeTruthy();
  });
});

describe('fault switches as msal-node surfaces them', () => {
  const cases: {
    name: string;
    apply: (e: EntraEmulator, username: string) => void;
    code: number;
    error: string;
    subError?: string;
  }[] = [
    {
      name: 'revokeConsent',
      apply: (e, u) => {
        e.faults.revokeConsent(u);
      },
      code: 65001,
      error: 'invalid_grant',
      subError: 'consent_required',
    },
    {
      name: 'resetPassword',
      apply: (e, u) => {
        e.faults.resetPassword(u);
      },
      code: 50173,
      error: 'invalid_grant',
    },
    {
      name: 'requireMfa',
      apply: (e, u) => {
        e.faults.requireMfa(u);
      },
      code: 50076,
      error: 'interaction_required',
      subError: 'basic_action',
    },
    {
      name: 'conditionalAccessBlock',
      apply: (e, u) => {
        e.faults.conditionalAccessBlock(u);
      },
      code: 53003,
      error: 'invalid_grant',
      subError: 'message_only',
    },
    {
      name: 'disableUser',
      apply: (e, u) => {
        e.faults.disableUser(u);
      },
      code: 50057,
      error: 'invalid_grant',
    },
  ];
  it.each(cases)(
    '$name → refresh fails with $error AADSTS$code',
    async ({ apply, code, error, subError }) => {
      const user = newUser();
      const { cca } = await signInWithMsal(user);
      apply(emu, user.username);
      await expectAadsts(
        client().acquireTokenByRefreshToken({ refreshToken: cachedRefreshToken(cca), scopes: SCOPES }),
        code,
        error,
        subError,
      );
    },
  );

  it('acquireTokenSilent surfaces revoked consent as InteractionRequiredAuthError', async () => {
    const user = newUser();
    const { cca, result } = await signInWithMsal(user);
    emu.faults.revokeConsent(user.username);
    const err = await expectAadsts(
      cca.acquireTokenSilent({ account: result.account!, scopes: SCOPES, forceRefresh: true }),
      65001,
      'invalid_grant',
      'consent_required',
    );
    expect(err.name).toBe('InteractionRequiredAuthError');
  });

  it('failNext 429 answers with Retry-After and an Entra error body', async () => {
    emu.faults.failNext(1, { status: 429, retryAfterSeconds: 7, endpoint: 'token' });
    const res = await fetch(`${emu.url}/${emu.tenants.primary.tenantId}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: app.clientId,
        client_secret: app.clientSecret,
        scope: 'https://graph.microsoft.com/.default',
      }),
    });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toMatchObject({ error: 'temporarily_unavailable', error_codes: [50196] });
  });

  it('failNext 503 reaches msal-node as a ServerError, then the service recovers', async () => {
    emu.faults.failNext(1, { status: 503, endpoint: 'token' });
    const cca = client();
    const err = await expectAadsts(
      cca.acquireTokenByClientCredential({ scopes: ['https://outlook.office365.com/.default'] }),
      90033,
      'temporarily_unavailable',
    );
    expect(err.name).toBe('ServerError');
    // A new client instance (msal-node remembers the 5xx as a throttle for the same request otherwise).
    const ok = await client().acquireTokenByClientCredential({
      scopes: ['https://outlook.office365.com/.default'],
    });
    expect(ok?.accessToken).toBeTruthy();
  });

  it('consentRequired and interactionRequired redirect back with the error', async () => {
    emu.faults.consentRequired(true);
    let result = await signIn(await authorizeUrl({}), alice);
    expect(result.searchParams.get('error')).toBe('consent_required');
    expect(result.searchParams.get('error_description')).toMatch(
      new RegExp(
        `^AADSTS65001: The user or administrator has not consented to use the application with ID '${app.clientId}' named 'Mail broker'`,
      ),
    );
    expect(result.searchParams.get('state')).toBe('st-1');
    emu.faults.consentRequired(false);
    emu.faults.interactionRequired(true);
    result = await signIn(await authorizeUrl({}), alice);
    expect(result.searchParams.get('error')).toBe('interaction_required');
  });

  it('latencyMs delays token responses', async () => {
    emu.faults.latencyMs = 300;
    const started = Date.now();
    await client().acquireTokenByClientCredential({ scopes: ['https://vault.azure.net/.default'] });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });
});

describe('sign-in pages', () => {
  it('Cancel on the sign-in page redirects with access_denied AADSTS65004', async () => {
    const result = await signIn(await authorizeUrl({}), { ...alice, cancel: true });
    expect(result.origin + result.pathname).toBe(REDIRECT);
    expect(result.searchParams.get('error')).toBe('access_denied');
    expect(result.searchParams.get('error_description')).toMatch(
      /^AADSTS65004: User declined to consent to access the app\./,
    );
    expect(result.searchParams.get('state')).toBe('st-1');
    expect(result.searchParams.get('code')).toBeNull();
  });

  it('Cancel on the consent page redirects with access_denied', async () => {
    const user = newUser();
    const result = await signIn(await authorizeUrl({}), { ...user, consent: 'cancel' });
    expect(result.searchParams.get('error')).toBe('access_denied');
  });

  it('shows the sign-in page again on a wrong password', async () => {
    await expect(
      signIn(await authorizeUrl({}), { username: alice.username, password: 'nope' }),
    ).rejects.toThrow(/account or password is incorrect/);
  });

  it('never redirects to an unregistered redirect URI or for an unknown client', async () => {
    await expect(signIn(await authorizeUrl({ redirect_uri: 'https://evil.test/cb' }), alice)).rejects.toThrow(
      /HTTP 400.*AADSTS50011/,
    );
    await expect(signIn(await authorizeUrl({ client_id: randomUUID() }), alice)).rejects.toThrow(
      /AADSTS700016/,
    );
  });

  it('refuses a user of another tenant on a single-tenant authority (AADSTS50020)', async () => {
    const outsider = newUser(emu.tenants.other.tenantId);
    await expect(signIn(await authorizeUrl({}), outsider)).rejects.toThrow(/AADSTS50020/);
  });

  it('lets a user of another tenant in through organizations for a multi-tenant app', async () => {
    const multi = emu.registerApp({ redirectUris: [REDIRECT], multiTenant: true });
    const outsider = newUser(emu.tenants.other.tenantId);
    const cca = client({
      tenant: 'organizations',
      clientId: multi.clientId,
      clientSecret: multi.clientSecret!,
    });
    const { result } = await signInWithMsal(outsider, cca);
    expect(result.idTokenClaims).toMatchObject({
      tid: emu.tenants.other.tenantId,
      iss: `${emu.url}/${emu.tenants.other.tenantId}/v2.0`,
    });
    expect(result.tenantId).toBe(emu.tenants.other.tenantId);
  });

  it('admin consent marks the app consented tenant-wide', async () => {
    const other = emu.registerApp({ redirectUris: [REDIRECT] });
    const admin = emu.addUser({ username: 'admin@contoso.test', password: 'Admin-pw1', isAdmin: true });
    const url = `${emu.url}/${emu.tenants.primary.tenantId}/adminconsent?client_id=${other.clientId}&redirect_uri=${encodeURIComponent(REDIRECT)}&state=ac`;
    const result = await signIn(url, admin);
    expect(Object.fromEntries(result.searchParams)).toEqual({
      admin_consent: 'True',
      tenant: emu.tenants.primary.tenantId,
      state: 'ac',
    });
    const before = emu.stats.requests.consent ?? 0;
    await signInWithMsal(newUser(), client({ clientId: other.clientId, clientSecret: other.clientSecret! }));
    expect(emu.stats.requests.consent ?? 0).toBe(before);
  });
});

describe('managed identity and federated credentials', () => {
  const saved = { endpoint: process.env.IDENTITY_ENDPOINT, header: process.env.IDENTITY_HEADER };
  afterEach(() => {
    for (const [k, v] of [
      ['IDENTITY_ENDPOINT', saved.endpoint],
      ['IDENTITY_HEADER', saved.header],
    ] as const) {
      if (v === undefined) Reflect.deleteProperty(process.env, k);
      else process.env[k] = v;
    }
  });

  it('serves tokens to ManagedIdentityCredential usable as a federated client assertion', async () => {
    const mi = emu.addManagedIdentity();
    process.env.IDENTITY_ENDPOINT = mi.endpoint;
    process.env.IDENTITY_HEADER = mi.identityHeader;
    const credential = new ManagedIdentityCredential({ clientId: mi.clientId });

    const vault = await credential.getToken('https://vault.azure.net/.default');
    expect(emu.verifyAccessToken(vault.token, 'https://vault.azure.net')).toMatchObject({
      valid: true,
      claims: {
        sub: mi.principalId,
        oid: mi.principalId,
        iss: `${emu.url}/${emu.tenants.primary.tenantId}/v2.0`,
      },
    });
    expect(vault.expiresOnTimestamp).toBeGreaterThan(Date.now());

    const issuer = `${emu.url}/${emu.tenants.primary.tenantId}/v2.0`;
    const audience = 'api://AzureADTokenExchange';
    const assertion = async (): Promise<string> => (await credential.getToken(`${audience}/.default`)).token;
    const federated = emu.registerApp({
      redirectUris: [REDIRECT],
      federatedCredentials: [{ issuer, subject: mi.principalId, audience }],
    });
    expect(federated.clientSecret).toBeUndefined();
    const ok = await client({
      clientId: federated.clientId,
      clientAssertion: assertion,
    }).acquireTokenByClientCredential({
      scopes: ['https://outlook.office365.com/.default'],
    });
    expect(emu.verifyAccessToken(ok!.accessToken, 'https://outlook.office365.com')).toMatchObject({
      valid: true,
      claims: { appidacr: '2' },
    });

    const wrongSubject = emu.registerApp({
      redirectUris: [REDIRECT],
      federatedCredentials: [{ issuer, subject: randomUUID(), audience }],
    });
    const err = await expectAadsts(
      client({ clientId: wrongSubject.clientId, clientAssertion: assertion }).acquireTokenByClientCredential({
        scopes: ['https://outlook.office365.com/.default'],
      }),
      70021,
      'invalid_client',
    );
    expect(err.errorMessage).toContain(`Assertion Subject: '${mi.principalId}'`);
  });

  it('checks the X-IDENTITY-HEADER like App Service', async () => {
    const mi = emu.addManagedIdentity();
    const url = `${mi.endpoint}?api-version=2019-08-01&resource=${encodeURIComponent('https://vault.azure.net')}`;
    expect((await fetch(url)).status).toBe(400);
    expect((await fetch(url, { headers: { 'X-IDENTITY-HEADER': 'wrong' } })).status).toBe(401);
    const res = await fetch(url, { headers: { 'X-IDENTITY-HEADER': mi.identityHeader } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      token_type: 'Bearer',
      resource: 'https://vault.azure.net',
      client_id: mi.clientId,
      expires_on: expect.stringMatching(/^\d+$/),
    });
  });
});
