import { BrokerError } from '../errors';
import type { Connection, ConnectionDefinition } from './connection';

/** Fields that the broker (not the admin) changes: status, token facts, failure bookkeeping. */
export type ConnectionState = Partial<
  Pick<
    Connection,
    | 'status'
    | 'authorizedAt'
    | 'authorizedBy'
    | 'tenantId'
    | 'homeAccountId'
    | 'tokenExpiresOn'
    | 'lastRefreshAt'
    | 'consecutiveFailures'
    | 'degradedSince'
    | 'nextAttemptAt'
    | 'lastError'
    | 'lastTest'
    | 'leaseOwner'
    | 'leaseExpiresOn'
  >
>;

/**
 * The connection registry (Table storage in every environment; Azurite locally).
 * Writes take the row's etag and fail with `ConcurrentUpdateError` when someone else wrote first.
 */
export interface ConnectionRegistry {
  get(name: string): Promise<Connection | undefined>;
  list(): Promise<Connection[]>;
  /** Every connection, a page at a time: a sweep over many never holds them all. */
  pages(): AsyncIterable<Connection[]>;
  /** Creates with status `new`, or changes the definition of an existing one (keeping its state). */
  upsertDefinition(
    name: string,
    definition: ConnectionDefinition,
  ): Promise<{ connection: Connection; created: boolean }>;
  /**
   * Changes broker-owned state. `undefined` in `state` clears the field; absent keys stay.
   * With `current` (the row as the caller read it, carrying `etag`), no second read is made.
   */
  updateState(name: string, state: ConnectionState, etag: string, current?: Connection): Promise<Connection>;
  /** True when it existed. */
  delete(name: string): Promise<boolean>;
  check(): Promise<void>;
}

export class ConcurrentUpdateError extends Error {
  constructor(readonly connection: string) {
    super(`Connection ${connection} was changed by someone else`);
    this.name = 'ConcurrentUpdateError';
  }
}

/** The named connection, or `connection_not_found` (404): the one place that says there is none. */
export async function requireConnection(
  registry: Pick<ConnectionRegistry, 'get'>,
  name: string,
): Promise<Connection> {
  const connection = await registry.get(name);
  if (!connection) throw new BrokerError('connection_not_found', `There is no connection named ${name}.`);
  return connection;
}

/**
 * The connection as it is now, if it is still the one `seen` was (not deleted, not deleted and
 * defined again); otherwise `connection_not_found`. Writers call it under the connection's lease.
 */
export async function stillExisting(
  registry: Pick<ConnectionRegistry, 'get'>,
  seen: Pick<Connection, 'name' | 'createdAt'>,
): Promise<Connection> {
  const current = await registry.get(seen.name);
  if (!current || current.createdAt !== seen.createdAt) {
    throw new BrokerError('connection_not_found', `Connection ${seen.name} was removed meanwhile.`);
  }
  return current;
}

/** The connections that sign in through `source` (`signInFrom`), by name. */
export async function dependantsOf(
  registry: Pick<ConnectionRegistry, 'list'>,
  source: string,
): Promise<Connection[]> {
  return (await registry.list())
    .filter((connection) => connection.signInFrom === source)
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Whether a connection holds a sign-in its dependants can redeem: authorized once, not reset, its
 * refresh token not refused for good.
 */
export function canLendSignIn(source: Pick<Connection, 'status' | 'authorizedAt'>): boolean {
  return (
    source.authorizedAt !== undefined &&
    source.status !== 'new' &&
    source.status !== 'reauthorization_required'
  );
}
