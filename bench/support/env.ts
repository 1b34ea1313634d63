/**
 * The broker as users run it (real MSAL, real Azure SDK clients, Azurite tables, the local HTTP
 * host) wired to the Entra and Key Vault emulators, for the benchmarks. Like test/support/harness.ts,
 * except that the emulators run in a child process (see emulators-child.ts), so the broker's CPU,
 * memory and latency figures are not mixed with theirs, and the logger only counts lines (10,000
 * refreshes would otherwise keep tens of thousands of log lines in memory).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type * as FunctionsEntry from '../../functions/index';
import type { Broker, BrokerOverrides } from '../../shared/broker';
import { createLogger } from '../../shared/logging';
import { startLocalHost, type LocalHost } from '../../scripts/host';
import { signIn } from '../../sandbox/entra/sign-in-driver';
import { ensureTestPki } from '../../sandbox/tls';
import { startAzurite, type AzuriteInstance } from '../../sandbox/azurite';
import { api, Browser, freePort, uniqueTablePrefix } from '../../sandbox/drive';
import { startEmulatorProcess, type EmulatorInfo, type Emulators } from './rpc';

/** The account the benchmarks sign in as (added to the Entra emulator with this password). */
export const BENCH_USER = { username: 'support@contoso.test', password: 'Support-Pass-1' } as const;

/** The parts of the built bundle the benchmarks use (functions/index.ts exports them for this). */
type BuiltEntry = Pick<typeof FunctionsEntry, 'createBroker' | 'loadConfig' | 'adaptHttp' | 'httpFunctions'>;

/**
 * The compiled `dist/functions/index.js` that Azure runs (`npm run bench` builds it first), loaded
 * with the broker's settings in the environment as the host would: its broker and handlers are
 * what the benchmarks measure, not the TypeScript sources.
 */
function loadBuiltEntry(env: Record<string, string>): BuiltEntry {
  const entry = resolve(__dirname, '..', '..', 'dist', 'functions', 'index.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` (npm run bench does)`);
  Object.assign(process.env, env);
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the built bundle, loaded as the host loads it
  return require(entry) as BuiltEntry;
}

export interface LogCounts {
  info: number;
  warn: number;
  error: number;
  /** The first warn/error lines, to show what went wrong. */
  samples: string[];
}

export interface BenchEnv {
  broker: Broker;
  host: LocalHost;
  baseUrl: string;
  emulators: Emulators;
  info: EmulatorInfo;
  azurite: AzuriteInstance;
  logs: LogCounts;
  /** The broker's settings. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export interface BenchEnvOptions {
  vaultLimits: { writesPer10s: number; othersPer10s: number } | false;
  env?: Record<string, string>;
  brokerOverrides?: BrokerOverrides;
}

export async function startBenchEnv(options: BenchEnvOptions): Promise<BenchEnv> {
  const pkiDir = process.env.TEST_PKI_DIR;
  if (!pkiDir) throw new Error('TEST_PKI_DIR is not set: run through `npm run bench`');
  ensureTestPki(pkiDir);
  const azurite = await startAzurite({ silent: true });
  const emulators = startEmulatorProcess();
  const port = await freePort();
  const baseUrl = `http://localhost:${port}`;
  const clientSecret = randomBytes(24).toString('base64url');
  const info = await emulators.call('init', {
    pkiDir,
    redirectUri: `${baseUrl}/api/callback`,
    clientSecret,
    user: BENCH_USER,
    vaultLimits: options.vaultLimits,
  });
  // @azure/identity reads the App Service managed-identity endpoint from these variables itself.
  process.env.IDENTITY_ENDPOINT = info.identity.endpoint;
  process.env.IDENTITY_HEADER = info.identity.header;
  const env: Record<string, string> = {
    ENTRA_TENANT_ID: info.tenantId,
    ENTRA_CLIENT_ID: info.clientId,
    ENTRA_CLIENT_CREDENTIAL: 'secret',
    ENTRA_CLIENT_SECRET: clientSecret,
    ENTRA_AUTHORITY_HOST: info.entraUrl,
    PUBLIC_BASE_URL: baseUrl,
    AzureWebJobsStorage: azurite.connectionString,
    BROKER_TABLE_PREFIX: uniqueTablePrefix('b'),
    BROKER_LOCAL_ADMIN: 'true',
    KEY_VAULT_URL: info.vaultUrl,
    MANAGED_IDENTITY_CLIENT_ID: info.identity.clientId,
    ...options.env,
  };
  const logs: LogCounts = { info: 0, warn: 0, error: 0, samples: [] };
  const logger = createLogger((level, line) => {
    logs[level] += 1;
    if (level !== 'info' && logs.samples.length < 10) logs.samples.push(line.slice(0, 400));
  });
  const built = loadBuiltEntry(env);
  const broker = built.createBroker(built.loadConfig(env), { logger, ...options.brokerOverrides });
  const host = await startLocalHost({
    broker,
    port,
    hostname: '127.0.0.1',
    functions: { definitions: built.httpFunctions, adapt: built.adaptHttp },
  });
  return {
    broker,
    host,
    baseUrl,
    emulators,
    info,
    azurite,
    logs,
    env,
    async close() {
      await host.close();
      await emulators.close();
      await azurite.stop();
    },
  };
}

/** Defines a connection and authorizes it through the real sign-in pages (as authorizeConnection in harness.ts). */
export async function authorizeThroughSignIn(bench: BenchEnv, name: string): Promise<void> {
  const put = await api(bench.baseUrl, 'PUT', `/api/connections/${name}`, {
    mailbox: BENCH_USER.username,
    profile: 'ews',
  });
  if (put.status >= 300) throw new Error(`PUT connection ${name}: ${put.status} ${put.text}`);
  const browser = new Browser();
  const start = await browser.get(`${bench.baseUrl}/api/connections/${name}/authorize`);
  const location = start.headers.get('location') ?? '';
  const callbackUrl = await signIn(location, { ...BENCH_USER, consent: 'accept' });
  // Entra's response_mode=form_post: the browser POSTs the fields it was handed.
  const callback = await browser.postForm(
    `${callbackUrl.origin}${callbackUrl.pathname}`,
    callbackUrl.searchParams,
    new URL(location).origin,
  );
  await callback.text();
  const connection = await bench.broker.registry.get(name);
  if (connection?.status !== 'authorized') {
    throw new Error(`authorizing ${name} failed: callback ${callback.status}, status ${connection?.status}`);
  }
}

/** One line of the summary `npm run bench` prints. */
export interface SummaryRow {
  metric: string;
  value: string;
  target?: string;
  /** Whether the target was met (undefined: no target). */
  ok?: boolean;
}

export interface BenchResult {
  bench: string;
  rows: SummaryRow[];
  notes: string[];
}

/** The test PKI's folder (made on first use, never committed). */
export const PKI_DIR = resolve(__dirname, '..', '..', '.test-tmp', 'pki');

/**
 * Runs a benchmark file in a new node process that trusts the test CA. Node reads
 * NODE_EXTRA_CA_CERTS only at start, so it must be set before the process starts (as
 * scripts/run-tests.ts does for jest). Returns the exit status.
 */
export function spawnBench(file: string, extraEnv: Record<string, string> = {}, args: string[] = []): number {
  const pki = ensureTestPki(PKI_DIR);
  // BENCH_NODE_ARGS: extra node flags for the benchmark process, e.g. `--cpu-prof`.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const result = spawnSync(process.execPath, ['--expose-gc', ...nodeArgs, '--import', 'tsx', file, ...args], {
    stdio: 'inherit',
    env: {
      ...process.env,
      NODE_EXTRA_CA_CERTS: pki.caCertFile,
      TEST_PKI_DIR: PKI_DIR,
      BENCH_CHILD: '1',
      ...extraEnv,
    },
  });
  return result.status ?? 1;
}

/**
 * Runs a benchmark's main: started directly (`npx tsx bench/x.ts`), the file first starts itself
 * again through `spawnBench`. The result goes to BENCH_RESULT_FILE when bench/run.ts asked for it.
 */
export function benchMain(file: string, main: () => Promise<BenchResult>): void {
  if (!process.env.BENCH_CHILD) process.exit(spawnBench(file, {}, process.argv.slice(2)));
  main().then(
    (result) => {
      const out = process.env.BENCH_RESULT_FILE;
      if (out) writeFileSync(out, JSON.stringify(result));
      process.exit(0);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
