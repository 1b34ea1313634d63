import { odata, type TableClient, type TableEntity, type TableEntityResult } from '@azure/data-tables';
import { BrokerError, statusOf } from '../errors';
import {
  storeTableClient,
  ensureTable,
  entityColumns,
  numberColumn,
  storageCall,
  stringColumn,
  type TableStoreOptions,
} from '../storage/tables';
import {
  CONNECTION_NAME,
  GRANTS,
  PROFILES,
  STATUSES,
  assertConnectionName,
  type Connection,
  type ConnectionDefinition,
  type ConnectionStatus,
  type Grant,
  type LastError,
  type LastTest,
  type Profile,
} from './connection';
import { ConcurrentUpdateError, type ConnectionRegistry, type ConnectionState } from './registry';

const PARTITION = 'connection';
const UPSERT_ATTEMPTS = 5;

type Columns = Record<string, unknown>;
type Row = TableEntityResult<Columns>;

export interface TableConnectionRegistryOptions extends TableStoreOptions {
  /** Table name without prefix; default `connections`. */
  tableName?: string;
  /** Rows per page when listing; default 1000 (the service's maximum). */
  pageSize?: number;
}

function oneOf<T extends string>(values: readonly T[], value: unknown, fallback: T): T {
  return typeof value === 'string' && (values as readonly string[]).includes(value) ? (value as T) : fallback;
}

function parseScopes(value: unknown): string[] | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(value);
    return Array.isArray(parsed) && parsed.every((scope) => typeof scope === 'string') ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function parseLastError(value: unknown): LastError | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  try {
    const parsed = JSON.parse(value) as Record<string, unknown> | null;
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const text = (key: string) => (typeof parsed[key] === 'string' ? parsed[key] : undefined);
    return {
      code: text('code') ?? 'unknown',
      message: text('message') ?? '',
      aadsts: typeof parsed.aadsts === 'number' ? parsed.aadsts : undefined,
      remedy: text('remedy'),
      at: text('at') ?? '',
    };
  } catch {
    return undefined;
  }
}

function parseLastTest(raw: unknown): LastTest | undefined {
  if (typeof raw !== 'string' || raw === '') return undefined;
  try {
    const parsed = JSON.parse(raw) as Record<string, unknown>;
    if (typeof parsed.ok !== 'boolean' || typeof parsed.testedAt !== 'string') return undefined;
    return {
      ok: parsed.ok,
      code: typeof parsed.code === 'string' ? parsed.code : undefined,
      protocol: typeof parsed.protocol === 'string' ? parsed.protocol : null,
      testedAt: parsed.testedAt,
    };
  } catch {
    return undefined;
  }
}

/** How each broker-owned field is stored: as itself, or (lastError) as a JSON string column. */
function stateColumn(key: keyof ConnectionState, value: ConnectionState[keyof ConnectionState]): unknown {
  if (key === 'lastError' || key === 'lastTest') return JSON.stringify(value);
  return value;
}

/** Fields a connection cannot be without: `undefined` for them in a state change leaves them as they are. */
const REQUIRED_STATE = new Set<keyof ConnectionState>(['status', 'consecutiveFailures']);

function toConnection(columns: Columns, etag: string): Connection {
  const name = typeof columns.rowKey === 'string' ? columns.rowKey : '';
  const mailbox = stringColumn(columns, 'mailbox') ?? '';
  return {
    name,
    mailbox,
    account: stringColumn(columns, 'account') ?? mailbox,
    profile: oneOf<Profile>(PROFILES, columns.profile, 'custom'),
    grant: oneOf<Grant>(GRANTS, columns.grant, 'authorization_code'),
    scopes: parseScopes(columns.scopes),
    ewsUrl: stringColumn(columns, 'ewsUrl'),
    signInFrom: stringColumn(columns, 'signInFrom'),
    readers: parseScopes(columns.readers) ?? [],
    description: stringColumn(columns, 'description') ?? '',
    status: oneOf<ConnectionStatus>(STATUSES, columns.status, 'new'),
    createdAt: stringColumn(columns, 'createdAt') ?? '',
    updatedAt: stringColumn(columns, 'updatedAt') ?? '',
    authorizedAt: stringColumn(columns, 'authorizedAt'),
    authorizedBy: stringColumn(columns, 'authorizedBy'),
    tenantId: stringColumn(columns, 'tenantId'),
    homeAccountId: stringColumn(columns, 'homeAccountId'),
    tokenExpiresOn: stringColumn(columns, 'tokenExpiresOn'),
    lastRefreshAt: stringColumn(columns, 'lastRefreshAt'),
    consecutiveFailures: numberColumn(columns, 'consecutiveFailures') ?? 0,
    degradedSince: stringColumn(columns, 'degradedSince'),
    nextAttemptAt: stringColumn(columns, 'nextAttemptAt'),
    lastError: parseLastError(columns.lastError),
    lastTest: parseLastTest(columns.lastTest),
    leaseOwner: stringColumn(columns, 'leaseOwner'),
    leaseExpiresOn: stringColumn(columns, 'leaseExpiresOn'),
    etag,
  };
}

/** Writes the definition's fields into `columns`; an absent optional field removes its column. */
function applyDefinition(columns: Columns, definition: ConnectionDefinition): void {
  columns.mailbox = definition.mailbox;
  columns.account = definition.account;
  columns.profile = definition.profile;
  columns.grant = definition.grant;
  columns.description = definition.description;
  if (definition.scopes === undefined) delete columns.scopes;
  else columns.scopes = JSON.stringify(definition.scopes);
  if (definition.ewsUrl === undefined) delete columns.ewsUrl;
  else columns.ewsUrl = definition.ewsUrl;
  if (definition.readers.length === 0) delete columns.readers;
  else columns.readers = JSON.stringify(definition.readers);
  if (definition.signInFrom === undefined) delete columns.signInFrom;
  else columns.signInFrom = definition.signInFrom;
}

/**
 * The connection registry in Table storage: PartitionKey `connection`, RowKey the connection name.
 * Writes replace the whole row, guarded by its etag, so a field cleared is a column removed.
 */
export class TableConnectionRegistry implements ConnectionRegistry {
  readonly client: TableClient;
  private readonly pageSize: number;

  constructor(options: TableConnectionRegistryOptions) {
    this.client = storeTableClient(options, 'connections');
    this.pageSize = options.pageSize ?? 1000;
  }

  private async row(name: string): Promise<Row | undefined> {
    await ensureTable(this.client);
    try {
      return await storageCall('read connection', () => this.client.getEntity<Columns>(PARTITION, name));
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  /** Replaces the row if its etag is still `etag`; undefined on 412/404 (someone else changed or deleted it). */
  private async replace(entity: TableEntity<Columns>, etag: string): Promise<string | undefined> {
    try {
      const result = await storageCall('write connection', () =>
        this.client.updateEntity(entity, 'Replace', { etag }),
      );
      return result.etag ?? (await this.row(entity.rowKey))?.etag;
    } catch (error) {
      const status = statusOf(error);
      if (status === 412 || status === 404) return undefined;
      throw error;
    }
  }

  async get(name: string): Promise<Connection | undefined> {
    if (!CONNECTION_NAME.test(name)) return undefined;
    const row = await this.row(name);
    return row && toConnection(entityColumns(row), row.etag);
  }

  async list(): Promise<Connection[]> {
    const connections: Connection[] = [];
    for await (const page of this.pages()) connections.push(...page);
    return connections;
  }

  async *pages(): AsyncIterable<Connection[]> {
    await ensureTable(this.client);
    const paged = this.client
      .listEntities<Columns>({ queryOptions: { filter: odata`PartitionKey eq ${PARTITION}` } })
      .byPage({ maxPageSize: this.pageSize });
    const pages = paged[Symbol.asyncIterator]();
    for (;;) {
      const next = await storageCall('list connections', () => pages.next());
      if (next.done) return;
      yield next.value.map((row) => toConnection(entityColumns(row), row.etag));
    }
  }

  async upsertDefinition(
    name: string,
    definition: ConnectionDefinition,
  ): Promise<{ connection: Connection; created: boolean }> {
    assertConnectionName(name);
    for (let attempt = 0; attempt < UPSERT_ATTEMPTS; attempt++) {
      const now = new Date().toISOString();
      const existing = await this.row(name);
      if (!existing) {
        const columns: Columns = {
          partitionKey: PARTITION,
          rowKey: name,
          status: 'new',
          consecutiveFailures: 0,
          createdAt: now,
          updatedAt: now,
        };
        applyDefinition(columns, definition);
        try {
          const result = await storageCall('create connection', () =>
            this.client.createEntity({ ...columns, partitionKey: PARTITION, rowKey: name }),
          );
          const etag = result.etag ?? (await this.row(name))?.etag ?? '';
          return { connection: toConnection(columns, etag), created: true };
        } catch (error) {
          if (statusOf(error) === 409) continue; // created by someone else meanwhile: update theirs
          throw error;
        }
      }
      const columns = entityColumns(existing);
      applyDefinition(columns, definition);
      columns.updatedAt = now;
      const etag = await this.replace({ ...columns, partitionKey: PARTITION, rowKey: name }, existing.etag);
      if (etag !== undefined) return { connection: toConnection(columns, etag), created: false };
    }
    throw new ConcurrentUpdateError(name);
  }

  async updateState(
    name: string,
    state: ConnectionState,
    etag: string,
    current?: Connection,
  ): Promise<Connection> {
    if (current?.name === name && current.etag === etag) return this.mergeState(current, state);
    const existing = CONNECTION_NAME.test(name) ? await this.row(name) : undefined;
    if (!existing) throw new BrokerError('connection_not_found', `There is no connection named "${name}".`);
    const columns = entityColumns(existing);
    for (const key of Object.keys(state) as (keyof ConnectionState)[]) {
      const value = state[key];
      if (value === undefined) {
        if (!REQUIRED_STATE.has(key)) Reflect.deleteProperty(columns, key);
      } else {
        columns[key] = stateColumn(key, value);
      }
    }
    columns.updatedAt = new Date().toISOString();
    // Guarded by the caller's etag, not the one just read: a write since the caller read is a conflict.
    const newEtag = await this.replace({ ...columns, partitionKey: PARTITION, rowKey: name }, etag);
    if (newEtag === undefined) throw new ConcurrentUpdateError(name);
    return toConnection(columns, newEtag);
  }

  /**
   * The hot path (every refresh): one etag-guarded Merge, no read. A cleared optional field is
   * written as an empty string, which reads back as absent.
   */
  private async mergeState(current: Connection, state: ConnectionState): Promise<Connection> {
    const columns: Columns = {};
    const merged: Record<string, unknown> = { ...current };
    for (const key of Object.keys(state) as (keyof ConnectionState)[]) {
      const value = state[key];
      if (value === undefined) {
        if (REQUIRED_STATE.has(key)) continue;
        columns[key] = '';
        merged[key] = undefined;
      } else {
        columns[key] = stateColumn(key, value);
        merged[key] = value;
      }
    }
    const updatedAt = new Date().toISOString();
    columns.updatedAt = updatedAt;
    let newEtag: string | undefined;
    try {
      const result = await storageCall('write connection', () =>
        this.client.updateEntity({ ...columns, partitionKey: PARTITION, rowKey: current.name }, 'Merge', {
          etag: current.etag,
        }),
      );
      newEtag = result.etag;
    } catch (error) {
      const status = statusOf(error);
      if (status === 412 || status === 404) throw new ConcurrentUpdateError(current.name);
      throw error;
    }
    if (!newEtag)
      return (await this.get(current.name)) ?? ({ ...merged, updatedAt } as unknown as Connection);
    return { ...(merged as unknown as Connection), updatedAt, etag: newEtag };
  }

  async delete(name: string): Promise<boolean> {
    if (!CONNECTION_NAME.test(name)) return false;
    await ensureTable(this.client);
    try {
      await storageCall('delete connection', () => this.client.deleteEntity(PARTITION, name));
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
  }

  async check(): Promise<void> {
    await ensureTable(this.client);
    await storageCall('check connections table', async () => {
      const pages = this.client
        .listEntities({ queryOptions: { filter: odata`PartitionKey eq ${PARTITION}`, select: ['RowKey'] } })
        .byPage({ maxPageSize: 1 });
      await pages.next();
    });
  }
}
