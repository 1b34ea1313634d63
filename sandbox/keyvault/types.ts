/** The Key Vault emulator's public surface: options, fault controls, counters and the test's view of stored secrets. */
import type { TestPki } from '../tls';

export type KeyVaultOperation =
  | 'get'
  | 'set'
  | 'update'
  | 'delete'
  | 'list'
  | 'listVersions'
  | 'listDeleted'
  | 'getDeleted'
  | 'recover'
  | 'purge';

export interface KeyVaultEmulatorOptions {
  pki: TestPki;
  port?: number;
  /** Authority sent in the challenge, e.g. `https://127.0.0.1:4443/<tenantId>` (the SDK takes the tenant from its path). */
  authority: string;
  /** Decides whether a bearer token (without the `Bearer ` prefix) is valid for this vault. */
  verifyToken: (bearer: string) => boolean | Promise<boolean>;
  /** Clock in ms (default `Date.now`): timestamps, throttling windows, deletion/recovery completion. */
  now?: () => number;
  /** Purge protection: `recoveryLevel` is `Recoverable` and purge answers 403. */
  purgeProtection?: boolean;
  /** How long a DELETE takes to complete (GET /deletedsecrets/{name} answers 404 meanwhile). Default 0. */
  deleteDelayMs?: number;
  /** How long a recovery takes to complete (GET /secrets/{name} answers 404 meanwhile). Default 0. */
  recoverDelayMs?: number;
  /** How long a purge takes before the name can be reused (PUT answers 409 meanwhile). Default 0. */
  purgeDelayMs?: number;
  /** Per-vault limits per 10 s window (default: the service's 300 secret writes / 4,000 other transactions); `false` disables. */
  limits?: { writesPer10s: number; othersPer10s: number } | false;
  /** Soft-delete retention (7–90 days in the real service). Default 90. */
  retentionDays?: number;
  /** Value of `x-ms-keyvault-region`. Default `emulator`. */
  region?: string;
}

export interface FailNextOptions {
  status: 429 | 500 | 503;
  retryAfterSeconds?: number;
  /** Which operation fails; `any` (default) matches every authenticated request. */
  operation?: KeyVaultOperation | 'any';
  /** Only requests for this secret name (case-insensitive string, or a pattern). */
  name?: string | RegExp;
}

export interface KeyVaultFaults {
  /** Added before every response (ms). */
  latencyMs: number;
  /** The next `count` matching authenticated requests fail with `status`. */
  failNext(count: number, options: FailNextOptions): void;
  /** The next `count` matching authenticated requests get their connection destroyed (a network error). */
  resetNext(count: number, options?: Omit<FailNextOptions, 'status' | 'retryAfterSeconds'>): void;
  /** Drops queued faults and latency. */
  clear(): void;
}

export interface RequestRecord {
  method: string;
  path: string;
  operation: KeyVaultOperation | 'unknown';
  name: string | undefined;
  /** HTTP status answered; -1 when the connection was reset by an injected fault. */
  status: number;
  /** The request carried a token the vault accepted. */
  authenticated: boolean;
  apiVersion: string | null;
}

/**
 * Counts of requests received, whatever the answer (a throttled or failed write is still a write
 * request). Per-operation counts only include authenticated requests (not the challenge round).
 */
export interface KeyVaultStats {
  requests: number;
  byOperation: Record<KeyVaultOperation, number>;
  byStatus: Record<number, number>;
  /** Secret reads: get, list, listVersions, listDeleted, getDeleted. */
  reads: number;
  /** Secret writes: set (PUT) and update (PATCH). */
  writes: number;
  /** Deletes (DELETE /secrets) and purges. */
  deletes: number;
  recoveries: number;
  throttled: number;
  unauthorized: number;
  conflicts: number;
  faultsInjected: number;
  /** The last 1,000 requests, oldest first (no bodies, no tokens). */
  log: RequestRecord[];
  reset: () => void;
}

export interface SecretVersionView {
  name: string;
  version: string;
  value: string;
  contentType: string | undefined;
  tags: Record<string, string> | undefined;
  enabled: boolean;
  notBefore: number | undefined;
  expires: number | undefined;
  created: number;
  updated: number;
}

export type SecretState = 'active' | 'deleting' | 'deleted' | 'recovering' | 'purging';

export interface KeyVaultSecretsView {
  /** Names of secrets in any state (as first written). */
  names(): string[];
  state(name: string): SecretState | undefined;
  /** The current version of an active (or recovering) secret. */
  current(name: string): SecretVersionView | undefined;
  versions(name: string): SecretVersionView[];
  /** Whether any stored version of any secret holds `value` (for "value never left the vault" checks). */
  containsValue(value: string): boolean;
}

export interface KeyVaultEmulator {
  /** `https://127.0.0.1:{port}` */
  url: string;
  faults: KeyVaultFaults;
  stats: KeyVaultStats;
  secrets: KeyVaultSecretsView;
  close(): Promise<void>;
}
