import { assertConnectionName } from '../shared/connections/connection';
import { identifyCaller, requireAdmin } from '../shared/http/caller';
import { json, noContent } from '../shared/http/responses';
import type { Handler } from './route';
import type { HttpFunctionDefinition } from './route';

/**
 * `POST /api/connections/{name}/invitations` (admin): a single-use link for the mailbox owner to
 * authorize a delegated connection, `201 {url, expiresOn}`. `DELETE`: revokes the open ones, `204`.
 */
const handler: Handler<'config' | 'invitations'> = async (broker, request) => {
  const caller = requireAdmin(identifyCaller(request, broker.config));
  const name = assertConnectionName(request.params.name);
  const change = { actor: caller.name, correlationId: request.correlationId };
  if (request.method === 'POST') return json(201, await broker.invitations.create(name, change));
  await broker.invitations.revoke(name, change);
  return noContent();
};

export const invitations: HttpFunctionDefinition = {
  name: 'invitations',
  route: 'connections/{name}/invitations',
  methods: ['POST', 'DELETE'],
  kind: 'api',
  authLevel: 'anonymous',
  handler,
};
