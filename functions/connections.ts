import { connectionByName, listConnections } from '../shared/http/handlers';
import type { HttpFunctionDefinition } from './adapter';

// Every method is routed to the handler so that a wrong one gets a problem+json 405, not the host's 404.
const ALL = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'] as HttpFunctionDefinition['methods'];

export const connectionsList: HttpFunctionDefinition = {
  name: 'connectionsList',
  route: 'connections',
  methods: ALL,
  authLevel: 'anonymous',
  handler: listConnections,
};

export const connectionsItem: HttpFunctionDefinition = {
  name: 'connectionsItem',
  route: 'connections/{name}',
  methods: ALL,
  authLevel: 'anonymous',
  handler: connectionByName,
};
