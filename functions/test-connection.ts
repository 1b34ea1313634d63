import { assertConnectionName } from '../shared/connections/connection';
import { identifyCaller, requireAdmin } from '../shared/http/caller';
import { json } from '../shared/http/responses';
import type { Handler } from './route';
import type { HttpFunctionDefinition } from './route';

/**
 * `POST /api/connections/{name}/test` (admin): proves the connection's token opens its mailbox.
 * 200 with `{ ok, protocol, mailbox, durationMs, details, code?, detail?, remedy? }` whatever the
 * mailbox server said; 4xx problem+json only for a bad request (unknown, new or disabled connection).
 */
const handler: Handler<'config' | 'tester'> = async (broker, request) => {
  requireAdmin(identifyCaller(request, broker.config));
  const name = assertConnectionName(request.params.name);
  return json(200, await broker.tester.test(name, request.correlationId));
};

export const testConnection: HttpFunctionDefinition = {
  name: 'testConnection',
  route: 'connections/{name}/test',
  methods: ['POST'],
  kind: 'api',
  authLevel: 'anonymous',
  handler,
};
