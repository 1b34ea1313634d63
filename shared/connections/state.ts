import type { AuthenticationResult } from '@azure/msal-node';
import {
  authorizationBinding,
  leaseHeld,
  type AuthorizationBinding,
  type Connection,
  type ConnectionDefinition,
  type LastTest,
} from './connection';
import {
  canLendSignIn,
  ConcurrentUpdateError,
  dependantsOf,
  stillExisting,
  type ConnectionRegistry,
  type ConnectionState,
} from './registry';
import { BrokerError } from '../errors';
import type { AuditLog } from '../audit/audit-log';
import { secretNames, type SecretStore, type StoredSecret } from '../secrets/secret-store';
import type { Logger } from '../logging';
import type { Notifier, StatusNotification } from '../notify/notifier';
import { ADMIN_LEASE, withLease, type LeaseStore } from '../storage/lease';

const MAX_TAG_VALUE = 256;
const ROUTINE_EVENTS = new Set(['connection.refreshed', 'connection.refresh_failed']);
/** Status changes an admin made happen: every one is also a webhook event of the same type. */
const ADMIN_CHANGES = new Set<StatusNotification['type']>([
  'connection.authorized',
  'connection.disabled',
  'connection.enabled',
  'connection.reset',
]);

export interface ConnectionStateWriterOptions {
  registry: ConnectionRegistry;
  secrets: SecretStore;
  audit: AuditLog;
  logger: Logger;
  now: () => Date;
  notifier: Notifier;
  leases: LeaseStore;
  /** A refresh rewrites the stored token cache when that is at least this old (0: always). */
  cacheWriteHours: number;
  /**
   * Told after every write to a connection (state, secrets, definition, removal): the token
   * reader drops what it holds in memory for it. The one place that does, so no caller forgets.
   */
  onChanged: (name: string) => void;
  /**
   * The broker's public base URL: a delegated connection's `reauthorization_required` webhook
   * event names where to make a fresh invitation for its owner (`invitationsUrl`).
   */
  publicBaseUrl?: string;
}

/** A webhook event to send with a state change (refresh outcomes; admin changes are derived). */
export interface ChangeNotification {
  type: Extract<
    StatusNotification['type'],
    'connection.reauthorization_required' | 'connection.degraded' | 'connection.recovered'
  >;
  reason: string;
  aadsts?: number;
  remedy?: string;
  /** The change is what an admin's action does (StatusNotification). */
  followsAdminAction?: boolean;
}

/** What a refresh got from Entra, and the stored cache its refresh token came from. */
export interface RefreshedTokens {
  result: AuthenticationResult;
  /** The cache after the refresh; undefined when nothing in it changed (or app-only: no cache). */
  changedCache: string | undefined;
  /** The stored cache version the refresh token came from. */
  basedOn: Pick<StoredSecret, 'version' | 'tags' | 'updatedOn'> | undefined;
  /** The account signed in again (password grant) instead of redeeming the stored refresh token. */
  signedInAgain: boolean;
  /**
   * A dependant's first token (or its first since its source signed in again), redeemed from this
   * source's sign-in: the dependant is authorized as the source was.
   */
  signedInThrough?: Pick<Connection, 'name' | 'authorizedBy' | 'tenantId' | 'homeAccountId'>;
}

/** One audit event: who did what to which connection, and why. */
export interface ConnectionEvent {
  type: string;
  actor: string;
  reason?: string;
  aadsts?: number;
  correlationId?: string;
}

/**
 * An authorization may complete only for the connection it was started for (checked under the
 * lease, so no disable, reset or edit can slip in between the check and the write).
 */
export function refuseUnlessBound(current: Connection, binding: AuthorizationBinding): void {
  if (current.status === 'disabled') {
    throw new BrokerError(
      'connection_disabled',
      `Connection ${current.name} was disabled while you signed in.`,
      {
        remedy: 'Nothing was stored. Enable the connection, then authorize it again.',
      },
    );
  }
  const now = authorizationBinding(current);
  if (
    now.createdAt !== binding.createdAt ||
    now.grantFingerprint !== binding.grantFingerprint ||
    now.authorizedAt !== binding.authorizedAt
  ) {
    throw new BrokerError(
      'connection_changed',
      `Connection ${current.name} was changed (redefined, reset or authorized elsewhere) while you signed in.`,
      { remedy: 'Nothing was stored. Start the authorization again from the console.' },
    );
  }
}

/** The scope as the published token's `scope` tag holds it (a Key Vault tag value has at most 256 characters). */
export function publishedScope(scopes: readonly string[]): string {
  const scope = scopes.join(' ');
  return scope.length > MAX_TAG_VALUE ? scope.slice(0, MAX_TAG_VALUE) : scope;
}

/** The state of a connection that just got a new access token: fresh, with no failure on record. */
function withNewToken(expiresOn: Date, now: Date): ConnectionState {
  return {
    tokenExpiresOn: expiresOn.toISOString(),
    lastRefreshAt: now.toISOString(),
    consecutiveFailures: 0,
    degradedSince: undefined,
    nextAttemptAt: undefined,
    lastError: undefined,
  };
}

/**
 * Whether a refresh must rewrite the stored token cache (pure; table-tested). Entra does not revoke
 * a refresh token when it issues a newer one: the stored one stays usable for its own lifetime
 * (90 days), so rewriting it on every refresh only spends vault writes. It is rewritten when it is
 * `intervalHours` old, when the connection's status changes, and when the account signed in again.
 */
export function cacheWriteDue(input: {
  changed: boolean;
  signedInAgain: boolean;
  statusChanges: boolean;
  storedAt: Date | undefined;
  now: Date;
  intervalHours: number;
}): boolean {
  if (!input.changed) return false;
  if (input.intervalHours === 0 || input.signedInAgain || input.statusChanges || !input.storedAt) return true;
  return input.now.getTime() - input.storedAt.getTime() >= input.intervalHours * 3_600_000;
}

/**
 * The one writer of a connection's state: its definition (registry row), secrets, status, audit
 * trail and webhook notifications. Authorization, refresh, password, define, reset, disable, enable
 * and delete all write through it, and it alone tells the token reader's memory to drop a
 * connection (`onChanged`). Order matters and is the same
 * for every trigger: the token cache (which holds the refresh token) first, then the published
 * access token, then the registry row and its audit event. A failure part-way leaves a cache that
 * still works.
 */
export class ConnectionStateWriter {
  constructor(private readonly options: ConnectionStateWriterOptions) {}

  /**
   * Stores what a completed authorization produced and marks the connection authorized — under
   * the connection's lease, and only if the connection still exists as it was when the sign-in
   * began (deleted or re-created meanwhile: nothing is written).
   */
  async storeAuthorization(
    connection: Connection,
    binding: AuthorizationBinding,
    result: AuthenticationResult,
    serializedCache: string | undefined,
    details: { actor: string; signedInAs: string; tenantId: string; correlationId: string },
  ): Promise<Connection> {
    return withLease(this.options.leases, connection.name, 'authorization', ADMIN_LEASE, async () => {
      const current = await stillExisting(this.options.registry, connection);
      refuseUnlessBound(current, binding);
      return this.store(current, result, serializedCache, details);
    });
  }

  private async store(
    connection: Connection,
    result: AuthenticationResult,
    /** The MSAL cache with the refresh token; undefined for app-only grants, which have none. */
    serializedCache: string | undefined,
    details: { actor: string; signedInAs: string; tenantId: string; correlationId: string },
  ): Promise<Connection> {
    const { now } = this.options;
    if (serializedCache !== undefined) {
      const previous = await this.options.secrets.get(secretNames.cache(connection.name));
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
        ...withNewToken(expiresOn, now()),
      },
      {
        type: 'connection.authorized',
        actor: details.actor,
        reason: `Authorized by ${details.signedInAs}`,
        correlationId: details.correlationId,
      },
    );
    if (connection.status === 'reauthorization_required' || connection.status === 'degraded') {
      this.options.notifier.notify({
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
   * Stores what a refresh produced and marks the connection authorized: the cache when
   * `cacheWriteDue` says so, then the published token, then the registry row (with an audit event
   * when the status changes).
   */
  async storeRefresh(
    connection: Connection,
    refreshed: RefreshedTokens,
    event: { actor: string; reason: string },
    holder?: string,
  ): Promise<Connection> {
    const { now, cacheWriteHours } = this.options;
    const wasDegraded = connection.status === 'degraded';
    if (
      refreshed.changedCache !== undefined &&
      cacheWriteDue({
        changed: true,
        signedInAgain: refreshed.signedInAgain,
        statusChanges: connection.status !== 'authorized',
        storedAt: refreshed.basedOn?.updatedOn,
        now: now(),
        intervalHours: cacheWriteHours,
      })
    ) {
      await this.writeCache(connection, refreshed.changedCache, refreshed.basedOn);
    }
    const expiresOn = await this.publish(connection, refreshed.result);
    const through = refreshed.signedInThrough;
    if (through) {
      const reason = `Signed in through ${through.name} (${through.authorizedBy ?? 'its account'})`;
      return this.changeState(
        connection,
        {
          status: 'authorized',
          authorizedAt: now().toISOString(),
          authorizedBy: through.authorizedBy,
          tenantId: through.tenantId,
          homeAccountId: through.homeAccountId,
          ...withNewToken(expiresOn, now()),
        },
        { type: 'connection.authorized', actor: event.actor, reason },
        connection.status === 'reauthorization_required'
          ? { type: 'connection.recovered', reason }
          : undefined,
        holder,
      );
    }
    return this.changeState(
      connection,
      {
        status: 'authorized',
        ...withNewToken(expiresOn, now()),
      },
      { type: wasDegraded ? 'connection.recovered' : 'connection.refreshed', ...event },
      wasDegraded ? { type: 'connection.recovered', reason: 'Refresh succeeded again.' } : undefined,
      holder,
    );
  }

  /**
   * Keeps the last Test connection's verdict in the row (no audit row: not a change of the
   * connection, and the log line records it). A write that loses to another is retried on the row
   * as it is now; a connection deleted or defined anew meanwhile is left alone.
   */
  async recordTest(connection: Connection, lastTest: LastTest): Promise<void> {
    const { registry } = this.options;
    let current = connection;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await registry.updateState(current.name, { lastTest }, current.etag, current);
        return;
      } catch (error) {
        if (!(error instanceof ConcurrentUpdateError)) throw error;
        const fresh = await registry.get(current.name);
        if (!fresh || fresh.createdAt !== connection.createdAt) return;
        current = fresh;
      }
    }
  }

  /** Stores the password of a `password`-grant connection, under its lease, while it exists. */
  async storePassword(connection: Connection, password: string, event: ConnectionEvent): Promise<void> {
    await withLease(this.options.leases, connection.name, 'password', ADMIN_LEASE, async () => {
      await stillExisting(this.options.registry, connection);
      await this.options.secrets.set(secretNames.password(connection.name), password, {
        contentType: 'text/plain',
      });
    });
    await this.recordEvent(connection.name, event);
  }

  /** Deletes every secret of a connection (token, cache, password); a missing one is no error. */
  async deleteSecrets(name: string): Promise<void> {
    const { secrets } = this.options;
    await secrets.delete(secretNames.token(name));
    await secrets.delete(secretNames.cache(name));
    await secrets.delete(secretNames.password(name));
    this.options.onChanged(name);
  }

  /** Creates a connection (status `new`) or changes its definition, keeping its state. */
  async define(
    name: string,
    definition: ConnectionDefinition,
  ): Promise<{ connection: Connection; created: boolean }> {
    const defined = await this.options.registry.upsertDefinition(name, definition);
    this.options.onChanged(name);
    return defined;
  }

  /**
   * Removes a connection: its secrets first (a row without secrets is harmless, secrets without a
   * row are orphans), then its row; then the audit event and the `connection.deleted` webhook.
   */
  async remove(connection: Connection, event: ConnectionEvent): Promise<void> {
    await this.deleteSecrets(connection.name);
    await this.options.registry.delete(connection.name);
    this.options.onChanged(connection.name);
    await this.recordEvent(connection.name, event);
    this.options.notifier.notify({
      type: 'connection.deleted',
      connection: connection.name,
      mailbox: connection.mailbox,
      status: 'deleted',
      previousStatus: connection.status,
      reason: `Deleted by ${event.actor}.`,
      at: this.options.now().toISOString(),
    });
  }

  /**
   * An invitation's audit event (created, used, revoked) and its webhook event of the same type;
   * the connection's status does not change.
   */
  async recordInvitationEvent(
    connection: Pick<Connection, 'name' | 'mailbox' | 'status'>,
    event: ConnectionEvent & { type: 'invitation.created' | 'invitation.used' | 'invitation.revoked' },
  ): Promise<void> {
    await this.recordEvent(connection.name, event);
    this.options.notifier.notify({
      type: event.type,
      connection: connection.name,
      mailbox: connection.mailbox,
      status: connection.status,
      previousStatus: connection.status,
      actor: event.actor,
      ...(event.reason ? { reason: event.reason } : {}),
      at: this.options.now().toISOString(),
    });
  }

  /** An audit event without a status change (definitions, deletions, failed sign-ins), and its log line. */
  async recordEvent(name: string, event: ConnectionEvent & { toStatus?: string }): Promise<void> {
    await this.options.audit.record({
      connection: name,
      type: event.type,
      actor: event.actor,
      ...(event.toStatus ? { toStatus: event.toStatus } : {}),
      reason: event.reason,
      aadsts: event.aadsts,
      correlationId: event.correlationId,
      at: this.options.now().toISOString(),
    });
    this.options.logger.info(event.type, {
      connection: name,
      actor: event.actor,
      aadsts: event.aadsts,
      correlationId: event.correlationId,
    });
  }

  /**
   * Writes a new version of the connection's token cache. Each version names the one before it, so
   * the version before that can be disabled: only the newest two stay readable, and a vault does not
   * keep years of old refresh tokens readable. (The newest holds a usable refresh token; the one
   * before stays as a fallback while the new version propagates.)
   */
  private async writeCache(
    connection: Connection,
    serialized: string,
    previous: Pick<StoredSecret, 'version' | 'tags'> | undefined,
  ): Promise<StoredSecret> {
    const name = secretNames.cache(connection.name);
    const written = await this.options.secrets.set(name, serialized, {
      contentType: 'application/json',
      tags: {
        mailbox: connection.mailbox,
        account: connection.account,
        ...(previous ? { previousVersion: previous.version } : {}),
      },
    });
    const stale = previous?.tags?.previousVersion;
    if (stale && stale !== written.version) {
      await this.options.secrets.disableVersion(name, stale).catch((error: unknown) => {
        // Housekeeping: the refresh succeeded; the next write tries the then-stale version.
        this.options.logger.warn('secret_store.disable_version_failed', {
          connection: connection.name,
          error,
        });
      });
    }
    return written;
  }

  /** Publishes an access token as `conn-{name}-token` with its expiry; returns the expiry. */
  async publish(connection: Connection, result: AuthenticationResult): Promise<Date> {
    // MSAL dates the expiry by the wall clock; the broker keeps time by its own (injectable) clock.
    const lifetimeMs = result.expiresOn ? result.expiresOn.getTime() - Date.now() : 3600_000;
    const expiresOn = new Date(this.options.now().getTime() + Math.round(lifetimeMs / 1000) * 1000);
    await this.options.secrets.set(secretNames.token(connection.name), result.accessToken, {
      contentType: 'text/plain',
      expiresOn,
      tags: {
        mailbox: connection.mailbox,
        scope: publishedScope(result.scopes),
        expiresOn: expiresOn.toISOString(),
      },
    });
    return expiresOn;
  }

  /**
   * Writes `state` on the row as the caller saw it. On a concurrent write it re-reads the row and
   * writes again only if the decision still stands (same row, same status); when someone changed
   * the status meanwhile (a disable, a reset, a failure recorded), their change wins and nothing is
   * written: the caller decided on a state that no longer exists.
   */
  private async updateState(
    connection: Connection,
    state: ConnectionState,
    holder: string | undefined,
  ): Promise<{ current: Connection; updated: Connection; superseded: boolean }> {
    const { registry, now } = this.options;
    // The holder of the row's lease gives it back in this same write.
    const write: ConnectionState = holder
      ? { ...state, leaseOwner: undefined, leaseExpiresOn: undefined }
      : state;
    let current = connection;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const updated = await registry.updateState(current.name, write, current.etag, current);
        return { current, updated, superseded: false };
      } catch (error) {
        if (!(error instanceof ConcurrentUpdateError)) throw error;
        const fresh = await registry.get(current.name);
        if (!fresh) throw new BrokerError('connection_not_found', `Connection ${current.name} was removed.`);
        // Still the lease holder: nobody else may have decided anything meanwhile; write on top.
        const stillHolding =
          holder !== undefined && fresh.leaseOwner === holder && leaseHeld(fresh, now().getTime());
        if (!stillHolding && (fresh.status !== current.status || fresh.createdAt !== current.createdAt)) {
          this.options.logger.info('connection.change_superseded', {
            connection: current.name,
            decidedOn: current.status,
            now: fresh.status,
          });
          return { current: fresh, updated: fresh, superseded: true };
        }
        current = fresh;
      }
    }
    throw new BrokerError('upstream_unavailable', `Connection ${current.name} is being changed; try again.`);
  }

  /**
   * Changes a connection's state with an audit event for every status change. On a concurrent
   * write the newer status wins (see updateState); the row is the record of what happened last.
   */
  async changeState(
    connection: Connection,
    state: ConnectionState,
    event: ConnectionEvent,
    notification?: ChangeNotification,
    /** The owner of the row's lease (a refresh): the write gives the lease back. */
    holder?: string,
  ): Promise<Connection> {
    const { audit, logger, now } = this.options;
    const { current, updated, superseded } = await this.updateState(connection, state, holder);
    this.options.onChanged(current.name);
    if (superseded) return updated;
    const statusChanged = state.status !== undefined && state.status !== current.status;
    this.announce(current, updated, event, statusChanged, notification);
    if (statusChanged && !canLendSignIn(updated) && current.signInFrom === undefined) {
      await this.withdrawFromDependants(updated, event);
    }
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
    // A routine refresh is already one log line (refresh.succeeded / refresh.failed): no second.
    if (!statusChanged && ROUTINE_EVENTS.has(event.type)) return updated;
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

  /**
   * A source that lost its sign-in (reset, or its refresh token refused for good) takes its
   * dependants with it: they turn `reauthorization_required`, saying which connection to authorize
   * (after a reset without their published tokens; after a refusal those stay served until they expire, as any).
   */
  private async withdrawFromDependants(source: Connection, event: ConnectionEvent): Promise<void> {
    const reset = source.status === 'new';
    for (const dependant of await dependantsOf(this.options.registry, source.name)) {
      // A reset throws the source's grant away: what was redeemed from it is not served either,
      // and the row no longer names an expiry for a token it does not have.
      if (reset) await this.deleteSecrets(dependant.name);
      const noToken: ConnectionState = reset ? { tokenExpiresOn: undefined, lastTest: undefined } : {};
      if (dependant.status === 'reauthorization_required' || dependant.status === 'new') {
        if (reset && (dependant.tokenExpiresOn !== undefined || dependant.lastTest !== undefined)) {
          await this.updateState(dependant, noToken, undefined);
          this.options.onChanged(dependant.name);
        }
        continue;
      }
      const message = `The connection it signs in through, ${source.name}, must be authorized again.`;
      await this.changeState(
        dependant,
        {
          status: 'reauthorization_required',
          nextAttemptAt: undefined,
          ...noToken,
          lastError: {
            code: 'reauthorization_required',
            message,
            aadsts: undefined,
            remedy: `Authorize ${source.name} again: one sign-in brings back every connection that signs in through it.`,
            at: this.options.now().toISOString(),
          },
        },
        {
          type: 'connection.reauthorization_required',
          actor: event.actor,
          reason: message,
          correlationId: event.correlationId,
        },
        {
          type: 'connection.reauthorization_required',
          reason: message,
          // A reset or disable of the source is the admin's doing; a refused source is trouble.
          followsAdminAction: ADMIN_CHANGES.has(event.type as StatusNotification['type']),
        },
      );
    }
  }

  /**
   * A source's token cache after a dependant redeemed its refresh token: written when
   * `cacheWriteDue` says so (the same rule as the source's own refreshes), under the source's lease
   * the dependant holds. The newest refresh token is kept once, in the source's cache.
   */
  async storeSharedCache(
    source: Connection,
    changedCache: string,
    basedOn: Pick<StoredSecret, 'version' | 'tags' | 'updatedOn'> | undefined,
  ): Promise<void> {
    const due = cacheWriteDue({
      changed: true,
      signedInAgain: false,
      statusChanges: false,
      storedAt: basedOn?.updatedOn,
      now: this.options.now(),
      intervalHours: this.options.cacheWriteHours,
    });
    if (due) await this.writeCache(source, changedCache, basedOn);
  }

  /**
   * What a delegated connection's `reauthorization_required` event carries so the admin can send
   * the owner a fresh invitation in one step: the absolute `POST` target that makes one.
   */
  private inviteAgain(
    connection: Pick<Connection, 'name' | 'grant'>,
    notification: ChangeNotification,
  ): { invitationsUrl?: string } {
    const base = this.options.publicBaseUrl;
    if (notification.type !== 'connection.reauthorization_required' || !base) return {};
    if (connection.grant !== 'authorization_code') return {};
    return { invitationsUrl: `${base}/api/connections/${connection.name}/invitations` };
  }

  /**
   * The webhook events of a state change: the one the caller names (refresh outcomes), and the
   * status changes admins make. An authorization that ends a failure is announced as
   * connection.recovered by storeAuthorization, not as connection.authorized here.
   */
  private announce(
    current: Connection,
    updated: Connection,
    event: ConnectionEvent,
    statusChanged: boolean,
    notification: ChangeNotification | undefined,
  ): void {
    const base = {
      connection: current.name,
      mailbox: current.mailbox,
      status: updated.status,
      previousStatus: current.status,
      at: this.options.now().toISOString(),
    };
    if (notification)
      this.options.notifier.notify({ ...notification, ...base, ...this.inviteAgain(current, notification) });
    const recovery =
      event.type === 'connection.authorized' &&
      (current.status === 'reauthorization_required' || current.status === 'degraded');
    if (statusChanged && !recovery && ADMIN_CHANGES.has(event.type as StatusNotification['type'])) {
      this.options.notifier.notify({
        type: event.type as StatusNotification['type'],
        ...base,
        ...(event.reason ? { reason: event.reason } : {}),
      });
    }
  }
}
