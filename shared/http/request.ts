import { createHash } from 'node:crypto';
import type { BrokerConfig } from '../config';
import { BrokerError } from '../errors';
import type { BrokerRequest, ResponseCookie } from './types';
import { isLoopbackHost, parseHostHeader } from '../net/loopback';

/** The largest body a route reads (JSON or a form); the local host refuses larger ones before any route. */
export const MAX_JSON_BODY_BYTES = 16 * 1024;

/** The one answer to a body over {@link MAX_JSON_BODY_BYTES}: from a route and from the local host alike. */
export function bodyTooLarge(maxBytes = MAX_JSON_BODY_BYTES): BrokerError {
  return new BrokerError('payload_too_large', `The body may be at most ${maxBytes} bytes.`);
}

const MAX_QUERY_VALUE = 8192;

/**
 * Refuses a request another site made the admin's browser send (a cross-site form post, a
 * fetch from a page that rebinds DNS): browsers say so in Sec-Fetch-Site and Origin. Scripts and
 * consumers send neither and are judged by their identity alone.
 */
export function refuseCrossSite(config: Pick<BrokerConfig, 'publicBaseUrl'>, request: BrokerRequest): void {
  const site = request.headers.get('sec-fetch-site');
  const origin = request.headers.get('origin');
  const ownOrigin = new URL(config.publicBaseUrl).origin;
  if (
    (site !== null && site !== 'same-origin' && site !== 'none') ||
    (origin !== null && origin !== ownOrigin)
  ) {
    throw new BrokerError('forbidden', 'A request from another site may not change anything here.', {
      remedy: `Use the console at ${ownOrigin}/api/console, or call the API from a script.`,
    });
  }
}

/**
 * With local admin on, every route is open to whoever reaches the port: a web page that rebinds its
 * own DNS name to 127.0.0.1 could call it from the admin's browser. Such a request names the page's
 * host in Host, so only requests addressed to a loopback name are answered (421 otherwise) — in
 * `npm start`'s host and under `func start` alike, since both serve routes through `serve()`.
 */
export function refuseMisaddressed(config: Pick<BrokerConfig, 'localAdmin'>, request: BrokerRequest): void {
  if (!config.localAdmin) return;
  const host = parseHostHeader(request.headers.get('host') ?? request.url.host);
  if (!host || !isLoopbackHost(host.name)) {
    throw new BrokerError(
      'misdirected_request',
      'With BROKER_LOCAL_ADMIN on, this host answers only requests addressed to localhost, 127.0.0.1 or [::1].',
      { remedy: 'Open the console at http://localhost:<port>/api/console.' },
    );
  }
}

/** The body as JSON: 415 for another media type, 413 above {@link MAX_JSON_BODY_BYTES}, 400 if unparsable. */
export async function readJsonBody(request: BrokerRequest): Promise<unknown> {
  const contentType = request.headers.get('content-type') ?? '';
  if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(contentType)) {
    throw new BrokerError('unsupported_media_type', 'Send the body as application/json.');
  }
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > MAX_JSON_BODY_BYTES) throw bodyTooLarge();
  const text = await request.text(MAX_JSON_BODY_BYTES);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new BrokerError('invalid_request', 'The body is not valid JSON.');
  }
}

/** One parameter of a query or form: 400 when it appears twice or is too long. */
export function singleValue(params: URLSearchParams, key: string): string | undefined {
  const values = params.getAll(key);
  if (values.length > 1)
    throw new BrokerError('invalid_request', `The parameter ${key} appears more than once.`);
  const value: string | undefined = values[0];
  if (value !== undefined && value.length > MAX_QUERY_VALUE) {
    throw new BrokerError('invalid_request', `The parameter ${key} is too long.`);
  }
  return value;
}

/** An HTML form's fields (application/x-www-form-urlencoded): 415 for another type, 413 above the body limit. */
export async function readFormBody(request: BrokerRequest): Promise<URLSearchParams> {
  const contentType = request.headers.get('content-type') ?? '';
  if (!/^application\/x-www-form-urlencoded\s*(?:;|$)/i.test(contentType)) {
    throw new BrokerError('unsupported_media_type', 'Send the form as application/x-www-form-urlencoded.');
  }
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > MAX_JSON_BODY_BYTES) throw bodyTooLarge();
  return new URLSearchParams(await request.text(MAX_JSON_BODY_BYTES));
}

/**
 * The cookie that binds one authorization to the browser that started it. Its name carries a
 * digest of the flow's `state`, so two Authorize popups in one browser each keep their own.
 * `__Host-` pins it to this host and path over HTTPS; plain HTTP (localhost) cannot use it.
 * An empty value with `maxAgeSeconds` 0 clears it.
 */
export function bindingCookie(
  config: Pick<BrokerConfig, 'publicBaseUrl'>,
  state: string,
  value: string,
  maxAgeSeconds: number,
): ResponseCookie {
  const https = config.publicBaseUrl.startsWith('https://');
  return {
    name: bindingCookieName(state, https),
    value,
    // Only the callback reads it: no other request of the app carries it.
    path: '/api/callback',
    maxAgeSeconds,
    // Browsers take Secure cookies from http://localhost too (a potentially trustworthy origin).
    secure: true,
    httpOnly: true,
    // None: Entra returns the code in a form it POSTs from its own origin (response_mode=form_post),
    // and a cross-site POST carries only SameSite=None cookies. The cookie is one random value per
    // sign-in, useless without the state and the PKCE verifier that stay on the server.
    sameSite: 'None',
  };
}

/** The binding cookie the browser sent back for the flow with this `state`, if any. */
export function readBindingCookie(
  config: Pick<BrokerConfig, 'publicBaseUrl'>,
  request: BrokerRequest,
  state: string,
): string | undefined {
  const name = bindingCookieName(state, config.publicBaseUrl.startsWith('https://'));
  const header = request.headers.get('cookie');
  if (!header || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const index = part.indexOf('=');
    if (index > 0 && part.slice(0, index).trim() === name) return part.slice(index + 1).trim();
  }
  return undefined;
}

function bindingCookieName(state: string, https: boolean): string {
  const flow = createHash('sha256').update(state).digest('base64url').slice(0, 16);
  // __Secure- (not __Host-, which requires Path=/): the browser refuses it from a non-secure page.
  return `${https ? '__Secure-' : ''}broker_auth_${flow}`;
}
