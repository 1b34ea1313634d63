import { adminConsole as handler } from '../shared/http/handlers';
import type { HttpFunctionDefinition } from './adapter';

export const adminConsole: HttpFunctionDefinition = {
  name: 'console',
  route: 'console',
  methods: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'],
  authLevel: 'anonymous',
  handler,
};
