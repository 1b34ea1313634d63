import type { TableClient } from '@azure/data-tables';
/** CPU time of other processes (Azurite, the emulators) from /proc, and call counting on table clients. */
import { readFileSync } from 'node:fs';

const CLOCK_TICKS_PER_SECOND = 100;

/** User + system CPU seconds a process has used so far (Linux /proc); NaN when unreadable. */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const user = Number(fields[11]);
    const system = Number(fields[12]);
    return (user + system) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** This process's user + system CPU seconds. */
export function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

const TABLE_METHODS = [
  'getEntity',
  'createEntity',
  'updateEntity',
  'upsertEntity',
  'deleteEntity',
  'listEntities',
  'submitTransaction',
  'createTable',
] as const;

/**
 * Counts the calls made on a TableClient instance (one call = one round trip, except listEntities,
 * which is one call per listing however many pages it reads). Only the benchmark's own instances
 * are wrapped; the product code is unchanged.
 */
export function countTableCalls(client: object, label: string, counts: Map<string, number>): void {
  const record = client as Record<string, unknown>;
  for (const method of TABLE_METHODS) {
    const original = record[method];
    if (typeof original !== 'function') continue;
    const key = `${label}.${method}`;
    record[method] = (...args: unknown[]): unknown => {
      counts.set(key, (counts.get(key) ?? 0) + 1);
      return (original as (...a: unknown[]) => unknown).apply(client, args);
    };
  }
}

/**
 * The Table client of a registry, lease store or audit log (duck-typed: the broker comes from the
 * built bundle, whose classes are not the sources' classes).
 */
export function tableClientOf(store: object): TableClient | undefined {
  const { client } = store as { client?: TableClient };
  return typeof client?.getEntity === 'function' ? client : undefined;
}
