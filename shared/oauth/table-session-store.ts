import { statusOf } from '../errors';
import { createHash } from 'node:crypto';
import { odata, type TableClient } from '@azure/data-tables';
import {
  storeTableClient,
  ensureTable,
  storageCall,
  stringColumn,
  type TableStoreOptions,
} from '../storage/tables';
import type { AuthSession, AuthSessionStore } from './auth-session';

const PARTITION = 'session';
const PURGE_CONCURRENCY = 8;

type Columns = Record<string, unknown>;

export interface TableAuthSessionStoreOptions extends TableStoreOptions {
  /** Table name without prefix; default `authsessions`. */
  tableName?: string;
}

/** The row key of a session: the SHA-256 (hex) of its state, so the state itself is never stored or logged as a key. */
export function sessionRowKey(state: string): string {
  return createHash('sha256').update(state, 'utf8').digest('hex');
}

function toSession(state: string, columns: Columns): AuthSession {
  return {
    state,
    connection: stringColumn(columns, 'connection') ?? '',
    codeVerifier: stringColumn(columns, 'codeVerifier') ?? '',
    nonce: stringColumn(columns, 'nonce') ?? '',
    browserBindingHash: stringColumn(columns, 'browserBindingHash') ?? '',
    startedBy: stringColumn(columns, 'startedBy') ?? '',
    // A session written before bindings existed binds to nothing and can never complete.
    binding: {
      createdAt: stringColumn(columns, 'boundCreatedAt') ?? '',
      grantFingerprint: stringColumn(columns, 'boundGrant') ?? '',
      authorizedAt: stringColumn(columns, 'boundAuthorizedAt') ?? '',
    },
    ...(stringColumn(columns, 'invitation') ? { invitation: stringColumn(columns, 'invitation') } : {}),
    createdAt: stringColumn(columns, 'createdAt') ?? '',
    // The columns keep the names they were first written with (`expiresAt`, `expiresAtTime`).
    expiresOn: stringColumn(columns, 'expiresAt') ?? '',
  };
}

/**
 * Pending authorizations in Table storage: PartitionKey `session`, RowKey SHA-256 of the state.
 * `expiresOn` is kept as given (column `expiresAt`) and again as a DateTime column (`expiresAtTime`) for the purge query.
 */
export class TableAuthSessionStore implements AuthSessionStore {
  readonly client: TableClient;

  constructor(options: TableAuthSessionStoreOptions) {
    this.client = storeTableClient(options, 'authsessions');
  }

  async create(session: AuthSession): Promise<void> {
    await ensureTable(this.client);
    const expires = new Date(session.expiresOn);
    await storageCall('create authorization session', () =>
      this.client.createEntity({
        partitionKey: PARTITION,
        rowKey: sessionRowKey(session.state),
        connection: session.connection,
        codeVerifier: session.codeVerifier,
        nonce: session.nonce,
        browserBindingHash: session.browserBindingHash,
        startedBy: session.startedBy,
        boundCreatedAt: session.binding.createdAt,
        boundGrant: session.binding.grantFingerprint,
        boundAuthorizedAt: session.binding.authorizedAt,
        ...(session.invitation ? { invitation: session.invitation } : {}),
        createdAt: session.createdAt,
        expiresAt: session.expiresOn,
        // An unparsable expiry purges at once rather than never.
        expiresAtTime: Number.isNaN(expires.getTime()) ? new Date(0) : expires,
      }),
    );
  }

  private async read(state: string): Promise<{ session: AuthSession; etag: string } | undefined> {
    await ensureTable(this.client);
    try {
      const row = await storageCall('read authorization session', () =>
        this.client.getEntity<Columns>(PARTITION, sessionRowKey(state)),
      );
      return { session: toSession(state, row), etag: row.etag };
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async peek(state: string): Promise<AuthSession | undefined> {
    return (await this.read(state))?.session;
  }

  async consume(state: string): Promise<AuthSession | undefined> {
    const found = await this.read(state);
    if (!found) return undefined;
    try {
      // Only one delete with this etag can succeed; the others see 404 (gone) or 412 (changed).
      await storageCall('consume authorization session', () =>
        this.client.deleteEntity(PARTITION, sessionRowKey(state), { etag: found.etag }),
      );
      return found.session;
    } catch (error) {
      const status = statusOf(error);
      if (status === 404 || status === 412) return undefined;
      throw error;
    }
  }

  async purgeExpired(now: Date): Promise<number> {
    await ensureTable(this.client);
    const expired = await storageCall('list expired authorization sessions', async () => {
      const rows: { rowKey: string; etag: string }[] = [];
      const entities = this.client.listEntities<Columns>({
        queryOptions: {
          filter: odata`PartitionKey eq ${PARTITION} and expiresAtTime lt ${now}`,
          select: ['RowKey'],
        },
      });
      for await (const row of entities) {
        if (row.rowKey !== undefined) rows.push({ rowKey: row.rowKey, etag: row.etag });
      }
      return rows;
    });
    let purged = 0;
    const deleteNext = async (): Promise<void> => {
      for (let row = expired.pop(); row !== undefined; row = expired.pop()) {
        const { rowKey, etag } = row;
        try {
          await storageCall('purge authorization session', () =>
            this.client.deleteEntity(PARTITION, rowKey, { etag }),
          );
          purged++;
        } catch (error) {
          const status = statusOf(error);
          if (status !== 404 && status !== 412) throw error; // consumed or purged by someone else
        }
      }
    };
    await Promise.all(Array.from({ length: PURGE_CONCURRENCY }, deleteNext));
    return purged;
  }
}
