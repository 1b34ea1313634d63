import type { AuthenticationResult } from '@azure/msal-node';
import type { Connection } from '../connections/connection';
import {
  ConcurrentUpdateError,
  stillExisting,
  type ConnectionRegistry,
  type ConnectionState,
} from '../connections/registry';
import { BrokerError } from '../errors';
import type { AuditLog } from '../audit/audit-log';
import { secretNames, type SecretStore, type StoredSecret } from '../secrets/secret-store';
import type { Logger } from '../logging';
import type { Notifier, StatusNotification } from '../notify/notifier';
import { ADMIN_LEASE, withLease, type LeaseStore } from '../storage/lease';

/** What the token route hands to consumers (SPEC §3). */
export interface PublishedToken {
  access_token: string;
  token_type: 'Bearer';
  expires_on: string;
  expires_in: number;
  scope: string;
  mailbox: string;
  /** base64 of `user={mailbox}^Aauth=Bearer {token}^A^A`, for IMAP/POP/SMTP AUTH XOAUTH2. */
  xoauth2: string;
}

export function xoauth2(mailbox: string, accessToken: string): string {
  return Buffer.from(`user=${mailbox}\x01auth=Bearer ${accessToken}\x01\x01`, 'utf8').toString('base64');
}

const MAX_TAG_VALUE = 256;
const ROUTINE_EVENTS = new Set(['connection.refreshed', 'connection.refresh_failed']);
/** Status changes an admin made happen: every one is also a webhook event of the same type. */
const ADMIN_CHANGES = new Set<StatusNotification['type']>([
  'connection.authorized',
  'connection.disabled',
  'connection.enabled',
  'connection.reset',
]);

export interface TokenServiceDeps {
  registry: ConnectionRegistry;
  secrets: SecretStore;
  audit: AuditLog;
  logger: Logger;
  now: () => Date;
  notifier: Notifier;
  leases: LeaseStore;
}

/**
 * The one path that writes tokens. Order matters and is the same for every trigger: the token
 * cache (which holds the refresh token) is written first, then the access token is published,
 * then the registry row says so. A failure part-way leaves a cache that still works.
 */
export class TokenService {
  constructor(private readonly deps: TokenServiceDeps) {}

  /**
   * Stores what a completed authorization produced and marks the connection authorized — under
   * the connection's lease, and only if the connection still exists as it was when the sign-in
   * began (deleted or re-created meanwhile: nothing is written).
   */
  async storeAuthorization(
    connection: Connection,
    result: AuthenticationResult,
    serializedCache: string | undefined,
    details: { actor: string; signedInAs: string; tenantId: string; correlationId: string },
  ): Promise<Connection> {
    return withLease(this.deps.leases, connection.name, 'authorization', ADMIN_LEASE, async () =>
      this.store(await stillExisting(this.deps.registry, connection), result, serializedCache, details),
    );
  }

  private async store(
    connection: Connection,
    result: AuthenticationResult,
    /** The MSAL cache with the refresh token; undefined for app-only grants, which have none. */
    serializedCache: string | undefined,
    details: { actor: string; signedInAs: string; tenantId: string; correlationId: string },
  ): Promise<Connection> {
    const { now } = this.deps;
    if (serializedCache !== undefined) {
      const previous = await this.deps.secrets.get(secretNames.cache(connection.name));
      await this.writeCache(connection, serializedCache, previous);
    }
    const expiresOn = await this.publish(connection, result);
    const updated = await this.changeState(
      connection,
      {
        status: 'authorized',
        authorizedAt: now().toISOString(),
        authorizedBy: details.signedInAs,
        tenantId: details.tenantId,
        homeAccountId: result.account?.homeAccountId,
        tokenExpiresOn: expiresOn.toISOString(),
        lastRefreshAt: now().toISOString(),
        consecutiveFailures: 0,
        degradedSince: undefined,
        nextAttemptAt: undefined,
        lastError: undefined,
      },
      {
        type: 'connection.authorized',
        actor: details.actor,
        reason: `Authorized by ${details.signedInAs}`,
        correlationId: details.correlationId,
      },
    );
    if (connection.status === 'reauthorization_required' || connection.status === 'degraded') {
      this.deps.notifier.notify({
        type: 'connection.recovered',
        connection: connection.name,
        mailbox: connection.mailbox,
        status: updated.status,
        previousStatus: connection.status,
        reason: `Authorized again by ${details.signedInAs}.`,
        at: now().toISOString(),
      });
    }
    return updated;
  }

  /**
   * Writes a new version of the connection's token cache. Each version names the one before it, so
   * the version before that can be disabled: only the newest two stay readable, and a vault does not
   * keep years of old refresh tokens readable. (The newest holds a usable refresh token; the one
   * before stays as a fallback while the new version propagates.)
   */
  async writeCache(
    connection: Connection,
    serialized: string,
    previous: Pick<StoredSecret, 'version' | 'tags'> | undefined,
  ): Promise<StoredSecret> {
    const name = secretNames.cache(connection.name);
    const written = await this.deps.secrets.set(name, serialized, {
      contentType: 'application/json',
      tags: {
        mailbox: connection.mailbox,
        account: connection.account,
        ...(previous ? { previousVersion: previous.version } : {}),
      },
    });
    const stale = previous?.tags?.previousVersion;
    if (stale && stale !== written.version) {
      await this.deps.secrets.disableVersion(name, stale).catch((error: unknown) => {
        // Housekeeping: the refresh succeeded; the next write tries the then-stale version.
        this.deps.logger.warn('secret_store.disable_version_failed', { connection: connection.name, error });
      });
    }
    return written;
  }

  /** Publishes an access token as `conn-{name}-token` with its expiry; returns the expiry. */
  async publish(connection: Connection, result: AuthenticationResult): Promise<Date> {
    // MSAL dates the expiry by the wall clock; the broker keeps time by its own (injectable) clock.
    const lifetimeMs = result.expiresOn ? result.expiresOn.getTime() - Date.now() : 3600_000;
    const expiresOn = new Date(this.deps.now().getTime() + Math.round(lifetimeMs / 1000) * 1000);
    const scope = result.scopes.join(' ');
    await this.deps.secrets.set(secretNames.token(connection.name), result.accessToken, {
      contentType: 'text/plain',
      expiresOn,
      tags: {
        mailbox: connection.mailbox,
        scope: scope.length > MAX_TAG_VALUE ? scope.slice(0, MAX_TAG_VALUE) : scope,
        expiresOn: expiresOn.toISOString(),
      },
    });
    return expiresOn;
  }

  /**
   * Changes a connection's state with an audit event for every status change. Retries once on a
   * concurrent write by re-reading the row: the registry is the record of what happened last.
   */
  async changeState(
    connection: Connection,
    state: ConnectionState,
    event: { type: string; actor: string; reason?: string; aadsts?: number; correlationId?: string },
  ): Promise<Connection> {
    const { registry, audit, logger, now } = this.deps;
    let current = connection;
    let updated: Connection | undefined;
    for (let attempt = 0; attempt < 3 && !updated; attempt++) {
      try {
        updated = await registry.updateState(current.name, state, current.etag, current);
      } catch (error) {
        if (!(error instanceof ConcurrentUpdateError)) throw error;
        const fresh = await registry.get(current.name);
        if (!fresh) throw new BrokerError('connection_not_found', `Connection ${current.name} was removed.`);
        current = fresh;
      }
    }
    if (!updated)
      throw new BrokerError(
        'upstream_unavailable',
        `Connection ${current.name} is being changed; try again.`,
      );
    const statusChanged = state.status !== undefined && state.status !== current.status;
    // A routine refresh is a log line, not an audit row: the audit trail holds status changes and
    // admin actions, and one row per refresh would double the storage writes of every sweep.
    if (statusChanged || !ROUTINE_EVENTS.has(event.type)) {
      await audit.record({
        connection: current.name,
        type: event.type,
        actor: event.actor,
        fromStatus: current.status,
        toStatus: updated.status,
        reason: event.reason,
        aadsts: event.aadsts,
        correlationId: event.correlationId,
        at: now().toISOString(),
      });
    }
    // An authorization that ends a failure is announced as connection.recovered by storeAuthorization.
    const recovery =
      event.type === 'connection.authorized' &&
      (current.status === 'reauthorization_required' || current.status === 'degraded');
    if (statusChanged && !recovery && ADMIN_CHANGES.has(event.type as StatusNotification['type'])) {
      this.deps.notifier.notify({
        type: event.type as StatusNotification['type'],
        connection: current.name,
        mailbox: current.mailbox,
        status: updated.status,
        previousStatus: current.status,
        ...(event.reason ? { reason: event.reason } : {}),
        at: now().toISOString(),
      });
    }
    logger.info(statusChanged ? 'connection.status_changed' : event.type, {
      connection: current.name,
      from: current.status,
      to: updated.status,
      actor: event.actor,
      aadsts: event.aadsts,
      correlationId: event.correlationId,
    });
    return updated;
  }
}
