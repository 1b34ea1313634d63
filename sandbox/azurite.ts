/**
 * Runs the installed Azurite (blob, queue and table) as a child process on loopback, for the test run
 * (in memory, free ports) and for `npm start` (persistent folder, the usual ports when free).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The emulator's one account and its published key (not a secret: it is in every Azure SDK). */
export const DEV_ACCOUNT_NAME = 'devstoreaccount1';
export const DEV_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
export const DEFAULT_AZURITE_PORTS: AzuritePorts = { blob: 10000, queue: 10001, table: 10002 };

const HOST = '127.0.0.1';

export interface AzuritePorts {
  blob: number;
  queue: number;
  table: number;
}

export interface AzuriteOptions {
  /** Persistent workspace folder; default: a fresh temp folder with `--inMemoryPersistence` (removed on stop). */
  location?: string;
  /** No access log (`--silent`). Without it Azurite's output goes to this process's stdout/stderr. */
  silent?: boolean;
  /** File for Azurite's debug log (`--debug`). */
  debugLog?: string;
  /** Exactly these ports; starting fails when one is taken. */
  ports?: AzuritePorts;
  /** These ports when all three are free, else free ones (e.g. `DEFAULT_AZURITE_PORTS` for `npm start`). */
  preferredPorts?: AzuritePorts;
  /** How long to wait for the table endpoint to answer; default 30 s. */
  startTimeoutMs?: number;
}

export interface AzuriteInstance {
  connectionString: string;
  blobUrl: string;
  queueUrl: string;
  tableUrl: string;
  ports: AzuritePorts;
  /** Process id of the Azurite child. */
  pid: number;
  /** Shuts Azurite down (gracefully, so a persistent workspace is flushed) and waits for it to exit. */
  stop(): Promise<void>;
}

/** The connection string of an Azurite on loopback at these ports. */
export function azuriteConnectionString(ports: AzuritePorts): string {
  const url = (port: number) => `http://${HOST}:${port}/${DEV_ACCOUNT_NAME}`;
  return (
    `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT_NAME};AccountKey=${DEV_ACCOUNT_KEY};` +
    `BlobEndpoint=${url(ports.blob)};QueueEndpoint=${url(ports.queue)};TableEndpoint=${url(ports.table)};`
  );
}

/** True when nothing listens on `port` at 127.0.0.1. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => {
      done(false);
    });
    server.listen(port, HOST, () => {
      server.close(() => {
        done(true);
      });
    });
  });
}

/** Three distinct ports that were free a moment ago (Azurite does not take port 0). */
export async function findFreePorts(): Promise<AzuritePorts> {
  const servers = [createServer(), createServer(), createServer()];
  const ports = await Promise.all(
    servers.map(
      (server) =>
        new Promise<number>((done, fail) => {
          server.once('error', fail);
          server.listen(0, HOST, () => {
            const address = server.address();
            if (address === null || typeof address === 'string') fail(new Error('no port'));
            else done(address.port);
          });
        }),
    ),
  );
  await Promise.all(servers.map((server) => new Promise((done) => server.close(done))));
  const [blob, queue, table] = ports as [number, number, number];
  return { blob, queue, table };
}

/** Any HTTP answer (Azurite says 400/403 to a bare GET) means the endpoint is up. */
function answers(url: string): Promise<boolean> {
  return new Promise((done) => {
    const req = request(url, { method: 'GET', timeout: 1000, agent: false }, (res) => {
      res.resume();
      done(true);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => {
      done(false);
    });
    req.end();
  });
}

/**
 * Run inside the child (via `node -e`): starts Azurite's CLI entry as if it were the script, and shuts it
 * down when the parent goes away (the IPC channel closes even when the parent is killed with SIGKILL).
 */
function childBootstrap(azuriteMain: string): string {
  return [
    `const main = ${JSON.stringify(azuriteMain)};`,
    'process.argv.splice(1, 0, main);',
    "process.once('disconnect', () => {",
    '  setTimeout(() => process.exit(0), 5000).unref();',
    "  process.kill(process.pid, 'SIGTERM');",
    '});',
    'require(main);',
  ].join('\n');
}

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveChildren) child.kill('SIGTERM');
  });
}

class StartError extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message);
  }
}

async function startOnce(options: AzuriteOptions, ports: AzuritePorts): Promise<AzuriteInstance> {
  const azuriteMain = require.resolve('azurite/dist/src/azurite.js');
  const temporary = options.location === undefined ? mkdtempSync(join(tmpdir(), 'azurite-')) : undefined;
  const args = [
    '--blobHost',
    HOST,
    '--blobPort',
    String(ports.blob),
    '--queueHost',
    HOST,
    '--queuePort',
    String(ports.queue),
    '--tableHost',
    HOST,
    '--tablePort',
    String(ports.table),
    '--skipApiVersionCheck',
    '--loose',
    '--disableTelemetry',
  ];
  // Azurite refuses --location with --inMemoryPersistence: in memory, the temp folder is its working directory.
  if (temporary === undefined) args.push('--location', resolve(options.location as string));
  else args.push('--inMemoryPersistence');
  if (options.silent === true) args.push('--silent');
  if (options.debugLog !== undefined) args.push('--debug', resolve(options.debugLog));

  // Custom accounts would replace devstoreaccount1, which the connection string names.
  const env = { ...process.env };
  delete env.AZURITE_ACCOUNTS;
  const child = spawn(process.execPath, ['-e', childBootstrap(azuriteMain), '--', ...args], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env,
    cwd: temporary ?? process.cwd(),
    windowsHide: true,
  });
  liveChildren.add(child);
  installExitHook();

  let output = '';
  const collect = (chunk: Buffer, sink: NodeJS.WriteStream) => {
    output = (output + chunk.toString('utf8')).slice(-4000);
    if (options.silent !== true) sink.write(chunk);
  };
  child.stdout?.on('data', (chunk: Buffer) => {
    collect(chunk, process.stdout);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    collect(chunk, process.stderr);
  });

  const exited = new Promise<void>((done) => {
    child.once('exit', () => {
      liveChildren.delete(child);
      if (temporary !== undefined) rmSync(temporary, { recursive: true, force: true });
      done();
    });
  });
  const status = { exited: false };
  void exited.then(() => {
    status.exited = true;
  });

  const stop = async (): Promise<void> => {
    if (status.exited) return;
    // Through the IPC channel: the bootstrap sends Azurite its own SIGTERM shutdown, then exits.
    if (child.connected) child.disconnect();
    else child.kill('SIGTERM');
    const killTimer = setTimeout(() => child.kill('SIGKILL'), 8000);
    await exited;
    clearTimeout(killTimer);
  };

  const base = (port: number) => `http://${HOST}:${port}/${DEV_ACCOUNT_NAME}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 30000);
  for (;;) {
    if (status.exited) {
      const reason = /Exit due to unhandled error: .*/.exec(output)?.[0] ?? output.trim();
      throw new StartError(
        `Azurite exited while starting (ports ${ports.blob}/${ports.queue}/${ports.table}): ${reason}`,
        /EADDRINUSE/.test(output),
      );
    }
    // Azurite starts blob, queue and table in that order: the table endpoint answering means all three do.
    if (await answers(`${base(ports.table)}/Tables`)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new StartError(`Azurite did not answer within the start timeout: ${output.trim()}`, false);
    }
    await new Promise((done) => setTimeout(done, 100));
  }

  return {
    connectionString: azuriteConnectionString(ports),
    blobUrl: base(ports.blob),
    queueUrl: base(ports.queue),
    tableUrl: base(ports.table),
    ports,
    pid: child.pid ?? -1,
    stop,
  };
}

export async function startAzurite(options: AzuriteOptions = {}): Promise<AzuriteInstance> {
  if (options.ports) return startOnce(options, options.ports);
  if (options.preferredPorts) {
    const preferred = options.preferredPorts;
    const free = await Promise.all([preferred.blob, preferred.queue, preferred.table].map(isPortFree));
    if (free.every(Boolean)) {
      try {
        return await startOnce(options, preferred);
      } catch (error) {
        if (!(error instanceof StartError && error.portInUse)) throw error;
      }
    }
  }
  // Free ports can be taken between choosing and binding them: try again with others.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options, await findFreePorts());
    } catch (error) {
      if (!(error instanceof StartError && error.portInUse) || attempt >= 3) throw error;
    }
  }
}
