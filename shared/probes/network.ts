import { ProxyTunnelError } from '../net/outbound';
import { ProbeFailure } from './result';

const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'EPROTO',
]);
const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME']);

/** The error and its causes, outermost first (fetch wraps the socket's error in `cause`). */
function chain(error: unknown): unknown[] {
  const seen: unknown[] = [];
  let current = error;
  while (current !== undefined && current !== null && seen.length < 6 && !seen.includes(current)) {
    seen.push(current);
    current = (current as { cause?: unknown }).cause;
  }
  return seen;
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The probe's own deadline (AbortSignal.timeout's reason); undici also names other failures AbortError. */
function isTimeout(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === 'TimeoutError';
}

/** The status a proxy answered a CONNECT with: ours, or undici's tunnel error for fetch. */
function proxyStatus(error: unknown): number | undefined {
  if (error instanceof ProxyTunnelError) return error.status;
  const message = (error as { message?: unknown } | null)?.message;
  const status = typeof message === 'string' ? /Proxy response \((\d{3})\)/.exec(message)?.[1] : undefined;
  return status === undefined ? undefined : Number(status);
}

/**
 * Turns a failure to reach `host:port` (socket, TLS, DNS, proxy, timeout) into a probe failure.
 * Node's own messages name the condition without secrets; upstream bodies never get here.
 */
export function classifyNetworkError(
  error: unknown,
  target: { host: string; port: number; timeoutSeconds: number },
): ProbeFailure {
  if (error instanceof ProbeFailure) return error;
  const where = `${target.host}:${target.port}`;
  const errors = chain(error);
  if (errors.some(isTimeout)) {
    return new ProbeFailure('timeout', `No answer from ${where} within ${target.timeoutSeconds} s.`);
  }
  const status = errors.map(proxyStatus).find((value) => value !== undefined);
  if (status !== undefined) {
    return new ProbeFailure(
      'connect_failed',
      `The proxy (HTTPS_PROXY) refused a tunnel to ${where} (HTTP ${status}).`,
    );
  }
  for (const cause of errors) {
    const code = codeOf(cause);
    if (code && TLS_CODES.has(code)) {
      return new ProbeFailure('tls_failed', `The TLS handshake with ${where} failed (${code}).`);
    }
    if (code && DNS_CODES.has(code)) {
      return new ProbeFailure('dns_failed', `The name ${target.host} could not be resolved (${code}).`);
    }
    if (code?.startsWith('E') === true || code?.startsWith('UND_ERR') === true) {
      return new ProbeFailure('connect_failed', `Could not talk to ${where} (${code}).`);
    }
  }
  return new ProbeFailure('connect_failed', `Could not talk to ${where}.`);
}
