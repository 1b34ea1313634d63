import { assertConnectionName } from '../shared/connections/connection';
import { identifyCaller, requireAdmin } from '../shared/http/caller';
import { connectionEvents as eventsOf, connectionView } from '../shared/http/connection-view';
import { json } from '../shared/http/responses';
import type { Handler, HttpFunctionDefinition } from './route';

/** `POST /api/connections/{name}/{disable|enable}` (admin): stop or resume refreshing and serving. */
function statusChange(action: 'disable' | 'enable'): HttpFunctionDefinition {
  return {
    name: `${action}Connection`,
    route: `connections/{name}/${action}`,
    methods: ['POST'],
    kind: 'api',
    authLevel: 'anonymous',
    handler: (async (broker, request) => {
      const caller = requireAdmin(identifyCaller(request, broker.config));
      const name = assertConnectionName(request.params.name);
      const change = { actor: caller.name, correlationId: request.correlationId };
      const connection = await broker.connections[action](name, change);
      return json(200, connectionView(connection, broker.secrets));
    }) satisfies Handler<'config' | 'connections' | 'secrets'>,
  };
}

export const disableConnection = statusChange('disable');
export const enableConnection = statusChange('enable');

/** `GET /api/connections/{name}/events?limit=N` (admin): the audit trail, newest first. */
export const connectionEvents: HttpFunctionDefinition = {
  name: 'connectionEvents',
  route: 'connections/{name}/events',
  methods: ['GET'],
  kind: 'api',
  authLevel: 'anonymous',
  handler: (async (broker, request) => {
    requireAdmin(identifyCaller(request, broker.config));
    return json(200, await eventsOf(broker, request.params.name, request.url.searchParams.get('limit')));
  }) satisfies Handler<'audit' | 'config' | 'registry'>,
};
