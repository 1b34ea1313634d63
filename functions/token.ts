import { token as handler } from '../shared/http/handlers';
import type { HttpFunctionDefinition } from './adapter';

export const token: HttpFunctionDefinition = {
  name: 'token',
  route: 'connections/{name}/token',
  methods: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'],
  // No host-level key (one would open every connection): App Service Authentication identifies the
  // caller, and the handler checks its Broker.TokenReader role and the connection's readers.
  authLevel: 'anonymous',
  handler,
};
