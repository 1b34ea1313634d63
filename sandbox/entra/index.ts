/**
 * Microsoft Entra ID (identity platform v2.0) emulator on loopback HTTPS, for tests and the local
 * sandbox. Speaks the real wire protocol: OIDC discovery, instance discovery, JWKS, the
 * authorization-code + PKCE flow with HTML sign-in and consent pages, the token endpoint (code,
 * refresh with rotation, client credentials, client secret / federated client assertion), admin
 * consent, and the App Service managed-identity endpoint. Errors use Entra's AADSTS codes and body
 * shape (see errors.ts).
 *
 * Using it with @azure/msal-node: authority `${url}/${tenantId}` and `knownAuthorities: [new URL(url).host]`
 * (otherwise MSAL asks login.microsoftonline.com for instance discovery). With knownAuthorities
 * MSAL skips instance discovery and fetches `${authority}/v2.0/.well-known/openid-configuration`
 * from this server.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { TestPki } from '../tls';
import {
  handleAdminConsent,
  handleAuthorize,
  handleConsent,
  handleLogin,
  handleLogout,
  normalizeScopes,
} from './authorize';
import {
  count,
  newExchange,
  readForm,
  sendAadstsJson,
  sendHtml,
  sendJson,
  sleep,
  type EmulatorState,
  type EntraStats,
  type Exchange,
  type FaultEndpoint,
} from './context';
import { AADSTS_TABLE, aadsts, type AadstsCode } from './errors';
import { errorPage, infoPage } from './html';
import { SigningKey } from './jwt';
import { handleManagedIdentity } from './managed-identity';
import {
  Directory,
  isGuid,
  opaqueToken,
  type AppInfo,
  type AppRecord,
  type FederatedCredential,
  type ManagedIdentityInfo,
  type RefreshGrant,
  type TenantInfo,
  type UserInfo,
  type UserRecord,
} from './model';
import { isEntraSnapshot, restoreInto, signingKeyOf, snapshotOf, type EntraSnapshot } from './snapshot';
import { handleToken } from './token-endpoint';
import { newSessionId } from './tokens';
import { closeServer, listenOnLoopback } from '../listen';

export type { AppInfo, EntraStats, FederatedCredential, ManagedIdentityInfo, TenantInfo, UserInfo };
export type { EntraSnapshot };
export { isEntraSnapshot };
export { AADSTS_TABLE, aadsts } from './errors';

export interface EntraEmulatorOptions {
  pki: TestPki;
  /** Default 0 (ephemeral). Always bound to 127.0.0.1. */
  port?: number;
  /** Controllable clock (ms since epoch); all expiry logic uses it. Default Date.now. */
  now?: () => number;
  /** Access-token lifetime (`expires_in`); default 3600. Also settable later via faults.accessTokenLifetimeSeconds. */
  accessTokenLifetimeSeconds?: number;
  /**
   * The host name (e.g. `login.microsoftonline.com`) it answers for behind a proxy: its discovery
   * documents, endpoints and token issuers name `https://{publicHost}`, and `url` is that. Default:
   * its loopback address. The managed-identity endpoint stays on loopback (`localUrl`).
   */
  publicHost?: string;
  /**
   * Also serve the pages a browser visits (authorize, sign-in, consent, admin consent, logout,
   * error) over plain HTTP on `http://localhost:{browserPort}` (0: a free port), and name that
   * listener's authorize and logout endpoints in the discovery documents. A browser then opens
   * them without a certificate warning (the test CA is trusted by Node only); everything a server
   * calls (discovery, keys, token, managed identity) stays HTTPS. The sandbox's choice: Entra
   * itself serves everything over HTTPS.
   */
  browserPort?: number;
  /** Start from what `snapshot()` returned before (same tenants, key, users, apps, grants). */
  restore?: EntraSnapshot;
  /** Called after each request that may have changed what `snapshot()` returns. */
  onChange?: () => void;
}

export interface FailNextOptions {
  status: 500 | 503 | 429;
  retryAfterSeconds?: number;
  /** Which requests fail: token endpoint, interactive endpoints (authorize, sign-in, consent), the managed-identity endpoint, discovery documents (only when named), or 'any' (all but discovery). Default 'any'. */
  endpoint?: FaultEndpoint;
}

export interface FaultControls {
  /** Delay added to every token / authorize / sign-in / consent / managed-identity response. */
  latencyMs: number;
  /**
   * When true, redeeming a refresh token revokes it. Entra does not (a rotated-out refresh token stays
   * valid until its own 90-day lifetime ends); this switch is for tests that must prove no code path
   * ever redeems an old one.
   */
  revokeRotatedRefreshTokens: boolean;
  /** When true, refresh answers carry no new refresh token (Entra may do so); the presented one stays valid. */
  omitRefreshToken: boolean;
  /** `expires_in` of access tokens issued from now on. */
  accessTokenLifetimeSeconds: number;
  /** Removes the user's consents (all apps); the next refresh fails with invalid_grant AADSTS65001 (suberror consent_required). */
  revokeConsent(username: string): void;
  /**
   * Forgets every refresh token, as a sign-in service started over does (the sandbox after its
   * state file was deleted): the next refresh fails with invalid_grant AADSTS70000.
   */
  forgetRefreshTokens(): void;
  /** Revokes every grant authenticated before now (AADSTS50173); optionally sets a new password. */
  resetPassword(username: string, newPassword?: string): void;
  /** Refresh of grants without MFA fails with interaction_required AADSTS50076 (suberror basic_action). A new interactive sign-in counts as MFA. */
  requireMfa(username: string, on?: boolean): void;
  /** Token issuance blocked by Conditional Access: AADSTS53003 (also at sign-in, redirected as access_denied). */
  conditionalAccessBlock(username: string, on?: boolean): void;
  /** Disabled account: AADSTS50057 at the token endpoint and at sign-in. */
  disableUser(username: string, on?: boolean): void;
  /** Password grant: the user must register for MFA first, invalid_grant AADSTS50079 (suberror basic_action). */
  requireMfaRegistration(username: string, on?: boolean): void;
  /** Password grant: a federated (AD FS, other IdP) or personal account, which ROPC cannot sign in: invalid_grant AADSTS50126. */
  federateUser(username: string, on?: boolean): void;
  /** Password grant: the password has expired, invalid_grant AADSTS50055 (suberror user_password_expired). */
  expirePassword(username: string, on?: boolean): void;
  /** The next `count` matching requests fail with this status (429 carries Retry-After). */
  failNext(count: number, options: FailNextOptions): void;
  /** /authorize redirects back with error=consent_required (AADSTS65001) unless admin consent exists. */
  consentRequired(on: boolean): void;
  /** /authorize redirects back with error=interaction_required. */
  interactionRequired(on: boolean): void;
  /** Turns every per-emulator switch back off (users keep their state). */
  reset(): void;
}

export interface EntraEmulator {
  /** Authority host, e.g. https://127.0.0.1:40123 (no trailing slash), or `https://{publicHost}`. */
  url: string;
  /** Where it listens, `https://127.0.0.1:{port}`: `url` unless `publicHost` is set. */
  localUrl: string;
  /** Origin of the pages a browser visits: the plain-HTTP listener with `browserPort`, else `url`. */
  browserUrl: string;
  /** Everything a restart must keep (secret: signing key, passwords, refresh tokens). */
  snapshot(): EntraSnapshot;
  findUser(username: string): UserInfo | undefined;
  findApp(clientId: string): AppInfo | undefined;
  tenants: { primary: TenantInfo; other: TenantInfo };
  addTenant(domain: string): TenantInfo;
  addUser(u: {
    username: string;
    password: string;
    tenantId?: string;
    displayName?: string;
    isAdmin?: boolean;
  }): UserInfo;
  registerApp(a: {
    clientId?: string;
    clientSecret?: string;
    /** No secret and no federated credential: a public client. */
    publicClient?: boolean;
    displayName?: string;
    redirectUris: string[];
    tenantId?: string;
    multiTenant?: boolean;
    federatedCredentials?: FederatedCredential[];
    /** App roles for client-credentials tokens. */
    roles?: string[];
  }): AppInfo;
  /** A managed identity served at `endpoint` (use as IDENTITY_ENDPOINT) behind `identityHeader` (IDENTITY_HEADER). Pass identityHeader to put several identities behind one header (user-assigned, selected by client_id). */
  addManagedIdentity(m?: {
    clientId?: string;
    principalId?: string;
    identityHeader?: string;
  }): ManagedIdentityInfo;
  /** Grants tenant-wide admin consent for an app without the browser flow. */
  grantAdminConsent(clientId: string, tenantId?: string): void;
  /**
   * Mints a valid refresh token without the browser flow (for seeding many connections): records
   * the same server-side grant a code redemption creates (the user signed in now, with MFA when required,
   * a new session) and the user's consent to the scopes, as the consent page would. Each call creates
   * an independent grant, so one user can hold many. Returns the refresh token.
   */
  mintRefreshToken(m: { username: string; clientId: string; scopes: string[] }): string;
  faults: FaultControls;
  stats: EntraStats;
  verifyAccessToken(
    token: string,
    audience: string,
  ): { valid: boolean; claims?: Record<string, unknown>; reason?: string };
  close(): Promise<void>;
}

function endpointCategory(ex: Exchange): FaultEndpoint | undefined {
  const s = ex.segments;
  if (s[0] === 'msi') return 'managedIdentity';
  if (s[1] === 'oauth2' && s[3] === 'token') return 'token';
  if (
    (s[1] === 'oauth2' && s[3] === 'authorize') ||
    s[1] === 'login' ||
    s[1] === 'Consent' ||
    s.includes('adminconsent')
  )
    return 'authorize';
  if (s.includes('.well-known') || s.includes('discovery')) return 'discovery';
  return undefined;
}

function discoveryDocument(
  state: EmulatorState,
  segment: string,
  tenant: TenantInfo | undefined,
): Record<string, unknown> {
  const base = `${state.url}/${tenant ? tenant.tenantId : segment}`;
  const browserBase = `${state.browserUrl}/${tenant ? tenant.tenantId : segment}`;
  return {
    token_endpoint: `${base}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${base}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `${state.url}/${tenant ? tenant.tenantId : '{tenantid}'}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: `${state.url}/oidc/userinfo`,
    authorization_endpoint: `${browserBase}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${browserBase}/oauth2/v2.0/logout`,
    claims_supported: [
      'sub',
      'iss',
      'cloud_instance_name',
      'cloud_instance_host_name',
      'cloud_graph_host_name',
      'msgraph_host',
      'aud',
      'exp',
      'iat',
      'auth_time',
      'acr',
      'nonce',
      'preferred_username',
      'name',
      'tid',
      'ver',
      'at_hash',
      'c_hash',
      'email',
    ],
    kerberos_endpoint: `${base}/kerberos`,
    tenant_region_scope: tenant ? 'EU' : null,
    cloud_instance_name: 'microsoftonline.com',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: 'graph.microsoft.com',
    rbac_url: 'https://pas.windows.net',
  };
}

/** Resolves a tenant segment for discovery; sends AADSTS90002 and returns false when unknown. */
function discoveryTenant(
  state: EmulatorState,
  ex: Exchange,
  segment: string,
): { tenant: TenantInfo | undefined } | false {
  const lower = segment.toLowerCase();
  if (lower === 'common' || lower === 'organizations') return { tenant: undefined };
  const tenant = state.dir.findTenant(segment);
  if (!tenant) {
    sendAadstsJson(state, ex, aadsts(90002, { tenant: segment }));
    return false;
  }
  return { tenant };
}

async function route(state: EmulatorState, ex: Exchange): Promise<void> {
  const { req, segments: s } = ex;
  const method = req.method ?? 'GET';
  const category = endpointCategory(ex);

  // Injected faults come first (they model the service being unhealthy).
  if (category) {
    const fault = state.settings.faultQueue.find(
      (f) =>
        f.remaining > 0 && (f.endpoint === category || (f.endpoint === 'any' && category !== 'discovery')),
    );
    if (fault) {
      fault.remaining--;
      state.settings.faultQueue = state.settings.faultQueue.filter((f) => f.remaining > 0);
      state.stats.faultsInjected++;
      count(state, `fault:${category}`);
      if (state.settings.latencyMs > 0) await sleep(state.settings.latencyMs);
      sendFault(state, ex, category, fault.status, fault.retryAfterSeconds);
      return;
    }
  }
  if (state.settings.latencyMs > 0 && category && category !== 'discovery')
    await sleep(state.settings.latencyMs);

  if (
    method === 'GET' &&
    s[0] === 'common' &&
    s[1] === 'discovery' &&
    s[2] === 'instance' &&
    s.length === 3
  ) {
    count(state, 'instance-discovery');
    const endpoint = ex.url.searchParams.get('authorization_endpoint') ?? '';
    let tenant = 'common';
    try {
      tenant = new URL(endpoint).pathname.split('/').filter(Boolean)[0] ?? 'common';
    } catch {
      // keep common
    }
    sendJson(ex, 200, {
      tenant_discovery_endpoint: `${state.url}/${tenant}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: state.host, preferred_cache: state.host, aliases: [state.host] }],
    });
    return;
  }
  if (method === 'GET' && s[0] === 'msi' && s[1] === 'token' && s.length === 2) {
    handleManagedIdentity(state, ex);
    return;
  }
  if (method === 'GET' && s[0] === 'error' && s.length === 1) {
    count(state, 'error-page');
    const code = ex.url.searchParams.get('code') ?? '';
    const known =
      /^\d+$/.test(code) && code in AADSTS_TABLE
        ? aadsts(Number(code) as AadstsCode).message
        : `AADSTS${code}`;
    sendHtml(ex, 200, infoPage(`Error AADSTS${code}`, known));
    return;
  }
  const segment = s[0];
  if (!segment) {
    sendHtml(ex, 404, infoPage('Not found', 'Microsoft Entra ID emulator'));
    return;
  }
  const rest = s.slice(1).join('/');

  if (method === 'GET' && rest === 'v2.0/.well-known/openid-configuration') {
    count(state, 'openid-configuration');
    const t = discoveryTenant(state, ex, segment);
    if (t) sendJson(ex, 200, discoveryDocument(state, segment, t.tenant));
    return;
  }
  if (method === 'GET' && (rest === 'discovery/v2.0/keys' || rest === 'discovery/keys')) {
    count(state, 'keys');
    const t = discoveryTenant(state, ex, segment);
    if (t)
      sendJson(ex, 200, {
        keys: [state.key.jwk(`${state.url}/${t.tenant ? t.tenant.tenantId : '{tenantid}'}/v2.0`)],
      });
    return;
  }
  if (rest === 'oauth2/v2.0/authorize' && (method === 'GET' || method === 'POST')) {
    const params = method === 'POST' ? await readForm(req) : ex.url.searchParams;
    handleAuthorize(state, ex, params, segment);
    return;
  }
  if (rest === 'oauth2/v2.0/token' && method === 'POST') {
    const contentType = req.headers['content-type'] ?? '';
    const form = await readForm(req);
    if (!contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      count(state, 'token');
      sendAadstsJson(state, ex, aadsts(900144, { parameter: 'grant_type' }));
      return;
    }
    handleToken(state, ex, form, segment);
    return;
  }
  if (rest === 'login' && method === 'POST') {
    handleLogin(state, ex, await readForm(req));
    return;
  }
  if (rest === 'Consent/Set' && method === 'POST') {
    handleConsent(state, ex, await readForm(req));
    return;
  }
  if ((rest === 'adminconsent' || rest === 'v2.0/adminconsent') && method === 'GET') {
    handleAdminConsent(state, ex, ex.url.searchParams, segment);
    return;
  }
  if (rest === 'oauth2/v2.0/logout' && (method === 'GET' || method === 'POST')) {
    const params = method === 'POST' ? await readForm(req) : ex.url.searchParams;
    handleLogout(state, ex, params);
    return;
  }
  count(state, 'not-found');
  sendHtml(ex, 404, infoPage('Not found', `No such endpoint: ${method} ${ex.url.pathname}`));
}

function sendFault(
  state: EmulatorState,
  ex: Exchange,
  category: FaultEndpoint,
  status: 429 | 500 | 503,
  retryAfterSeconds: number | undefined,
): void {
  const code: AadstsCode = status === 429 ? 50196 : status === 503 ? 90033 : 50000;
  const err = aadsts(code, {}, { status });
  const headers: Record<string, string> = {};
  if (retryAfterSeconds !== undefined || status === 429)
    headers['retry-after'] = String(retryAfterSeconds ?? 5);
  if (category === 'authorize') {
    sendHtml(ex, status, errorPage({ message: err.message, ...ex.trace }), headers);
  } else if (category === 'managedIdentity') {
    sendJson(
      ex,
      status,
      { statusCode: status, message: err.message, correlationId: ex.trace.correlationId },
      headers,
    );
  } else {
    sendAadstsJson(state, ex, err, headers);
  }
}

function generateSecret(): string {
  // Shape of an Entra client secret value: 3 chars, '8Q~', 34 chars.
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.';
  const bytes = randomBytes(37);
  const chars = [...bytes].map((b) => alphabet[b % alphabet.length] ?? 'a').join('');
  return `${chars.slice(0, 3)}8Q~${chars.slice(3)}`;
}

/** The pages a browser visits, the only routes of the plain-HTTP listener (`browserPort`). */
function isBrowserFacing(ex: Exchange): boolean {
  const s = ex.segments;
  return (
    endpointCategory(ex) === 'authorize' || s[0] === 'error' || s.slice(1).join('/') === 'oauth2/v2.0/logout'
  );
}

export async function startEntraEmulator(options: EntraEmulatorOptions): Promise<EntraEmulator> {
  const now = options.now ?? Date.now;
  const dir = new Directory();
  const restore = options.restore;
  const key = restore ? signingKeyOf(restore) : new SigningKey();
  const stats: EntraStats = {
    requests: {},
    signIns: 0,
    failedSignIns: 0,
    consentsGranted: 0,
    codesIssued: 0,
    codesRedeemed: 0,
    refreshes: 0,
    clientCredentials: 0,
    managedIdentityTokens: 0,
    tokenErrors: 0,
    faultsInjected: 0,
  };
  const defaultLifetime = options.accessTokenLifetimeSeconds ?? 3600;
  const state: EmulatorState = {
    url: '',
    host: '',
    browserUrl: '',
    dir,
    key,
    now,
    primaryTenant: { tenantId: '', domain: '', displayName: '' },
    stats,
    settings: {
      latencyMs: 0,
      revokeRotatedRefreshTokens: false,
      omitRefreshToken: false,
      accessTokenLifetimeSeconds: defaultLifetime,
      consentRequired: false,
      interactionRequired: false,
      faultQueue: [],
    },
  };

  if (restore) restoreInto(state, restore);
  const restored = (tenantId: string): TenantInfo => {
    const tenant = dir.tenants.get(tenantId);
    if (!tenant) throw new Error(`Entra emulator: the snapshot has no tenant '${tenantId}'`);
    return tenant;
  };
  const primary = restore ? restored(restore.primaryTenantId) : dir.addTenant('contoso.test', 'Contoso');
  const other = restore ? restored(restore.otherTenantId) : dir.addTenant('fabrikam.test', 'Fabrikam');
  state.primaryTenant = primary;

  const handle = (req: IncomingMessage, res: ServerResponse, browserOnly: boolean): void => {
    const ex = newExchange(state, req, res);
    if (options.onChange && req.method !== 'GET') res.once('finish', options.onChange);
    if (browserOnly && !isBrowserFacing(ex)) {
      sendHtml(ex, 404, infoPage('Not found', 'This listener serves only the sign-in pages.'));
      return;
    }
    // A GET of /authorize may complete at once (single sign-on) and record consent: a change too.
    if (options.onChange && req.method === 'GET' && endpointCategory(ex) === 'authorize')
      res.once('finish', options.onChange);
    route(state, ex).catch((e: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendAadstsJson(state, ex, aadsts(50000, {}, { status: 500 }));
      console.error('Entra emulator: unhandled error', e);
    });
  };
  const server: Server = createServer(
    { cert: options.pki.serverCertPem, key: options.pki.serverKeyPem },
    (req, res) => {
      handle(req, res, false);
    },
  );
  const browserServer =
    options.browserPort === undefined
      ? undefined
      : createHttpServer((req, res) => {
          handle(req, res, true);
        });
  const port = await listenOnLoopback(server, options.port);
  const localUrl = `https://127.0.0.1:${port}`;
  state.host = options.publicHost ?? `127.0.0.1:${port}`;
  state.url = `https://${state.host}`;
  state.browserUrl = state.url;
  if (browserServer) {
    try {
      state.browserUrl = `http://localhost:${await listenOnLoopback(browserServer, options.browserPort)}`;
    } catch (error) {
      await closeServer(server);
      throw error;
    }
  }

  const userFlag = (username: string, apply: (u: ReturnType<Directory['requireUser']>) => void): void => {
    apply(dir.requireUser(username));
  };

  const faults: FaultControls = {
    get latencyMs() {
      return state.settings.latencyMs;
    },
    set latencyMs(v: number) {
      state.settings.latencyMs = v;
    },
    get revokeRotatedRefreshTokens() {
      return state.settings.revokeRotatedRefreshTokens;
    },
    set revokeRotatedRefreshTokens(v: boolean) {
      state.settings.revokeRotatedRefreshTokens = v;
    },
    get omitRefreshToken() {
      return state.settings.omitRefreshToken;
    },
    set omitRefreshToken(v: boolean) {
      state.settings.omitRefreshToken = v;
    },
    get accessTokenLifetimeSeconds() {
      return state.settings.accessTokenLifetimeSeconds;
    },
    set accessTokenLifetimeSeconds(v: number) {
      state.settings.accessTokenLifetimeSeconds = v;
    },
    forgetRefreshTokens() {
      dir.refreshTokens.clear();
    },
    revokeConsent(username) {
      const user = dir.requireUser(username);
      for (const k of [...dir.userConsents.keys()])
        if (k.endsWith(`|${user.oid}`)) dir.userConsents.delete(k);
    },
    resetPassword(username, newPassword) {
      userFlag(username, (u) => {
        // Grants authenticated at or before this instant are revoked (Entra's TokensValidFrom).
        u.tokensValidFrom = now() + 1;
        if (newPassword !== undefined) u.password = newPassword;
      });
    },
    requireMfa(username, on = true) {
      userFlag(username, (u) => (u.mfaRequired = on));
    },
    conditionalAccessBlock(username, on = true) {
      userFlag(username, (u) => (u.conditionalAccessBlocked = on));
    },
    disableUser(username, on = true) {
      userFlag(username, (u) => (u.disabled = on));
    },
    requireMfaRegistration(username, on = true) {
      userFlag(username, (u) => (u.mfaRegistrationRequired = on));
    },
    federateUser(username, on = true) {
      userFlag(username, (u) => (u.federated = on));
    },
    expirePassword(username, on = true) {
      userFlag(username, (u) => (u.passwordExpired = on));
    },
    failNext(n, opts) {
      state.settings.faultQueue.push({
        remaining: n,
        status: opts.status,
        retryAfterSeconds: opts.retryAfterSeconds,
        endpoint: opts.endpoint ?? 'any',
      });
    },
    consentRequired(on) {
      state.settings.consentRequired = on;
    },
    interactionRequired(on) {
      state.settings.interactionRequired = on;
    },
    reset() {
      Object.assign(state.settings, {
        latencyMs: 0,
        revokeRotatedRefreshTokens: false,
        omitRefreshToken: false,
        accessTokenLifetimeSeconds: defaultLifetime,
        consentRequired: false,
        interactionRequired: false,
        faultQueue: [],
      });
    },
  };

  const publicUser = (u: UserRecord): UserInfo => {
    const { username, password, oid, tenantId, displayName, isAdmin } = u;
    return { username, password, oid, tenantId, displayName, isAdmin };
  };
  const publicApp = ({ servicePrincipals: _sp, ...app }: AppRecord): AppInfo => ({
    ...app,
    redirectUris: [...app.redirectUris],
    federatedCredentials: app.federatedCredentials.map((f) => ({ ...f })),
    roles: [...app.roles],
  });

  return {
    url: state.url,
    localUrl,
    browserUrl: state.browserUrl,
    snapshot: () => snapshotOf(state, other.tenantId),
    findUser(username) {
      const user = dir.findUser(username);
      return user ? publicUser(user) : undefined;
    },
    findApp(clientId) {
      const app = dir.apps.get(clientId.toLowerCase());
      return app ? publicApp(app) : undefined;
    },
    tenants: { primary, other },
    addTenant: (domain) => dir.addTenant(domain),
    addUser(u) {
      const key = u.username.trim().toLowerCase();
      if (dir.users.has(key)) throw new Error(`Entra emulator: user '${u.username}' exists`);
      const domainTenant = dir.findTenant(key.split('@')[1] ?? '');
      const tenantId = u.tenantId ?? domainTenant?.tenantId ?? primary.tenantId;
      if (!dir.tenants.has(tenantId)) throw new Error(`Entra emulator: no tenant '${tenantId}'`);
      const record = {
        username: key,
        password: u.password,
        oid: randomUUID(),
        tenantId,
        displayName: u.displayName ?? key.replace(/@.*$/, ''),
        isAdmin: u.isAdmin ?? false,
        disabled: false,
        mfaRequired: false,
        conditionalAccessBlocked: false,
        tokensValidFrom: 0,
      };
      dir.users.set(key, record);
      return publicUser(record);
    },
    registerApp(a) {
      const clientId = (a.clientId ?? randomUUID()).toLowerCase();
      if (!isGuid(clientId)) throw new Error(`Entra emulator: clientId must be a GUID, got '${clientId}'`);
      const federatedCredentials = a.federatedCredentials ?? [];
      const clientSecret =
        a.clientSecret ??
        (a.publicClient === true || federatedCredentials.length > 0 ? undefined : generateSecret());
      const tenantId = a.tenantId ?? primary.tenantId;
      const record: AppRecord = {
        clientId,
        clientSecret,
        displayName: a.displayName ?? `App ${clientId.slice(0, 8)}`,
        redirectUris: [...a.redirectUris],
        tenantId,
        multiTenant: a.multiTenant ?? false,
        federatedCredentials: federatedCredentials.map((f) => ({ ...f })),
        roles: [...(a.roles ?? [])],
        // Registered again (the sandbox after a restart): its service principals keep their ids.
        servicePrincipals: dir.apps.get(clientId)?.servicePrincipals ?? new Map<string, string>(),
      };
      dir.apps.set(clientId, record);
      return publicApp(record);
    },
    addManagedIdentity(m = {}) {
      const mi: ManagedIdentityInfo = {
        clientId: m.clientId ?? randomUUID(),
        principalId: m.principalId ?? randomUUID(),
        identityHeader: m.identityHeader ?? randomBytes(24).toString('hex'),
        endpoint: `${localUrl}/msi/token`,
      };
      dir.managedIdentities.set(mi.clientId, mi);
      return { ...mi };
    },
    grantAdminConsent(clientId, tenantId) {
      const app = dir.apps.get(clientId.toLowerCase());
      if (!app) throw new Error(`Entra emulator: no app '${clientId}'`);
      dir.adminConsents.add(`${tenantId ?? app.tenantId}|${app.clientId}`);
    },
    mintRefreshToken(m) {
      const user = dir.requireUser(m.username);
      const app = dir.apps.get(m.clientId.toLowerCase());
      if (!app) throw new Error(`Entra emulator: no app '${m.clientId}'`);
      const scopes = normalizeScopes(m.scopes);
      if (!scopes.includes('offline_access'))
        throw new Error('Entra emulator: a refresh token needs the offline_access scope');
      dir.grantConsent(
        user,
        app.clientId,
        scopes.filter((s) => s !== 'openid'),
      );
      const at = now();
      const grant: RefreshGrant = {
        token: opaqueToken('1.AR', 180),
        clientId: app.clientId,
        user,
        scopes,
        issuedAt: at,
        lastUsedAt: at,
        authTime: at,
        sessionId: newSessionId(),
        // As a code from an interactive sign-in: MFA was done when the user needs it.
        mfa: user.mfaRequired,
      };
      dir.refreshTokens.set(grant.token, grant);
      return grant.token;
    },
    faults,
    stats,
    verifyAccessToken(token, audience) {
      const checked = key.verify(token);
      if (!checked.ok) return { valid: false, reason: checked.reason };
      const claims = checked.jwt.payload;
      const nowSec = Math.floor(now() / 1000);
      if (typeof claims.exp !== 'number' || claims.exp <= nowSec)
        return { valid: false, claims, reason: 'expired' };
      if (typeof claims.nbf === 'number' && claims.nbf > nowSec + 300)
        return { valid: false, claims, reason: 'not yet valid' };
      const norm = (v: string): string => v.replace(/\/+$/, '').toLowerCase();
      const auds = Array.isArray(claims.aud) ? claims.aud.map(String) : [String(claims.aud)];
      if (!auds.some((a) => norm(a) === norm(audience)))
        return { valid: false, claims, reason: 'audience mismatch' };
      return { valid: true, claims };
    },
    close: async () => {
      await Promise.all([closeServer(server), browserServer ? closeServer(browserServer) : undefined]);
    },
  };
}
