import { odata, type TableClient } from '@azure/data-tables';
import { statusOf } from '../errors';
import {
  ensureTable,
  storageCall,
  storeTableClient,
  stringColumn,
  type TableStoreOptions,
} from '../storage/tables';
import type { Invitation, InvitationStore } from './invitation';

const PARTITION = 'invitation';

type Columns = Record<string, unknown>;

export interface TableInvitationStoreOptions extends TableStoreOptions {
  /** Table name without prefix; default `invitations`. */
  tableName?: string;
}

function toInvitation(id: string, columns: Columns, etag: string): Invitation {
  return {
    id,
    connection: stringColumn(columns, 'connection') ?? '',
    // A row without a binding binds to nothing and is never usable.
    binding: {
      createdAt: stringColumn(columns, 'boundCreatedAt') ?? '',
      grantFingerprint: stringColumn(columns, 'boundGrant') ?? '',
    },
    createdBy: stringColumn(columns, 'createdBy') ?? '',
    createdAt: stringColumn(columns, 'createdAt') ?? '',
    expiresOn: stringColumn(columns, 'expiresOn') ?? '',
    usedAt: stringColumn(columns, 'usedAt'),
    usedBy: stringColumn(columns, 'usedBy'),
    etag,
  };
}

/**
 * Invitations in Table storage: PartitionKey `invitation`, RowKey the SHA-256 (hex) of the link's
 * secret, so neither the secret nor anything that opens the link is stored. A used invitation
 * keeps its row (`usedAt`) until it expires, so a second use is told it was used; revoking and
 * voiding delete rows.
 */
export class TableInvitationStore implements InvitationStore {
  readonly client: TableClient;

  constructor(options: TableInvitationStoreOptions) {
    this.client = storeTableClient(options, 'invitations');
  }

  async create(invitation: Omit<Invitation, 'etag' | 'usedAt' | 'usedBy'>): Promise<void> {
    await ensureTable(this.client);
    await storageCall('create invitation', () =>
      this.client.createEntity({
        partitionKey: PARTITION,
        rowKey: invitation.id,
        connection: invitation.connection,
        boundCreatedAt: invitation.binding.createdAt,
        boundGrant: invitation.binding.grantFingerprint,
        createdBy: invitation.createdBy,
        createdAt: invitation.createdAt,
        expiresOn: invitation.expiresOn,
      }),
    );
  }

  async get(id: string): Promise<Invitation | undefined> {
    await ensureTable(this.client);
    try {
      const row = await storageCall('read invitation', () => this.client.getEntity<Columns>(PARTITION, id));
      return toInvitation(id, row, row.etag);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async markUsed(invitation: Invitation, usedBy: string, at: Date): Promise<boolean> {
    try {
      // Only one merge with this etag can succeed; the others see 412 (changed) or 404 (gone).
      await storageCall('mark invitation used', () =>
        this.client.updateEntity(
          { partitionKey: PARTITION, rowKey: invitation.id, usedAt: at.toISOString(), usedBy },
          'Merge',
          { etag: invitation.etag },
        ),
      );
      return true;
    } catch (error) {
      const status = statusOf(error);
      if (status === 404 || status === 412) return false;
      throw error;
    }
  }

  private async rowsOf(connection: string): Promise<{ invitation: Invitation }[]> {
    await ensureTable(this.client);
    return storageCall('list invitations', async () => {
      const rows: { invitation: Invitation }[] = [];
      const entities = this.client.listEntities<Columns>({
        queryOptions: { filter: odata`PartitionKey eq ${PARTITION} and connection eq ${connection}` },
      });
      for await (const row of entities) {
        if (row.rowKey !== undefined) rows.push({ invitation: toInvitation(row.rowKey, row, row.etag) });
      }
      return rows;
    });
  }

  private async deleteRow(invitation: Invitation): Promise<boolean> {
    try {
      await storageCall('delete invitation', () =>
        this.client.deleteEntity(PARTITION, invitation.id, { etag: invitation.etag }),
      );
      return true;
    } catch (error) {
      const status = statusOf(error);
      if (status === 404) return false;
      // Used meanwhile: it stays as used (nothing open is left behind).
      if (status === 412) return false;
      throw error;
    }
  }

  async deleteOpen(connection: string, now: Date): Promise<number> {
    let deleted = 0;
    for (const { invitation } of await this.rowsOf(connection)) {
      const expired = !(Date.parse(invitation.expiresOn) > now.getTime());
      // Expired rows go too (housekeeping), but only open ones count as revoked.
      if (invitation.usedAt !== undefined && !expired) continue;
      if ((await this.deleteRow(invitation)) && invitation.usedAt === undefined && !expired) deleted++;
    }
    return deleted;
  }

  async deleteAll(connection: string): Promise<number> {
    let deleted = 0;
    for (const { invitation } of await this.rowsOf(connection)) {
      // Without the etag: a row used meanwhile goes as well.
      try {
        await storageCall('delete invitation', () => this.client.deleteEntity(PARTITION, invitation.id));
        deleted++;
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
      }
    }
    return deleted;
  }
}
