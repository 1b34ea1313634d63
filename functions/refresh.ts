import { BrokerError } from '../shared/errors';
import { identifyCaller, requireAdmin } from '../shared/http/caller';
import { connectionView, existingConnection } from '../shared/http/connection-view';
import { json } from '../shared/http/responses';
import type { Handler } from './route';
import { refreshOutcomeError } from '../shared/oauth/refresh';
import type { HttpFunctionDefinition } from './route';

/**
 * `POST /api/connections/{name}/refresh` (admin): refresh now, whether due or not. 200 with the
 * outcome and the connection; 409 while another refresh runs; a failed refresh as its error.
 */
const handler: Handler<'config' | 'refresher' | 'registry'> = async (broker, request) => {
  const caller = requireAdmin(identifyCaller(request, broker.config));
  const connection = await existingConnection(broker.registry, request.params.name);
  if (connection.status === 'new') {
    throw new BrokerError(
      'connection_not_authorized',
      `Connection ${connection.name} has not been authorized yet.`,
    );
  }
  const outcome = await broker.refresher.refresh(connection.name, { actor: caller.name, force: true });
  if (outcome.result === 'busy' || outcome.result === 'failed') throw refreshOutcomeError(outcome, 'admin');
  // The refresh hands back the row it wrote (status, last error): no second read.
  const current = outcome.row ?? (await existingConnection(broker.registry, connection.name));
  return json(200, { result: outcome.result, reason: outcome.reason, connection: connectionView(current) });
};

export const refresh: HttpFunctionDefinition = {
  name: 'refresh',
  route: 'connections/{name}/refresh',
  methods: ['POST'],
  kind: 'api',
  authLevel: 'anonymous',
  handler,
};
