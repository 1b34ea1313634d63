/** Minting of access tokens, id tokens and refresh tokens (shapes follow Entra's v1/v2 tokens). */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { EmulatorState } from './context';
import {
  GRAPH_RESOURCE,
  OIDC_SCOPES,
  opaqueToken,
  parseResourceScope,
  type AppRecord,
  type RefreshGrant,
  type UserRecord,
} from './model';

export function uti(): string {
  return randomBytes(16).toString('base64url');
}

/** Pairwise `sub` of the id token: stable per (user, app), as Entra does. */
export function pairwiseSub(oid: string, clientId: string): string {
  return createHash('sha256').update(`${oid}|${clientId}`).digest().subarray(0, 32).toString('base64url');
}

export function clientInfo(user: UserRecord): string {
  return Buffer.from(JSON.stringify({ uid: user.oid, utid: user.tenantId })).toString('base64url');
}

/** Resource of a set of resource scopes (fully qualified); Graph when there is none. */
export function resourceOf(resourceScopes: string[]): string {
  const first = resourceScopes[0];
  return first ? parseResourceScope(first).resource : GRAPH_RESOURCE;
}

export interface UserTokenRequest {
  user: UserRecord;
  app: AppRecord;
  /** Fully-qualified resource scopes of ONE resource, as they go into `scp`. */
  resourceScopes: string[];
  /** OIDC scopes granted (openid, profile, email, offline_access). */
  oidcScopes: string[];
  nonce: string | undefined;
  authTime: number;
  sessionId: string;
  mfa: boolean;
  /** The grant's full consented scope list, carried by the refresh token. */
  grantScopes: string[];
  /** How the client authenticated: 0 public, 1 secret, 2 certificate/assertion. */
  appidacr: '0' | '1' | '2';
}

export function userTokenResponse(state: EmulatorState, r: UserTokenRequest): Record<string, unknown> {
  const nowSec = Math.floor(state.now() / 1000);
  const lifetime = state.settings.accessTokenLifetimeSeconds;
  const tid = r.user.tenantId;
  const resource = resourceOf(r.resourceScopes);
  const scp =
    r.resourceScopes.length > 0
      ? r.resourceScopes.map((s) => parseResourceScope(s).permission).join(' ')
      : r.oidcScopes.filter((s) => s !== 'offline_access').join(' ');
  const amr = r.mfa ? ['pwd', 'mfa'] : ['pwd'];
  const [givenName, ...rest] = r.user.displayName.split(' ');
  // v1.0 access token, as Exchange Online / most first-party resources accept.
  const accessToken = state.key.sign({
    aud: resource,
    iss: `https://sts.windows.net/${tid}/`,
    iat: nowSec,
    nbf: nowSec,
    exp: nowSec + lifetime,
    acr: '1',
    amr,
    app_displayname: r.app.displayName,
    appid: r.app.clientId,
    appidacr: r.appidacr,
    auth_time: Math.floor(r.authTime / 1000),
    family_name: rest.join(' ') || undefined,
    given_name: givenName,
    idtyp: 'user',
    ipaddr: '127.0.0.1',
    name: r.user.displayName,
    oid: r.user.oid,
    preferred_username: r.user.username,
    scp,
    sid: r.sessionId,
    sub: pairwiseSub(r.user.oid, resource),
    tid,
    unique_name: r.user.username,
    upn: r.user.username,
    uti: uti(),
    ver: '1.0',
  });
  const body: Record<string, unknown> = {
    token_type: 'Bearer',
    scope: [...r.resourceScopes, ...r.oidcScopes].join(' '),
    expires_in: lifetime,
    ext_expires_in: lifetime,
    access_token: accessToken,
  };
  if (r.oidcScopes.includes('offline_access')) {
    body.refresh_token = issueRefreshToken(state, r).token;
  }
  if (r.oidcScopes.includes('openid')) {
    body.id_token = state.key.sign({
      aud: r.app.clientId,
      iss: `${state.url}/${tid}/v2.0`,
      iat: nowSec,
      nbf: nowSec,
      exp: nowSec + 3600,
      auth_time: Math.floor(r.authTime / 1000),
      ...(r.oidcScopes.includes('profile') ? { name: r.user.displayName } : {}),
      ...(r.oidcScopes.includes('email') ? { email: r.user.username } : {}),
      ...(r.nonce !== undefined ? { nonce: r.nonce } : {}),
      oid: r.user.oid,
      preferred_username: r.user.username,
      sid: r.sessionId,
      sub: pairwiseSub(r.user.oid, r.app.clientId),
      tid,
      uti: uti(),
      ver: '2.0',
    });
  }
  body.client_info = clientInfo(r.user);
  return body;
}

function issueRefreshToken(state: EmulatorState, r: UserTokenRequest): RefreshGrant {
  const now = state.now();
  const grant: RefreshGrant = {
    token: opaqueToken('1.AR', 180),
    clientId: r.app.clientId,
    user: r.user,
    scopes: r.grantScopes,
    issuedAt: now,
    lastUsedAt: now,
    authTime: r.authTime,
    sessionId: r.sessionId,
    mfa: r.mfa,
  };
  state.dir.refreshTokens.set(grant.token, grant);
  return grant;
}

/** App-only (client credentials) token response. */
export function appTokenResponse(
  state: EmulatorState,
  app: AppRecord,
  tenantId: string,
  resource: string,
  appidacr: '1' | '2',
): Record<string, unknown> {
  const nowSec = Math.floor(state.now() / 1000);
  const lifetime = state.settings.accessTokenLifetimeSeconds;
  const sp = state.dir.servicePrincipalId(app, tenantId);
  const accessToken = state.key.sign({
    aud: resource,
    iss: `https://sts.windows.net/${tenantId}/`,
    iat: nowSec,
    nbf: nowSec,
    exp: nowSec + lifetime,
    app_displayname: app.displayName,
    appid: app.clientId,
    appidacr,
    idp: `https://sts.windows.net/${tenantId}/`,
    idtyp: 'app',
    oid: sp,
    ...(app.roles.length > 0 ? { roles: app.roles } : {}),
    sub: sp,
    tid: tenantId,
    uti: uti(),
    ver: '1.0',
  });
  return { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: accessToken };
}

export function isOidcScope(s: string): boolean {
  return OIDC_SCOPES.has(s);
}

export function newSessionId(): string {
  return randomUUID();
}
