// @ts-check
/**
 * The refresh sweep's broker, alone in a process: the built dist/functions/index.js and nothing
 * else (no tsx, no harness, no seeding tools), so the memory and CPU it reports are the broker's,
 * as in a Functions host. Plain JavaScript on purpose: a TypeScript loader alone adds ~50 MB of
 * RSS. The parent (refresh-sweep.ts) starts it with the broker's settings in the environment and
 * sends `{ label }`; it answers with the sweep's summary and figures.
 */
'use strict';
const { performance } = require('node:perf_hooks');
const { Session } = require('node:inspector');
const { mkdirSync, writeFileSync } = require('node:fs');
const { join, resolve } = require('node:path');

const entry = require(resolve(__dirname, '..', '..', 'dist', 'functions', 'index.js'));

const logs = { info: 0, warn: 0, error: 0, /** @type {string[]} */ samples: [] };
/** @param {'info'|'warn'|'error'} level @param {string} event @param {object} [fields] */
const log = (level, event, fields) => {
  logs[level] += 1;
  if (level !== 'info' && logs.samples.length < 10)
    logs.samples.push(JSON.stringify({ level, event, ...fields }).slice(0, 400));
};
const logger = {
  /** @param {string} e @param {object} [f] */ info: (e, f) => log('info', e, f),
  /** @param {string} e @param {object} [f] */ warn: (e, f) => log('warn', e, f),
  /** @param {string} e @param {object} [f] */ error: (e, f) => log('error', e, f),
};
const broker = entry.createBroker(entry.loadConfig(), { logger });

// Table round trips per kind, counted on the broker's own clients (the product code is unchanged).
/** @type {Map<string, number>} */
const tableCalls = new Map();
const TABLE_METHODS = [
  'getEntity',
  'createEntity',
  'updateEntity',
  'upsertEntity',
  'deleteEntity',
  'listEntities',
];
for (const [label, store] of /** @type {const} */ ([
  ['registry', broker.registry],
  ['lease', broker.leases],
  ['audit', broker.audit],
])) {
  /** @type {Record<string, unknown> | undefined} */
  const client = /** @type {any} */ (store).client;
  if (!client) continue;
  for (const method of TABLE_METHODS) {
    const original = client[method];
    if (typeof original !== 'function') continue;
    client[method] = (/** @type {unknown[]} */ ...args) => {
      tableCalls.set(`${label}.${method}`, (tableCalls.get(`${label}.${method}`) ?? 0) + 1);
      return original.apply(client, args);
    };
  }
}

/** @param {Session} session @param {string} method @param {object} [params] @returns {Promise<any>} */
const post = (session, method, params) =>
  new Promise((resolvePost, reject) => {
    session.post(method, params, (error, result) => (error ? reject(error) : resolvePost(result)));
  });

/** Runs one sweep, optionally under the CPU profiler (BENCH_PROFILE_DIR), sampling memory every 100 ms. */
async function sweep(/** @type {string} */ label) {
  tableCalls.clear();
  const gc = /** @type {{ gc?: () => void }} */ (globalThis).gc;
  gc?.();
  const before = process.memoryUsage();
  let rssPeak = before.rss;
  let heapPeak = before.heapUsed;
  const sampler = setInterval(() => {
    const usage = process.memoryUsage();
    rssPeak = Math.max(rssPeak, usage.rss);
    heapPeak = Math.max(heapPeak, usage.heapUsed);
  }, 100);
  const profileDir = process.env.BENCH_PROFILE_DIR;
  const session = profileDir ? new Session() : undefined;
  if (session) {
    session.connect();
    await post(session, 'Profiler.enable');
    await post(session, 'Profiler.start');
  }
  const cpuBefore = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  const started = performance.now();
  const summary = await broker.refresher.refreshDue({ actor: 'bench', budgetMs: 60 * 60_000 });
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const eventLoopUtilization = performance.eventLoopUtilization(elu).utilization;
  clearInterval(sampler);
  if (session && profileDir) {
    const { profile } = await post(session, 'Profiler.stop');
    mkdirSync(profileDir, { recursive: true });
    writeFileSync(join(profileDir, `${label}-${process.pid}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
  const after = process.memoryUsage();
  gc?.();
  const retained = process.memoryUsage().heapUsed;
  return {
    heapBefore: before.heapUsed,
    heapRetained: retained,
    summary,
    wallMs,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    eventLoopUtilization,
    rssBefore: before.rss,
    rssPeak: Math.max(rssPeak, after.rss),
    heapPeak: Math.max(heapPeak, after.heapUsed),
    tableCalls: Object.fromEntries(tableCalls),
    logs: { ...logs, samples: [...logs.samples] },
  };
}

process.on('message', (/** @type {{ label: string }} */ message) => {
  sweep(message.label).then(
    (result) => process.send?.({ ok: true, result }),
    (/** @type {unknown} */ error) =>
      process.send?.({
        ok: false,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      }),
  );
});
process.send?.({ ready: true });
