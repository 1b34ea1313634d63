import type { Broker } from '../shared/broker';
import { assertConnectionName, parseConnectionDefinition } from '../shared/connections/connection';
import { BrokerError } from '../shared/errors';
import { identifyCaller, requireAdmin } from '../shared/http/caller';
import { connectionDetail, connectionView } from '../shared/http/connection-view';
import { readJsonBody } from '../shared/http/request';
import { json, noContent } from '../shared/http/responses';
import type { BrokerRequest, BrokerResponse } from '../shared/http/types';
import type { Handler } from './route';
import type { HttpFunctionDefinition } from './route';

/** `GET /api/connections` (admin): every connection. */
const list: Handler<'config' | 'registry' | 'secrets'> = async (broker, request) => {
  requireAdmin(identifyCaller(request, broker.config));
  const connections = await broker.registry.list();
  return json(200, {
    connections: connections.map((connection) => connectionView(connection, broker.secrets)),
  });
};

/** `GET|PUT|DELETE /api/connections/{name}` (admin): one connection with its recent events; define; delete. */
const item: Handler<'audit' | 'config' | 'connections' | 'registry' | 'secrets'> = async (
  broker,
  request,
) => {
  const caller = requireAdmin(identifyCaller(request, broker.config));
  if (request.method === 'GET') return json(200, await connectionDetail(broker, request.params.name));
  const name = assertConnectionName(request.params.name);
  const change = { actor: caller.name, correlationId: request.correlationId };
  if (request.method === 'PUT') return define(broker, request, name, change);
  const withDependants = request.url.searchParams.get('withDependants');
  if (withDependants !== null && withDependants !== 'true' && withDependants !== 'false') {
    throw new BrokerError('invalid_request', 'withDependants must be true or false.');
  }
  await broker.connections.delete(name, { ...change, withDependants: withDependants === 'true' });
  return noContent();
};

/** `PUT ?reset=true|false` with the definition as JSON: 201 with Location when new, else 200. */
async function define(
  broker: Pick<Broker, 'config' | 'connections'>,
  request: BrokerRequest,
  name: string,
  change: { actor: string; correlationId: string },
): Promise<BrokerResponse> {
  const reset = request.url.searchParams.get('reset');
  if (reset !== null && reset !== 'true' && reset !== 'false') {
    throw new BrokerError('invalid_request', 'reset must be true or false.');
  }
  const definition = parseConnectionDefinition(await readJsonBody(request), {
    ownClientId: broker.config.clientId,
  });
  const { connection, created } = await broker.connections.define(name, definition, {
    ...change,
    reset: reset === 'true',
  });
  return json(
    created ? 201 : 200,
    connectionView(connection),
    created ? { Location: `/api/connections/${name}` } : {},
  );
}

export const connectionsList: HttpFunctionDefinition = {
  name: 'connectionsList',
  route: 'connections',
  methods: ['GET'],
  kind: 'api',
  authLevel: 'anonymous',
  handler: list,
};

export const connectionsItem: HttpFunctionDefinition = {
  name: 'connectionsItem',
  route: 'connections/{name}',
  methods: ['GET', 'PUT', 'DELETE'],
  kind: 'api',
  authLevel: 'anonymous',
  handler: item,
};
