import type { TableClient, TableEntityResult } from '@azure/data-tables';
import { BrokerError, statusOf } from '../errors';
import type { Lease, LeaseStore } from './lease';
import { storeTableClient, ensureTable, storageCall, stringColumn, type TableStoreOptions } from './tables';

const PARTITION = 'lease';
/** A resource is a connection name (or any name of the same shape): it is the RowKey as it is. */
export const LEASE_RESOURCE = /^[a-z0-9-]{1,63}$/;
const MAX_OWNER_LENGTH = 256;
/** Create-or-take-over rounds when the row keeps disappearing under us (released between create and read). */
const ACQUIRE_ATTEMPTS = 3;

type Columns = Record<string, unknown>;
type Row = TableEntityResult<Columns>;

export interface TableLeaseStoreOptions extends TableStoreOptions {
  /** Table name without prefix; default `leases`. */
  tableName?: string;
  /** The clock that sets and judges expiry; default the system clock. */
  now?: () => Date;
}

function assertArguments(resource: string, owner: string, ttlMs: number): void {
  if (!LEASE_RESOURCE.test(resource)) {
    throw new BrokerError(
      'invalid_request',
      `"${resource.slice(0, 80)}" cannot be leased: a lease resource is 1 to 63 lower-case letters, digits and hyphens.`,
    );
  }
  if (owner === '' || owner.length > MAX_OWNER_LENGTH) {
    throw new BrokerError('invalid_request', `A lease owner is 1 to ${MAX_OWNER_LENGTH} characters.`);
  }
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new BrokerError('invalid_request', `A lease's time to live must be a positive number of ms.`);
  }
}

/** When the row's lease ends, in ms; NaN (treated as expired) when the column is missing or unreadable. */
/** The lease's expiry (its Table column keeps the name `expiresAt` it was first written with). */
function expiresOnOf(row: Row): number {
  const value = stringColumn(row, 'expiresAt');
  return value === undefined ? Number.NaN : Date.parse(value);
}

/**
 * Per-resource leases in Table storage: PartitionKey `lease`, RowKey the resource, columns `owner`,
 * `acquiredAt` and `expiresAt` (ISO 8601). Acquiring creates the row (insert fails with 409 if it
 * exists), or takes over an expired row with a Replace guarded by the etag just read (412 if another
 * instance took it over first); releasing deletes the row with the etag this lease wrote.
 *
 * Guarantee: at any instant at most one caller holds an *unexpired* lease on a resource, as judged by
 * each instance's own clock; among concurrent acquirers of a free or expired lease exactly one wins.
 * A lease is not re-entrant: the same owner acquiring again while it holds the lease gets undefined.
 *
 * Limits:
 *  - Expiry is judged by the clock of the instance trying to take over, against the `expiresAt` the
 *    holder wrote with its own clock. Clock skew between instances shortens (or lengthens) a lease
 *    by the skew; keep TTLs far above any plausible skew (seconds).
 *  - Nothing stops a holder that overruns its TTL: once the lease has expired another instance can
 *    take it over while the first is still working, so the two overlap. Callers must keep the work
 *    under the TTL (e.g. a timeout shorter than the TTL), and must re-read the state they are about
 *    to change after acquiring (the previous holder may have just changed it), writing it back with
 *    its etag where overlap would matter.
 *  - A holder that crashes keeps the resource locked until its TTL ends.
 */
export class TableLeaseStore implements LeaseStore {
  readonly client: TableClient;
  private readonly now: () => Date;

  constructor(options: TableLeaseStoreOptions) {
    this.client = storeTableClient(options, 'leases');
    this.now = options.now ?? (() => new Date());
  }

  async acquire(resource: string, owner: string, ttlMs: number): Promise<Lease | undefined> {
    assertArguments(resource, owner, ttlMs);
    await ensureTable(this.client);
    for (let attempt = 0; attempt < ACQUIRE_ATTEMPTS; attempt++) {
      const now = this.now();
      const columns: Columns = {
        owner,
        acquiredAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
      };
      const created = await this.create(resource, columns);
      const expiresOnMs = now.getTime() + ttlMs;
      if (created.created) {
        return created.etag === undefined ? undefined : this.lease(resource, created.etag, expiresOnMs);
      }

      const row = await this.row(resource);
      if (!row) continue; // released between our create and our read: try to create again
      const expiresOn = expiresOnOf(row);
      if (!Number.isNaN(expiresOn) && this.now().getTime() < expiresOn) return undefined;
      const etag = await this.takeOver(resource, columns, row.etag);
      return etag === undefined ? undefined : this.lease(resource, etag, expiresOnMs);
    }
    return undefined;
  }

  private lease(resource: string, etag: string, expiresOnMs: number): Lease {
    let released: Promise<void> | undefined;
    return {
      resource,
      expiresOnMs,
      release: () => {
        released ??= this.remove(resource, etag).catch((error: unknown) => {
          released = undefined; // a failed release may be tried again
          throw error;
        });
        return released;
      },
    };
  }

  /**
   * Creates the row; `created: false` when it exists (409). A created row's etag is undefined only if the
   * service sent none and the row read back is no longer ours (then the lease is lost: it expires).
   */
  private async create(
    resource: string,
    columns: Columns,
  ): Promise<{ created: false } | { created: true; etag: string | undefined }> {
    try {
      const result = await storageCall('create lease', () =>
        this.client.createEntity({ ...columns, partitionKey: PARTITION, rowKey: resource }),
      );
      return { created: true, etag: result.etag ?? (await this.etagIfOurs(resource, columns)) };
    } catch (error) {
      if (statusOf(error) === 409) return { created: false };
      throw error;
    }
  }

  /** The row's etag if it still holds the columns we wrote (a write that returned no etag). */
  private async etagIfOurs(resource: string, columns: Columns): Promise<string | undefined> {
    const row = await this.row(resource);
    return row && row.owner === columns.owner && row.expiresAt === columns.expiresAt ? row.etag : undefined;
  }

  private async row(resource: string): Promise<Row | undefined> {
    try {
      return await storageCall('read lease', () => this.client.getEntity<Columns>(PARTITION, resource));
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  /** Replaces an expired row if it is still the one read; undefined when someone else won (412/404). */
  private async takeOver(resource: string, columns: Columns, etag: string): Promise<string | undefined> {
    try {
      const result = await storageCall('take over lease', () =>
        this.client.updateEntity({ ...columns, partitionKey: PARTITION, rowKey: resource }, 'Replace', {
          etag,
        }),
      );
      return result.etag ?? (await this.etagIfOurs(resource, columns));
    } catch (error) {
      const status = statusOf(error);
      if (status === 412 || status === 404) return undefined;
      throw error;
    }
  }

  /** Deletes the row if it is still the one this lease wrote; 404/412 mean it expired and was taken over. */
  private async remove(resource: string, etag: string): Promise<void> {
    try {
      await storageCall('release lease', () => this.client.deleteEntity(PARTITION, resource, { etag }));
    } catch (error) {
      const status = statusOf(error);
      if (status === 404 || status === 412) return;
      throw error;
    }
  }
}
