import { authorize as handler } from '../shared/http/handlers';
import type { HttpFunctionDefinition } from './adapter';

export const authorize: HttpFunctionDefinition = {
  name: 'authorize',
  route: 'connections/{name}/authorize',
  methods: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'],
  authLevel: 'anonymous',
  handler,
};
