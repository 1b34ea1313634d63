import { randomBytes } from 'node:crypto';
import { odata, type TableClient } from '@azure/data-tables';
import { BrokerError } from '../errors';
import {
  storeTableClient,
  ensureTable,
  numberColumn,
  storageCall,
  stringColumn,
  type TableStoreOptions,
} from '../storage/tables';
import type { AuditEvent, AuditLog } from './audit-log';

type Columns = Record<string, unknown>;

export interface TableAuditLogOptions extends TableStoreOptions {
  /** Table name without prefix; default `auditevents`. */
  tableName?: string;
}

const MAX_TIME = 9_999_999_999_999; // ms; year 2286
const MAX_SEQUENCE = 999_999;
const MAX_LIMIT = 1000;
/** Characters Table storage does not allow in keys. */
// eslint-disable-next-line no-control-regex
const FORBIDDEN_KEY_CHARACTERS = /[/\\#?\u0000-\u001f\u007f-\u009f]/;

let sequence = 0;

/**
 * A row key that sorts newest first: the event time inverted (13 digits), then a per-process sequence
 * inverted (so of two events in the same millisecond the later sorts first), then a random suffix.
 */
export function invertedTimeKey(at: Date): string {
  const time = Number.isNaN(at.getTime()) ? Date.now() : at.getTime();
  sequence = (sequence + 1) % (MAX_SEQUENCE + 1);
  const invertedTime = String(MAX_TIME - Math.min(Math.max(time, 0), MAX_TIME)).padStart(13, '0');
  const invertedSequence = String(MAX_SEQUENCE - sequence).padStart(6, '0');
  return `${invertedTime}-${invertedSequence}-${randomBytes(4).toString('hex')}`;
}

function toEvent(columns: Columns, connection: string): AuditEvent {
  const event: AuditEvent = {
    connection,
    type: stringColumn(columns, 'type') ?? '',
    actor: stringColumn(columns, 'actor') ?? '',
    at: stringColumn(columns, 'at') ?? '',
  };
  const fromStatus = stringColumn(columns, 'fromStatus');
  const toStatus = stringColumn(columns, 'toStatus');
  const reason = stringColumn(columns, 'reason');
  const aadsts = numberColumn(columns, 'aadsts');
  const correlationId = stringColumn(columns, 'correlationId');
  if (fromStatus !== undefined) event.fromStatus = fromStatus;
  if (toStatus !== undefined) event.toStatus = toStatus;
  if (reason !== undefined) event.reason = reason;
  if (aadsts !== undefined) event.aadsts = aadsts;
  if (correlationId !== undefined) event.correlationId = correlationId;
  return event;
}

/** The audit trail in Table storage: PartitionKey the connection, RowKey an inverted-time key (newest first). */
export class TableAuditLog implements AuditLog {
  readonly client: TableClient;

  constructor(options: TableAuditLogOptions) {
    this.client = storeTableClient(options, 'auditevents');
  }

  async record(event: AuditEvent): Promise<void> {
    if (FORBIDDEN_KEY_CHARACTERS.test(event.connection)) {
      throw new BrokerError('invalid_request', 'An audit event needs a connection name without / \\ # ?.');
    }
    await ensureTable(this.client);
    const columns: Columns = {
      partitionKey: event.connection,
      rowKey: invertedTimeKey(new Date(event.at)),
      connection: event.connection,
      type: event.type,
      actor: event.actor,
      at: event.at,
    };
    for (const key of ['fromStatus', 'toStatus', 'reason', 'aadsts', 'correlationId'] as const) {
      if (event[key] !== undefined) columns[key] = event[key];
    }
    await storageCall('record audit event', () =>
      this.client.createEntity({
        ...columns,
        partitionKey: event.connection,
        rowKey: columns.rowKey as string,
      }),
    );
  }

  async list(connection: string, limit = 50): Promise<AuditEvent[]> {
    if (FORBIDDEN_KEY_CHARACTERS.test(connection)) return [];
    const wanted = Math.min(Math.max(Math.trunc(limit), 0), MAX_LIMIT);
    if (wanted === 0) return [];
    await ensureTable(this.client);
    return storageCall('list audit events', async () => {
      const events: AuditEvent[] = [];
      const pages = this.client
        .listEntities<Columns>({ queryOptions: { filter: odata`PartitionKey eq ${connection}` } })
        .byPage({ maxPageSize: wanted });
      // The service may return short pages (with a continuation): read on until enough.
      for await (const page of pages) {
        for (const row of page) {
          events.push(toEvent(row, connection));
          if (events.length >= wanted) return events;
        }
      }
      return events;
    });
  }
}
