import { identifyCaller, requireAdmin } from '../shared/http/caller';
import { readJsonBody } from '../shared/http/request';
import { noContent } from '../shared/http/responses';
import type { Handler } from './route';
import type { HttpFunctionDefinition } from './route';
import { setPassword } from '../shared/oauth/passwords';

/**
 * `PUT /api/connections/{name}/password` (admin): `{ "password": "..." }` for a connection with
 * the legacy `password` grant. Kept only in the secret store, never returned or logged; 204.
 */
const handler: Handler<'config' | 'registry' | 'state'> = async (broker, request) => {
  const caller = requireAdmin(identifyCaller(request, broker.config));
  await setPassword(broker, request.params.name, () => readJsonBody(request), {
    actor: caller.name,
    correlationId: request.correlationId,
  });
  return noContent();
};

export const password: HttpFunctionDefinition = {
  name: 'password',
  route: 'connections/{name}/password',
  methods: ['PUT'],
  kind: 'api',
  authLevel: 'anonymous',
  handler,
};
