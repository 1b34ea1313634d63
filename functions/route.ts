import { BrokerError } from '../shared/errors';
import { errorPage } from '../shared/http/pages';
import { refuseCrossSite, refuseMisaddressed } from '../shared/http/request';
import { problem, toBrokerError } from '../shared/http/responses';
import type { Broker } from '../shared/broker';
import type { BrokerRequest, BrokerResponse } from '../shared/http/types';

/**
 * A route's handler: the request, and the services it names (`Handler<'config' | 'tokenReader'>`).
 * The body sees those and nothing else of the composition root, so what a route reaches is written
 * at its head; any handler is still a `Handler` for serve() and the adapters.
 */
export type Handler<Uses extends keyof Broker = keyof Broker> = (
  services: Pick<Broker, Uses>,
  request: BrokerRequest,
) => Promise<BrokerResponse>;

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';

/**
 * Every method the host routes to every function: a method a route does not serve then gets the
 * route's own 405 (problem+json or a page, with `Allow`) instead of the host's bare 404.
 */
export const ROUTED_METHODS: HttpMethod[] = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];

/** Who reads a route's errors: scripts get problem+json (`api`), a person a readable page (`browser`). */
export type RouteKind = 'api' | 'browser';

/** One HTTP function: what the host registers and what the local host serves. */
export interface HttpFunctionDefinition {
  name: string;
  route: string;
  /** The methods the route serves; the only list of them. */
  methods: HttpMethod[];
  /** Per request method when a route serves both a browser and scripts. */
  kind: RouteKind | ((method: string) => RouteKind);
  authLevel: 'anonymous' | 'function';
  handler: Handler;
  /** Only the callback: a form another site (Entra) POSTs; everything else refuses cross-site writes. */
  acceptsCrossSitePost?: true;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The route's handler behind what every route does alike: 405 with `Allow` for a method it does
 * not serve, no state change requested by another site, and errors as problem+json or a page.
 * The Functions adapter and the local host both serve a definition only through this.
 */
export function serve(definition: HttpFunctionDefinition): Handler {
  const { methods, handler } = definition;
  const kindOf = (method: string) =>
    typeof definition.kind === 'function' ? definition.kind(method) : definition.kind;
  return async (broker, request) => {
    const kind = kindOf(request.method);
    try {
      refuseMisaddressed(broker.config, request);
      const served = (methods as string[]).includes(request.method);
      if (served && !SAFE_METHODS.has(request.method) && !definition.acceptsCrossSitePost)
        refuseCrossSite(broker.config, request);
      if (!served) {
        const error = new BrokerError('method_not_allowed', `${request.method} is not allowed here.`);
        const response =
          kind === 'api' ? problem(error, request.correlationId) : errorPage(error, request.correlationId);
        response.headers.Allow = methods.join(', ');
        return response;
      }
      return await handler(broker, request);
    } catch (thrown) {
      const error = toBrokerError(thrown, broker.logger, request.correlationId);
      if (error.status >= 500) {
        broker.logger.error('request.failed', {
          code: error.code,
          correlationId: request.correlationId,
          path: request.url.pathname,
        });
      }
      return kind === 'api'
        ? problem(error, request.correlationId, request.url.pathname)
        : errorPage(error, request.correlationId);
    }
  };
}
