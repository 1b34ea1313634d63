import type * as Undici from 'undici';
import type { Dispatcher, RequestInit, Response, fetch as UndiciFetch } from 'undici';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import type { BrokerConfig } from '../config';
import { parseRetryAfter } from './retry-after';

/**
 * Every outbound call the broker makes itself (Entra through MSAL, metadata, EWS, Graph,
 * webhooks) goes through one dispatcher, so HTTPS_PROXY and NO_PROXY are honoured the same way
 * everywhere; NODE_EXTRA_CA_CERTS is honoured by Node's TLS for all of them. The Azure SDK
 * clients (Key Vault, Tables) honour the same variables through their own pipeline.
 */
export interface Outbound {
  fetch(url: string, init?: RequestInit & { timeoutMs?: number }): Promise<Response>;
  /** MSAL's network client over the same dispatcher. */
  msalNetworkModule: INetworkModule;
  /**
   * The Retry-After (seconds) Entra sent with a 429/503 for an MSAL request, by MSAL correlation
   * id: MSAL's errors do not carry response headers, and backoff must honour it.
   */
  retryAfterFor(correlationId: string): number | undefined;
  /**
   * A TCP connection to `host:port` for the mail protocols (IMAP, POP, SMTP): through an HTTP
   * CONNECT tunnel when HTTPS_PROXY applies to the host, directly otherwise. TLS is the caller's.
   */
  connect(host: string, port: number, signal: AbortSignal): Promise<Socket>;
}

/** The proxy-connect failure: the proxy answered the CONNECT with something other than 2xx. */
export class ProxyTunnelError extends Error {
  constructor(readonly status: number) {
    super(`The proxy refused the tunnel (HTTP ${status}).`);
    this.name = 'ProxyTunnelError';
  }
}

/**
 * NO_PROXY as curl and undici read it: `*`, a host name (which also covers its subdomains), a
 * leading-dot domain, an IP, each optionally with `:port`.
 */
export function bypassesProxy(host: string, port: number, noProxy: string[]): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, '');
  return noProxy.some((entry) => {
    if (entry === '*') return true;
    // `[v6]:port`, `v6` (several colons, no port), or `host:port`.
    const match = entry.startsWith('[')
      ? /^\[([^\]]+)\](?::(\d+))?$/.exec(entry)
      : entry.split(':').length > 2
        ? [entry, entry, undefined]
        : /^([^:]*)(?::(\d+))?$/.exec(entry);
    const entryHost = (match?.[1] ?? '').replace(/^\*?\./, '');
    const entryPort = match?.[2];
    if (!entryHost || (entryPort && Number(entryPort) !== port)) return false;
    return name === entryHost || name.endsWith(`.${entryHost}`);
  });
}

const REMEMBERED_RETRY_AFTERS = 1000;

const DEFAULT_TIMEOUT_MS = 15_000;

export function createOutbound(config: Pick<BrokerConfig, 'proxy'>): Outbound {
  const fetch = fetchVia(lazyUndici(config.proxy));
  const retryAfters = new RetryAfterMemory();
  return {
    fetch,
    msalNetworkModule: msalNetworkModule(fetch, retryAfters),
    retryAfterFor: (correlationId) => retryAfters.get(correlationId),
    connect: connectVia(config.proxy),
  };
}

/** undici's fetch and the dispatcher every call goes through (undefined: undici's global one). */
interface UndiciClient {
  fetch: typeof UndiciFetch;
  dispatcher: Dispatcher | undefined;
}

/**
 * undici is loaded on the first outbound call, not at start-up: it costs about as much to import
 * as the Azure SDKs together, and a warm token read never needs it. `require`, not `import()`:
 * under a loader with ESM hooks (tsx, the local host) a dynamic import takes the slower ESM path
 * and stalled token reads for hundreds of milliseconds (bench/token-read.ts, p99 at a fixed rate).
 */
function lazyUndici(proxy: BrokerConfig['proxy']): () => UndiciClient {
  let client: UndiciClient | undefined;
  return () => {
    client ??= loadUndici(proxy);
    return client;
  };
}

/** The proxy-aware dispatcher: with HTTPS_PROXY set, one agent that also applies NO_PROXY. */
function loadUndici(proxy: BrokerConfig['proxy']): UndiciClient {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, see lazyUndici
  const { fetch, EnvHttpProxyAgent } = require('undici') as typeof Undici;
  return {
    fetch,
    dispatcher: proxy.httpsProxy
      ? new EnvHttpProxyAgent({
          httpsProxy: proxy.httpsProxy,
          httpProxy: proxy.httpsProxy,
          noProxy: proxy.noProxy.join(','),
        })
      : undefined,
  };
}

/** fetch over the dispatcher: redirects are the caller's, and every call has a timeout. */
function fetchVia(undici: () => UndiciClient): Outbound['fetch'] {
  return async (url, init = {}) => {
    const { timeoutMs = DEFAULT_TIMEOUT_MS, ...rest } = init;
    const { fetch, dispatcher } = undici();
    return fetch(url, {
      ...rest,
      redirect: 'manual',
      signal: rest.signal ?? AbortSignal.timeout(timeoutMs),
      ...(dispatcher ? { dispatcher } : {}),
    });
  };
}

/**
 * The Retry-After (seconds) of 429 and 5xx answers by MSAL correlation id, for `retryAfterFor`.
 * Bounded: past `limit` entries the oldest is forgotten.
 */
export class RetryAfterMemory {
  private readonly seconds = new Map<string, number>();

  constructor(private readonly limit = REMEMBERED_RETRY_AFTERS) {}

  remember(correlationId: string | undefined, response: Response): void {
    if (!correlationId || (response.status !== 429 && response.status < 500)) return;
    const seconds = parseRetryAfter(response.headers.get('retry-after'));
    if (seconds === undefined) return;
    this.seconds.set(correlationId, seconds);
    if (this.seconds.size > this.limit) {
      const oldest = this.seconds.keys().next();
      if (!oldest.done) this.seconds.delete(oldest.value);
    }
  }

  get(correlationId: string): number | undefined {
    return this.seconds.get(correlationId);
  }
}

/** MSAL's INetworkModule over `fetch`, remembering each answer's Retry-After. */
function msalNetworkModule(fetch: Outbound['fetch'], retryAfters: RetryAfterMemory): INetworkModule {
  return {
    async sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number) {
      const response = await fetch(url, {
        method: 'GET',
        headers: options?.headers,
        timeoutMs: timeout ?? DEFAULT_TIMEOUT_MS,
      });
      retryAfters.remember(options?.correlationId, response);
      return toMsalResponse<T>(response);
    },
    async sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions) {
      const response = await fetch(url, {
        method: 'POST',
        headers: options?.headers,
        body: options?.body,
      });
      retryAfters.remember(options?.correlationId, response);
      return toMsalResponse<T>(response);
    },
  };
}

async function toMsalResponse<T>(response: Response): Promise<NetworkResponse<T>> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => {
    headers[key.toLowerCase()] = value;
  });
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    // A proxy or gateway answered with HTML: hand MSAL an error body it classifies, never the page.
    body = {
      error: 'temporarily_unavailable',
      error_description: `Non-JSON response (HTTP ${response.status})`,
    };
  }
  return { headers, body: body as T, status: response.status };
}

/** `connect` for the mail protocols: through the proxy's CONNECT tunnel unless NO_PROXY covers the host. */
function connectVia(proxy: BrokerConfig['proxy']): Outbound['connect'] {
  const proxyUrl = proxy.httpsProxy ? new URL(proxy.httpsProxy) : undefined;
  return (host, port, signal) =>
    proxyUrl && !bypassesProxy(host, port, proxy.noProxy)
      ? tunnel(proxyUrl, host, port, signal)
      : direct(host, port, signal);
}

/** An HTTP CONNECT tunnel to `host:port` through `proxy` (Basic credentials from its URL). */
function tunnel(proxy: URL, host: string, port: number, signal: AbortSignal): Promise<Socket> {
  const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const credentials = proxy.username
    ? {
        'Proxy-Authorization': `Basic ${Buffer.from(
          `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`,
        ).toString('base64')}`,
      }
    : {};
  const request = (proxy.protocol === 'https:' ? httpsRequest : httpRequest)({
    host: proxy.hostname.replace(/^\[|\]$/g, ''),
    port: proxy.port || (proxy.protocol === 'https:' ? 443 : 80),
    method: 'CONNECT',
    path: authority,
    headers: { Host: authority, ...credentials },
    agent: false,
    signal,
  });
  return new Promise((resolve, reject) => {
    request.once('connect', (response, socket, head: Buffer) => {
      if (response.statusCode !== undefined && response.statusCode >= 200 && response.statusCode < 300) {
        // A server that speaks first (an SMTP, IMAP or POP greeting) can come in the same packet as
        // the proxy's 200: Node hands those bytes over apart, and dropping them stalls the dialogue.
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      } else {
        socket.destroy();
        reject(new ProxyTunnelError(response.statusCode ?? 0));
      }
    });
    request.once('error', reject);
    request.end();
  });
}

function direct(host: string, port: number, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port, signal });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}
