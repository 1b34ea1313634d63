import { refreshNow as handler } from '../shared/http/handlers';
import type { HttpFunctionDefinition } from './adapter';

export const refresh: HttpFunctionDefinition = {
  name: 'refresh',
  route: 'connections/{name}/refresh',
  methods: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'],
  authLevel: 'anonymous',
  handler,
};
