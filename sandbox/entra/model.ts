/** The emulator's directory and grant state (tenants, users, apps, consents, codes, refresh tokens). */
import { randomBytes, randomUUID } from 'node:crypto';

export interface TenantInfo {
  tenantId: string;
  domain: string;
  displayName: string;
}

export interface UserInfo {
  username: string;
  password: string;
  oid: string;
  tenantId: string;
  displayName: string;
  isAdmin: boolean;
}

export interface FederatedCredential {
  issuer: string;
  subject: string;
  audience: string;
}

export interface AppInfo {
  clientId: string;
  /** Undefined for an app registered with federated credentials only. */
  clientSecret: string | undefined;
  displayName: string;
  redirectUris: string[];
  tenantId: string;
  multiTenant: boolean;
  federatedCredentials: FederatedCredential[];
  /** App roles put in the `roles` claim of client-credentials tokens. */
  roles: string[];
}

export interface ManagedIdentityInfo {
  clientId: string;
  principalId: string;
  identityHeader: string;
  endpoint: string;
}

/** Mutable per-user state the fault switches change. */
export interface UserRecord extends UserInfo {
  disabled: boolean;
  mfaRequired: boolean;
  conditionalAccessBlocked: boolean;
  /** ms; grants authenticated before this are revoked (password reset). */
  tokensValidFrom: number;
  /** Password grant only: a federated (or personal) account, whose password Entra cannot check (AADSTS50126). */
  federated?: boolean;
  /** Password grant only: the user must register for MFA first (AADSTS50079). */
  mfaRegistrationRequired?: boolean;
  /** Password grant only: the password has expired (AADSTS50055). */
  passwordExpired?: boolean;
}

export interface AppRecord extends AppInfo {
  /** Object id of the app's service principal in each tenant it is used in. */
  servicePrincipals: Map<string, string>;
}

export type ResponseMode = 'query' | 'fragment' | 'form_post';

export interface PendingAuthorize {
  id: string;
  kind: 'authorize' | 'adminconsent';
  /** The tenant segment of the URL as sent (GUID, domain, common, organizations). */
  tenantSegment: string;
  /** Undefined for common / organizations. */
  authorityTenant: TenantInfo | undefined;
  app: AppRecord;
  redirectUri: string;
  scopes: string[];
  state: string | undefined;
  nonce: string | undefined;
  codeChallenge: string | undefined;
  codeChallengeMethod: 'S256' | 'plain' | undefined;
  responseMode: ResponseMode;
  prompt: string | undefined;
  loginHint: string | undefined;
  correlationId: string | undefined;
  createdAt: number;
  user?: UserRecord;
  authTime?: number;
  /** Browser session the sign-in created or reused (kept while the consent page is shown). */
  sessionId?: string;
}

export interface CodeGrant {
  code: string;
  clientId: string;
  redirectUri: string;
  user: UserRecord;
  scopes: string[];
  nonce: string | undefined;
  codeChallenge: string | undefined;
  codeChallengeMethod: 'S256' | 'plain' | undefined;
  issuedAt: number;
  authTime: number;
  sessionId: string;
  redeemedAt?: number;
  mfa: boolean;
}

export interface RefreshGrant {
  token: string;
  clientId: string;
  user: UserRecord;
  /** Every scope this grant may be refreshed for (as consented at sign-in). */
  scopes: string[];
  issuedAt: number;
  lastUsedAt: number;
  authTime: number;
  sessionId: string;
  mfa: boolean;
  /** Set when the token was rotated (replaced by a newer one) or explicitly revoked. */
  revokedAt?: number;
  /** When a refresh answered with a newer token (this one stays valid, as in Entra). */
  rotatedAt?: number;
}

export interface Session {
  id: string;
  user: UserRecord;
  authTime: number;
}

export const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access']);
export const GRAPH_RESOURCE = 'https://graph.microsoft.com';

export interface ParsedScope {
  /** Fully-qualified: `https://outlook.office365.com/EWS.AccessAsUser.All`. */
  full: string;
  resource: string;
  permission: string;
}

/** Splits a resource scope into resource and permission; bare names are Microsoft Graph scopes, as in Entra. */
export function parseResourceScope(scope: string): ParsedScope {
  const slash = scope.lastIndexOf('/');
  if (slash <= 0 || slash === scope.length - 1) {
    return { full: `${GRAPH_RESOURCE}/${scope}`, resource: GRAPH_RESOURCE, permission: scope };
  }
  const resource = scope.slice(0, slash);
  const permission = scope.slice(slash + 1);
  return { full: `${resource}/${permission}`, resource, permission };
}

export function splitScopes(value: string | null | undefined): string[] {
  if (!value) return [];
  return [...new Set(value.split(/\s+/).filter((s) => s.length > 0))];
}

export function isGuid(v: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);
}

export function opaqueToken(prefix: string, bytes = 96): string {
  return `${prefix}${randomBytes(bytes).toString('base64url')}`;
}

export class Directory {
  readonly tenants = new Map<string, TenantInfo>();
  readonly users = new Map<string, UserRecord>();
  readonly apps = new Map<string, AppRecord>();
  /** `${tenantId}|${clientId}|${oid}` → consented fully-qualified scopes (plus OIDC scopes). */
  readonly userConsents = new Map<string, Set<string>>();
  /** `${tenantId}|${clientId}` of tenant-wide admin consents. */
  readonly adminConsents = new Set<string>();
  readonly pending = new Map<string, PendingAuthorize>();
  readonly codes = new Map<string, CodeGrant>();
  readonly refreshTokens = new Map<string, RefreshGrant>();
  readonly sessions = new Map<string, Session>();
  readonly managedIdentities = new Map<string, ManagedIdentityInfo>();

  addTenant(domain: string, displayName?: string, tenantId: string = randomUUID()): TenantInfo {
    const tenant: TenantInfo = {
      tenantId,
      domain: domain.toLowerCase(),
      displayName: displayName ?? domain,
    };
    this.tenants.set(tenant.tenantId, tenant);
    return tenant;
  }

  /** By GUID or verified domain, case-insensitive. */
  findTenant(segment: string): TenantInfo | undefined {
    const key = segment.toLowerCase();
    const byId = this.tenants.get(key);
    if (byId) return byId;
    for (const t of this.tenants.values()) if (t.domain === key) return t;
    return undefined;
  }

  findUser(username: string): UserRecord | undefined {
    return this.users.get(username.trim().toLowerCase());
  }

  requireUser(username: string): UserRecord {
    const user = this.findUser(username);
    if (!user) throw new Error(`Entra emulator: no user '${username}'`);
    return user;
  }

  consentKey(tenantId: string, clientId: string, oid: string): string {
    return `${tenantId}|${clientId}|${oid}`;
  }

  hasAdminConsent(tenantId: string, clientId: string): boolean {
    return this.adminConsents.has(`${tenantId}|${clientId}`);
  }

  /** Scopes (of `wanted`) this user has not consented to for this app, ignoring `openid`. */
  missingConsent(user: UserRecord, clientId: string, wanted: string[]): string[] {
    if (this.hasAdminConsent(user.tenantId, clientId)) return [];
    const granted =
      this.userConsents.get(this.consentKey(user.tenantId, clientId, user.oid)) ?? new Set<string>();
    return wanted.filter((s) => s !== 'openid' && !granted.has(s));
  }

  grantConsent(user: UserRecord, clientId: string, scopes: string[]): void {
    const key = this.consentKey(user.tenantId, clientId, user.oid);
    const granted = this.userConsents.get(key) ?? new Set<string>();
    for (const s of scopes) granted.add(s);
    this.userConsents.set(key, granted);
  }

  servicePrincipalId(app: AppRecord, tenantId: string): string {
    let id = app.servicePrincipals.get(tenantId);
    if (!id) {
      id = randomUUID();
      app.servicePrincipals.set(tenantId, id);
    }
    return id;
  }
}
