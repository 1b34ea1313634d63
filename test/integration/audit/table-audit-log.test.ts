import { TableAuditLog } from '../../../shared/audit/table-audit-log';
import { testStorageSettings, uniqueTablePrefix } from '../../support/storage';

const log = new TableAuditLog({ settings: testStorageSettings(), tablePrefix: uniqueTablePrefix('aud') });

describe('TableAuditLog (Azurite)', () => {
  it('lists newest first, per connection, with a limit', async () => {
    const base = Date.parse('2025-03-01T12:00:00.000Z');
    for (let i = 0; i < 60; i++) {
      await log.record({
        connection: 'sales',
        type: 'connection.status_changed',
        actor: 'timer',
        fromStatus: 'authorized',
        toStatus: 'degraded',
        reason: `attempt ${i}`,
        aadsts: 50173,
        at: new Date(base + i * 1000).toISOString(),
      });
    }
    await log.record({
      connection: 'other',
      type: 'connection.authorized',
      actor: 'admin',
      at: new Date(base).toISOString(),
    });

    const events = await log.list('sales');
    expect(events).toHaveLength(50);
    expect(events[0]).toEqual({
      connection: 'sales',
      type: 'connection.status_changed',
      actor: 'timer',
      fromStatus: 'authorized',
      toStatus: 'degraded',
      reason: 'attempt 59',
      aadsts: 50173,
      at: new Date(base + 59_000).toISOString(),
    });
    expect(events.map((e) => e.reason)).toEqual(Array.from({ length: 50 }, (_, i) => `attempt ${59 - i}`));

    expect((await log.list('sales', 3)).map((e) => e.reason)).toEqual([
      'attempt 59',
      'attempt 58',
      'attempt 57',
    ]);
    expect(await log.list('sales', 500)).toHaveLength(60);
    expect(await log.list('other')).toEqual([
      {
        connection: 'other',
        type: 'connection.authorized',
        actor: 'admin',
        at: new Date(base).toISOString(),
      },
    ]);
    expect(await log.list('nobody')).toEqual([]);
  });

  it('orders events recorded in the same millisecond by recording order', async () => {
    const at = new Date().toISOString();
    for (const type of ['first', 'second', 'third'])
      await log.record({ connection: 'same', type, actor: 'system', at });
    expect((await log.list('same')).map((e) => e.type)).toEqual(['third', 'second', 'first']);
  });
});
