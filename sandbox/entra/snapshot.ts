/**
 * What the emulator knows that a client may still rely on after a restart — tenants, signing key,
 * users (with their object ids), apps, consents and refresh tokens — as one JSON-able value, and
 * back. The sandbox keeps it in `.broker-local/`, so connections authorized before a restart of
 * `npm start` keep working; the tests never restore one. Codes, pending sign-ins, browser sessions
 * and fault switches are not kept: they live minutes, as in Entra.
 */
import type { EmulatorState } from './context';
import { SigningKey, type SavedSigningKey } from './jwt';
import type { AppInfo, RefreshGrant, TenantInfo, UserRecord } from './model';

export interface EntraSnapshot {
  version: 1;
  signingKey: SavedSigningKey;
  tenants: TenantInfo[];
  primaryTenantId: string;
  otherTenantId: string;
  users: UserRecord[];
  apps: (AppInfo & { servicePrincipals: Record<string, string> })[];
  /** `${tenantId}|${clientId}|${oid}` → consented scopes. */
  userConsents: Record<string, string[]>;
  adminConsents: string[];
  refreshTokens: (Omit<RefreshGrant, 'user'> & { username: string })[];
}

/**
 * A rotated-out refresh token stays valid in Entra, so it is kept for a day: long enough for a
 * broker that lost the answer carrying its successor to retry with it, short enough that a refresh
 * every few minutes does not grow the file without end.
 */
const ROTATED_KEPT_MS = 24 * 60 * 60 * 1000;
const INACTIVE_DROPPED_MS = 90 * 24 * 60 * 60 * 1000;

export function snapshotOf(state: EmulatorState, otherTenantId: string): EntraSnapshot {
  const { dir } = state;
  const now = state.now();
  return {
    version: 1,
    signingKey: state.key.export(),
    tenants: [...dir.tenants.values()].map((t) => ({ ...t })),
    primaryTenantId: state.primaryTenant.tenantId,
    otherTenantId,
    users: [...dir.users.values()].map((u) => ({ ...u })),
    apps: [...dir.apps.values()].map(({ servicePrincipals, ...app }) => ({
      ...app,
      servicePrincipals: Object.fromEntries(servicePrincipals),
    })),
    userConsents: Object.fromEntries([...dir.userConsents].map(([key, scopes]) => [key, [...scopes]])),
    adminConsents: [...dir.adminConsents],
    refreshTokens: [...dir.refreshTokens.values()]
      .filter(
        (g) =>
          g.revokedAt === undefined &&
          (g.rotatedAt === undefined || now - g.rotatedAt < ROTATED_KEPT_MS) &&
          now - g.lastUsedAt < INACTIVE_DROPPED_MS,
      )
      .map(({ user, ...grant }) => ({ ...grant, username: user.username })),
  };
}

/** Checks the shape loosely: a file from another version, or a damaged one, is not restored. */
export function isEntraSnapshot(value: unknown): value is EntraSnapshot {
  const v = value as Partial<EntraSnapshot> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    v.version === 1 &&
    typeof v.signingKey?.privateKeyPem === 'string' &&
    Array.isArray(v.tenants) &&
    Array.isArray(v.users) &&
    Array.isArray(v.apps) &&
    Array.isArray(v.refreshTokens) &&
    v.tenants.some((t) => t.tenantId === v.primaryTenantId) &&
    v.tenants.some((t) => t.tenantId === v.otherTenantId)
  );
}

/** The signing key a snapshot restores (the state is built around it). */
export function signingKeyOf(snapshot: EntraSnapshot): SigningKey {
  return new SigningKey(snapshot.signingKey);
}

/** Fills an empty directory from `snapshot`; tenants first, as users and grants point at them. */
export function restoreInto(state: EmulatorState, snapshot: EntraSnapshot): void {
  const { dir } = state;
  for (const t of snapshot.tenants) dir.addTenant(t.domain, t.displayName, t.tenantId);
  for (const u of snapshot.users) dir.users.set(u.username, { ...u });
  for (const { servicePrincipals, ...app } of snapshot.apps) {
    dir.apps.set(app.clientId, { ...app, servicePrincipals: new Map(Object.entries(servicePrincipals)) });
  }
  for (const [key, scopes] of Object.entries(snapshot.userConsents))
    dir.userConsents.set(key, new Set(scopes));
  for (const key of snapshot.adminConsents) dir.adminConsents.add(key);
  for (const { username, ...grant } of snapshot.refreshTokens) {
    const user = dir.findUser(username);
    if (user) dir.refreshTokens.set(grant.token, { ...grant, user });
  }
}
