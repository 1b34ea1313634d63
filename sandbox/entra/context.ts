/** State shared by the emulator's request handlers, and small HTTP helpers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorBody, newTrace, type AadstsError, type TraceInfo } from './errors';
import type { SigningKey } from './jwt';
import type { Directory, TenantInfo } from './model';

export type FaultEndpoint = 'token' | 'authorize' | 'managedIdentity' | 'discovery' | 'any';

export interface QueuedFault {
  remaining: number;
  status: 429 | 500 | 503;
  retryAfterSeconds: number | undefined;
  endpoint: FaultEndpoint;
}

export interface EntraStats {
  /** Requests per endpoint name (`token`, `authorize`, `login`, `consent`, `openid-configuration`, …) and per `token:<grant_type>`. */
  requests: Partial<Record<string, number>>;
  signIns: number;
  failedSignIns: number;
  consentsGranted: number;
  codesIssued: number;
  codesRedeemed: number;
  refreshes: number;
  clientCredentials: number;
  managedIdentityTokens: number;
  tokenErrors: number;
  faultsInjected: number;
}

export interface EmulatorState {
  url: string;
  host: string;
  /** Origin of the pages a browser visits (`url`, or the plain-HTTP listener's). */
  browserUrl: string;
  dir: Directory;
  key: SigningKey;
  now: () => number;
  primaryTenant: TenantInfo;
  stats: EntraStats;
  settings: {
    latencyMs: number;
    revokeRotatedRefreshTokens: boolean;
    omitRefreshToken: boolean;
    accessTokenLifetimeSeconds: number;
    consentRequired: boolean;
    interactionRequired: boolean;
    faultQueue: QueuedFault[];
  };
}

export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Path segments, URL-decoded. */
  segments: string[];
  trace: TraceInfo;
}

export function newExchange(state: EmulatorState, req: IncomingMessage, res: ServerResponse): Exchange {
  const url = new URL(req.url ?? '/', state.url);
  const segments = url.pathname
    .split('/')
    .filter((s) => s.length > 0)
    .map((s) => decodeURIComponent(s));
  const header = req.headers['client-request-id'];
  const correlationId =
    (typeof header === 'string' ? header : undefined) ??
    url.searchParams.get('client-request-id') ??
    undefined;
  return { req, res, url, segments, trace: newTrace(state.now(), correlationId) };
}

function baseHeaders(ex: Exchange): Record<string, string> {
  return {
    'cache-control': 'no-store, no-cache',
    pragma: 'no-cache',
    'x-ms-request-id': ex.trace.traceId,
    'client-request-id': ex.trace.correlationId,
    'x-ms-ests-server': '2.1.emulator - test',
    'strict-transport-security': 'max-age=31536000; includeSubDomains',
  };
}

export function sendJson(
  ex: Exchange,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  ex.res.writeHead(status, {
    ...baseHeaders(ex),
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  ex.res.end(text);
}

export function sendHtml(
  ex: Exchange,
  status: number,
  html: string,
  headers: Record<string, string> = {},
): void {
  ex.res.writeHead(status, {
    ...baseHeaders(ex),
    'content-type': 'text/html; charset=utf-8',
    'content-length': String(Buffer.byteLength(html)),
    'x-frame-options': 'DENY',
    ...headers,
  });
  ex.res.end(html);
}

export function sendRedirect(ex: Exchange, location: string, headers: Record<string, string> = {}): void {
  ex.res.writeHead(302, { ...baseHeaders(ex), location, 'content-length': '0', ...headers });
  ex.res.end();
}

/** A token-endpoint style JSON error. */
export function sendAadstsJson(
  state: EmulatorState,
  ex: Exchange,
  err: AadstsError,
  headers: Record<string, string> = {},
): void {
  sendJson(ex, err.status, errorBody(err, ex.trace, state.url), headers);
}

export async function readForm(req: IncomingMessage, limit = 1024 * 1024): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export function parseCookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  const header = req.headers.cookie;
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim(), decodeURIComponent(part.slice(eq + 1).trim()));
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function count(state: EmulatorState, name: string): void {
  state.stats.requests[name] = (state.stats.requests[name] ?? 0) + 1;
}
