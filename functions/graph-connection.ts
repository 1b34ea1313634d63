import { addGraphSibling } from '../shared/connections/graph-move';
import { identifyCaller, requireAdmin } from '../shared/http/caller';
import { connectionView } from '../shared/http/connection-view';
import { readJsonBody } from '../shared/http/request';
import { json } from '../shared/http/responses';
import type { Handler, HttpFunctionDefinition } from './route';

/**
 * `POST /api/connections/{name}/graph` (admin): "Add the Graph connection" on an EWS connection.
 * Defines `{name}-graph` (or `{"name": "…"}`) with `graph-mail` (`graph-mail-shared` for
 * `ews-shared`) signing in through the same sign-in, and tests it at once: `201 {connection, test}`
 * (`test` is null while the sign-in it uses holds no token yet).
 */
const handler: Handler<'config' | 'connections' | 'registry' | 'secrets' | 'tester'> = async (
  broker,
  request,
) => {
  const caller = requireAdmin(identifyCaller(request, broker.config));
  // The body is optional: a bare POST (the console's button) takes the default name.
  const body = request.headers.get('content-type') !== null ? await readJsonBody(request) : undefined;
  const { connection, test } = await addGraphSibling(broker, request.params.name, body, {
    actor: caller.name,
    correlationId: request.correlationId,
  });
  return json(
    201,
    { connection: connectionView(connection, broker.secrets), test },
    { Location: `/api/connections/${connection.name}` },
  );
};

export const graphConnection: HttpFunctionDefinition = {
  name: 'graphConnection',
  route: 'connections/{name}/graph',
  methods: ['POST'],
  kind: 'api',
  authLevel: 'anonymous',
  handler,
};
