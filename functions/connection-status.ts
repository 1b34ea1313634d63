import { assertConnectionName } from '../shared/connections/connection';
import { BrokerError } from '../shared/errors';
import { identifyCaller, requireAdmin } from '../shared/http/caller';
import { connectionView, existingConnection } from '../shared/http/connection-view';
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

const MAX_EVENTS = 200;

/** `GET /api/connections/{name}/events?limit=N` (admin): the audit trail, newest first. */
export const connectionEvents: HttpFunctionDefinition = {
  name: 'connectionEvents',
  route: 'connections/{name}/events',
  methods: ['GET'],
  kind: 'api',
  authLevel: 'anonymous',
  handler: (async (broker, request) => {
    requireAdmin(identifyCaller(request, broker.config));
    const connection = await existingConnection(broker.registry, request.params.name);
    const limit = request.url.searchParams.get('limit') ?? '50';
    if (!/^\d{1,3}$/.test(limit) || Number(limit) < 1 || Number(limit) > MAX_EVENTS) {
      throw new BrokerError('invalid_request', `limit must be a whole number from 1 to ${MAX_EVENTS}.`);
    }
    return json(200, {
      connection: connection.name,
      events: await broker.audit.list(connection.name, Number(limit)),
    });
  }) satisfies Handler<'audit' | 'config' | 'registry'>,
};
