import type { Connection } from '../connections/connection';
import { requireConnection, type ConnectionRegistry } from '../connections/registry';
import { BrokerError } from '../errors';
import { secretNames, type SecretStore } from '../secrets/secret-store';
import { singleFlight } from '../promises';
import {
  reauthorizationError,
  refreshOutcomeError,
  type RefreshOutcome,
  type RefreshService,
} from './refresh';

/** What the token route hands to consumers (README "HTTP API"). */
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

interface CachedToken {
  connection: Pick<Connection, 'name' | 'mailbox' | 'status' | 'readers'>;
  /** The registry row's etag the token was read under: any change to the row invalidates it. */
  etag: string;
  accessToken: string;
  scope: string;
  expiresOnMs: number;
  /** When this entry stops being served from memory. */
  freshUntilMs: number;
  /**
   * The answer of the last whole second it was read in: every read within that second gets the
   * same (never mutated) object, so the route serializes it once (see functions/token.ts).
   */
  answered?: { second: number; published: PublishedToken };
}

export interface TokenReaderOptions {
  registry: ConnectionRegistry;
  secrets: SecretStore;
  refresher: Pick<RefreshService, 'refresh'>;
  marginMs: number;
  now: () => Date;
  /** How long a token read from the store is served from memory; default 30 s. */
  memoryTtlMs?: number;
  /**
   * How old the registry row behind a serve may be; default 1 s. Status and readers are checked on
   * every serve against a row at most this old, so a disable, a reader removal or a reset made on
   * another instance applies here within it. (Not a read per request: one Table partition serves
   * about 2,000 entities a second, and a busy token route would spend them all on one row.)
   */
  rowMemoryMs?: number;
  /** Never hand out a token with less life than this; default 60 s. */
  minimumLifetimeMs?: number;
}

/** At most one refresh per connection in this time for consumers that ask for more life than the margin. */
export const FORCED_REFRESH_INTERVAL_MS = 5 * 60_000;

/** The part of a row a serve needs. */
function viewOf(connection: Connection): CachedToken['connection'] {
  const { name } = connection;
  return { name, mailbox: connection.mailbox, status: connection.status, readers: connection.readers };
}

/** The serve's view of a row whose status allows serving at all. */
function servable(connection: Connection): CachedToken['connection'] {
  const { name } = connection;
  if (connection.status === 'disabled') {
    throw new BrokerError('connection_disabled', `Connection ${name} is disabled.`);
  }
  if (connection.status === 'new') {
    throw new BrokerError('connection_not_authorized', `Connection ${name} has not been authorized yet.`, {
      remedy: 'An admin opens the console and clicks Authorize.',
    });
  }
  return viewOf(connection);
}

/**
 * Serves `GET /connections/{name}/token`. Warm reads come from memory (bounded by a short TTL
 * and by the refresh margin), so consumers polling the route cost no Key Vault call. A token
 * inside the margin is refreshed once per connection however many callers wait (single flight);
 * an expired or nearly expired token is never handed out.
 */
export class TokenReader {
  private readonly memory = new Map<string, CachedToken>();
  private readonly refreshing = singleFlight<RefreshOutcome>();
  private readonly loading = singleFlight<CachedToken>();
  private readonly rowReads = singleFlight<Connection>();
  private readonly rows = new Map<string, { connection: Connection; freshUntilMs: number }>();
  private readonly memoryTtlMs: number;
  private readonly rowMemoryMs: number;
  private readonly minimumLifetimeMs: number;

  constructor(private readonly options: TokenReaderOptions) {
    this.memoryTtlMs = options.memoryTtlMs ?? 30_000;
    this.rowMemoryMs = options.rowMemoryMs ?? 1000;
    this.minimumLifetimeMs = options.minimumLifetimeMs ?? 60_000;
  }

  /** Forgets what is held for a connection (after delete, re-authorization, disable). */
  forget(name: string): void {
    this.memory.delete(name);
    this.rows.delete(name);
  }

  /**
   * The connection's current token with at least `minValidSeconds` of life left (a consumer's
   * own expiry margin, e.g. Genesys' token-expiry-margin-time): a token with less is refreshed
   * first, once however many callers ask. Never less than a minute.
   */
  async read(
    name: string,
    minValidSeconds = 60,
    /** Throws when the caller may not read this connection's token; runs before any refresh. */
    mayRead: (connection: CachedToken['connection']) => void = () => undefined,
  ): Promise<PublishedToken> {
    const nowMs = this.options.now().getTime();
    const neededMs = Math.max(minValidSeconds * 1000, this.minimumLifetimeMs);
    const row = await this.row(name, nowMs);
    // Who may read first: a caller not listed learns nothing, not even the connection's status.
    mayRead(viewOf(row));
    servable(row);
    const cached = this.memory.get(name);
    if (
      cached &&
      cached.etag === row.etag &&
      nowMs < cached.freshUntilMs &&
      cached.expiresOnMs - nowMs >= neededMs
    ) {
      return this.toPublished(cached, nowMs);
    }

    let entry = await this.loadOnce(row);
    if (this.refreshDue(row, entry.expiresOnMs - nowMs, neededMs, nowMs)) {
      const outcome = await this.refreshOnce(name, neededMs);
      // The refresh hands back its row and what it published: no second read of either.
      const refreshed = outcome.row ?? (await requireConnection(this.options.registry, name));
      this.rows.set(name, {
        connection: refreshed,
        freshUntilMs: this.options.now().getTime() + this.rowMemoryMs,
      });
      mayRead(viewOf(refreshed));
      servable(refreshed);
      entry = outcome.published
        ? this.remember(refreshed, outcome.published)
        : await this.loadOnce(refreshed);
      const remaining = entry.expiresOnMs - this.options.now().getTime();
      if (remaining < this.minimumLifetimeMs) throw refreshOutcomeError(outcome, 'consumer');
    }
    return this.toPublished(entry, this.options.now().getTime());
  }

  /** A token just published by a refresh, kept as if it had been read from the store. */
  private remember(connection: Connection, published: NonNullable<RefreshOutcome['published']>): CachedToken {
    const nowMs = this.options.now().getTime();
    const entry: CachedToken = {
      connection: servable(connection),
      etag: connection.etag,
      accessToken: published.accessToken,
      scope: published.scope,
      expiresOnMs: published.expiresOnMs,
      freshUntilMs: Math.min(nowMs + this.memoryTtlMs, published.expiresOnMs - this.options.marginMs),
    };
    if (entry.freshUntilMs > nowMs) this.memory.set(connection.name, entry);
    return entry;
  }

  /**
   * Whether a read must refresh first: always inside the refresh margin; for a consumer asking for
   * more life (`min_valid_seconds`) only if the connection was not refreshed in the last
   * {@link FORCED_REFRESH_INTERVAL_MS}. Entra issues tokens of 60 to 90 minutes: a consumer asking
   * for 59 would otherwise force a refresh every minute; a token refreshed moments ago is the
   * freshest there is, and is served with its true expires_in.
   */
  private refreshDue(row: Connection, remainingMs: number, neededMs: number, nowMs: number): boolean {
    if (remainingMs <= Math.max(this.options.marginMs, this.minimumLifetimeMs)) return true;
    if (remainingMs > neededMs) return false;
    const lastRefreshMs = Date.parse(row.lastRefreshAt ?? row.authorizedAt ?? '');
    return !(nowMs - lastRefreshMs < FORCED_REFRESH_INTERVAL_MS);
  }

  /** The registry row, read at most once per `rowMemoryMs` per connection however many callers ask. */
  private async row(name: string, nowMs: number): Promise<Connection> {
    const remembered = this.rows.get(name);
    if (remembered && nowMs < remembered.freshUntilMs) return remembered.connection;
    return this.rowReads(name, async () => {
      const connection = await this.options.registry.get(name);
      if (!connection) {
        this.forget(name);
        throw new BrokerError('connection_not_found', `There is no connection named ${name}.`);
      }
      this.rows.set(name, { connection, freshUntilMs: this.options.now().getTime() + this.rowMemoryMs });
      return connection;
    });
  }

  private refreshOnce(name: string, minimumRemainingMs: number): Promise<RefreshOutcome> {
    return this.refreshing(name, () =>
      this.options.refresher.refresh(name, { actor: 'token-route', minimumRemainingMs }),
    );
  }

  /** One store read per connection at a time, however many callers found the memory stale. */
  private loadOnce(connection: Connection): Promise<CachedToken> {
    return this.loading(connection.name, () => this.load(connection));
  }

  private async load(connection: Connection): Promise<CachedToken> {
    const { name } = connection;
    const secret = await this.options.secrets.get(secretNames.token(name));
    const nowMs = this.options.now().getTime();
    const expiresOnMs = secret?.expiresOn?.getTime() ?? 0;
    const entry: CachedToken = {
      connection: servable(connection),
      etag: connection.etag,
      accessToken: secret?.value ?? '',
      scope: secret?.tags?.scope ?? '',
      expiresOnMs,
      freshUntilMs: Math.min(nowMs + this.memoryTtlMs, expiresOnMs - this.options.marginMs),
    };
    if (connection.status === 'reauthorization_required' && expiresOnMs - nowMs < this.minimumLifetimeMs) {
      throw reauthorizationError(name, connection.lastError ?? { aadsts: undefined, remedy: undefined });
    }
    if (secret && entry.freshUntilMs > nowMs) this.memory.set(name, entry);
    else this.memory.delete(name);
    return entry;
  }

  private toPublished(entry: CachedToken, nowMs: number): PublishedToken {
    const second = Math.floor(nowMs / 1000);
    if (entry.answered?.second === second) return entry.answered.published;
    const published: PublishedToken = Object.freeze({
      access_token: entry.accessToken,
      token_type: 'Bearer',
      expires_on: new Date(entry.expiresOnMs).toISOString(),
      expires_in: Math.max(0, Math.floor((entry.expiresOnMs - nowMs) / 1000)),
      scope: entry.scope,
      mailbox: entry.connection.mailbox,
      xoauth2: xoauth2(entry.connection.mailbox, entry.accessToken),
    });
    entry.answered = { second, published };
    return published;
  }
}
