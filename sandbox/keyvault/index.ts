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
import { route, SecretOperations, type VaultBehaviour } from './operations';
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
      recordRequest(stats, entry);
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

    const fault = faultQueue.take(r.operation, r.name);
    if (fault) {
      stats.faultsInjected += 1;
      if (fault.kind === 'reset') {
        entry.status = -1;
        recordRequest(stats, entry);
        req.socket.destroy();
        return;
      }
      await sendError(faultError(fault));
      return;
    }

    const throttled = throttle.check(r.operation);
    if (throttled) {
      await sendError(throttled);
      return;
    }

    try {
      const result = operations.handle(r, requestUrl.searchParams, body, apiVersion);
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
