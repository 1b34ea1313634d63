import { assertConnectionName, type Connection } from '../connections/connection';
import { requireConnection, type ConnectionRegistry } from '../connections/registry';
import type { AuditEvent, AuditLog } from '../audit/audit-log';
import { BrokerError } from '../errors';
import { secretNames, type SecretStore } from '../secrets/secret-store';

/** The connection as admins see it: no etag, no cache ids. */
export function connectionView(connection: Connection, secrets?: Pick<SecretStore, 'uriOf'>) {
  return {
    name: connection.name,
    mailbox: connection.mailbox,
    account: connection.account,
    profile: connection.profile,
    grant: connection.grant,
    ...(connection.scopes ? { scopes: connection.scopes } : {}),
    ...(connection.ewsUrl ? { ewsUrl: connection.ewsUrl } : {}),
    ...(connection.signInFrom ? { signInFrom: connection.signInFrom } : {}),
    readers: connection.readers,
    description: connection.description,
    status: connection.status,
    createdAt: connection.createdAt,
    updatedAt: connection.updatedAt,
    authorizedAt: connection.authorizedAt ?? null,
    authorizedBy: connection.authorizedBy ?? null,
    tenantId: connection.tenantId ?? null,
    tokenExpiresOn: connection.tokenExpiresOn ?? null,
    lastRefreshAt: connection.lastRefreshAt ?? null,
    consecutiveFailures: connection.consecutiveFailures,
    degradedSince: connection.degradedSince ?? null,
    nextAttemptAt: connection.nextAttemptAt ?? null,
    lastError: connection.lastError ?? null,
    lastTest: connection.lastTest ?? null,
    // Where consumers read the published token with the Key Vault SDK (not an App Service Key Vault
    // reference: App Service re-reads those only within 24 hours, a token lives about one).
    tokenSecretUri: secrets?.uriOf(secretNames.token(connection.name)) ?? null,
  };
}

/** The named connection from the registry: 400 for a bad name, 404 when there is none. */
export async function existingConnection(
  registry: Pick<ConnectionRegistry, 'get'>,
  rawName: string | undefined,
): Promise<Connection> {
  const name = assertConnectionName(rawName);
  return requireConnection(registry, name);
}

const RECENT_EVENTS = 20;
const MAX_EVENTS = 200;

/** `GET /api/connections/{name}`: the connection as admins see it, with its most recent events. */
export async function connectionDetail(
  services: {
    registry: Pick<ConnectionRegistry, 'get'>;
    audit: Pick<AuditLog, 'list'>;
    secrets: Pick<SecretStore, 'uriOf'>;
  },
  rawName: string | undefined,
) {
  const connection = await existingConnection(services.registry, rawName);
  const recentEvents = await services.audit.list(connection.name, RECENT_EVENTS);
  return { ...connectionView(connection, services.secrets), recentEvents };
}

/** `GET /api/connections/{name}/events?limit=N`: its audit trail, newest first (`limit` 1–200, default 50). */
export async function connectionEvents(
  services: { registry: Pick<ConnectionRegistry, 'get'>; audit: Pick<AuditLog, 'list'> },
  rawName: string | undefined,
  rawLimit: string | null,
): Promise<{ connection: string; events: AuditEvent[] }> {
  const connection = await existingConnection(services.registry, rawName);
  const limit = rawLimit ?? '50';
  if (!/^\d{1,3}$/.test(limit) || Number(limit) < 1 || Number(limit) > MAX_EVENTS) {
    throw new BrokerError('invalid_request', `limit must be a whole number from 1 to ${MAX_EVENTS}.`);
  }
  return { connection: connection.name, events: await services.audit.list(connection.name, Number(limit)) };
}
