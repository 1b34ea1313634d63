import type { Broker } from '../shared/broker';
import { assertConnectionName } from '../shared/connections/connection';
import type { CompletedAuthorization } from '../shared/oauth/authorization';
import { identifyCaller, requireAdmin } from '../shared/http/caller';
import { connectionView } from '../shared/http/connection-view';
import { callbackPage } from '../shared/http/pages';
import { bindingCookie, refuseCrossSite } from '../shared/http/request';
import { json, toBrokerError } from '../shared/http/responses';
import type { BrokerRequest, BrokerResponse } from '../shared/http/types';
import type { Handler } from './route';
import type { HttpFunctionDefinition } from './route';

/**
 * `GET /api/connections/{name}/authorize` (admin, in the console's popup): a 302 to Entra's
 * sign-in, bound to this browser by a cookie; for grants without a browser step, the result page.
 */
const inBrowser: Handler<'authorization' | 'config' | 'logger'> = async (broker, request) => {
  const caller = requireAdmin(identifyCaller(request, broker.config));
  const name = assertConnectionName(request.params.name);
  // Starting a sign-in (or, for grants without a browser step, acquiring a token) changes state:
  // another site may not make the admin's browser start one (Sec-Fetch-Site: cross-site).
  refuseCrossSite(broker.config, request);
  const begun = await broker.authorization.begin(name, caller.name, request.correlationId);
  if (begun.way === 'server') return serverSideResultPage(broker, request, name, begun);
  broker.logger.info('authorization.started', {
    connection: name,
    actor: caller.name,
    correlationId: request.correlationId,
  });
  const started = begun.started;
  return {
    status: 302,
    headers: { Location: started.redirectUrl, 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' },
    cookies: [bindingCookie(broker.config, started.state, started.browserBinding, started.ttlSeconds)],
  };
};

/** A server-side grant's outcome (also a failure) as the popup's result page. */
function serverSideResultPage(
  broker: Pick<Broker, 'config' | 'logger'>,
  request: BrokerRequest,
  name: string,
  outcome: { completed: CompletedAuthorization } | { failure: unknown },
): BrokerResponse {
  const appOrigin = new URL(broker.config.publicBaseUrl).origin;
  if ('completed' in outcome)
    return callbackPage(appOrigin, {
      ok: true,
      connection: name,
      status: outcome.completed.connection.status,
      signedInAs: outcome.completed.signedInAs,
    });
  const error = toBrokerError(outcome.failure, broker.logger, request.correlationId);
  return callbackPage(appOrigin, {
    ok: false,
    connection: name,
    error,
    correlationId: request.correlationId,
  });
}

/** `POST /api/connections/{name}/authorize` (admin): for grants without a browser step, acquire and publish now. */
const serverSide: Handler<'authorization' | 'config' | 'logger' | 'secrets'> = async (broker, request) => {
  const caller = requireAdmin(identifyCaller(request, broker.config));
  const name = assertConnectionName(request.params.name);
  const completed = await broker.authorization.authorizeServerSide(name, caller.name, request.correlationId);
  broker.logger.info('authorization.completed', { connection: name, correlationId: request.correlationId });
  return json(200, {
    signedInAs: completed.signedInAs,
    connection: connectionView(completed.connection, broker.secrets),
  });
};

export const authorize: HttpFunctionDefinition = {
  name: 'authorize',
  route: 'connections/{name}/authorize',
  methods: ['GET', 'POST'],
  // GET in a browser (interactive sign-in, or the result page); POST from the console or a script.
  kind: (method) => (method === 'POST' ? 'api' : 'browser'),
  authLevel: 'anonymous',
  handler: (broker, request) =>
    request.method === 'POST' ? serverSide(broker, request) : inBrowser(broker, request),
};
