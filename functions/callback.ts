import { callback as handler } from '../shared/http/handlers';
import type { HttpFunctionDefinition } from './adapter';

export const callback: HttpFunctionDefinition = {
  name: 'callback',
  route: 'callback',
  methods: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'],
  authLevel: 'anonymous',
  handler,
};
