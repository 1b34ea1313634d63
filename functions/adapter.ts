import type { HttpRequest, InvocationContext } from '@azure/functions';
import { type HttpResponseInit } from '@azure/functions';
import type { Broker } from '../shared/broker';
import { bodyTooLarge } from '../shared/http/request';
import type { BrokerRequest, BrokerResponse } from '../shared/http/types';
import { serve, type HttpFunctionDefinition } from './route';

export type FunctionsHttpHandler = (
  request: HttpRequest,
  context: InvocationContext,
) => Promise<HttpResponseInit>;

function toBrokerRequest(request: HttpRequest, context: InvocationContext): BrokerRequest {
  return {
    method: request.method.toUpperCase(),
    url: new URL(request.url),
    headers: request.headers,
    params: { ...request.params },
    correlationId: context.invocationId,
    async text(maxBytes: number) {
      const body = Buffer.from(await request.arrayBuffer());
      if (body.length > maxBytes) throw bodyTooLarge(maxBytes);
      return body.toString('utf8');
    },
  };
}

function toResponseInit(response: BrokerResponse): HttpResponseInit {
  return {
    status: response.status,
    headers: response.headers,
    body: response.body,
    cookies: response.cookies?.map((cookie) => ({
      name: cookie.name,
      value: cookie.value,
      path: cookie.path,
      maxAge: cookie.maxAgeSeconds,
      secure: cookie.secure,
      httpOnly: cookie.httpOnly,
      sameSite: cookie.sameSite,
    })),
  };
}

/** Binds a function's definition, through {@link serve}, to the Functions programming model. */
export function adaptHttp(definition: HttpFunctionDefinition, broker: () => Broker): FunctionsHttpHandler {
  const handler = serve(definition);
  return async (request, context) =>
    toResponseInit(await handler(broker(), toBrokerRequest(request, context)));
}
