/**
 * `npm run bench`: runs the benchmarks in sequence, each in a process of its own that trusts the
 * test CA (refresh-sweep.ts: one timer run over 10,000 connections; token-read.ts: the warm token
 * route against a bare HTTP server; vault-capacity.ts: Key Vault writes per refresh and the
 * connections one vault sustains), then prints a summary table of their figures. Figures are
 * printed, never asserted: a missed target is shown as such, and only a crashed benchmark makes
 * the run fail. `npm run bench -- token-read` runs only the named ones.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawnBench, type BenchResult } from './support/env';

const BENCHES = ['import-time', 'refresh-sweep', 'token-read', 'vault-capacity'] as const;

const selected = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const unknown = selected.filter((name) => !(BENCHES as readonly string[]).includes(name));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; choose from ${BENCHES.join(', ')}`);
  process.exit(2);
}
const toRun = selected.length > 0 ? BENCHES.filter((name) => selected.includes(name)) : [...BENCHES];

const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, node ${process.version}`;
console.log(`benchmarks: ${toRun.join(', ')} on ${machine}`);

// Every benchmark measures the bundle Azure runs (dist/functions/index.js): build it from this tree first.
execFileSync('npm', ['run', 'build'], { cwd: join(__dirname, '..'), stdio: 'inherit' });

const dir = mkdtempSync(join(tmpdir(), 'broker-bench-'));
const results: BenchResult[] = [];
const failed: string[] = [];
const timings: Record<string, number> = {};
const startedAll = performance.now();
for (const name of toRun) {
  console.log(`\n=== ${name} ===`);
  const resultFile = join(dir, `${name}.json`);
  const started = performance.now();
  const status = spawnBench(join(__dirname, `${name}.ts`), { BENCH_RESULT_FILE: resultFile });
  timings[name] = performance.now() - started;
  if (status !== 0) {
    failed.push(name);
    continue;
  }
  results.push(JSON.parse(readFileSync(resultFile, 'utf8')) as BenchResult);
}
rmSync(dir, { recursive: true, force: true });

const table: string[][] = [['benchmark', 'metric', 'value', 'target', '']];
for (const result of results) {
  for (const row of result.rows) {
    const verdict = row.ok === undefined ? '' : row.ok ? 'met' : 'MISSED';
    table.push([result.bench, row.metric, row.value, row.target ?? '', verdict]);
  }
}
const widths = (table[0] ?? []).map((_, column) =>
  Math.max(...table.map((line) => (line[column] ?? '').length)),
);
const format = (line: string[]) =>
  line
    .map((cell, column) => cell.padEnd(widths[column] ?? 0))
    .join('  ')
    .trimEnd();
console.log(`\n=== summary (${machine}) ===`);
console.log(format(table[0] ?? []));
console.log(widths.map((width) => '-'.repeat(width)).join('  '));
for (const line of table.slice(1)) console.log(format(line));
for (const result of results) for (const note of result.notes) console.log(`note (${result.bench}): ${note}`);
console.log(
  `\ntime: ${toRun.map((name) => `${name} ${((timings[name] ?? 0) / 1000).toFixed(0)} s`).join(', ')}; total ${((performance.now() - startedAll) / 1000).toFixed(0)} s`,
);
if (failed.length > 0) {
  console.error(`failed: ${failed.join(', ')}`);
  process.exit(1);
}
