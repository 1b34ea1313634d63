import { assertConnectionName, type Connection } from '../connections/connection';
import { requireConnection, type ConnectionRegistry } from '../connections/registry';
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
