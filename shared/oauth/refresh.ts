import { randomUUID } from 'node:crypto';
import type { AccountInfo, AuthenticationResult } from '@azure/msal-node';
import type { BrokerConfig } from '../config';
import {
  assertConnectionName,
  leaseHeld,
  type Connection,
  type ConnectionStatus,
  type LastError,
} from '../connections/connection';
import { delegatedScopes } from '../connections/profiles';
import {
  canLendSignIn,
  ConcurrentUpdateError,
  dependantsOf,
  requireConnection,
  type ConnectionRegistry,
  type ConnectionState,
} from '../connections/registry';
import { BrokerError } from '../errors';
import type { Logger } from '../logging';
import { secretNames, type SecretStore, type StoredSecret } from '../secrets/secret-store';
import { classifyMsalError, type EntraFailure } from './entra-errors';
import { OperationCache, type MsalClientFactory } from './msal-client';
import { acquireAppOnly, acquireWithPassword, forPasswordGrant, storedPassword } from './server-grants';
import { publishedScope, type ConnectionStateWriter } from '../connections/state';

interface Renewed {
  result: AuthenticationResult;
  cache: OperationCache;
  /** The stored cache the refresh token came from (its version is named by the next one). */
  previous?: StoredSecret;
  /** The password grant signed in again because the refresh token was gone. */
  signedInAgain: boolean;
  /** A dependant's token, redeemed from this source's sign-in. */
  through?: Connection;
}

/** Writes stop this long before the lease lapses, for clock drift and the write's own time. */
const LEASE_WRITE_MARGIN_MS = 2000;

const REAUTHORIZE_REMEDY = 'An admin must open the console and authorize the connection again.';

/** A failure Entra did not send but that ends the grant all the same (named, with its remedy). */
function definitive(error: string, message: string): EntraFailure {
  return { kind: 'definitive', error, aadsts: undefined, message, remedy: REAUTHORIZE_REMEDY };
}

/** Tries to claim a source's lease for a dependant, SOURCE_CLAIM_WAIT_MS apart: about 2 s in all. */
const SOURCE_CLAIM_ATTEMPTS = 8;
const SOURCE_CLAIM_WAIT_MS = 250;

/** A dependant that its source's new sign-in brings (back) to life. */
function revivable(connection: Connection): boolean {
  return (
    connection.signInFrom !== undefined &&
    (connection.status === 'new' || connection.status === 'reauthorization_required')
  );
}

/**
 * A dependant's failure, told as what it is: its grant comes from its source, so the remedy is to
 * authorize the source again; AADSTS65001 means nobody consented to the dependant's own scopes.
 */
function throughSource(failure: EntraFailure, source: string): EntraFailure {
  if (failure.kind !== 'definitive') return failure;
  const consent = failure.aadsts === 65001;
  return {
    ...failure,
    error: consent ? 'consent_required' : failure.error,
    message: consent
      ? `Entra ID has no consent for this connection's scopes from ${source}'s account (AADSTS65001).`
      : `${failure.message} (redeeming the sign-in of ${source})`,
    remedy: `Authorize ${source} again: its sign-in asks consent for the scopes of every connection that signs in through it${
      consent ? '; or a Global Administrator grants admin consent for the app' : ''
    }.`,
  };
}

export interface RefreshSettings {
  marginMs: number;
  keepaliveMs: number;
}

export type RefreshDecision =
  | { should: true; reason: 'missing-token' | 'expiring' | 'keepalive' | 'forced' | 'source-signed-in' }
  | { should: false; reason: 'not-authorized' | 'disabled' | 'needs-reauthorization' | 'backoff' | 'fresh' };

/**
 * Whether a connection's tokens should be refreshed now (pure; table-tested). A failing
 * connection is not tried again before its backoff ends, whoever asks, unless an admin forces it.
 */
export function shouldRefresh(
  connection: Pick<
    Connection,
    'status' | 'tokenExpiresOn' | 'lastRefreshAt' | 'authorizedAt' | 'nextAttemptAt'
  >,
  now: Date,
  settings: RefreshSettings,
  force = false,
): RefreshDecision {
  if (connection.status === 'new') return { should: false, reason: 'not-authorized' };
  if (connection.status === 'disabled') return { should: false, reason: 'disabled' };
  if (connection.status === 'reauthorization_required')
    return { should: false, reason: 'needs-reauthorization' };
  if (force) return { should: true, reason: 'forced' };
  if (connection.nextAttemptAt && Date.parse(connection.nextAttemptAt) > now.getTime()) {
    return { should: false, reason: 'backoff' };
  }
  if (!connection.tokenExpiresOn) return { should: true, reason: 'missing-token' };
  if (Date.parse(connection.tokenExpiresOn) - now.getTime() <= settings.marginMs) {
    return { should: true, reason: 'expiring' };
  }
  const lastUse = connection.lastRefreshAt ?? connection.authorizedAt;
  if (!lastUse || now.getTime() - Date.parse(lastUse) >= settings.keepaliveMs) {
    return { should: true, reason: 'keepalive' };
  }
  return { should: false, reason: 'fresh' };
}

const BACKOFF_BASE_MS = 60_000;
const BACKOFF_CAP_MS = 60 * 60_000;

/**
 * Exponential backoff with jitter, honouring Retry-After. After n failures the next try waits
 * about 1, 2, 4 … 60 minutes: a broken connection costs at most ~24 calls a day, not thousands.
 */
export function backoffMs(
  consecutiveFailures: number,
  retryAfterSeconds?: number,
  random = Math.random,
): number {
  const exponential = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, consecutiveFailures - 1));
  const jittered = exponential * (0.8 + 0.4 * random());
  return Math.max(jittered, (retryAfterSeconds ?? 0) * 1000);
}

/** What a failed refresh changes. */
export type FailureEffect =
  | { kind: 'configuration' }
  | {
      kind: 'state';
      state: ConnectionState;
      eventType: 'connection.reauthorization_required' | 'connection.degraded' | 'connection.refresh_failed';
      notify?: { type: 'connection.reauthorization_required' | 'connection.degraded'; reason: string };
    };

/**
 * The state after a failed refresh (pure; table-tested like `shouldRefresh`):
 * - configuration (the app's credential, not the connection): nothing changes;
 * - definitive (the grant is gone): `reauthorization_required`, announced;
 * - transient: `degraded` with a backoff, however often it repeats; announced once, when the
 *   connection has been failing for `degradedAfterMs`.
 */
export function nextStateAfterFailure(
  connection: Pick<Connection, 'status' | 'consecutiveFailures' | 'degradedSince' | 'lastError'>,
  failure: EntraFailure,
  at: Date,
  degradedAfterMs: number,
  random = Math.random,
): FailureEffect {
  if (failure.kind === 'configuration') return { kind: 'configuration' };
  const failures = connection.consecutiveFailures + 1;
  const lastError = {
    code:
      failure.kind !== 'definitive'
        ? failure.error
        : failure.error === 'consent_required'
          ? 'consent_required'
          : 'reauthorization_required',
    message: failure.message,
    aadsts: failure.aadsts,
    remedy: failure.remedy,
    at: at.toISOString(),
  };
  if (failure.kind === 'definitive') {
    return {
      kind: 'state',
      state: {
        status: 'reauthorization_required',
        consecutiveFailures: failures,
        nextAttemptAt: undefined,
        lastError,
      },
      eventType: 'connection.reauthorization_required',
      notify: { type: 'connection.reauthorization_required', reason: failure.message },
    };
  }
  const degradedSince = connection.degradedSince ?? at.toISOString();
  const nextAttemptAt = new Date(
    at.getTime() + backoffMs(failures, failure.retryAfterSeconds, random),
  ).toISOString();
  const threshold = degradedAfterMs;
  const since = Date.parse(degradedSince);
  const previousFailureAt = connection.lastError ? Date.parse(connection.lastError.at) : since;
  // Announced by the failure that crosses the threshold, not by every one after it.
  const crossedNow =
    at.getTime() - since >= threshold &&
    (connection.status !== 'degraded' || previousFailureAt - since < threshold);
  return {
    kind: 'state',
    state: { status: 'degraded', consecutiveFailures: failures, degradedSince, nextAttemptAt, lastError },
    eventType: connection.status === 'degraded' ? 'connection.refresh_failed' : 'connection.degraded',
    ...(crossedNow
      ? {
          notify: {
            type: 'connection.degraded',
            reason: `Refresh has failed since ${degradedSince}: ${failure.message}`,
          },
        }
      : {}),
  };
}

export type RefreshResult = 'refreshed' | 'skipped' | 'busy' | 'failed';

export interface RefreshOutcome {
  connection: string;
  result: RefreshResult;
  reason: string;
  status?: ConnectionStatus;
  failure?: Pick<EntraFailure, 'kind' | 'error' | 'aadsts' | 'message' | 'retryAfterSeconds'>;
  expiresOn?: string;
  /** The registry row as the refresh left it: callers need not read it again. */
  row?: Connection;
  /** What a successful refresh published: the token route serves it without reading the vault. */
  published?: { accessToken: string; scope: string; expiresOnMs: number };
}

/** A successful refresh's outcome: the row it wrote and, when it still stands, what it published. */
function refreshedOutcome(updated: Connection, reason: string, result: AuthenticationResult): RefreshOutcome {
  const expiresOn = updated.tokenExpiresOn;
  return {
    connection: updated.name,
    result: 'refreshed',
    reason,
    status: updated.status,
    expiresOn,
    row: updated,
    // Only what this refresh wrote: a row another writer changed meanwhile says nothing of it.
    ...(updated.status === 'authorized' && expiresOn
      ? {
          published: {
            accessToken: result.accessToken,
            scope: publishedScope(result.scopes),
            expiresOnMs: Date.parse(expiresOn),
          },
        }
      : {}),
  };
}

/**
 * A connection whose grant is gone, as an error: `consent_required` when nobody consented to its
 * scopes (a dependant whose source signed in before it was defined), else `reauthorization_required`;
 * either way with the remedy its last error names.
 */
export function reauthorizationError(
  name: string,
  lastError: Pick<LastError, 'aadsts' | 'remedy'> & { code?: string },
): BrokerError {
  const consent = lastError.code === 'consent_required';
  return new BrokerError(
    consent ? 'consent_required' : 'reauthorization_required',
    consent
      ? `Nobody has consented to the scopes of connection ${name} yet.`
      : `Connection ${name} must be authorized again.`,
    {
      aadsts: lastError.aadsts,
      remedy: lastError.remedy ?? 'An admin opens the console and clicks Authorize.',
    },
  );
}

/**
 * A refresh that did not produce a token, as the HTTP error its caller answers: an admin who asked
 * for the refresh (POST …/refresh) or a consumer who asked for a token (GET …/token). The one place
 * that turns an outcome into an error, so both say the same about the same failure.
 */
export function refreshOutcomeError(outcome: RefreshOutcome, forWhom: 'admin' | 'consumer'): BrokerError {
  const name = outcome.connection;
  const aadsts = outcome.failure?.aadsts;
  if (outcome.status === 'reauthorization_required') {
    return reauthorizationError(name, outcome.row?.lastError ?? { aadsts, remedy: undefined });
  }
  if (outcome.result === 'busy') {
    return forWhom === 'admin'
      ? new BrokerError('refresh_in_progress', `A refresh of ${name} is already running.`, {
          retryAfterSeconds: 5,
        })
      : new BrokerError(
          'token_unavailable',
          `No valid access token for ${name} right now. Another refresh of this connection is running.`,
          { retryAfterSeconds: 2, remedy: 'Try again shortly.' },
        );
  }
  if (forWhom === 'admin') {
    return new BrokerError(
      outcome.reason === 'configuration' ? 'configuration_error' : 'upstream_unavailable',
      outcome.failure?.message ?? 'The refresh failed.',
      { aadsts, remedy: outcome.row?.lastError?.remedy, retryAfterSeconds: 60 },
    );
  }
  const why =
    outcome.result === 'failed'
      ? (outcome.failure?.message ?? 'The refresh failed.')
      : outcome.reason === 'backoff'
        ? 'The last refresh failed; the broker is waiting before it tries again.'
        : 'The refresh gave no token that lives long enough.';
  return new BrokerError('token_unavailable', `No valid access token for ${name} right now. ${why}`, {
    aadsts,
    retryAfterSeconds: 30,
    remedy: `Try again shortly. The connection's last error says why: in the console, on its row (API: \`GET /api/connections/${name}\`).`,
  });
}

export interface SweepSummary {
  considered: number;
  due: number;
  refreshed: number;
  failed: number;
  skipped: number;
  busy: number;
  /** Due but not started within the run's time budget: left for the next run. */
  deferred: number;
  durationMs: number;
  stoppedForConfiguration: boolean;
}

/** A whole-app problem (bad client secret, unknown app or tenant): health answers 503 until it clears. */
export interface BrokerHealthState {
  configurationProblem: { message: string; aadsts: number | undefined; at: string } | undefined;
}

export interface RefreshServiceOptions {
  config: BrokerConfig;
  registry: ConnectionRegistry;
  secrets: SecretStore;
  msal: MsalClientFactory;
  state: ConnectionStateWriter;
  logger: Logger;
  now: () => Date;
  health: BrokerHealthState;
  retryAfterFor: (correlationId: string) => number | undefined;
  /** How long one connection's refresh may take before its slot is given to the next. */
  slotTimeoutMs?: number;
  /** Lease length; longer than a slot so a timed-out holder cannot overlap the next one. */
  leaseMs?: number;
}

class SlotTimeout extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new SlotTimeout(`no answer within ${ms} ms`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

/**
 * Refreshes connections: one at a time per connection (a lease across instances), many at once
 * across connections (bounded), each with the same write order as the authorization (cache, then
 * published token, then status), so a failure at any step leaves a refresh token that works.
 */
export class RefreshService {
  private readonly owner = `${process.pid}-${randomUUID()}`;
  private readonly slotTimeoutMs: number;
  private readonly leaseMs: number;

  constructor(private readonly options: RefreshServiceOptions) {
    this.slotTimeoutMs = options.slotTimeoutMs ?? 60_000;
    this.leaseMs = options.leaseMs ?? 2 * this.slotTimeoutMs;
  }

  /**
   * An admin's "refresh now" (`POST …/refresh`): the connection must exist and have been
   * authorized; a refresh that produced no token is thrown as the admin's error. Hands back the
   * outcome and the row as the refresh left it.
   */
  async refreshNow(
    rawName: string | undefined,
    actor: string,
  ): Promise<RefreshOutcome & { row: Connection }> {
    const connection = await requireConnection(this.options.registry, assertConnectionName(rawName));
    if (connection.status === 'new') {
      throw new BrokerError(
        'connection_not_authorized',
        `Connection ${connection.name} has not been authorized yet.`,
      );
    }
    const outcome = await this.refresh(connection.name, { actor, force: true, row: connection });
    if (outcome.result === 'busy' || outcome.result === 'failed') throw refreshOutcomeError(outcome, 'admin');
    return {
      ...outcome,
      row: outcome.row ?? (await requireConnection(this.options.registry, connection.name)),
    };
  }

  /**
   * A dependant's first token from its source's sign-in (when it is defined, or when its source
   * signed in again). Hands back the row as the redemption left it: `authorized`, or why not.
   */
  async signInThroughSource(
    dependant: Connection,
    actor: string,
  ): Promise<RefreshOutcome & { row: Connection }> {
    const outcome = await this.refresh(dependant.name, { actor, revive: true, force: true, row: dependant });
    return {
      ...outcome,
      row: outcome.row ?? (await requireConnection(this.options.registry, dependant.name)),
    };
  }

  /**
   * After a source signed in (again): every dependant that is not disabled gets its token now (or,
   * `onlyWithdrawn`, those its source's lost sign-in had turned `reauthorization_required`).
   */
  async reviveDependants(source: string, actor: string, onlyWithdrawn = false): Promise<void> {
    for (const dependant of await dependantsOf(this.options.registry, source)) {
      if (dependant.status === 'disabled') continue;
      if (onlyWithdrawn && dependant.status !== 'reauthorization_required') continue;
      await this.signInThroughSource(dependant, actor);
    }
  }

  /**
   * Refreshes one connection if it needs it (or always, with `force`); never throws for Entra's
   * answers. The lease lives in the connection's row: it is claimed with a write guarded by the ETag
   * of the row the decision was made on (the sweep's page, or one read here), and given back by the
   * write that records the outcome. So a refresh is 1 Entra + 2 Key Vault + 2 Table round trips.
   * Longer than most on purpose: the time limit, the lease's lifetime and its release are one
   * hazard (two redemptions of one refresh token must never overlap) and are read together.
   */
  async refresh(
    name: string,
    options: {
      actor: string;
      force?: boolean;
      /** Refresh when the published token has less life than this (ms), if more than the margin. */
      minimumRemainingMs?: number;
      /** The row as the caller just read it (the sweep's page): saves a read. */
      row?: Connection;
      /** A dependant whose source signed in (again): redeemed even from `new` or `reauthorization_required`. */
      revive?: boolean;
    },
  ): Promise<RefreshOutcome> {
    const { registry, logger, now } = this.options;
    const seen = options.row ?? (await requireConnection(registry, name));
    if (leaseHeld(seen, now().getTime()))
      return { connection: name, result: 'busy', reason: 'another refresh of this connection is running' };
    const settings = this.options.config.refresh;
    const marginMs = Math.max(settings.marginMs, options.minimumRemainingMs ?? 0);
    const decision: RefreshDecision =
      options.revive && revivable(seen)
        ? { should: true, reason: 'source-signed-in' }
        : shouldRefresh(seen, now(), { ...settings, marginMs }, options.force);
    if (!decision.should) {
      return { connection: name, result: 'skipped', reason: decision.reason, status: seen.status, row: seen };
    }
    // A row changed since it was read (a dependant borrowed this source's lease and gave it back,
    // an admin edit) is judged once more as it is now, rather than left for the next run.
    const claimed =
      (await this.claim(seen)) ??
      (await this.claimAsItIsNow(name, (row) =>
        options.revive && revivable(row)
          ? true
          : shouldRefresh(row, now(), { ...settings, marginMs }, options.force).should,
      ));
    if (!claimed) {
      return {
        connection: name,
        result: 'busy',
        reason: 'the connection changed while the refresh was starting',
      };
    }
    const { connection, lease } = claimed;
    // Set inside callbacks, read in `finally`: an object, so the compiler does not assume it unchanged.
    const slot: { redemption?: Promise<RefreshOutcome>; timedOut: boolean; outcome?: RefreshOutcome } = {
      timedOut: false,
    };
    try {
      slot.redemption = this.renewAndStore(connection, options.actor, decision.reason, lease).then(
        (outcome) => {
          slot.outcome = outcome;
          return outcome;
        },
      );
      return await withTimeout(slot.redemption, this.slotTimeoutMs).catch(async (error: unknown) => {
        if (!(error instanceof SlotTimeout)) throw error;
        slot.timedOut = true;
        // The redemption goes on; it keeps the lease until it really ends, and writes nothing
        // once the lease has lapsed (see renewAndStore), so no second refresh can overlap it.
        logger.warn('refresh.timed_out', { connection: name, timeoutMs: this.slotTimeoutMs });
        return this.recordFailure(
          connection,
          options.actor,
          {
            kind: 'transient',
            error: 'timeout',
            aadsts: undefined,
            message: 'Entra ID or the secret store did not answer in time.',
            remedy: 'Nothing to do: the broker retries with backoff.',
          },
          false,
        );
      });
    } finally {
      // The outcome's own write gave the lease back; this covers a redemption that threw, and one
      // whose lease lapsed before it could write.
      const release = () =>
        this.givenBack(slot.outcome)
          ? Promise.resolve()
          : this.releaseLease(name).catch((error: unknown) => {
              logger.warn('refresh.lease_release_failed', { connection: name, error });
            });
      if (slot.timedOut && slot.redemption) void slot.redemption.catch(() => undefined).finally(release);
      else await release();
    }
  }

  /**
   * Claims the lease on the row the decision was made on: a write since (another refresh, an admin
   * change) fails the claim, and the row's newer state is left for the next run to judge.
   */
  private async claim(
    seen: Connection,
  ): Promise<{ connection: Connection; lease: { expiresOnMs: number } } | undefined> {
    const expiresOnMs = this.options.now().getTime() + this.leaseMs;
    try {
      const connection = await this.options.registry.updateState(
        seen.name,
        { leaseOwner: this.owner, leaseExpiresOn: new Date(expiresOnMs).toISOString() },
        seen.etag,
        seen,
      );
      return { connection, lease: { expiresOnMs } };
    } catch (error) {
      if (error instanceof ConcurrentUpdateError) return undefined;
      throw error;
    }
  }

  /** Claims the lease on the row as it is now, if it is free and `still` judges it worth refreshing. */
  private async claimAsItIsNow(
    name: string,
    still: (row: Connection) => boolean,
  ): Promise<{ connection: Connection; lease: { expiresOnMs: number } } | undefined> {
    const row = await this.options.registry.get(name);
    if (!row || leaseHeld(row, this.options.now().getTime()) || !still(row)) return undefined;
    return this.claim(row);
  }

  /** Whether the outcome's own write gave the lease back (its row no longer names this service). */
  private givenBack(outcome: RefreshOutcome | undefined): boolean {
    return outcome?.row !== undefined && outcome.row.leaseOwner !== this.owner;
  }

  /** Gives the row's lease back if this service still holds it (one read, and a write only if so). */
  private async releaseLease(name: string): Promise<void> {
    const row = await this.options.registry.get(name);
    if (!row || row.leaseOwner !== this.owner) return;
    await this.options.registry
      .updateState(name, { leaseOwner: undefined, leaseExpiresOn: undefined }, row.etag, row)
      .catch((error: unknown) => {
        if (!(error instanceof ConcurrentUpdateError)) throw error;
      });
  }

  private async renewAndStore(
    connection: Connection,
    actor: string,
    reason: string,
    lease: { expiresOnMs: number },
  ): Promise<RefreshOutcome> {
    const { state, logger, now, health } = this.options;
    const renewed = await this.renew(connection, actor);
    if ('outcome' in renewed) return renewed.outcome;
    const { result, cache, previous, signedInAgain } = renewed;
    health.configurationProblem = undefined;
    // A redemption that outlived its lease may overlap another instance's: writing now could let
    // this older answer overwrite a newer one. Its refresh token stays valid at Entra (rotation does
    // not revoke it), so dropping this answer loses nothing.
    if (now().getTime() >= lease.expiresOnMs - LEASE_WRITE_MARGIN_MS) {
      logger.warn('refresh.lease_lapsed', { connection: connection.name });
      return {
        connection: connection.name,
        result: 'busy',
        reason: 'the lease lapsed before the answer came',
      };
    }

    // The state writer writes in the invariants' order (cache when due, token, status). A store
    // failure at any step leaves the stored refresh token usable (rotation does not revoke it).
    const stored = await this.attempt(connection, actor, () =>
      state.storeRefresh(
        connection,
        {
          result,
          // App-only grants have no refresh token: their cache would hold only the access token.
          changedCache:
            connection.grant !== 'client_credentials' && cache.hasChanged ? cache.contents : undefined,
          basedOn: previous,
          signedInAgain,
          ...(renewed.through &&
          (connection.status === 'new' || connection.status === 'reauthorization_required')
            ? { signedInThrough: renewed.through }
            : {}),
        },
        { actor, reason: `refreshed (${reason})` },
        this.owner,
      ),
    );
    if (!('value' in stored)) return stored.outcome;
    const updated = stored.value;
    logger.info('refresh.succeeded', {
      connection: connection.name,
      reason,
      expiresOn: updated.tokenExpiresOn,
      actor,
    });
    // A password source that had to sign in again has a new sign-in to lend.
    if (signedInAgain) {
      await this.reviveDependants(connection.name, actor, true).catch((error: unknown) => {
        logger.warn('refresh.dependants_failed', { connection: connection.name, error });
      });
    }
    return refreshedOutcome(updated, reason, result);
  }

  /** A new access token by the connection's grant; a failure is recorded and returned as the outcome. */
  private async renew(connection: Connection, actor: string): Promise<Renewed | { outcome: RefreshOutcome }> {
    const { msal, config, secrets } = this.options;
    let renewed: Renewed | { failure: EntraFailure };
    if (connection.grant === 'client_credentials') {
      const cache = new OperationCache();
      renewed = await acquireAppOnly(msal, cache, connection, config.cloud).then(
        (result) => ({ result, cache, signedInAgain: false }),
        (error: unknown) => ({ failure: this.classify(error) }),
      );
    } else if (connection.signInFrom !== undefined) {
      const through = await this.renewThroughSource(connection, connection.signInFrom);
      if ('busy' in through) {
        return {
          outcome: {
            connection: connection.name,
            result: 'busy',
            reason: `its source ${connection.signInFrom} is being refreshed`,
          },
        };
      }
      renewed = through;
    } else {
      renewed = await this.renewSilently(connection);
      // The password grant signs in again only when the refresh token is gone for good.
      if ('failure' in renewed && connection.grant === 'password' && renewed.failure.kind === 'definitive') {
        const cache = new OperationCache();
        renewed = await storedPassword(secrets, connection)
          .then((password) => acquireWithPassword(msal, cache, connection, config.cloud, password))
          .then(
            (result) => ({ result, cache, signedInAgain: true }),
            (error: unknown) => ({ failure: forPasswordGrant(this.classify(error), connection.name) }),
          );
      }
    }
    if ('failure' in renewed)
      return { outcome: await this.recordFailure(connection, actor, renewed.failure) };
    return renewed;
  }

  /**
   * A dependant's token, redeemed from its source's refresh token for the dependant's own scopes.
   * One refresh token, one writer: the source's lease is held for the redemption (a source being
   * refreshed is waited for briefly), and a rotated refresh token is stored once, in the source's
   * cache. Nothing of the source's row but its lease is written: a dependant's failure is its own.
   */
  private async renewThroughSource(
    dependant: Connection,
    sourceName: string,
  ): Promise<Renewed | { failure: EntraFailure } | { busy: true }> {
    const { secrets, msal, config, state, logger } = this.options;
    const source = await this.claimSource(sourceName);
    if (source === 'busy') return { busy: true };
    if (!source) {
      return {
        failure: {
          ...definitive(
            'source_not_authorized',
            `${sourceName}, which it signs in through, holds no sign-in.`,
          ),
          remedy: `Authorize ${sourceName}: one sign-in brings back every connection that signs in through it.`,
        },
      };
    }
    try {
      const stored = await secrets.get(secretNames.cache(source.name));
      if (!stored?.value) {
        return { failure: definitive('cache_missing', `The token cache of ${source.name} is missing.`) };
      }
      const cache = new OperationCache(stored.value);
      const client = await msal.create(cache);
      const accounts = await client.getTokenCache().getAllAccounts();
      const account =
        accounts.find((candidate) => candidate.homeAccountId === source.homeAccountId) ?? accounts[0];
      if (!account)
        return { failure: definitive('no_account', `The token cache of ${source.name} holds no account.`) };
      const result = await client.acquireTokenSilent({
        account,
        scopes: delegatedScopes(dependant, config.cloud),
        forceRefresh: true,
      });
      if (cache.hasChanged && cache.contents) await state.storeSharedCache(source, cache.contents, stored);
      return { result, cache: new OperationCache(), signedInAgain: false, through: source };
    } catch (error) {
      return { failure: throughSource(this.classify(error), source.name) };
    } finally {
      await this.giveBack(source).catch((error: unknown) => {
        logger.warn('refresh.lease_release_failed', { connection: source.name, error });
      });
    }
  }

  /**
   * The source's lease for a dependant's redemption: claimed on the row as read now; while the
   * source's own refresh (or another dependant's) holds it, tried again a few times. Undefined when
   * the source holds no sign-in to lend.
   */
  private async claimSource(name: string): Promise<Connection | 'busy' | undefined> {
    const { registry, now } = this.options;
    for (let attempt = 0; attempt < SOURCE_CLAIM_ATTEMPTS; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, SOURCE_CLAIM_WAIT_MS));
      const source = await registry.get(name);
      if (!source || !canLendSignIn(source)) return undefined;
      if (leaseHeld(source, now().getTime())) continue;
      const claimed = await this.claim(source);
      if (claimed) return claimed.connection;
    }
    return 'busy';
  }

  /** Gives back a lease claimed on `claimed` (the row as the claim left it). */
  private async giveBack(claimed: Connection): Promise<void> {
    const cleared = { leaseOwner: undefined, leaseExpiresOn: undefined };
    await this.options.registry
      .updateState(claimed.name, cleared, claimed.etag, claimed)
      .catch(async (error: unknown) => {
        if (!(error instanceof ConcurrentUpdateError)) throw error;
        await this.releaseLease(claimed.name);
      });
  }

  /** Redeems the refresh token in the connection's stored cache (never one pulled out by hand). */
  private async renewSilently(connection: Connection): Promise<Renewed | { failure: EntraFailure }> {
    const { secrets, msal, config } = this.options;
    try {
      const stored = await secrets.get(secretNames.cache(connection.name));
      if (!stored?.value) {
        return {
          failure: definitive(
            'cache_missing',
            'The token cache of this connection is missing from the secret store.',
          ),
        };
      }
      const cache = new OperationCache(stored.value);
      const client = await msal.create(cache);
      const accounts = await client.getTokenCache().getAllAccounts();
      const account: AccountInfo | undefined =
        accounts.find((candidate) => candidate.homeAccountId === connection.homeAccountId) ?? accounts[0];
      if (!account) return { failure: definitive('no_account', 'The token cache holds no account.') };
      const result = await client.acquireTokenSilent({
        account,
        scopes: delegatedScopes(connection, config.cloud),
        forceRefresh: true,
      });
      return { result, cache, previous: stored, signedInAgain: false };
    } catch (error) {
      return { failure: this.classify(error) };
    }
  }

  private classify(error: unknown): EntraFailure {
    return error instanceof BrokerError
      ? failureOfBrokerError(error)
      : classifyMsalError(error, this.options.retryAfterFor);
  }

  /** Runs a secret-store step; a failure becomes a transient failure of this refresh. */
  private async attempt<T>(
    connection: Connection,
    actor: string,
    step: () => Promise<T>,
  ): Promise<{ value: T } | { outcome: RefreshOutcome }> {
    try {
      return { value: await step() };
    } catch (error) {
      if (error instanceof BrokerError) {
        return { outcome: await this.recordFailure(connection, actor, failureOfBrokerError(error)) };
      }
      throw error;
    }
  }

  /** Records a failed refresh: the state `nextStateAfterFailure` decides, its audit event and notification. */
  private async recordFailure(
    connection: Connection,
    actor: string,
    failure: EntraFailure,
    /** False while the redemption still runs (a timeout): it keeps the lease until it ends. */
    givesLeaseBack = true,
  ): Promise<RefreshOutcome> {
    const { state, logger, now, health, config } = this.options;
    const at = now();
    const summary = {
      kind: failure.kind,
      error: failure.error,
      aadsts: failure.aadsts,
      message: failure.message,
    };
    logger.warn('refresh.failed', { connection: connection.name, actor, ...summary });
    const effect = nextStateAfterFailure(connection, failure, at, config.notify.degradedAfterMs);
    if (effect.kind === 'configuration') {
      // The app, not this connection, is at fault: say so on /health and leave connections as they are.
      health.configurationProblem = {
        message: failure.message,
        aadsts: failure.aadsts,
        at: at.toISOString(),
      };
      logger.error('broker.configuration_problem', { aadsts: failure.aadsts, message: failure.message });
      return {
        connection: connection.name,
        result: 'failed',
        reason: 'configuration',
        status: connection.status,
        failure: summary,
      };
    }
    const updated = await state.changeState(
      connection,
      effect.state,
      {
        type: effect.eventType,
        actor,
        reason: `${failure.error}${failure.aadsts ? ` AADSTS${failure.aadsts}` : ''}: ${failure.message}`,
        aadsts: failure.aadsts,
      },
      effect.notify && { ...effect.notify, aadsts: failure.aadsts, remedy: failure.remedy },
      givesLeaseBack ? this.owner : undefined,
    );
    return {
      connection: connection.name,
      result: 'failed',
      reason: failure.error,
      status: updated.status,
      failure: summary,
      row: updated,
    };
  }

  /**
   * The rows due for a refresh, soonest expiry first: when the budget runs out, what is left is
   * what can wait longest, so an overrun never starves the same names run after run. The registry
   * is read a page at a time and only due rows are kept (each refresh claims its row with the ETag
   * read here), so a sweep's memory grows with what is due, not with the registry.
   */
  private async dueConnections(
    at: Date,
  ): Promise<{ considered: number; due: { name: string; expiresOnMs: number; row: Connection }[] }> {
    let considered = 0;
    const due: { name: string; expiresOnMs: number; row: Connection }[] = [];
    for await (const page of this.options.registry.pages()) {
      considered += page.length;
      for (const connection of page) {
        if (shouldRefresh(connection, at, this.options.config.refresh).should)
          due.push({ name: connection.name, expiresOnMs: expiresOnMsOf(connection), row: connection });
      }
    }
    due.sort((a, b) => a.expiresOnMs - b.expiresOnMs);
    return { considered, due };
  }

  /**
   * The timer's sweep: every due connection, at most `concurrency` at once, starting new ones only
   * within the time budget. One connection's failure or hang occupies one slot, never the run.
   */
  async refreshDue(
    options: { actor: string; concurrency?: number; budgetMs?: number } = { actor: 'timer' },
  ): Promise<SweepSummary> {
    const { config, now, logger } = this.options;
    const started = Date.now();
    const concurrency = options.concurrency ?? config.refresh.concurrency;
    const budgetMs = options.budgetMs ?? config.refresh.budgetSeconds * 1000;
    const { considered, due } = await this.dueConnections(now());
    const summary: SweepSummary = {
      considered,
      due: due.length,
      refreshed: 0,
      failed: 0,
      skipped: 0,
      busy: 0,
      deferred: 0,
      durationMs: 0,
      stoppedForConfiguration: false,
    };
    let next = 0;
    // When Key Vault or Entra says "slow down" (Retry-After), every worker of the run waits, instead
    // of each throttled refresh failing on its own while the others keep the pressure on.
    let pausedUntil = 0;
    const worker = async () => {
      while (next < due.length) {
        const pause = pausedUntil - Date.now();
        if (pause > 0 && Date.now() + pause - started <= budgetMs) {
          await new Promise((resolve) => setTimeout(resolve, pause));
        }
        if (Date.now() - started > budgetMs || summary.stoppedForConfiguration) {
          summary.deferred = due.length - next;
          next = due.length;
          return;
        }
        const connection = due[next++];
        if (!connection) return;
        try {
          // The page's row (and its ETag) is what the refresh claims: no second read.
          const outcome = await this.refresh(connection.name, { actor: options.actor, row: connection.row });
          summary[outcome.result] += 1;
          if (outcome.reason === 'configuration') summary.stoppedForConfiguration = true;
          const retryAfter = outcome.failure?.retryAfterSeconds;
          if (retryAfter !== undefined && outcome.failure?.kind === 'transient') {
            pausedUntil = Math.max(pausedUntil, Date.now() + Math.min(retryAfter, 60) * 1000);
          }
        } catch (error) {
          summary.failed += 1;
          logger.error('refresh.crashed', { connection: connection.name, error });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, due.length) }, worker));
    summary.durationMs = Date.now() - started;
    logger.info('refresh.sweep_finished', { ...summary });
    return summary;
  }
}

/** A connection's published-token expiry for ordering (none yet: first). */
function expiresOnMsOf(connection: Connection): number {
  const expiresOnMs = connection.tokenExpiresOn ? Date.parse(connection.tokenExpiresOn) : Number.NaN;
  return Number.isNaN(expiresOnMs) ? 0 : expiresOnMs;
}

function failureOfBrokerError(error: BrokerError): EntraFailure {
  return {
    kind:
      error.code === 'configuration_error'
        ? 'configuration'
        : error.code === 'password_required'
          ? 'definitive'
          : 'transient',
    error: error.code,
    aadsts: error.aadsts,
    message: error.message,
    remedy: error.remedy ?? 'Nothing to do: the broker retries with backoff.',
    retryAfterSeconds: error.retryAfterSeconds,
  };
}
