/**
 * Key Vault capacity. With the Key Vault emulator enforcing the service's limits (300 secret
 * writes and 4,000 other transactions per 10 s per vault), it counts the Key Vault writes and reads
 * one refresh makes (from the emulator's request log over 200 refreshes, throttled answers left
 * out), and from them computes how many connections one vault sustains when access tokens live
 * 60 minutes and the timer (every 10 minutes) refreshes those within 15 minutes of expiry, so each
 * connection is refreshed about every 45–50 minutes. It then drives the vault at its write limit
 * for about 20 s (a sweep of several hundred due connections at REFRESH_CONCURRENCY=64) and reports
 * the throttled answers and whether every connection still ended `authorized`, i.e. whether the
 * broker's retries absorb the 429s. Key Vault's write limit, not the broker's CPU, is what caps the
 * number of connections per vault, so this is the figure that sizes a deployment.
 */
import { performance } from 'node:perf_hooks';
import { authorizeThroughSignIn, benchMain, startBenchEnv, type BenchResult } from './support/env';
import { fixed, forEachConcurrent, grouped, printFigures, seconds } from './support/measure';
import type { KeyVaultStatsView } from './support/rpc';
import { connectionNames, readTemplate, seedConnections } from './support/seed';

const LIMITS = { writesPer10s: 300, othersPer10s: 4000 };
const WINDOW_S = 10;
const MEASURED_REFRESHES = 200;
const DRIVE_SECONDS = 20;
const DRIVE_CONCURRENCY = 64;
const TOKEN_LIFETIME_MIN = 60;
const MARGIN_MIN = 15;
const SCHEDULE_MIN = 10;

interface Counted {
  writes: number;
  reads: number;
  other: number;
  throttled: number;
}

/** Requests the vault served (not throttled), from its request log. */
function countServed(stats: KeyVaultStatsView): Counted {
  if (stats.log.length >= 1000)
    throw new Error('the vault request log overflowed: measure fewer refreshes at once');
  const counted: Counted = { writes: 0, reads: 0, other: 0, throttled: 0 };
  for (const entry of stats.log) {
    if (!entry.authenticated) continue;
    if (entry.status === 429) {
      counted.throttled += 1;
      continue;
    }
    if (entry.operation === 'set' || entry.operation === 'update') counted.writes += 1;
    else if (['get', 'list', 'listVersions', 'listDeleted', 'getDeleted'].includes(entry.operation))
      counted.reads += 1;
    else counted.other += 1;
  }
  return counted;
}

benchMain(__filename, async (): Promise<BenchResult> => {
  const bench = await startBenchEnv({
    vaultLimits: LIMITS,
    env: { REFRESH_CONCURRENCY: String(DRIVE_CONCURRENCY) },
  });
  const { broker, emulators } = bench;
  // Seeding writes secrets in batches below the write limit and moves the vault's clock past
  // the throttling window between them (seeding is set-up, not what is measured).
  const nextWindow = async (): Promise<void> => {
    await emulators.call('advanceVaultClock', { ms: WINDOW_S * 1000 });
  };
  const seedBatch = { size: LIMITS.writesPer10s - 50, before: nextWindow };
  const due = () => new Date(Date.now() + 5 * 60_000).toISOString();
  try {
    await authorizeThroughSignIn(bench, 'bench-template');
    const template = await readTemplate(bench, 'bench-template');

    // 1. Writes and reads per refresh, in batches of 100 refreshes, each in a fresh window.
    const measured = connectionNames('meas', MEASURED_REFRESHES);
    await seedConnections(bench, template, { names: measured, tokenExpiresOn: due(), vaultBatch: seedBatch });
    const total: Counted = { writes: 0, reads: 0, other: 0, throttled: 0 };
    let refreshed = 0;
    for (let start = 0; start < measured.length; start += 100) {
      await nextWindow();
      await emulators.call('resetStats', null);
      await forEachConcurrent(measured.slice(start, start + 100), 8, async (name) => {
        const outcome = await broker.refresher.refresh(name, { actor: 'bench' });
        if (outcome.result === 'refreshed') refreshed += 1;
      });
      const counted = countServed(await emulators.call('vaultStats', null));
      total.writes += counted.writes;
      total.reads += counted.reads;
      total.other += counted.other;
      total.throttled += counted.throttled;
    }
    if (refreshed !== MEASURED_REFRESHES)
      throw new Error(`only ${refreshed} of ${MEASURED_REFRESHES} refreshed`);
    const measuredWritesPerRefresh = total.writes / refreshed;
    const othersPerRefresh = (total.reads + total.other) / refreshed;

    // 2. Capacity. A connection is refreshed at the first timer run once it has ≤ 15 min left of
    //    its 60, so every 45 (at the earliest) to ~50 minutes. Sustained, the vault allows
    //    30 writes/s: max connections = write rate × refresh interval ÷ writes per refresh.
    const writeRate = LIMITS.writesPer10s / WINDOW_S;
    const otherRate = LIMITS.othersPer10s / WINDOW_S;
    const shortestIntervalS = (TOKEN_LIFETIME_MIN - MARGIN_MIN) * 60;
    const typicalIntervalS = (TOKEN_LIFETIME_MIN - MARGIN_MIN + SCHEDULE_MIN / 2) * 60;
    // The token cache is rewritten once it is REFRESH_CACHE_WRITE_HOURS old (a set, and an update
    // that disables the version two back). The sample above, taken right after seeding, sees none
    // of those rewrites, so they are added at their steady-state rate: 2 writes per connection per
    // REFRESH_CACHE_WRITE_HOURS, spread over its refreshes (one every shortest interval).
    const cacheHours = broker.config.refresh.cacheWriteHours;
    const cacheWritesPerRefresh = cacheHours === 0 ? 0 : (2 * shortestIntervalS) / (cacheHours * 3600);
    const writesPerRefresh = measuredWritesPerRefresh + cacheWritesPerRefresh;
    const byWrites = (writeRate * shortestIntervalS) / writesPerRefresh;
    const byWritesTypical = (writeRate * typicalIntervalS) / writesPerRefresh;
    const byOthers = (otherRate * shortestIntervalS) / Math.max(othersPerRefresh, 1e-9);
    const maxConnections = Math.min(byWrites, byOthers);
    //    But one timer run starts refreshes only for REFRESH_BUDGET_SECONDS, and in steady state
    //    each run must refresh the connections that became due in the last 10 minutes.
    const budgetS = broker.config.refresh.budgetSeconds;
    const refreshesPerRun = (LIMITS.writesPer10s + writeRate * budgetS) / writesPerRefresh;
    const byBudget = refreshesPerRun * (shortestIntervalS / (SCHEDULE_MIN * 60));

    // 3. Drive the vault at its write limit for about DRIVE_SECONDS.
    const requestedDrive = Number(process.env.BENCH_VAULT_REFRESHES ?? 0);
    const driveCount =
      requestedDrive > 0
        ? requestedDrive
        : Math.ceil((LIMITS.writesPer10s + writeRate * DRIVE_SECONDS) / writesPerRefresh);
    const driven = connectionNames('drive', driveCount);
    await seedConnections(bench, template, { names: driven, tokenExpiresOn: due(), vaultBatch: seedBatch });
    await emulators.call('latency', { entraMs: 100, vaultMs: 20 });
    await nextWindow();
    await emulators.call('resetStats', null);
    const started = performance.now();
    const summary = await broker.refresher.refreshDue({
      actor: 'bench',
      concurrency: DRIVE_CONCURRENCY,
      budgetMs: 30 * 60_000,
    });
    const wallMs = performance.now() - started;
    await emulators.call('latency', { entraMs: 0, vaultMs: 0 });
    const vault = await emulators.call('vaultStats', null);
    const rows = (await broker.registry.list()).filter((row) => row.name.startsWith('drive-'));
    const statuses: Record<string, number> = {};
    for (const row of rows) statuses[row.status] = (statuses[row.status] ?? 0) + 1;
    const margin = broker.config.refresh.marginMs;
    const allAuthorized = rows.every(
      (row) =>
        row.status === 'authorized' &&
        row.tokenExpiresOn !== undefined &&
        Date.parse(row.tokenExpiresOn) - Date.now() > margin,
    );
    const servedWrites = vault.byOperation.set + vault.byOperation.update - countThrottledWrites(vault);

    printFigures('Key Vault capacity (limits: 300 writes and 4,000 other requests per 10 s per vault)', [
      ['measured over', `${refreshed} refreshes (throttled answers left out)`],
      [
        'writes/refresh',
        `${fixed(writesPerRefresh)} = ${fixed(measuredWritesPerRefresh)} measured (the published token) + ${fixed(cacheWritesPerRefresh, 3)} cache rewrites (2 every ${cacheHours} h per connection)`,
      ],
      ['reads/refresh', fixed(total.reads / refreshed)],
      ['other requests/refresh', fixed(total.other / refreshed)],
      [
        'refresh interval',
        `${TOKEN_LIFETIME_MIN} min tokens, ${MARGIN_MIN} min margin, timer every ${SCHEDULE_MIN} min → every ${shortestIntervalS / 60}–${typicalIntervalS / 60} min`,
      ],
      [
        'formula',
        `max connections = (300 writes ÷ 10 s) × ${shortestIntervalS / 60} min × 60 s ÷ writes/refresh = ${writeRate} × ${shortestIntervalS} ÷ ${fixed(writesPerRefresh)}`,
      ],
      [
        'result',
        `writes/refresh = ${fixed(writesPerRefresh)} → max connections per vault ≈ ${grouped(byWrites)} (${grouped(byWritesTypical)} at a ${typicalIntervalS / 60}-min interval)`,
      ],
      [
        'other-request limit allows',
        `≈ ${grouped(byOthers)} connections (${fixed(othersPerRefresh)} others/refresh at 400/s)`,
      ],
      [
        'one timer run (budget)',
        `REFRESH_BUDGET_SECONDS=${budgetS}: ≤ ${grouped(refreshesPerRun)} refreshes per run at the write limit → ≈ ${grouped(byBudget)} connections in steady state`,
      ],
      [
        'max connections per vault',
        `≈ ${grouped(maxConnections)} (sustained); ≈ ${grouped(Math.min(maxConnections, byBudget))} with the default timer budget`,
      ],
      [
        `drive: ${driveCount} due connections`,
        `REFRESH_CONCURRENCY=${DRIVE_CONCURRENCY}, Entra 100 ms, Key Vault 20 ms`,
      ],
      ['drive wall time', seconds(wallMs)],
      ['refreshed / failed / deferred', `${summary.refreshed} / ${summary.failed} / ${summary.deferred}`],
      ['throttled (429) answers', `${vault.throttled} (of ${vault.requests} vault requests)`],
      ['writes served/s', fixed(servedWrites / (wallMs / 1000), 1)],
      [
        'connections ended',
        Object.entries(statuses)
          .map(([status, count]) => `${status} ${count}`)
          .join(', '),
      ],
      ['every connection authorized', allAuthorized ? 'yes (retries absorbed the 429s)' : 'NO'],
    ]);
    if (bench.logs.samples.length > 0)
      console.log(`  first warnings:\n    ${bench.logs.samples.join('\n    ')}`);

    return {
      bench: 'vault-capacity',
      notes: [],
      rows: [
        {
          metric: 'writes/refresh',
          value: fixed(writesPerRefresh),
          target: '≤ 1.1',
          ok: writesPerRefresh <= 1.1,
        },
        { metric: 'reads/refresh', value: fixed(total.reads / refreshed) },
        {
          metric: 'max connections per vault (45-min interval)',
          value: `≈ ${grouped(maxConnections)}`,
          target: '≥ 73,000',
          ok: maxConnections >= 73_000,
        },
        { metric: `with the ${budgetS} s timer budget`, value: `≈ ${grouped(byBudget)}` },
        {
          metric: `drive: ${driveCount} refreshes at the limit`,
          value: `${seconds(wallMs)}, ${vault.throttled} × 429`,
        },
        {
          metric: 'all ended authorized',
          value: allAuthorized ? 'yes' : 'no',
          target: 'yes',
          ok: allAuthorized,
        },
      ],
    };
  } finally {
    await bench.close();
  }
});

/** Throttled writes in the (last 1,000 entries of the) request log; an estimate when it overflowed. */
function countThrottledWrites(stats: KeyVaultStatsView): number {
  const inLog = stats.log.filter((entry) => entry.status === 429 && entry.operation === 'set').length;
  if (stats.log.length < 1000) return inLog;
  const allThrottled = stats.log.filter((entry) => entry.status === 429).length;
  return allThrottled === 0 ? 0 : Math.round((stats.throttled * inLog) / allThrottled);
}
