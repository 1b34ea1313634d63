/** POST /{tenant}/oauth2/v2.0/token: client authentication and the code, refresh, client-credentials and password grants. */
import { createHash, timingSafeEqual } from 'node:crypto';
import { normalizeScopes, AUTH_CODE_LIFETIME_MS } from './authorize';
import { count, sendAadstsJson, sendJson, type EmulatorState, type Exchange } from './context';
import { aadsts, entraTimestamp, type AadstsCode, type AadstsError } from './errors';
import {
  GRAPH_RESOURCE,
  OIDC_SCOPES,
  parseResourceScope,
  splitScopes,
  type AppRecord,
  type TenantInfo,
  type UserRecord,
} from './model';
import { appTokenResponse, newSessionId, userTokenResponse } from './tokens';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const RT_INACTIVITY_MS = 90 * 24 * 60 * 60 * 1000;

class TokenError extends Error {
  constructor(readonly aadsts: AadstsError) {
    super(aadsts.message);
  }
}

function fail(
  code: AadstsCode,
  params: Record<string, string> = {},
  overrides?: { error?: string; status?: number },
): never {
  throw new TokenError(aadsts(code, params, overrides));
}

interface ClientAuth {
  app: AppRecord;
  appidacr: '0' | '1' | '2';
}

export function handleToken(
  state: EmulatorState,
  ex: Exchange,
  form: URLSearchParams,
  segment: string,
): void {
  count(state, 'token');
  const grantType = form.get('grant_type') ?? '';
  count(state, `token:${grantType || '(none)'}`);
  try {
    const lower = segment.toLowerCase();
    let tenant: TenantInfo | undefined;
    if (lower !== 'common' && lower !== 'organizations') {
      tenant = state.dir.findTenant(segment);
      if (!tenant) fail(90002, { tenant: segment }, { error: 'invalid_request' });
    }
    if (!grantType) fail(900144, { parameter: 'grant_type' });
    const client = authenticateClient(state, ex, form, tenant, segment);
    let body: Record<string, unknown>;
    switch (grantType) {
      case 'authorization_code':
        body = redeemCode(state, form, client, tenant);
        break;
      case 'refresh_token':
        body = redeemRefreshToken(state, form, client, tenant);
        break;
      case 'client_credentials':
        body = clientCredentials(state, form, client, tenant);
        break;
      case 'password':
        body = passwordGrant(state, form, client, tenant, lower);
        break;
      default:
        fail(70003, { grantType });
    }
    sendJson(ex, 200, body);
  } catch (e) {
    if (!(e instanceof TokenError)) throw e;
    state.stats.tokenErrors++;
    sendAadstsJson(state, ex, e.aadsts);
  }
}

function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function authenticateClient(
  state: EmulatorState,
  ex: Exchange,
  form: URLSearchParams,
  tenant: TenantInfo | undefined,
  segment: string,
): ClientAuth {
  let clientId = form.get('client_id') ?? undefined;
  let secret = form.get('client_secret') ?? undefined;
  const authorization = ex.req.headers.authorization;
  if (authorization?.startsWith('Basic ')) {
    const decoded = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      clientId ??= decodeURIComponent(decoded.slice(0, colon));
      secret ??= decodeURIComponent(decoded.slice(colon + 1));
    }
  }
  if (!clientId) fail(900144, { parameter: 'client_id' });
  const app = state.dir.apps.get(clientId.toLowerCase());
  if (!app || (tenant && !app.multiTenant && tenant.tenantId !== app.tenantId)) {
    fail(700016, { clientId, tenant: tenant?.domain ?? segment });
  }
  const assertionType = form.get('client_assertion_type');
  const assertion = form.get('client_assertion');
  if (assertionType || assertion) {
    if (assertionType !== JWT_BEARER)
      fail(90023, { value: assertionType ?? '', parameter: 'client_assertion_type' });
    if (!assertion) fail(900144, { parameter: 'client_assertion' });
    verifyFederatedAssertion(state, app, assertion);
    return { app, appidacr: '2' };
  }
  if (secret !== undefined) {
    if (app.clientSecret === undefined || !safeEqual(secret, app.clientSecret))
      fail(7000215, { clientId: app.clientId });
    return { app, appidacr: '1' };
  }
  if (app.clientSecret === undefined && app.federatedCredentials.length === 0) return { app, appidacr: '0' };
  fail(7000218);
}

/** A client assertion is accepted only as a federated credential: a token THIS emulator issued (e.g. from its managed-identity endpoint). */
function verifyFederatedAssertion(state: EmulatorState, app: AppRecord, assertion: string): void {
  const checked = state.key.verify(assertion);
  if (!checked.ok) {
    if (checked.reason === 'malformed') fail(50027);
    fail(700027, { detail: `Key was not found or signature is invalid (${checked.reason}).` });
  }
  const claims = checked.jwt.payload;
  const nowSec = Math.floor(state.now() / 1000);
  const exp = typeof claims.exp === 'number' ? claims.exp : 0;
  const nbf = typeof claims.nbf === 'number' ? claims.nbf : 0;
  if (exp <= nowSec || nbf > nowSec + 300) {
    fail(700024, {
      now: entraTimestamp(nowSec * 1000),
      nbf: entraTimestamp(nbf * 1000),
      exp: entraTimestamp(exp * 1000),
    });
  }
  const iss = typeof claims.iss === 'string' ? claims.iss : '';
  const sub = typeof claims.sub === 'string' ? claims.sub : '';
  const auds = Array.isArray(claims.aud)
    ? claims.aud.map(String)
    : [typeof claims.aud === 'string' ? claims.aud : ''];
  const match = app.federatedCredentials.some(
    (f) => f.issuer === iss && f.subject === sub && auds.includes(f.audience),
  );
  if (!match) fail(70021, { iss, sub, aud: auds.join(',') });
}

/** Resource scopes of a token request; fails on more than one resource (AADSTS28000). */
function requestedResourceScopes(rawScope: string | null): { resourceScopes: string[]; oidc: string[] } {
  const scopes = normalizeScopes(splitScopes(rawScope));
  const resourceScopes = scopes.filter((s) => !OIDC_SCOPES.has(s));
  const resources = new Set(resourceScopes.map((s) => parseResourceScope(s).resource));
  if (resources.size > 1) fail(28000, { scope: splitScopes(rawScope).join(' ') });
  return { resourceScopes, oidc: scopes.filter((s) => OIDC_SCOPES.has(s)) };
}

/** `.default` expands to what the user consented for that resource. */
function expandDefault(
  state: EmulatorState,
  user: UserRecord,
  clientId: string,
  resourceScopes: string[],
): string[] {
  if (resourceScopes.length !== 1 || parseResourceScope(resourceScopes[0] ?? '').permission !== '.default')
    return resourceScopes;
  const resource = parseResourceScope(resourceScopes[0] ?? '').resource;
  const granted =
    state.dir.userConsents.get(state.dir.consentKey(user.tenantId, clientId, user.oid)) ?? new Set<string>();
  const own = [...granted].filter(
    (s) => !OIDC_SCOPES.has(s) && parseResourceScope(s).resource === resource && !s.endsWith('/.default'),
  );
  return own.length > 0 ? own : resourceScopes;
}

/** Checks done on every user-token issuance (code or refresh), in Entra's order of precedence. */
function checkUserPolicies(
  state: EmulatorState,
  user: UserRecord,
  authTime: number,
  mfa: boolean,
  app: AppRecord,
  resourceScopes: string[],
): void {
  if (user.disabled) fail(50057);
  if (authTime < user.tokensValidFrom) {
    fail(50173, {
      issued: new Date(authTime).toISOString(),
      validFrom: new Date(user.tokensValidFrom).toISOString(),
    });
  }
  if (user.conditionalAccessBlocked) fail(53003);
  if (user.mfaRequired && !mfa) {
    const resource = resourceScopes[0] ? parseResourceScope(resourceScopes[0]).resource : app.displayName;
    fail(50076, { resource });
  }
  const missing = state.dir.missingConsent(user, app.clientId, resourceScopes);
  if (missing.length > 0) fail(65001, { clientId: app.clientId, appName: app.displayName });
}

function pkceMatches(verifier: string, challenge: string, method: 'S256' | 'plain'): boolean {
  const computed = method === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier;
  return computed === challenge;
}

function redeemCode(
  state: EmulatorState,
  form: URLSearchParams,
  client: ClientAuth,
  tenant: TenantInfo | undefined,
): Record<string, unknown> {
  const code = form.get('code');
  if (!code) fail(900144, { parameter: 'code' });
  if (!/^1\.[A-Za-z0-9_-]{40,}$/.test(code)) fail(9002313);
  const grant = state.dir.codes.get(code);
  if (!grant) fail(70000, { detail: 'Provided grant is invalid or malformed.' });
  const now = state.now();
  if (grant.redeemedAt !== undefined) fail(54005);
  if (now - grant.issuedAt > AUTH_CODE_LIFETIME_MS) fail(70008);
  if (grant.clientId !== client.app.clientId) {
    fail(70000, {
      detail: `The provided authorization code was issued to a different client. Client ID: '${client.app.clientId}'.`,
    });
  }
  if (tenant && tenant.tenantId !== grant.user.tenantId) fail(700005);
  const redirectUri = form.get('redirect_uri');
  if (!redirectUri) fail(900144, { parameter: 'redirect_uri' });
  if (redirectUri !== grant.redirectUri)
    fail(500112, { presented: redirectUri, expected: grant.redirectUri });
  if (grant.codeChallenge !== undefined) {
    const verifier = form.get('code_verifier');
    if (!verifier || !pkceMatches(verifier, grant.codeChallenge, grant.codeChallengeMethod ?? 'plain'))
      fail(501481);
  }
  // A code is single-use even when the redemption then fails a policy check.
  grant.redeemedAt = now;

  const requested = requestedResourceScopes(form.get('scope'));
  let resourceScopes = requested.resourceScopes;
  if (resourceScopes.length === 0) {
    const fromCode = grant.scopes.filter((s) => !OIDC_SCOPES.has(s));
    const first = fromCode[0];
    resourceScopes = first
      ? fromCode.filter((s) => parseResourceScope(s).resource === parseResourceScope(first).resource)
      : [];
  }
  resourceScopes = expandDefault(state, grant.user, client.app.clientId, resourceScopes);
  checkUserPolicies(state, grant.user, grant.authTime, grant.mfa, client.app, resourceScopes);
  state.stats.codesRedeemed++;
  return userTokenResponse(state, {
    user: grant.user,
    app: client.app,
    resourceScopes,
    oidcScopes: grant.scopes.filter((s) => OIDC_SCOPES.has(s)),
    nonce: grant.nonce,
    authTime: grant.authTime,
    sessionId: grant.sessionId,
    mfa: grant.mfa,
    grantScopes: grant.scopes,
    appidacr: client.appidacr,
  });
}

function redeemRefreshToken(
  state: EmulatorState,
  form: URLSearchParams,
  client: ClientAuth,
  tenant: TenantInfo | undefined,
): Record<string, unknown> {
  const token = form.get('refresh_token');
  if (!token) fail(900144, { parameter: 'refresh_token' });
  const grant = state.dir.refreshTokens.get(token);
  if (!grant) {
    if (!token.startsWith('1.AR')) fail(9002313);
    fail(70000, { detail: 'Provided grant is invalid or malformed.' });
  }
  const now = state.now();
  if (grant.clientId !== client.app.clientId) {
    fail(70000, {
      detail: `The refresh token was issued to a different client. Client ID: '${client.app.clientId}'.`,
    });
  }
  if (tenant && tenant.tenantId !== grant.user.tenantId) {
    fail(70000, { detail: 'The refresh token was issued to a different tenant.' });
  }
  if (grant.revokedAt !== undefined) {
    fail(70000, {
      detail:
        'The provided grant has expired due to it being revoked, a fresh auth token is needed. The refresh token was redeemed already and replaced by a newer one.',
    });
  }
  if (now - grant.lastUsedAt > RT_INACTIVITY_MS) {
    const days = Math.floor((now - grant.lastUsedAt) / (24 * 60 * 60 * 1000));
    fail(700082, { issued: new Date(grant.issuedAt).toISOString(), inactive: `${days}.00:00:00` });
  }
  const requested = requestedResourceScopes(form.get('scope'));
  let resourceScopes = requested.resourceScopes;
  if (resourceScopes.length === 0) {
    const fromGrant = grant.scopes.filter((s) => !OIDC_SCOPES.has(s));
    const first = fromGrant[0];
    resourceScopes = first
      ? fromGrant.filter((s) => parseResourceScope(s).resource === parseResourceScope(first).resource)
      : [];
  }
  resourceScopes = expandDefault(state, grant.user, client.app.clientId, resourceScopes);
  checkUserPolicies(state, grant.user, grant.authTime, grant.mfa, client.app, resourceScopes);

  // Rotation: the answer carries a new refresh token, and the presented one stays valid until its
  // own lifetime ends (90 days from its issue), as Entra does: "refresh tokens aren't revoked when
  // used to acquire new access tokens". faults.revokeRotatedRefreshTokens revokes it instead.
  // An answer without a new refresh token (faults.omitRefreshToken) extends the presented one.
  const omitRefreshToken = state.settings.omitRefreshToken;
  if (omitRefreshToken) grant.lastUsedAt = now;
  else if (state.settings.revokeRotatedRefreshTokens) grant.revokedAt = now;
  else grant.rotatedAt ??= now;
  state.stats.refreshes++;
  const oidcGranted = grant.scopes.filter((s) => OIDC_SCOPES.has(s));
  const oidcScopes =
    requested.oidc.length > 0
      ? oidcGranted.filter((s) => requested.oidc.includes(s) || s === 'offline_access')
      : oidcGranted;
  return userTokenResponse(state, {
    user: grant.user,
    app: client.app,
    resourceScopes,
    oidcScopes: omitRefreshToken ? oidcScopes.filter((s) => s !== 'offline_access') : oidcScopes,
    nonce: undefined,
    authTime: grant.authTime,
    sessionId: grant.sessionId,
    mfa: grant.mfa,
    grantScopes: grant.scopes,
    appidacr: client.appidacr,
  });
}

function clientCredentials(
  state: EmulatorState,
  form: URLSearchParams,
  client: ClientAuth,
  tenant: TenantInfo | undefined,
): Record<string, unknown> {
  if (client.appidacr === '0') fail(7000218);
  const scopes = splitScopes(form.get('scope'));
  if (scopes.length === 0) fail(900144, { parameter: 'scope' });
  const only = scopes[0] ?? '';
  if (scopes.length !== 1 || !only.endsWith('/.default')) fail(1002012, { scope: scopes.join(' ') });
  const tenantId = tenant?.tenantId ?? client.app.tenantId;
  if (tenantId !== client.app.tenantId && !state.dir.hasAdminConsent(tenantId, client.app.clientId)) {
    fail(700016, { clientId: client.app.clientId, tenant: tenant?.domain ?? tenantId });
  }
  state.stats.clientCredentials++;
  return appTokenResponse(state, client.app, tenantId, only.slice(0, -'/.default'.length), client.appidacr);
}

/**
 * Resource owner password credentials (`grant_type=password`), as Entra's v2.0 endpoint answers
 * it (learn.microsoft.com/entra/identity-platform/v2-oauth-ropc): a tenant or /organizations only
 * (the doc's invalid_request; AADSTS9001023 on /common); no page can be shown, so missing consent is
 * invalid_grant AADSTS65001 (suberror consent_required) and required MFA is invalid_grant
 * AADSTS50076 (suberror basic_action) — ROPC "is incompatible with MFA", users who need it "will be
 * blocked". Federated accounts: "ROPC is not supported in hybrid identity federation scenarios ...
 * Microsoft Entra ID is not able to test the username and password against that identity
 * provider", and personal accounts can't use ROPC; Entra then answers AADSTS50126 (sign-in log:
 * "Invalid username or password or Invalid on-premise username or password", see
 * MicrosoftDocs/azure-docs#55028 and #34108).
 */
function passwordGrant(
  state: EmulatorState,
  form: URLSearchParams,
  client: ClientAuth,
  tenant: TenantInfo | undefined,
  segment: string,
): Record<string, unknown> {
  if (!tenant && segment === 'common') fail(9001023);
  if (!tenant && !client.app.multiTenant)
    fail(50194, { clientId: client.app.clientId, appName: client.app.displayName });
  const username = form.get('username');
  if (!username) fail(900144, { parameter: 'username' });
  const password = form.get('password');
  if (!password) fail(900144, { parameter: 'password' });
  const requested = requestedResourceScopes(form.get('scope'));
  if (requested.resourceScopes.length === 0 && requested.oidc.length === 0)
    fail(900144, { parameter: 'scope' });

  const user = state.dir.findUser(username);
  // /organizations: the user's own tenant; a tenant endpoint: only its own users (Entra hides the UPN).
  if (!user || (tenant && user.tenantId !== tenant.tenantId)) {
    state.stats.failedSignIns++;
    const directory = tenant?.tenantId ?? username.slice(username.indexOf('@') + 1);
    fail(50034, { username: '{EmailHidden}', tenant: directory });
  }
  if (user.federated === true || !safeEqual(password, user.password)) {
    state.stats.failedSignIns++;
    fail(50126);
  }
  if (user.disabled || user.passwordExpired === true) {
    state.stats.failedSignIns++;
    fail(user.disabled ? 50057 : 50055);
  }
  state.stats.signIns++;

  const resourceScopes = expandDefault(state, user, client.app.clientId, requested.resourceScopes);
  const resource = resourceScopes[0] ? parseResourceScope(resourceScopes[0]).resource : GRAPH_RESOURCE;
  if (user.conditionalAccessBlocked) fail(53003);
  if (user.mfaRegistrationRequired === true) fail(50079, { resource }, { error: 'invalid_grant' });
  if (user.mfaRequired) fail(50076, { resource }, { error: 'invalid_grant' });
  if (state.dir.missingConsent(user, client.app.clientId, resourceScopes).length > 0)
    fail(65001, { clientId: client.app.clientId, appName: client.app.displayName });

  return userTokenResponse(state, {
    user,
    app: client.app,
    resourceScopes,
    oidcScopes: requested.oidc,
    nonce: undefined,
    authTime: state.now(),
    sessionId: newSessionId(),
    mfa: false,
    grantScopes: [...resourceScopes, ...requested.oidc],
    appidacr: client.appidacr,
  });
}
