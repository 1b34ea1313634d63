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
import { isLoopbackHost, parseHostHeader } from '../shared/net/loopback';

const MAX_BODY_BYTES = 1024 * 1024;
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

/** The local host's own answers (what the Functions host answers before any function runs). */
function problemJson(status: number, code: string, detail: string) {
  return {
    status,
    headers: { 'Content-Type': 'application/problem+json; charset=utf-8', 'Cache-Control': 'no-store' },
    body: JSON.stringify({ type: 'about:blank', title: code, status, code, detail }),
  };
}

async function readBody(request: http.IncomingMessage): Promise<Buffer | 'too-large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return 'too-large';
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
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
function misaddressed(header: string | undefined, port: number): HttpResponseInit | undefined {
  const host = header ? parseHostHeader(header) : undefined;
  if (!host) return problemJson(400, 'invalid_request', 'The Host header is missing or malformed.');
  if (!isLoopbackHost(host.name) || (host.port ?? 80) !== port) {
    return problemJson(
      421,
      'misdirected_request',
      'This local host answers only http://localhost, 127.0.0.1 or [::1] on its own port.',
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
  const server = http.createServer((incoming, outgoing) => {
    void (async () => {
      let result: HttpResponseInit;
      const refused = misaddressed(incoming.headers.host, port);
      const url = refused
        ? undefined
        : URL.parse(incoming.url ?? '/', `http://${incoming.headers.host ?? ''}`);
      const path = url?.pathname.startsWith(ROUTE_PREFIX)
        ? url.pathname.slice(ROUTE_PREFIX.length)
        : undefined;
      const route = path === undefined ? undefined : routes.find((candidate) => candidate.pattern.test(path));
      const handler = route ? handlers.get(route) : undefined;
      const match = route && path !== undefined ? route.pattern.exec(path) : null;
      const params: Record<string, string> = {};
      const decoded = (route?.parameters ?? []).every((name, index) => {
        const value = decodeParameter(match?.[index + 1] ?? '');
        if (value !== undefined) params[name] = value;
        return value !== undefined;
      });
      if (refused) {
        result = refused;
      } else if (!url) {
        result = problemJson(400, 'invalid_request', 'The request target is not a valid URL.');
      } else if (!route || !handler || path === undefined) {
        result = problemJson(404, 'not_found', 'There is no such route.');
      } else {
        const body = await readBody(incoming);
        if (body === 'too-large') {
          result = problemJson(413, 'payload_too_large', `The body may be at most ${MAX_BODY_BYTES} bytes.`);
        } else if (!decoded) {
          result = problemJson(400, 'invalid_request', 'The path has a malformed percent-escape.');
        } else {
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
          const context = new InvocationContext({
            invocationId: randomUUID(),
            functionName: route.definition.name,
          });
          result = await handler(request, context);
        }
      }
      const headers = new Headers(result.headers);
      const flat: Record<string, string | string[]> = Object.fromEntries(headers.entries());
      if (result.cookies?.length) flat['set-cookie'] = result.cookies.map(serializeCookie);
      outgoing.writeHead(result.status ?? 200, flat);
      outgoing.end(typeof result.body === 'string' ? result.body : undefined);
    })().catch((error: unknown) => {
      options.broker.logger.error('host.request_failed', { error });
      if (!outgoing.headersSent) {
        outgoing.writeHead(500, { 'Content-Type': 'application/problem+json' });
      }
      outgoing.end(JSON.stringify({ status: 500, code: 'internal_error', detail: 'The local host failed.' }));
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
