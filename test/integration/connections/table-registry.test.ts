import { ConcurrentUpdateError } from '../../../shared/connections/registry';
import type { ConnectionDefinition } from '../../../shared/connections/connection';
import { TableConnectionRegistry } from '../../../shared/connections/table-registry';
import { BrokerError } from '../../../shared/errors';
import { testStorageSettings, uniqueTablePrefix } from '../../support/storage';

const definition = (
  mailbox: string,
  overrides: Partial<ConnectionDefinition> = {},
): ConnectionDefinition => ({
  mailbox,
  account: mailbox,
  profile: 'ews',
  grant: 'authorization_code',
  scopes: undefined,
  ewsUrl: undefined,
  readers: [],
  description: '',
  ...overrides,
});

const registry = new TableConnectionRegistry({
  settings: testStorageSettings(),
  tablePrefix: uniqueTablePrefix('reg'),
});

describe('TableConnectionRegistry (Azurite)', () => {
  it('creates, gets, lists, updates and deletes', async () => {
    const { connection, created } = await registry.upsertDefinition(
      'sales',
      definition('sales@contoso.com', { description: 'Sales mailbox' }),
    );
    expect(created).toBe(true);
    expect(connection).toMatchObject({
      name: 'sales',
      mailbox: 'sales@contoso.com',
      status: 'new',
      consecutiveFailures: 0,
      description: 'Sales mailbox',
      authorizedAt: undefined,
      lastError: undefined,
    });
    expect(connection.etag).toMatch(/\S/);
    expect(connection.createdAt).toBe(connection.updatedAt);

    const read = await registry.get('sales');
    expect(read).toEqual(connection);
    expect((await registry.list()).map((c) => c.name)).toContain('sales');

    const updated = await registry.updateState(
      'sales',
      {
        status: 'authorized',
        authorizedAt: '2025-01-01T00:00:00.000Z',
        authorizedBy: 'admin@contoso.com',
        tokenExpiresOn: '2025-01-01T01:00:00.000Z',
        lastError: { code: 'invalid_grant', message: 'expired', aadsts: 70008, remedy: undefined, at: 'x' },
      },
      connection.etag,
    );
    expect(updated.status).toBe('authorized');
    expect(updated.lastError).toEqual({
      code: 'invalid_grant',
      message: 'expired',
      aadsts: 70008,
      remedy: undefined,
      at: 'x',
    });
    expect(updated.etag).not.toBe(connection.etag);
    expect(await registry.get('sales')).toEqual(updated);

    expect(await registry.delete('sales')).toBe(true);
    expect(await registry.delete('sales')).toBe(false);
    expect(await registry.get('sales')).toBeUndefined();
  });

  it('keeps the state when the definition changes, and removes dropped optional fields', async () => {
    const first = await registry.upsertDefinition(
      'custom1',
      definition('a@contoso.com', {
        profile: 'custom',
        scopes: ['https://outlook.office.com/IMAP.AccessAsUser.All'],
      }),
    );
    expect(first.connection.scopes).toEqual(['https://outlook.office.com/IMAP.AccessAsUser.All']);
    const state = await registry.updateState(
      'custom1',
      { status: 'authorized', consecutiveFailures: 2, homeAccountId: 'home-1' },
      first.connection.etag,
    );

    const second = await registry.upsertDefinition(
      'custom1',
      definition('b@contoso.com', { profile: 'imap' }),
    );
    expect(second.created).toBe(false);
    expect(second.connection).toMatchObject({
      mailbox: 'b@contoso.com',
      profile: 'imap',
      scopes: undefined,
      status: 'authorized',
      consecutiveFailures: 2,
      homeAccountId: 'home-1',
      createdAt: first.connection.createdAt,
    });
    expect(second.connection.etag).not.toBe(state.etag);
    expect(await registry.get('custom1')).toEqual(second.connection);
    const raw = await registry.client.getEntity('connection', 'custom1');
    expect(raw).not.toHaveProperty('scopes');
  });

  it('refuses a write with a stale etag', async () => {
    const { connection } = await registry.upsertDefinition('race', definition('race@contoso.com'));
    await registry.updateState('race', { status: 'authorized' }, connection.etag);
    await expect(
      registry.updateState('race', { status: 'degraded' }, connection.etag),
    ).rejects.toBeInstanceOf(ConcurrentUpdateError);
    expect((await registry.get('race'))?.status).toBe('authorized');

    // Of two writers holding the same etag, exactly one wins.
    const current = (await registry.get('race'))!;
    const results = await Promise.allSettled([
      registry.updateState('race', { consecutiveFailures: 1 }, current.etag),
      registry.updateState('race', { consecutiveFailures: 2 }, current.etag),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected');
    expect(rejected?.reason).toBeInstanceOf(ConcurrentUpdateError);
  });

  it('clears a field given as undefined and keeps absent ones', async () => {
    const { connection } = await registry.upsertDefinition('clear', definition('clear@contoso.com'));
    const set = await registry.updateState(
      'clear',
      {
        status: 'degraded',
        nextAttemptAt: '2025-01-01T00:10:00.000Z',
        lastError: { code: 'x', message: 'y', aadsts: undefined, remedy: 'z', at: 't' },
        tenantId: 'tenant',
      },
      connection.etag,
    );
    const cleared = await registry.updateState(
      'clear',
      { nextAttemptAt: undefined, lastError: undefined },
      set.etag,
    );
    expect(cleared).toMatchObject({ status: 'degraded', tenantId: 'tenant' });
    expect(cleared.nextAttemptAt).toBeUndefined();
    expect(cleared.lastError).toBeUndefined();
    expect(await registry.get('clear')).toEqual(cleared);
    const raw = await registry.client.getEntity('connection', 'clear');
    expect(raw).not.toHaveProperty('lastError');
    expect(raw).not.toHaveProperty('nextAttemptAt');
  });

  it('reports an unknown connection on updateState', async () => {
    await expect(registry.updateState('nobody', { status: 'disabled' }, '*')).rejects.toMatchObject({
      code: 'connection_not_found',
    });
    await expect(registry.upsertDefinition('Bad/Name', definition('x@contoso.com'))).rejects.toBeInstanceOf(
      BrokerError,
    );
    expect(await registry.get('Bad/Name')).toBeUndefined();
  });

  it('lists 200 connections across pages', async () => {
    const paged = new TableConnectionRegistry({
      settings: testStorageSettings(),
      tablePrefix: uniqueTablePrefix('pag'),
      pageSize: 30,
    });
    const names = Array.from({ length: 200 }, (_, i) => `conn-${String(i).padStart(3, '0')}`);
    for (let i = 0; i < names.length; i += 25) {
      await Promise.all(
        names.slice(i, i + 25).map((name) => paged.upsertDefinition(name, definition(`${name}@contoso.com`))),
      );
    }
    const listed = await paged.list();
    expect(listed.map((c) => c.name)).toEqual(names);
    await expect(paged.check()).resolves.toBeUndefined();
  });

  it('upserts the same new connection concurrently without losing either', async () => {
    const results = await Promise.all([
      registry.upsertDefinition('twice', definition('one@contoso.com')),
      registry.upsertDefinition('twice', definition('two@contoso.com')),
    ]);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const stored = await registry.get('twice');
    expect(['one@contoso.com', 'two@contoso.com']).toContain(stored?.mailbox);
  });
});
