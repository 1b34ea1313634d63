/**
 * Cold import of the Functions entry, as the host loads it at start-up: `require` of the built
 * `dist/functions/index.js` (the bundle `npm run build` makes; the bench builds it when missing),
 * against a bare `require` of the Azure SDKs that entry uses, each in a fresh node process,
 * interleaved so machine noise hits both alike. Also prints what the rest costs, module by module,
 * and checks that loading the entry does not load ews-javascript-api or undici (they load on use).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { benchMain, type BenchResult } from './support/env';
import { quantile } from './support/measure';

const root = resolve(__dirname, '..');
const ENTRY = join(root, 'dist', 'functions', 'index.js');
const SDKS = [
  '@azure/functions',
  '@azure/msal-node',
  '@azure/data-tables',
  '@azure/keyvault-secrets',
  '@azure/identity',
];
const RUNS = Number(process.env.IMPORT_RUNS ?? 15);
const TARGET_RATIO = 1.3;

const SETTINGS = {
  ENTRA_TENANT_ID: '11111111-2222-3333-4444-555555555555',
  ENTRA_CLIENT_ID: '66666666-7777-8888-9999-000000000000',
  ENTRA_CLIENT_SECRET: 'bench-only',
  BROKER_LOCAL_SECRET_KEY: Buffer.alloc(32, 1).toString('base64'),
};

/** Milliseconds one fresh process spends in `require` of the given modules, in order (cumulative). */
function timeRequires(modules: string[]): number[] {
  const script = `
    const marks = [];
    const start = process.hrtime.bigint();
    for (const m of ${JSON.stringify(modules)}) { require(m); marks.push(Number(process.hrtime.bigint() - start) / 1e6); }
    const loaded = Object.keys(require.cache);
    process.stdout.write(JSON.stringify({ marks, ews: loaded.some((f) => f.includes('ews-javascript-api')), undici: loaded.some((f) => f.includes('/undici/')) }));`;
  const result = spawnSync(process.execPath, ['-e', script], {
    cwd: root,
    env: { PATH: process.env.PATH, ...SETTINGS },
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`import failed: ${result.stderr}`);
  const parsed = JSON.parse(result.stdout) as { marks: number[]; ews: boolean; undici: boolean };
  if (parsed.ews || parsed.undici) lazyViolations.add(parsed.ews ? 'ews-javascript-api' : 'undici');
  return parsed.marks;
}

const lazyViolations = new Set<string>();
const median = (values: number[]) =>
  quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );

benchMain(__filename, () => {
  if (!existsSync(ENTRY)) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  const bare: number[] = [];
  const entry: number[] = [];
  const steps: number[][] = [];
  // In load order: the SDKs, then what the bundle adds (its own code and the tree-shaken zod).
  const breakdown = [...SDKS, ENTRY];
  timeRequires(SDKS); // warm the file system cache once, for both sides
  for (let run = 0; run < RUNS; run++) {
    bare.push(timeRequires(SDKS).at(-1) ?? Number.NaN);
    entry.push(timeRequires([ENTRY]).at(-1) ?? Number.NaN);
    steps.push(timeRequires(breakdown));
  }
  const bareMs = median(bare);
  const entryMs = median(entry);
  const ratio = entryMs / bareMs;
  const cumulative = breakdown.map((_, index) => median(steps.map((marks) => marks[index] ?? Number.NaN)));
  const labels = [...SDKS, 'the bundle: functions/, shared/, zod (tree-shaken), registration'];
  console.log(
    `\nimport of dist/functions/index.js: ${entryMs.toFixed(0)} ms; bare Azure SDKs: ${bareMs.toFixed(0)} ms; ratio ${ratio.toFixed(2)} (median of ${RUNS})`,
  );
  console.log('what costs what (one process, in load order, median ms):');
  cumulative.forEach((ms, index) => {
    const step = ms - (cumulative[index - 1] ?? 0);
    console.log(`  ${(labels[index] ?? '').padEnd(38)} ${step.toFixed(1).padStart(6)}`);
  });
  const notes = [
    `what costs what: ${cumulative.map((ms, i) => `${labels[i]} ${(ms - (cumulative[i - 1] ?? 0)).toFixed(0)} ms`).join(', ')}`,
  ];
  if (lazyViolations.size > 0)
    notes.push(`loaded at start-up although meant to be lazy: ${[...lazyViolations].join(', ')}`);
  const result: BenchResult = {
    bench: 'import-time',
    rows: [
      { metric: 'bare import of the Azure SDKs (baseline)', value: `${bareMs.toFixed(0)} ms` },
      { metric: 'import of dist/functions/index.js', value: `${entryMs.toFixed(0)} ms` },
      {
        metric: 'entry ÷ bare SDKs',
        value: ratio.toFixed(2),
        target: `≤ ${TARGET_RATIO}`,
        ok: ratio <= TARGET_RATIO,
      },
      {
        metric: 'ews-javascript-api and undici loaded at start-up',
        value: lazyViolations.size === 0 ? 'no' : [...lazyViolations].join(', '),
        target: 'no',
        ok: lazyViolations.size === 0,
      },
    ],
    notes,
  };
  return Promise.resolve(result);
});
