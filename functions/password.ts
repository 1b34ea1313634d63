import { guard, existingConnection, readJsonBody } from '../shared/http/handlers';
import { identifyCaller, requireAdmin } from '../shared/http/caller';
import { noContent } from '../shared/http/responses';
import type { HttpFunctionDefinition } from './adapter';

/**
 * `PUT /api/connections/{name}/password` (admin): `{ "password": "..." }` for a connection with
 * the legacy `password` grant. Kept only in the secret store, never returned or logged; 204.
 */
const handler = guard('api', ['PUT'], async (broker, request) => {
  const caller = requireAdmin(identifyCaller(request, broker.config));
  const connection = await existingConnection(broker, request.params.name);
  const body = await readJsonBody(request);
  await broker.passwords.set(connection, body, caller.name, request.correlationId);
  return noContent();
});

export const password: HttpFunctionDefinition = {
  name: 'password',
  route: 'connections/{name}/password',
  methods: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'],
  authLevel: 'anonymous',
  handler,
};
