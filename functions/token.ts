import { token as handler } from '../shared/http/handlers';
import type { HttpFunctionDefinition } from './adapter';

export const token: HttpFunctionDefinition = {
  name: 'token',
  route: 'connections/{name}/token',
  methods: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'],
  // The host checks the function key; the handler also checks App Service Authentication roles.
  authLevel: 'function',
  handler,
};
