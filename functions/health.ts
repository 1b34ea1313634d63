import { health as handler } from '../shared/http/handlers';
import type { HttpFunctionDefinition } from './adapter';

export const health: HttpFunctionDefinition = {
  name: 'health',
  route: 'health',
  methods: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'],
  authLevel: 'anonymous',
  handler,
};
