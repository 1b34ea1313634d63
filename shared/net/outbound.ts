import {
  EnvHttpProxyAgent,
  fetch as undiciFetch,
  type Dispatcher,
  type RequestInit,
  type Response,
} from 'undici';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import type { BrokerConfig } from '../config';

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
}

const REMEMBERED_RETRY_AFTERS = 1000;

/** Retry-After as seconds, from delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - nowMs) / 1000));
}

const DEFAULT_TIMEOUT_MS = 15_000;

export function createOutbound(config: Pick<BrokerConfig, 'proxy'>): Outbound {
  const dispatcher: Dispatcher | undefined = config.proxy.httpsProxy
    ? new EnvHttpProxyAgent({
        httpsProxy: config.proxy.httpsProxy,
        httpProxy: config.proxy.httpsProxy,
        noProxy: config.proxy.noProxy.join(','),
      })
    : undefined;

  const fetchWithTimeout: Outbound['fetch'] = (url, init = {}) => {
    const { timeoutMs = DEFAULT_TIMEOUT_MS, ...rest } = init;
    return undiciFetch(url, {
      ...rest,
      redirect: 'manual',
      signal: rest.signal ?? AbortSignal.timeout(timeoutMs),
      ...(dispatcher ? { dispatcher } : {}),
    });
  };

  const retryAfters = new Map<string, number>();
  function remember(correlationId: string | undefined, response: Response): void {
    if (!correlationId || (response.status !== 429 && response.status < 500)) return;
    const seconds = parseRetryAfter(response.headers.get('retry-after'));
    if (seconds === undefined) return;
    retryAfters.set(correlationId, seconds);
    if (retryAfters.size > REMEMBERED_RETRY_AFTERS) {
      const oldest = retryAfters.keys().next();
      if (!oldest.done) retryAfters.delete(oldest.value);
    }
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

  const msalNetworkModule: INetworkModule = {
    async sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number) {
      const response = await fetchWithTimeout(url, {
        method: 'GET',
        headers: options?.headers,
        timeoutMs: timeout ?? DEFAULT_TIMEOUT_MS,
      });
      remember(options?.correlationId, response);
      return toMsalResponse<T>(response);
    },
    async sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions) {
      const response = await fetchWithTimeout(url, {
        method: 'POST',
        headers: options?.headers,
        body: options?.body,
      });
      remember(options?.correlationId, response);
      return toMsalResponse<T>(response);
    },
  };

  return {
    fetch: fetchWithTimeout,
    msalNetworkModule,
    retryAfterFor: (correlationId) => retryAfters.get(correlationId),
  };
}
