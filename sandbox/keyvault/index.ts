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
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { listenOnLoopback } from '../listen';
import { badParameter, HttpError } from './errors';
import { route, SecretOperations, type Route, type VaultBehaviour } from './operations';
import { recordRequest, newStats } from './stats';
import { latest, SecretStore, type StoredSecret, type StoredVersion } from './store';
import { faultError, FaultQueue, Throttle } from './traffic';
import type {
  KeyVaultEmulator,
  KeyVaultEmulatorOptions,
  KeyVaultFaults,
  KeyVaultSecretsView,
  RequestRecord,
  SecretVersionView,
} from './types';

export type * from './types';

/** The service version string real responses carry (format only; any value works for the SDK). */
const SERVICE_VERSION = '1.9.2750.1';
const RESOURCE = 'https://vault.azure.net';
const MAX_BODY_BYTES = 1_048_576;
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

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** The service's error body: `{"error":{"code","message","innererror"?}}`. */
const errorAnswer = (error: HttpError): Answer => ({
  status: error.status,
  body: {
    error: {
      code: error.code,
      message: error.message,
      ...(error.innerCode ? { innererror: { code: error.innerCode } } : {}),
    },
  },
  headers: error.headers,
});

/** Path segments, percent-decoded where they decode. */
function pathSegments(requestUrl: URL): string[] {
  return requestUrl.pathname
    .split('/')
    .filter((s) => s !== '')
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
}

/** The headers every answer of the real service carries. */
function responseHeaders(req: IncomingMessage, region: string): Record<string, string> {
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
  return headers;
}

/** The 401 with the bearer challenge for a request without an acceptable token; undefined when it has one. */
async function authenticate(
  req: IncomingMessage,
  options: KeyVaultEmulatorOptions,
): Promise<HttpError | undefined> {
  const challenge = {
    'WWW-Authenticate': `Bearer authorization="${options.authority}", resource="${RESOURCE}"`,
  };
  const authorization = req.headers.authorization;
  const match = typeof authorization === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
  if (!match?.[1])
    return new HttpError(
      401,
      'Unauthorized',
      'AKV10000: Request is missing a Bearer or PoP token.',
      undefined,
      challenge,
    );
  let valid = false;
  try {
    valid = await options.verifyToken(match[1]);
  } catch {
    valid = false;
  }
  if (valid) return undefined;
  return new HttpError(
    401,
    'Unauthorized',
    `AKV10022: Invalid audience. Expected ${RESOURCE}, found: (token rejected by the emulator).`,
    undefined,
    challenge,
  );
}

/**
 * An authenticated request the service will act on, or what it answers one it cannot: body too
 * large, api-version missing or unknown, no such route.
 */
function routed(
  body: string | undefined,
  apiVersion: string | null,
  r: Route | undefined,
): { route: Route; body: string; apiVersion: string } | HttpError {
  if (body === undefined)
    return new HttpError(413, 'RequestEntityTooLarge', 'The request body is too large.');
  if (!apiVersion)
    return badParameter('The api-version query parameter (?api-version=) is required for all requests.');
  if (!API_VERSIONS.has(apiVersion))
    return badParameter(
      `The specified version (${apiVersion.slice(0, 30)}) is not recognized. Consider using the latest supported version (2025-07-01).`,
    );
  if (!r) return new HttpError(404, 'NotFound', 'The requested resource was not found.');
  return { route: r, body, apiVersion };
}

export async function startKeyVaultEmulator(options: KeyVaultEmulatorOptions): Promise<KeyVaultEmulator> {
  const now = options.now ?? Date.now;
  const region = options.region ?? 'emulator';
  const store = new SecretStore(now);
  const stats = newStats();
  const faultQueue = new FaultQueue();
  const throttle = new Throttle(
    options.limits === false ? undefined : (options.limits ?? { writesPer10s: 300, othersPer10s: 4000 }),
    now,
  );
  const sockets = new Set<Socket>();
  let latencyMs = 0;
  let url = '';
  // The url is known once the server listens; ids and nextLinks are only rendered after that.
  const vault: VaultBehaviour = {
    url: '',
    now,
    purgeProtection: options.purgeProtection ?? false,
    deleteDelayMs: options.deleteDelayMs ?? 0,
    recoverDelayMs: options.recoverDelayMs ?? 0,
    purgeDelayMs: options.purgeDelayMs ?? 0,
    retentionDays: options.retentionDays ?? 90,
    region,
  };
  const operations = new SecretOperations(store, vault);

  /** What the vault answers an authenticated-or-not request, or `reset` for an injected connection reset. */
  async function answer(
    req: IncomingMessage,
    requestUrl: URL,
    r: Route | undefined,
    body: string | undefined,
    entry: RequestRecord,
  ): Promise<Answer | 'reset'> {
    // Authentication first: the SDK's challenge policy sends its first request without a token
    // (and without a body) and expects 401 with the challenge, whatever the request.
    const unauthenticated = await authenticate(req, options);
    if (unauthenticated) return errorAnswer(unauthenticated);
    entry.authenticated = true;
    const request = routed(body, entry.apiVersion, r);
    if (request instanceof HttpError) return errorAnswer(request);

    const fault = faultQueue.take(request.route.operation, request.route.name);
    if (fault) {
      stats.faultsInjected += 1;
      return fault.kind === 'reset' ? 'reset' : errorAnswer(faultError(fault));
    }
    const throttled = throttle.check(request.route.operation);
    if (throttled) return errorAnswer(throttled);

    try {
      return operations.handle(request.route, requestUrl.searchParams, request.body, request.apiVersion);
    } catch (error) {
      return errorAnswer(
        error instanceof HttpError
          ? error
          : new HttpError(500, 'InternalServerError', 'An internal server error occurred.'),
      );
    }
  }

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestUrl = new URL(req.url ?? '/', url);
    const method = (req.method ?? 'GET').toUpperCase();
    const r = route(method, pathSegments(requestUrl));
    const entry: RequestRecord = {
      method,
      path: requestUrl.pathname,
      operation: r?.operation ?? 'unknown',
      name: r?.name,
      status: 0,
      authenticated: false,
      apiVersion: requestUrl.searchParams.get('api-version'),
    };
    const body = await readBody(req);
    const result = await answer(req, requestUrl, r, body, entry);
    if (result === 'reset') {
      entry.status = -1;
      recordRequest(stats, entry);
      req.socket.destroy();
      return;
    }
    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
    entry.status = result.status;
    recordRequest(stats, entry);
    const payload = result.body === undefined ? '' : JSON.stringify(result.body);
    res.writeHead(result.status, {
      ...responseHeaders(req, region),
      ...result.headers,
      ...(payload ? { 'Content-Type': 'application/json; charset=utf-8' } : {}),
      'Content-Length': String(Buffer.byteLength(payload)),
    });
    res.end(payload);
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
  vault.url = url;

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
      faultQueue.push(
        {
          kind: 'status',
          status: failOptions.status,
          retryAfterSeconds: failOptions.retryAfterSeconds,
          operation: failOptions.operation ?? 'any',
          name: failOptions.name,
        },
        count,
      );
    },
    resetNext(count, resetOptions = {}) {
      faultQueue.push(
        {
          kind: 'reset',
          status: 0,
          retryAfterSeconds: undefined,
          operation: resetOptions.operation ?? 'any',
          name: resetOptions.name,
        },
        count,
      );
    },
    clear() {
      faultQueue.clear();
      latencyMs = 0;
    },
  };

  const secrets: KeyVaultSecretsView = {
    names: () => store.all().map((s) => s.name),
    state: (name) => store.lookup(name)?.state,
    current: (name) => {
      const secret = store.lookup(name);
      return secret && (secret.state === 'active' || secret.state === 'recovering')
        ? view(secret, latest(secret))
        : undefined;
    },
    versions: (name) => {
      const secret = store.lookup(name);
      return secret ? secret.versions.map((v) => view(secret, v)) : [];
    },
    containsValue: (value) => store.holds(value),
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
