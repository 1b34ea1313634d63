import { graphReadiness } from '../shared/connections/graph-move';
import { identifyCaller, requireAdmin } from '../shared/http/caller';
import { json } from '../shared/http/responses';
import type { Handler, HttpFunctionDefinition } from './route';

/**
 * `GET /api/graph-readiness` (admin): every EWS connection, whether it has a working Graph sibling,
 * its last EWS test, and the days left until EWS retires (1 April 2027).
 */
const handler: Handler<'config' | 'now' | 'registry'> = async (broker, request) => {
  requireAdmin(identifyCaller(request, broker.config));
  return json(200, graphReadiness(await broker.registry.list(), broker.now()));
};

export const graphReadinessView: HttpFunctionDefinition = {
  name: 'graphReadiness',
  route: 'graph-readiness',
  methods: ['GET'],
  kind: 'api',
  authLevel: 'anonymous',
  handler,
};
