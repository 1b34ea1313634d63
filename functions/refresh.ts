import type { Connection } from '../shared/connections/connection';
import { BrokerError } from '../shared/errors';
import { identifyCaller, requireAdmin } from '../shared/http/caller';
import { connectionView, existingConnection } from '../shared/http/connection-view';
import { json } from '../shared/http/responses';
import type { Handler } from './route';
import type { RefreshOutcome } from '../shared/oauth/refresh';
import type { HttpFunctionDefinition } from './route';

/**
 * `POST /api/connections/{name}/refresh` (admin): refresh now, whether due or not. 200 with the
 * outcome and the connection; 409 while another refresh runs; a failed refresh as its error.
 */
const handler: Handler = async (broker, request) => {
  const caller = requireAdmin(identifyCaller(request, broker.config));
  const connection = await existingConnection(broker.registry, request.params.name);
  if (connection.status === 'new') {
    throw new BrokerError(
      'connection_not_authorized',
      `Connection ${connection.name} has not been authorized yet.`,
    );
  }
  const outcome = await broker.refresher.refresh(connection.name, { actor: caller.name, force: true });
  if (outcome.result === 'busy') {
    throw new BrokerError('refresh_in_progress', `A refresh of ${connection.name} is already running.`, {
      retryAfterSeconds: 5,
    });
  }
  // Re-read: the refresh has just written the status and the last error.
  const current = await existingConnection(broker.registry, connection.name);
  if (outcome.result === 'failed') throw refreshFailure(outcome, current);
  return json(200, { result: outcome.result, reason: outcome.reason, connection: connectionView(current) });
};

/**
 * A failed refresh as the admin's error. Kept here rather than in the refresh service because it
 * is this route's answer (the token route tells consumers `token_unavailable` for the same outcome).
 */
function refreshFailure(outcome: RefreshOutcome, current: Connection): BrokerError {
  const definitive = outcome.status === 'reauthorization_required';
  return new BrokerError(
    definitive
      ? 'reauthorization_required'
      : outcome.reason === 'configuration'
        ? 'configuration_error'
        : 'upstream_unavailable',
    outcome.failure?.message ?? 'The refresh failed.',
    {
      aadsts: outcome.failure?.aadsts,
      remedy: current.lastError?.remedy,
      retryAfterSeconds: definitive ? undefined : 60,
    },
  );
}

export const refresh: HttpFunctionDefinition = {
  name: 'refresh',
  route: 'connections/{name}/refresh',
  methods: ['POST'],
  kind: 'api',
  authLevel: 'anonymous',
  handler,
};
