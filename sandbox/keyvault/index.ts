/**
 * A Key Vault (secrets) emulator on loopback that speaks the REST protocol the real
 * `@azure/keyvault-secrets` SecretClient uses: the bearer challenge, `PUT/GET/PATCH /secrets`,
 * soft delete with eventually consistent deletion and recovery (what the SDK pollers wait for),
 * purge (and purge protection), paging with `nextLink`, the service's throttling limits and its
 * error bodies. Faults (latency, 429/5xx, connection resets) can be injected; `stats` counts what
 * the vault saw.
 *
 * Wire shapes follow recordings of the real service (SDK test recordings): error bodies
 * `{"error":{"code","message","innererror"?}}`, unix-second timestamps, 32-hex versions,
 * `x-ms-request-id` / `x-ms-keyvault-service-version` on every response.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TestPki } from '../tls';
import { listenOnLoopback } from '../listen';

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

/** The service version string real responses carry (format only; any value works for the SDK). */
const SERVICE_VERSION = '1.9.2750.1';
const RESOURCE = 'https://vault.azure.net';
const WINDOW_MS = 10_000;
const MAX_VALUE_BYTES = 25_600;
const MAX_BODY_BYTES = 1_048_576;
const MAX_RESULTS = 25;
const NAME = /^[0-9a-zA-Z-]{1,127}$/;
const VERSION = /^[0-9a-f]{32}$/i;
const API_VERSIONS = new Set([
  '2016-10-01',
  '7.0',
  '7.1',
  '7.2',
  '7.3',
  '7.4',
  '7.5',
  '7.6',
  '7.6-preview.2',
  '2025-07-01',
]);

interface StoredVersion {
  version: string;
  value: string;
  contentType: string | undefined;
  tags: Record<string, string> | undefined;
  enabled: boolean;
  nbf: number | undefined;
  exp: number | undefined;
  created: number;
  updated: number;
}

interface StoredSecret {
  /** Name as first written (Key Vault names are case-insensitive). */
  name: string;
  versions: StoredVersion[];
  state: SecretState;
  /** When the current transition (deleting, recovering, purging) completes (ms). */
  transitionEndsAt: number;
  deletedDate: number | undefined;
  scheduledPurgeDate: number | undefined;
}

interface Fault {
  remaining: number;
  kind: 'status' | 'reset';
  status: number;
  retryAfterSeconds: number | undefined;
  operation: KeyVaultOperation | 'any';
  name: string | RegExp | undefined;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const unixSeconds = (ms: number) => Math.floor(ms / 1000);

function newStats(): KeyVaultStats {
  const stats: KeyVaultStats = {
    requests: 0,
    byOperation: {
      get: 0,
      set: 0,
      update: 0,
      delete: 0,
      list: 0,
      listVersions: 0,
      listDeleted: 0,
      getDeleted: 0,
      recover: 0,
      purge: 0,
    },
    byStatus: {},
    reads: 0,
    writes: 0,
    deletes: 0,
    recoveries: 0,
    throttled: 0,
    unauthorized: 0,
    conflicts: 0,
    faultsInjected: 0,
    log: [],
    reset: () => {
      const fresh: Partial<KeyVaultStats> = newStats();
      delete fresh.reset;
      Object.assign(stats, fresh);
    },
  };
  return stats;
}

interface Route {
  operation: KeyVaultOperation;
  name: string | undefined;
  version: string | undefined;
}

/** Maps method + path to an operation; undefined when Key Vault has no such secrets route. */
function route(method: string, segments: string[]): Route | undefined {
  const [collection, name, third, ...rest] = segments as (string | undefined)[];
  if (rest.length > 0) return undefined;
  if (collection === 'secrets') {
    if (name === undefined)
      return method === 'GET' ? { operation: 'list', name, version: undefined } : undefined;
    if (third === 'versions' && method === 'GET')
      return { operation: 'listVersions', name, version: undefined };
    if (method === 'GET') return { operation: 'get', name, version: third || undefined };
    if (method === 'PUT' && !third) return { operation: 'set', name, version: undefined };
    if (method === 'PATCH') return { operation: 'update', name, version: third || undefined };
    if (method === 'DELETE' && !third) return { operation: 'delete', name, version: undefined };
    return undefined;
  }
  if (collection === 'deletedsecrets') {
    if (name === undefined)
      return method === 'GET' ? { operation: 'listDeleted', name, version: undefined } : undefined;
    if (third === 'recover' && method === 'POST') return { operation: 'recover', name, version: undefined };
    if (third) return undefined;
    if (method === 'GET') return { operation: 'getDeleted', name, version: undefined };
    if (method === 'DELETE') return { operation: 'purge', name, version: undefined };
  }
  return undefined;
}

const isWrite = (operation: KeyVaultOperation) => operation === 'set';

export async function startKeyVaultEmulator(options: KeyVaultEmulatorOptions): Promise<KeyVaultEmulator> {
  const now = options.now ?? Date.now;
  const purgeProtection = options.purgeProtection ?? false;
  const deleteDelayMs = options.deleteDelayMs ?? 0;
  const recoverDelayMs = options.recoverDelayMs ?? 0;
  const purgeDelayMs = options.purgeDelayMs ?? 0;
  const retentionDays = options.retentionDays ?? 90;
  const region = options.region ?? 'emulator';
  const limits =
    options.limits === false ? undefined : (options.limits ?? { writesPer10s: 300, othersPer10s: 4000 });
  const recoveryLevel = purgeProtection ? 'Recoverable' : 'Recoverable+Purgeable';

  const store = new Map<string, StoredSecret>();
  const stats = newStats();
  const faultQueue: Fault[] = [];
  const windows = { writes: [] as number[], others: [] as number[] };
  const sockets = new Set<Socket>();
  let latencyMs = 0;
  let url = '';

  // ---- state transitions (evaluated lazily against the clock) ----------------------------------

  function settle(secret: StoredSecret): void {
    const t = now();
    if (secret.state === 'deleting' && t >= secret.transitionEndsAt) secret.state = 'deleted';
    if (secret.state === 'recovering' && t >= secret.transitionEndsAt) {
      secret.state = 'active';
      secret.deletedDate = undefined;
      secret.scheduledPurgeDate = undefined;
    }
    if (
      secret.state === 'deleted' &&
      secret.scheduledPurgeDate !== undefined &&
      t >= secret.scheduledPurgeDate
    ) {
      // Retention over: the service purges on its own.
      secret.state = 'purging';
      secret.transitionEndsAt = t;
    }
    if (secret.state === 'purging' && t >= secret.transitionEndsAt) store.delete(secret.name.toLowerCase());
  }

  function lookup(name: string): StoredSecret | undefined {
    const secret = store.get(name.toLowerCase());
    if (!secret) return undefined;
    settle(secret);
    return store.get(name.toLowerCase());
  }

  // ---- wire shapes ------------------------------------------------------------------------------

  function attributes(version: StoredVersion): Record<string, unknown> {
    return {
      enabled: version.enabled,
      ...(version.nbf !== undefined ? { nbf: version.nbf } : {}),
      ...(version.exp !== undefined ? { exp: version.exp } : {}),
      created: version.created,
      updated: version.updated,
      recoveryLevel,
      recoverableDays: retentionDays,
    };
  }

  function bundle(secret: StoredSecret, version: StoredVersion, withValue: boolean): Record<string, unknown> {
    return {
      ...(withValue ? { value: version.value } : {}),
      ...(version.contentType !== undefined ? { contentType: version.contentType } : {}),
      id: `${url}/secrets/${secret.name}/${version.version}`,
      attributes: attributes(version),
      ...(version.tags !== undefined ? { tags: version.tags } : {}),
    };
  }

  function deletedBundle(
    secret: StoredSecret,
    version: StoredVersion,
    withValue: boolean,
  ): Record<string, unknown> {
    return {
      recoveryId: `${url}/deletedsecrets/${secret.name}`,
      deletedDate: unixSeconds(secret.deletedDate ?? now()),
      scheduledPurgeDate: unixSeconds(secret.scheduledPurgeDate ?? now()),
      ...bundle(secret, version, withValue),
    };
  }

  function item(secret: StoredSecret, version: StoredVersion, withVersion: boolean): Record<string, unknown> {
    return {
      id: withVersion ? `${url}/secrets/${secret.name}/${version.version}` : `${url}/secrets/${secret.name}`,
      attributes: attributes(version),
      ...(version.contentType !== undefined ? { contentType: version.contentType } : {}),
      ...(version.tags !== undefined ? { tags: version.tags } : {}),
    };
  }

  const latest = (secret: StoredSecret): StoredVersion => {
    const last = secret.versions.at(-1);
    if (!last) throw new Error('secret without versions');
    return last;
  };

  // ---- errors the real service gives --------------------------------------------------------------

  const notFound = (name: string, version?: string) =>
    new HttpError(
      404,
      'SecretNotFound',
      `A secret with (name/id) ${version ? `${name}/${version}` : name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
    );
  const deletedNotFound = (name: string) =>
    new HttpError(404, 'SecretNotFound', `Deleted Secret not found: ${name}`);
  const badParameter = (message: string) => new HttpError(400, 'BadParameter', message);
  /** An active secret and the version asked for (its latest without one): 404 otherwise. */
  const activeVersion = (name: string, wanted: string | undefined) => {
    const secret = lookup(name);
    if (!secret || secret.state !== 'active') throw notFound(name, wanted);
    const version =
      wanted === undefined
        ? latest(secret)
        : secret.versions.find((v) => v.version.toLowerCase() === wanted.toLowerCase());
    if (!version) throw notFound(name, wanted);
    return { secret, version };
  };
  /** The soft-deleted secret recover and purge act on: 404 unless deleted, 409 while still being deleted. */
  const softDeleted = (name: string): StoredSecret => {
    const secret = lookup(name);
    if (!secret || secret.state === 'active' || secret.state === 'recovering' || secret.state === 'purging')
      throw deletedNotFound(name);
    if (secret.state === 'deleting') throw conflictFor(secret);
    return secret;
  };
  const conflictFor = (secret: StoredSecret): HttpError => {
    switch (secret.state) {
      case 'deleted':
        return new HttpError(
          409,
          'Conflict',
          `Secret ${secret.name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
          'ObjectIsDeletedButRecoverable',
        );
      case 'recovering':
        return new HttpError(
          409,
          'Conflict',
          `Secret ${secret.name} is currently being recovered.`,
          'ObjectIsBeingRecovered',
        );
      default:
        return new HttpError(
          409,
          'Conflict',
          `Secret ${secret.name} is currently being deleted.`,
          'ObjectIsBeingDeleted',
        );
    }
  };

  // ---- validation ---------------------------------------------------------------------------------

  function validateName(name: string | undefined): string {
    if (name === undefined || !NAME.test(name)) {
      throw badParameter(`The request URI contains an invalid name: ${name ?? ''}`);
    }
    return name;
  }

  function validateTags(tags: unknown): Record<string, string> | undefined {
    if (tags === undefined || tags === null) return undefined;
    if (typeof tags !== 'object' || Array.isArray(tags))
      throw badParameter('Tags must be an object of string values.');
    const entries = Object.entries(tags as Record<string, unknown>);
    if (entries.length > 15)
      throw badParameter('Number of tags exceeds the limit. A maximum of 15 tags is allowed.');
    for (const [key, value] of entries) {
      if (typeof value !== 'string')
        throw badParameter(`Tag '${key.slice(0, 40)}' must have a string value.`);
      if (key.length > 512)
        throw badParameter('Tag name is too long. The maximum length of a tag name is 512 characters.');
      if (value.length > 256)
        throw badParameter('Tag value is too long. The maximum length of a tag value is 256 characters.');
    }
    return Object.fromEntries(entries) as Record<string, string>;
  }

  interface ParsedAttributes {
    enabled: boolean | undefined;
    nbf: number | undefined;
    exp: number | undefined;
  }

  function validateAttributes(value: unknown): ParsedAttributes {
    if (value === undefined || value === null) return { enabled: undefined, nbf: undefined, exp: undefined };
    if (typeof value !== 'object') throw badParameter('Property attributes has invalid value');
    const raw = value as Record<string, unknown>;
    const seconds = (key: string): number | undefined => {
      const v = raw[key];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'number' || !Number.isInteger(v))
        throw badParameter(`Property ${key} has invalid value`);
      return v;
    };
    const enabled = raw.enabled;
    if (enabled !== undefined && enabled !== null && typeof enabled !== 'boolean') {
      throw badParameter('Property enabled has invalid value');
    }
    return {
      enabled: typeof enabled === 'boolean' ? enabled : undefined,
      nbf: seconds('nbf'),
      exp: seconds('exp'),
    };
  }

  function validateContentType(value: unknown): string | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') throw badParameter('Property contentType has invalid value');
    if (value.length > 255)
      throw badParameter('Content type is too long. The maximum length is 255 characters.');
    return value;
  }

  function parseJson(body: string): Record<string, unknown> {
    if (body.trim() === '') throw badParameter('The request body is empty.');
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw badParameter('The request body is not valid JSON.');
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
      throw badParameter('The request body is not a JSON object.');
    return parsed as Record<string, unknown>;
  }

  // ---- paging -------------------------------------------------------------------------------------

  function page<T>(
    all: T[],
    query: URLSearchParams,
    path: string,
    apiVersion: string,
    render: (item: T) => Record<string, unknown>,
  ): Record<string, unknown> {
    const maxParam = query.get('maxresults');
    let max = MAX_RESULTS;
    if (maxParam !== null) {
      max = Number(maxParam);
      if (!Number.isInteger(max) || max < 1 || max > MAX_RESULTS) {
        throw badParameter(
          `Invalid value for maxresults: ${maxParam.slice(0, 20)}. The value must be between 1 and 25.`,
        );
      }
    }
    let offset = 0;
    const skip = query.get('$skiptoken');
    if (skip !== null) {
      try {
        const decoded = JSON.parse(Buffer.from(skip, 'base64url').toString('utf8')) as { offset?: unknown };
        if (typeof decoded.offset !== 'number') throw new Error('bad token');
        offset = decoded.offset;
      } catch {
        throw badParameter('The $skiptoken is invalid.');
      }
    }
    const slice = all.slice(offset, offset + max);
    const next = offset + max < all.length;
    const nextLink = next
      ? `${url}${path}?api-version=${encodeURIComponent(apiVersion)}&$skiptoken=${Buffer.from(
          JSON.stringify({ offset: offset + max }),
        ).toString('base64url')}${maxParam !== null ? `&maxresults=${max}` : ''}`
      : null;
    return { value: slice.map(render), nextLink };
  }

  // ---- operations ---------------------------------------------------------------------------------

  function handle(
    r: Route,
    query: URLSearchParams,
    body: string,
    apiVersion: string,
  ): { status: number; body?: unknown } {
    switch (r.operation) {
      case 'set': {
        const name = validateName(r.name);
        const parsed = parseJson(body);
        const value = parsed.value;
        if (typeof value !== 'string')
          throw badParameter("Property 'value' is required and must be a string.");
        if (Buffer.byteLength(value, 'utf8') > MAX_VALUE_BYTES) {
          throw badParameter(
            `Secret is beyond the maximum permitted length of ${MAX_VALUE_BYTES} characters.`,
          );
        }
        const contentType = validateContentType(parsed.contentType);
        const tags = validateTags(parsed.tags);
        const attrs = validateAttributes(parsed.attributes);
        let secret = lookup(name);
        if (secret && secret.state !== 'active') throw conflictFor(secret);
        const t = unixSeconds(now());
        const version: StoredVersion = {
          version: randomBytes(16).toString('hex'),
          value,
          contentType,
          tags,
          enabled: attrs.enabled ?? true,
          nbf: attrs.nbf,
          exp: attrs.exp,
          created: t,
          updated: t,
        };
        if (!secret) {
          secret = {
            name,
            versions: [],
            state: 'active',
            transitionEndsAt: 0,
            deletedDate: undefined,
            scheduledPurgeDate: undefined,
          };
          store.set(name.toLowerCase(), secret);
        }
        secret.versions.push(version);
        return { status: 200, body: bundle(secret, version, true) };
      }
      case 'get': {
        const name = validateName(r.name);
        if (r.version !== undefined && !VERSION.test(r.version)) throw notFound(name, r.version);
        const { secret, version } = activeVersion(name, r.version);
        if (!version.enabled) {
          throw new HttpError(
            403,
            'Forbidden',
            'Operation get is not allowed on a disabled secret.',
            'SecretDisabled',
          );
        }
        // Like the real service, nbf/exp are not enforced for secrets: they are metadata for the client.
        return { status: 200, body: bundle(secret, version, true) };
      }
      case 'update': {
        const name = validateName(r.name);
        const parsed = parseJson(body);
        const { secret, version } = activeVersion(name, r.version);
        const attrs = validateAttributes(parsed.attributes);
        if ('contentType' in parsed) version.contentType = validateContentType(parsed.contentType);
        if ('tags' in parsed) version.tags = validateTags(parsed.tags);
        if (attrs.enabled !== undefined) version.enabled = attrs.enabled;
        if (attrs.nbf !== undefined) version.nbf = attrs.nbf;
        if (attrs.exp !== undefined) version.exp = attrs.exp;
        version.updated = unixSeconds(now());
        return { status: 200, body: bundle(secret, version, false) };
      }
      case 'delete': {
        const name = validateName(r.name);
        const secret = lookup(name);
        if (!secret || secret.state !== 'active') throw notFound(name);
        const t = now();
        secret.state = 'deleting';
        secret.transitionEndsAt = t + deleteDelayMs;
        secret.deletedDate = t;
        secret.scheduledPurgeDate = t + retentionDays * 86_400_000;
        settle(secret);
        return { status: 200, body: deletedBundle(secret, latest(secret), false) };
      }
      case 'getDeleted': {
        const name = validateName(r.name);
        const secret = lookup(name);
        if (!secret || secret.state !== 'deleted') throw deletedNotFound(name);
        return { status: 200, body: deletedBundle(secret, latest(secret), false) };
      }
      case 'recover': {
        const name = validateName(r.name);
        const secret = softDeleted(name);
        secret.state = 'recovering';
        secret.transitionEndsAt = now() + recoverDelayMs;
        settle(secret);
        return { status: 200, body: bundle(secret, latest(secret), false) };
      }
      case 'purge': {
        const name = validateName(r.name);
        const secret = softDeleted(name);
        if (purgeProtection) {
          throw new HttpError(
            403,
            'Forbidden',
            `Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.\r\nVault: emulator;location=${region}`,
          );
        }
        secret.state = 'purging';
        secret.transitionEndsAt = now() + purgeDelayMs;
        settle(secret);
        return { status: 204 };
      }
      case 'list': {
        const active = [...store.values()]
          .map((s) => lookup(s.name))
          .filter((s): s is StoredSecret => s?.state === 'active')
          .sort((a, b) => a.name.localeCompare(b.name));
        return {
          status: 200,
          body: page(active, query, '/secrets', apiVersion, (s) => item(s, latest(s), false)),
        };
      }
      case 'listVersions': {
        const name = validateName(r.name);
        const secret = lookup(name);
        const versions = secret?.state === 'active' ? secret.versions : [];
        // The real service answers an empty list (not 404) for an unknown name.
        return {
          status: 200,
          body: page(versions, query, `/secrets/${name}/versions`, apiVersion, (v) =>
            item(secret as StoredSecret, v, true),
          ),
        };
      }
      case 'listDeleted': {
        const deleted = [...store.values()]
          .map((s) => lookup(s.name))
          .filter((s): s is StoredSecret => s?.state === 'deleted')
          .sort((a, b) => a.name.localeCompare(b.name));
        return {
          status: 200,
          body: page(deleted, query, '/deletedsecrets', apiVersion, (s) => ({
            recoveryId: `${url}/deletedsecrets/${s.name}`,
            deletedDate: unixSeconds(s.deletedDate ?? now()),
            scheduledPurgeDate: unixSeconds(s.scheduledPurgeDate ?? now()),
            ...item(s, latest(s), false),
          })),
        };
      }
    }
  }

  // ---- throttling ---------------------------------------------------------------------------------

  function throttle(operation: KeyVaultOperation): HttpError | undefined {
    if (!limits) return undefined;
    const t = now();
    const window = isWrite(operation) ? windows.writes : windows.others;
    const limit = isWrite(operation) ? limits.writesPer10s : limits.othersPer10s;
    while (window.length > 0 && (window[0] ?? 0) <= t - WINDOW_MS) window.shift();
    if (window.length >= limit) {
      const retryAfter = Math.max(1, Math.ceil(((window[0] ?? t) + WINDOW_MS - t) / 1000));
      return new HttpError(
        429,
        'Throttled',
        `Request was not processed because too many requests were received. Reason: ${
          isWrite(operation)
            ? `more than ${limit} secret writes in 10 seconds for this vault`
            : `more than ${limit} transactions in 10 seconds for this vault`
        }`,
        undefined,
        { 'Retry-After': String(retryAfter) },
      );
    }
    // Throttled requests do not count towards the limits (as documented for the service).
    window.push(t);
    return undefined;
  }

  function takeFault(operation: KeyVaultOperation, name: string | undefined): Fault | undefined {
    const index = faultQueue.findIndex(
      (f) =>
        (f.operation === 'any' || f.operation === operation) &&
        (f.name === undefined ||
          (name !== undefined &&
            (typeof f.name === 'string' ? f.name.toLowerCase() === name.toLowerCase() : f.name.test(name)))),
    );
    if (index < 0) return undefined;
    const fault = faultQueue.at(index);
    if (!fault) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) faultQueue.splice(index, 1);
    return fault;
  }

  // ---- HTTP ---------------------------------------------------------------------------------------

  function readBody(req: IncomingMessage): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      });
      req.on('end', () => {
        resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString('utf8'));
      });
      req.on('error', reject);
    });
  }

  function record(entry: RequestRecord): void {
    stats.requests += 1;
    stats.byStatus[entry.status] = (stats.byStatus[entry.status] ?? 0) + 1;
    if (entry.status === 429) stats.throttled += 1;
    if (entry.status === 401) stats.unauthorized += 1;
    if (entry.status === 409) stats.conflicts += 1;
    if (entry.operation !== 'unknown' && entry.authenticated) {
      stats.byOperation[entry.operation] += 1;
      switch (entry.operation) {
        case 'get':
        case 'list':
        case 'listVersions':
        case 'listDeleted':
        case 'getDeleted':
          stats.reads += 1;
          break;
        case 'set':
        case 'update':
          stats.writes += 1;
          break;
        case 'delete':
        case 'purge':
          stats.deletes += 1;
          break;
        case 'recover':
          stats.recoveries += 1;
          break;
      }
    }
    stats.log.push(entry);
    if (stats.log.length > 1000) stats.log.shift();
  }

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestUrl = new URL(req.url ?? '/', url);
    const method = (req.method ?? 'GET').toUpperCase();
    const segments = requestUrl.pathname
      .split('/')
      .filter((s) => s !== '')
      .map((s) => {
        try {
          return decodeURIComponent(s);
        } catch {
          return s;
        }
      });
    const r = route(method, segments);
    const apiVersion = requestUrl.searchParams.get('api-version');
    const entry: RequestRecord = {
      method,
      path: requestUrl.pathname,
      operation: r?.operation ?? 'unknown',
      name: r?.name,
      status: 0,
      authenticated: false,
      apiVersion,
    };

    const headers: Record<string, string> = {
      'Cache-Control': 'no-cache',
      Pragma: 'no-cache',
      Expires: '-1',
      'x-ms-keyvault-region': region,
      'x-ms-request-id': randomUUID(),
      'x-ms-keyvault-service-version': SERVICE_VERSION,
      'x-ms-keyvault-network-info': `conn_type=Ipv4;addr=${req.socket.remoteAddress ?? '127.0.0.1'};act_addr_fam=InterNetwork;`,
      'Strict-Transport-Security': 'max-age=31536000;includeSubDomains',
      'X-Content-Type-Options': 'nosniff',
    };
    const clientRequestId = req.headers['x-ms-client-request-id'];
    if (typeof clientRequestId === 'string' && req.headers['x-ms-return-client-request-id'] === 'true') {
      headers['x-ms-client-request-id'] = clientRequestId;
    }

    const send = async (status: number, body?: unknown, extra: Record<string, string> = {}) => {
      if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
      entry.status = status;
      record(entry);
      const payload = body === undefined ? '' : JSON.stringify(body);
      res.writeHead(status, {
        ...headers,
        ...extra,
        ...(payload ? { 'Content-Type': 'application/json; charset=utf-8' } : {}),
        'Content-Length': String(Buffer.byteLength(payload)),
      });
      res.end(payload);
    };
    const sendError = (error: HttpError) =>
      send(
        error.status,
        {
          error: {
            code: error.code,
            message: error.message,
            ...(error.innerCode ? { innererror: { code: error.innerCode } } : {}),
          },
        },
        error.headers,
      );

    const body = await readBody(req);

    // Authentication first: the SDK's challenge policy sends its first request without a token
    // (and without a body) and expects 401 with the challenge, whatever the request.
    const challenge = `Bearer authorization="${options.authority}", resource="${RESOURCE}"`;
    const authorization = req.headers.authorization;
    const match = typeof authorization === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
    if (!match?.[1]) {
      await sendError(
        new HttpError(401, 'Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.', undefined, {
          'WWW-Authenticate': challenge,
        }),
      );
      return;
    }
    let valid = false;
    try {
      valid = await options.verifyToken(match[1]);
    } catch {
      valid = false;
    }
    if (!valid) {
      await sendError(
        new HttpError(
          401,
          'Unauthorized',
          `AKV10022: Invalid audience. Expected ${RESOURCE}, found: (token rejected by the emulator).`,
          undefined,
          { 'WWW-Authenticate': challenge },
        ),
      );
      return;
    }
    entry.authenticated = true;

    if (body === undefined) {
      await sendError(new HttpError(413, 'RequestEntityTooLarge', 'The request body is too large.'));
      return;
    }
    if (!apiVersion) {
      await sendError(
        badParameter('The api-version query parameter (?api-version=) is required for all requests.'),
      );
      return;
    }
    if (!API_VERSIONS.has(apiVersion)) {
      await sendError(
        badParameter(
          `The specified version (${apiVersion.slice(0, 30)}) is not recognized. Consider using the latest supported version (2025-07-01).`,
        ),
      );
      return;
    }
    if (!r) {
      await sendError(new HttpError(404, 'NotFound', 'The requested resource was not found.'));
      return;
    }

    const fault = takeFault(r.operation, r.name);
    if (fault) {
      stats.faultsInjected += 1;
      if (fault.kind === 'reset') {
        entry.status = -1;
        record(entry);
        req.socket.destroy();
        return;
      }
      const retryHeaders: Record<string, string> =
        fault.retryAfterSeconds !== undefined ? { 'Retry-After': String(fault.retryAfterSeconds) } : {};
      const error =
        fault.status === 429
          ? new HttpError(
              429,
              'Throttled',
              'Request was not processed because too many requests were received. Reason: injected by the emulator',
              undefined,
              retryHeaders,
            )
          : fault.status === 503
            ? new HttpError(
                503,
                'ServiceUnavailable',
                'The service is temporarily unavailable. Please retry.',
                undefined,
                retryHeaders,
              )
            : new HttpError(
                fault.status,
                'InternalServerError',
                'An internal server error occurred. Please retry.',
                undefined,
                retryHeaders,
              );
      await sendError(error);
      return;
    }

    const throttled = throttle(r.operation);
    if (throttled) {
      await sendError(throttled);
      return;
    }

    try {
      const result = handle(r, requestUrl.searchParams, body, apiVersion);
      await send(result.status, result.body);
    } catch (error) {
      if (error instanceof HttpError) await sendError(error);
      else await sendError(new HttpError(500, 'InternalServerError', 'An internal server error occurred.'));
    }
  }

  const server: Server = createServer(
    { cert: options.pki.serverCertPem, key: options.pki.serverKeyPem },
    (req, res) => {
      serve(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    },
  );
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // A reset or aborted TLS handshake must not take the emulator down.
  server.on('tlsClientError', () => undefined);

  url = `https://127.0.0.1:${await listenOnLoopback(server, options.port)}`;

  const view = (secret: StoredSecret, v: StoredVersion): SecretVersionView => ({
    name: secret.name,
    version: v.version,
    value: v.value,
    contentType: v.contentType,
    tags: v.tags ? { ...v.tags } : undefined,
    enabled: v.enabled,
    notBefore: v.nbf,
    expires: v.exp,
    created: v.created,
    updated: v.updated,
  });

  const faults: KeyVaultFaults = {
    get latencyMs() {
      return latencyMs;
    },
    set latencyMs(value: number) {
      latencyMs = Math.max(0, value);
    },
    failNext(count, failOptions) {
      faultQueue.push({
        remaining: count,
        kind: 'status',
        status: failOptions.status,
        retryAfterSeconds: failOptions.retryAfterSeconds,
        operation: failOptions.operation ?? 'any',
        name: failOptions.name,
      });
    },
    resetNext(count, resetOptions = {}) {
      faultQueue.push({
        remaining: count,
        kind: 'reset',
        status: 0,
        retryAfterSeconds: undefined,
        operation: resetOptions.operation ?? 'any',
        name: resetOptions.name,
      });
    },
    clear() {
      faultQueue.length = 0;
      latencyMs = 0;
    },
  };

  const secrets: KeyVaultSecretsView = {
    names: () =>
      [...store.values()].map((s) => lookup(s.name)?.name).filter((n): n is string => n !== undefined),
    state: (name) => lookup(name)?.state,
    current: (name) => {
      const secret = lookup(name);
      return secret && (secret.state === 'active' || secret.state === 'recovering')
        ? view(secret, latest(secret))
        : undefined;
    },
    versions: (name) => {
      const secret = lookup(name);
      return secret ? secret.versions.map((v) => view(secret, v)) : [];
    },
    containsValue: (value) => [...store.values()].some((s) => s.versions.some((v) => v.value === value)),
  };

  return {
    url,
    faults,
    stats,
    secrets,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => {
          if (err) reject(err);
          else resolve();
        });
        for (const socket of sockets) socket.destroy();
      }),
  };
}
