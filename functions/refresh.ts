import { identifyCaller, requireAdmin } from '../shared/http/caller';
import { connectionView } from '../shared/http/connection-view';
import { json } from '../shared/http/responses';
import type { Handler, HttpFunctionDefinition } from './route';

/**
 * `POST /api/connections/{name}/refresh` (admin): refresh now, whether due or not. 200 with the
 * outcome and the connection; 409 while another refresh runs; a failed refresh as its error.
 */
const handler: Handler<'config' | 'refresher'> = async (broker, request) => {
  const caller = requireAdmin(identifyCaller(request, broker.config));
  const outcome = await broker.refresher.refreshNow(request.params.name, caller.name);
  return json(200, {
    result: outcome.result,
    reason: outcome.reason,
    connection: connectionView(outcome.row),
  });
};

export const refresh: HttpFunctionDefinition = {
  name: 'refresh',
  route: 'connections/{name}/refresh',
  methods: ['POST'],
  kind: 'api',
  authLevel: 'anonymous',
  handler,
};
