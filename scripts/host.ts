/**
 * Serves the app's functions on http://localhost:7071/api/... without Azure Functions Core Tools.
 * Each request becomes the same `HttpRequest`/`InvocationContext` the Functions host would build
 * (the @azure/functions library's test mode) and runs the same registered handler.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpRequest, InvocationContext, type Cookie, type HttpResponseInit } from '@azure/functions';
import { adaptHttp } from '../functions/adapter';
import { httpFunctions } from '../functions/http-functions';
import type { HttpFunctionDefinition } from '../functions/route';
import type { Broker } from '../shared/broker';
import { BrokerError } from '../shared/errors';
import { bodyTooLarge, MAX_JSON_BODY_BYTES } from '../shared/http/request';
import { problem } from '../shared/http/responses';
import { isLoopbackHost, parseHostHeader } from '../shared/net/loopback';

const ROUTE_PREFIX = '/api/';

interface CompiledRoute {
  definition: HttpFunctionDefinition;
  pattern: RegExp;
  parameters: string[];
  literalSegments: number;
}

function compile(definition: HttpFunctionDefinition): CompiledRoute {
  const parameters: string[] = [];
  const segments = definition.route.split('/');
  const pattern = segments
    .map((segment) => {
      const match = /^\{(\w+)\}$/.exec(segment);
      if (match?.[1]) {
        parameters.push(match[1]);
        return '([^/]+)';
      }
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return {
    definition,
    pattern: new RegExp(`^${pattern}/?$`, 'i'),
    parameters,
    literalSegments: segments.length - parameters.length,
  };
}

function serializeCookie(cookie: Cookie): string {
  const parts = [`${cookie.name}=${cookie.value}`];
  if (cookie.path) parts.push(`Path=${cookie.path}`);
  if (cookie.maxAge !== undefined) parts.push(`Max-Age=${cookie.maxAge}`);
  if (cookie.secure) parts.push('Secure');
  if (cookie.httpOnly) parts.push('HttpOnly');
  if (cookie.sameSite) parts.push(`SameSite=${cookie.sameSite}`);
  return parts.join('; ');
}

/**
 * The local host's own answers (what the Functions host answers before any function runs), in the
 * app's problem+json: the same `type`, `title` and `correlationId` as an answer of a route.
 */
function refusal(
  error: BrokerError,
  correlationId: string,
  extraHeaders: Record<string, string> = {},
): HttpResponseInit {
  const { status, headers, body } = problem(error, correlationId);
  return { status, headers: { ...headers, ...extraHeaders }, body };
}

/**
 * The body, up to the app's limit (no route reads more). Past it nothing more is kept: the rest is
 * read and dropped as it comes, and the 413 closes the connection, so even an endless upload ends.
 */
function readBody(request: http.IncomingMessage): Promise<Buffer | 'too-large'> {
  if (Number(request.headers['content-length'] ?? '0') > MAX_JSON_BODY_BYTES) {
    return Promise.resolve('too-large');
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const keep = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_JSON_BODY_BYTES) {
        chunks.push(chunk);
        return;
      }
      request.off('data', keep);
      resolve('too-large');
    };
    request.on('data', keep);
    request.once('end', () => {
      resolve(Buffer.concat(chunks));
    });
    request.once('error', reject);
    request.once('close', () => {
      if (!request.complete) reject(new Error('aborted'));
    });
  });
}

/** The path of a request, for a log line: never its query, which a sign-in could carry. */
function pathOf(request: http.IncomingMessage): string | undefined {
  return URL.parse(request.url ?? '/', 'http://localhost')?.pathname;
}

/** A percent-decoded route parameter, or undefined when the escape is malformed (`%zz`, `%e9`). */
function decodeParameter(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/**
 * The local host answers only requests addressed to itself: a web page that rebinds its own
 * DNS name to 127.0.0.1 sends its own name in Host and is refused (421), so it cannot use the
 * local admin's session-less access.
 */
function misaddressed(header: string | undefined, port: number): BrokerError | undefined {
  const host = header ? parseHostHeader(header) : undefined;
  if (!host) return new BrokerError('invalid_request', 'The Host header is missing or malformed.');
  if (!isLoopbackHost(host.name) || (host.port ?? 80) !== port) {
    return new BrokerError(
      'misdirected_request',
      'This local host answers only http://localhost, 127.0.0.1 or [::1] on its own port.',
      { remedy: `Open the console at http://localhost:${port}/api/console.` },
    );
  }
  return undefined;
}

export interface LocalHost {
  url: string;
  server: http.Server;
  close(): Promise<void>;
}

/** The functions a host serves: by default the sources'; the benchmarks pass the built bundle's. */
export interface ServedFunctions {
  definitions: readonly HttpFunctionDefinition[];
  adapt: typeof adaptHttp;
}

export async function startLocalHost(options: {
  broker: Broker;
  port?: number;
  hostname?: string;
  functions?: ServedFunctions;
}): Promise<LocalHost> {
  const { definitions, adapt } = options.functions ?? { definitions: httpFunctions, adapt: adaptHttp };
  const routes = definitions
    .map(compile)
    .sort((a, b) => b.literalSegments - a.literalSegments || a.parameters.length - b.parameters.length);
  const handlers = new Map(routes.map((route) => [route, adapt(route.definition, () => options.broker)]));

  let port = options.port ?? 7071;
  const logger = options.broker.logger;

  /** The answer to one request: the host's own refusal, or the answer of the function its path names. */
  async function answer(incoming: http.IncomingMessage, correlationId: string): Promise<HttpResponseInit> {
    const refused = misaddressed(incoming.headers.host, port);
    if (refused) return refusal(refused, correlationId);
    const url = URL.parse(incoming.url ?? '/', `http://${incoming.headers.host ?? ''}`);
    if (!url) {
      return refusal(
        new BrokerError('invalid_request', 'The request target is not a valid URL.'),
        correlationId,
      );
    }
    const path = url.pathname.startsWith(ROUTE_PREFIX) ? url.pathname.slice(ROUTE_PREFIX.length) : undefined;
    const route = path === undefined ? undefined : routes.find((candidate) => candidate.pattern.test(path));
    const handler = route ? handlers.get(route) : undefined;
    if (!route || !handler || path === undefined) {
      return refusal(
        new BrokerError('route_not_found', 'No route of the API has this path.', {
          remedy: 'Check the path against the HTTP API in the README; every route starts with /api/.',
        }),
        correlationId,
      );
    }
    const match = route.pattern.exec(path);
    const params: Record<string, string> = {};
    for (const [index, name] of route.parameters.entries()) {
      const value = decodeParameter(match?.[index + 1] ?? '');
      if (value === undefined) {
        return refusal(
          new BrokerError('invalid_request', 'The path has a malformed percent-escape.'),
          correlationId,
        );
      }
      params[name] = value;
    }
    const body = await readBody(incoming);
    if (body === 'too-large') return refusal(bodyTooLarge(), correlationId, { Connection: 'close' });
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(incoming.headers)) {
      if (value !== undefined) headers[key] = Array.isArray(value) ? value.join(', ') : value;
    }
    const request = new HttpRequest({
      method: incoming.method ?? 'GET',
      url: url.toString(),
      headers,
      params,
      query: Object.fromEntries(url.searchParams),
      body: body.length > 0 ? { bytes: body } : undefined,
    });
    // One correlation id per request, whoever answers it: the function (its invocation id) or the host.
    const context = new InvocationContext({
      invocationId: correlationId,
      functionName: route.definition.name,
    });
    return handler(request, context);
  }

  const server = http.createServer((incoming, outgoing) => {
    const correlationId = randomUUID();
    const where = () => ({ method: incoming.method, path: pathOf(incoming), correlationId });
    // A client that went away (an aborted upload, a closed tab) is not a fault here, and there is
    // nobody left to answer.
    const clientGone = () => outgoing.destroyed || (incoming.destroyed && !incoming.complete);
    const reply = (result: HttpResponseInit) => {
      if (clientGone()) {
        logger.info('host.request_aborted', where());
        return;
      }
      const flat: Record<string, string | string[]> = Object.fromEntries(
        new Headers(result.headers).entries(),
      );
      if (result.cookies?.length) flat['set-cookie'] = result.cookies.map(serializeCookie);
      outgoing.writeHead(result.status ?? 200, flat);
      outgoing.end(typeof result.body === 'string' ? result.body : undefined);
    };
    void answer(incoming, correlationId)
      .then(reply)
      .catch((error: unknown) => {
        if (clientGone()) {
          logger.info('host.request_aborted', where());
          return;
        }
        logger.error('host.request_failed', { ...where(), error });
        if (outgoing.headersSent) {
          outgoing.destroy();
          return;
        }
        reply(
          refusal(
            new BrokerError(
              'internal_error',
              'The local host failed. The correlation id finds its log line.',
            ),
            correlationId,
          ),
        );
      });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 7071, options.hostname ?? '127.0.0.1', () => {
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  port = address.port;
  return {
    url: `http://localhost:${address.port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
