import { authorize } from './authorize';
import { callback } from './callback';
import { connectionsItem, connectionsList } from './connections';
import { graphConnection } from './graph-connection';
import { graphReadinessView } from './graph-readiness';
import { adminConsole } from './console';
import { consoleScriptAsset } from './console-script';
import { health } from './health';
import { invitationDetails, invitationLink } from './invitation-link';
import { invitations } from './invitations';
import { connectionEvents, disableConnection, enableConnection } from './connection-status';
import { password } from './password';
import { refresh } from './refresh';
import type { HttpFunctionDefinition } from './route';
import { testConnection } from './test-connection';
import { token } from './token';

/** Every HTTP function of the app: the Functions host registers them (index.ts), the local host serves them. */
export const httpFunctions: HttpFunctionDefinition[] = [
  health,
  connectionsList,
  connectionsItem,
  authorize,
  callback,
  refresh,
  disableConnection,
  enableConnection,
  connectionEvents,
  password,
  invitations,
  invitationLink,
  invitationDetails,
  testConnection,
  graphConnection,
  graphReadinessView,
  token,
  adminConsole,
  consoleScriptAsset,
];
