/** The benchmarks' emulator child process (emulators-child.ts) and the typed IPC calls it answers. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { EntraStats } from '../../sandbox/entra';
import type { KeyVaultStats } from '../../sandbox/keyvault';

export interface InitParams {
  pkiDir: string;
  redirectUri: string;
  clientSecret: string;
  user: { username: string; password: string };
  /** Key Vault throttling (the service's 300 writes / 4,000 others per 10 s), or `false` for none. */
  vaultLimits: { writesPer10s: number; othersPer10s: number } | false;
}

export interface EmulatorInfo {
  entraUrl: string;
  tenantId: string;
  clientId: string;
  vaultUrl: string;
  identity: { endpoint: string; header: string; clientId: string };
}

/** The vault's counters as they cross the process boundary (JSON: no `reset`). */
export type KeyVaultStatsView = Omit<KeyVaultStats, 'reset'>;

interface Calls {
  init: { params: InitParams; result: EmulatorInfo };
  mint: {
    params: { username: string; clientId: string; scopes: string[]; count: number };
    result: string[];
  };
  latency: { params: { entraMs: number; vaultMs: number }; result: null };
  entraStats: { params: null; result: EntraStats };
  vaultStats: { params: null; result: KeyVaultStatsView };
  resetStats: { params: null; result: null };
  advanceVaultClock: { params: { ms: number }; result: null };
  memory: { params: null; result: number };
  close: { params: null; result: null };
}

export type EmulatorRequest = {
  [M in keyof Calls]: { id: number; method: M; params: Calls[M]['params'] };
}[keyof Calls];

export type EmulatorResponse =
  { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

export interface Emulators {
  call<M extends keyof Calls>(method: M, params: Calls[M]['params']): Promise<Calls[M]['result']>;
  pid: number;
  close(): Promise<void>;
}

/** Starts emulators-child.ts under tsx with an IPC channel. */
export function startEmulatorProcess(): Emulators {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', join(__dirname, 'emulators-child.ts')],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: process.env,
    },
  );
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let exited = false;
  child.on('message', (message: EmulatorResponse) => {
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.ok) waiter.resolve(message.result);
    else waiter.reject(new Error(`emulator process: ${message.error}`));
  });
  child.once('exit', (code) => {
    exited = true;
    for (const waiter of pending.values()) waiter.reject(new Error(`emulator process exited (${code})`));
    pending.clear();
  });
  const call = <M extends keyof Calls>(method: M, params: Calls[M]['params']) =>
    new Promise<Calls[M]['result']>((resolve, reject) => {
      if (exited) {
        reject(new Error('emulator process has exited'));
        return;
      }
      const id = nextId++;
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      child.send({ id, method, params });
    });
  return {
    call,
    pid: child.pid ?? -1,
    async close() {
      if (exited) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      await call('close', null).catch(() => undefined);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    },
  };
}
