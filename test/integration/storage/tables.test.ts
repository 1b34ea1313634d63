import { TableClient } from '@azure/data-tables';
import type { TokenCredential } from '@azure/identity';
import { TableAuditLog } from '../../../shared/audit/table-audit-log';
import { TableConnectionRegistry } from '../../../shared/connections/table-registry';
import { TableAuthSessionStore } from '../../../shared/oauth/table-session-store';
import { BrokerError } from '../../../shared/errors';
import { createTableClient, ensureTable, tableName } from '../../../shared/storage/tables';
import { startAzurite } from '../../../sandbox/azurite';
import { testStorageSettings, uniqueTablePrefix } from '../../support/storage';

const fastRetry = { maxRetries: 1, retryDelayInMs: 50, maxRetryDelayInMs: 100 };

describe('createTableClient', () => {
  it('understands UseDevelopmentStorage=true, full connection strings and identity settings', () => {
    const dev = createTableClient(
      { kind: 'connection-string', connectionString: 'UseDevelopmentStorage=true' },
      'abc',
    );
    expect(dev.url).toBe('http://127.0.0.1:10002/devstoreaccount1');
    const full = createTableClient(testStorageSettings(), 'abc');
    expect(full.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1$/);
    const credential: TokenCredential = { getToken: () => Promise.resolve(null) };
    const identity = createTableClient(
      {
        kind: 'identity',
        tableServiceUrl: 'https://acct.table.core.windows.net',
        managedIdentityClientId: undefined,
      },
      'abc',
      credential,
    );
    expect(identity.url).toBe('https://acct.table.core.windows.net');
    expect(identity.tableName).toBe('abc');
  });

  it('checks table names', () => {
    expect(tableName('connections', 'tx1')).toBe('tx1connections');
    expect(() => tableName('ab')).toThrow(BrokerError);
    expect(() => tableName('connections', '1x')).toThrow(BrokerError);
    expect(() => tableName('connections', 'x-')).toThrow(BrokerError);
    expect(() => tableName('a'.repeat(64))).toThrow(BrokerError);
  });

  it('creates a table once, also when asked concurrently and when it already exists', async () => {
    const name = tableName('ensured', uniqueTablePrefix('ens'));
    const client = createTableClient(testStorageSettings(), name);
    await Promise.all([ensureTable(client), ensureTable(client), ensureTable(client)]);
    // A second client (as in another instance) finds it existing: 409 is success.
    const other = TableClient.fromConnectionString(process.env.TEST_STORAGE_CONNECTION_STRING!, name, {
      allowInsecureConnection: true,
    });
    await other.createTable();
    await client.createEntity({ partitionKey: 'p', rowKey: 'r' });
  });
});

describe('storage that cannot be reached', () => {
  it('is upstream_unavailable for every store, before and after the tables exist', async () => {
    const azurite = await startAzurite({ silent: true });
    const settings = { kind: 'connection-string' as const, connectionString: azurite.connectionString };
    const options = { settings, retry: fastRetry };
    const registry = new TableConnectionRegistry(options);
    const sessions = new TableAuthSessionStore(options);
    const audit = new TableAuditLog(options);
    await registry.check();
    await sessions.purgeExpired(new Date());
    await audit.list('x');
    await azurite.stop();

    const expectUnavailable = async (operation: Promise<unknown>) => {
      const error: unknown = await operation.then(
        () => new Error('expected a failure'),
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BrokerError);
      expect(error).toMatchObject({ code: 'upstream_unavailable', status: 503 });
    };
    await expectUnavailable(registry.get('sales'));
    await expectUnavailable(registry.list());
    await expectUnavailable(registry.check());
    await expectUnavailable(sessions.consume('state'));
    await expectUnavailable(
      audit.record({ connection: 'x', type: 't', actor: 'a', at: new Date().toISOString() }),
    );

    // Never reached: the table cannot even be created.
    const fresh = new TableConnectionRegistry({ ...options, tablePrefix: 'never' });
    await expectUnavailable(fresh.get('sales'));
  });
});
