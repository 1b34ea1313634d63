/**
 * HTTP load generator (a process of its own, so it does not share an event loop with the server it
 * measures): `concurrency` clients over keep-alive connections (an undici Pool with one connection
 * per client), each sending GET `path` again as soon as its previous answer has been read (closed
 * loop: as fast as the server goes), or, with `ratePerSecond`, on a fixed schedule that adds up to
 * that rate (latency then counts from the scheduled send time, so a server falling behind is not
 * hidden). A warm-up period is not recorded. Prints one JSON line: requests, errors, latencies.
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

export interface LoadParams {
  origin: string;
  path: string;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** Offered load across all clients; default: closed loop, as fast as answers come. */
  ratePerSecond?: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  statuses: Record<number, number>;
  elapsedMs: number;
  /** Latency percentiles in ms. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

async function run(params: LoadParams): Promise<LoadResult> {
  const pool = new Pool(params.origin, {
    connections: params.concurrency,
    pipelining: 1,
    keepAliveTimeout: 60_000,
  });
  let latencies = new Float64Array(1 << 16);
  let count = 0;
  let errors = 0;
  const statuses: Record<number, number> = {};
  let recording = false;
  let stop = false;

  const intervalMs = params.ratePerSecond ? (params.concurrency / params.ratePerSecond) * 1000 : 0;
  const origin = performance.now();
  const client = async (_: unknown, index: number) => {
    let scheduled = origin + (intervalMs * index) / params.concurrency;
    while (!stop) {
      if (intervalMs > 0) {
        const wait = scheduled - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      // A timer may fire up to 1 ms early: then the request starts now, not at its scheduled time.
      const started = intervalMs > 0 ? Math.min(scheduled, performance.now()) : performance.now();
      scheduled += intervalMs;
      try {
        const response = await pool.request({ path: params.path, method: 'GET' });
        await response.body.arrayBuffer();
        const took = performance.now() - started;
        if (!recording) continue;
        statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1;
        if (response.statusCode !== 200) errors += 1;
        if (count === latencies.length) {
          const bigger = new Float64Array(latencies.length * 2);
          bigger.set(latencies);
          latencies = bigger;
        }
        latencies[count++] = took;
      } catch {
        if (recording) errors += 1;
      }
    }
  };

  const clients = Array.from({ length: params.concurrency }, client);
  await new Promise((resolve) => setTimeout(resolve, params.warmupMs));
  recording = true;
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, params.durationMs));
  recording = false;
  const elapsedMs = performance.now() - started;
  stop = true;
  await Promise.all(clients);
  await pool.close();

  const sorted = latencies.subarray(0, count).sort();
  const at = (q: number) => sorted[Math.min(count - 1, Math.max(0, Math.ceil(q * count) - 1))] ?? Number.NaN;
  return {
    requests: count,
    errors,
    statuses,
    elapsedMs,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: at(1),
  };
}

const params = JSON.parse(process.argv[2] ?? '{}') as LoadParams;
run(params).then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
