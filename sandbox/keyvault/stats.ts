import type { KeyVaultStats, RequestRecord } from './types';

export function newStats(): KeyVaultStats {
  const stats: KeyVaultStats = {
    requests: 0,
    byOperation: {
      get: 0,
      set: 0,
      update: 0,
      delete: 0,
      list: 0,
      listVersions: 0,
      listDeleted: 0,
      getDeleted: 0,
      recover: 0,
      purge: 0,
    },
    byStatus: {},
    reads: 0,
    writes: 0,
    deletes: 0,
    recoveries: 0,
    throttled: 0,
    unauthorized: 0,
    conflicts: 0,
    faultsInjected: 0,
    log: [],
    reset: () => {
      const fresh: Partial<KeyVaultStats> = newStats();
      delete fresh.reset;
      Object.assign(stats, fresh);
    },
  };
  return stats;
}

export function recordRequest(stats: KeyVaultStats, entry: RequestRecord): void {
  stats.requests += 1;
  stats.byStatus[entry.status] = (stats.byStatus[entry.status] ?? 0) + 1;
  if (entry.status === 429) stats.throttled += 1;
  if (entry.status === 401) stats.unauthorized += 1;
  if (entry.status === 409) stats.conflicts += 1;
  if (entry.operation !== 'unknown' && entry.authenticated) {
    stats.byOperation[entry.operation] += 1;
    switch (entry.operation) {
      case 'get':
      case 'list':
      case 'listVersions':
      case 'listDeleted':
      case 'getDeleted':
        stats.reads += 1;
        break;
      case 'set':
      case 'update':
        stats.writes += 1;
        break;
      case 'delete':
      case 'purge':
        stats.deletes += 1;
        break;
      case 'recover':
        stats.recoveries += 1;
        break;
    }
  }
  stats.log.push(entry);
  if (stats.log.length > 1000) stats.log.shift();
}
