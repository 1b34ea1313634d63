import { randomBytes } from 'node:crypto';
import { BrokerError, isBrokerError } from '../errors';
import type { Logger } from '../logging';
import type { BrokerResponse } from './types';

/** Headers on every answer: nothing is cached, sniffed, framed or leaked through a Referer. */
export const BASE_SECURITY_HEADERS: Record<string, string> = {
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'unsafe-none',
};

export function json(
  status: number,
  body: unknown,
  extraHeaders: Record<string, string> = {},
): BrokerResponse {
  return {
    status,
    headers: { ...BASE_SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8', ...extraHeaders },
    body: JSON.stringify(body),
  };
}

/** A JSON answer whose body is already serialized (a body many requests share). */
export function jsonText(status: number, text: string): BrokerResponse {
  return {
    status,
    headers: { ...BASE_SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8' },
    body: text,
  };
}

export function noContent(): BrokerResponse {
  return { status: 204, headers: { ...BASE_SECURITY_HEADERS } };
}

/**
 * An HTML page under a strict Content-Security-Policy: scripts and styles only with this
 * response's nonce. The callback page's script talks to window.opener; the console's to /api.
 */
export function html(
  status: number,
  render: (nonce: string) => string,
  extraHeaders: Record<string, string> = {},
  /**
   * Origins a form on the page may lead to besides the broker's own: a form POST answered with a
   * redirect to Entra (an invitation's Sign in) is checked against form-action at every hop.
   */
  formTargets: string[] = [],
) {
  const nonce = randomBytes(16).toString('base64');
  const response: BrokerResponse = {
    status,
    headers: {
      ...BASE_SECURITY_HEADERS,
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': [
        "default-src 'none'",
        `script-src 'nonce-${nonce}'`,
        `style-src 'nonce-${nonce}'`,
        "connect-src 'self'",
        "img-src 'self' data:",
        ["form-action 'self'", ...formTargets].join(' '),
        "base-uri 'none'",
        "frame-ancestors 'none'",
      ].join('; '),
      ...extraHeaders,
    },
    body: render(nonce),
  };
  return response;
}

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Unknown failures become `internal_error` with no detail; the detail goes to the log only. */
export function toBrokerError(error: unknown, logger: Logger, correlationId: string): BrokerError {
  if (isBrokerError(error)) return error;
  logger.error('request.unhandled_error', { correlationId, error });
  return new BrokerError(
    'internal_error',
    'Something went wrong inside the broker. The correlation id helps find it.',
  );
}

/** RFC 9457 problem details with the broker's stable `code`. */
export function problem(error: BrokerError, correlationId: string, instance?: string): BrokerResponse {
  const headers: Record<string, string> = { 'Content-Type': 'application/problem+json; charset=utf-8' };
  if (error.retryAfterSeconds !== undefined)
    headers['Retry-After'] = String(Math.ceil(error.retryAfterSeconds));
  if (error.status === 401) headers['WWW-Authenticate'] = 'Bearer realm="ews-oauth-broker"';
  const body: Record<string, unknown> = {
    type: `https://github.com/ews-oauth-broker/ews-oauth-broker#error-${error.code}`,
    title: titleFor(error),
    status: error.status,
    code: error.code,
    detail: error.message,
    correlationId,
  };
  if (instance) body.instance = instance;
  if (error.aadsts !== undefined) body.aadsts = `AADSTS${error.aadsts}`;
  if (error.remedy) body.remedy = error.remedy;
  if (error.actionUrl) body.actionUrl = error.actionUrl;
  return {
    status: error.status,
    headers: { ...BASE_SECURITY_HEADERS, ...headers },
    body: JSON.stringify(body),
  };
}

function titleFor(error: BrokerError): string {
  return error.code
    .split('_')
    .map((word, index) => (index === 0 ? word.charAt(0).toUpperCase() + word.slice(1) : word))
    .join(' ');
}
