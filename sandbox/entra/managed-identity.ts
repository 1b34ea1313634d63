/**
 * App Service / Azure Functions managed-identity endpoint (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`,
 * api-version 2019-08-01), as msal-node's AppService source (used by @azure/identity's
 * ManagedIdentityCredential) calls it: GET ?api-version=2019-08-01&resource=…[&client_id=|object_id=|mi_res_id=]
 * with header X-IDENTITY-HEADER.
 */
import { count, sendJson, type EmulatorState, type Exchange } from './context';
import type { ManagedIdentityInfo } from './model';
import { uti } from './tokens';

const MI_TOKEN_LIFETIME_SECONDS = 24 * 60 * 60;

function appServiceError(ex: Exchange, status: number, message: string): void {
  // The App Service token service answers errors as {statusCode, message, correlationId}.
  sendJson(ex, status, { statusCode: status, message, correlationId: ex.trace.correlationId });
}

export function handleManagedIdentity(state: EmulatorState, ex: Exchange): void {
  count(state, 'managed-identity');
  const header = ex.req.headers['x-identity-header'];
  const presented = typeof header === 'string' ? header : undefined;
  if (!presented) {
    appServiceError(ex, 400, 'The X-IDENTITY-HEADER header is required.');
    return;
  }
  const candidates = [...state.dir.managedIdentities.values()].filter((m) => m.identityHeader === presented);
  if (candidates.length === 0) {
    appServiceError(ex, 401, 'Unauthorized: the X-IDENTITY-HEADER value is not valid.');
    return;
  }

  const q = ex.url.searchParams;
  const apiVersion = q.get('api-version');
  if (apiVersion !== '2019-08-01') {
    appServiceError(ex, 400, `The api-version '${apiVersion ?? ''}' is not supported; use 2019-08-01.`);
    return;
  }
  let resource = q.get('resource');
  if (!resource) {
    appServiceError(ex, 400, "The 'resource' query parameter is required.");
    return;
  }
  if (resource.endsWith('/.default')) resource = resource.slice(0, -'/.default'.length);

  const clientId = q.get('client_id');
  const objectId = q.get('object_id') ?? q.get('principal_id');
  const resId = q.get('mi_res_id');
  let identity: ManagedIdentityInfo | undefined;
  if (clientId) identity = candidates.find((m) => m.clientId.toLowerCase() === clientId.toLowerCase());
  else if (objectId)
    identity = candidates.find((m) => m.principalId.toLowerCase() === objectId.toLowerCase());
  else if (resId)
    identity = candidates.find((m) => resId.toLowerCase().endsWith(`/${m.clientId.toLowerCase()}`));
  else identity = candidates[0];
  if (!identity) {
    appServiceError(
      ex,
      400,
      'No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.',
    );
    return;
  }

  const nowSec = Math.floor(state.now() / 1000);
  const exp = nowSec + MI_TOKEN_LIFETIME_SECONDS;
  const tid = state.primaryTenant.tenantId;
  const accessToken = state.key.sign({
    aud: resource,
    iss: `${state.url}/${tid}/v2.0`,
    iat: nowSec,
    nbf: nowSec,
    exp,
    azp: identity.clientId,
    azpacr: '2',
    appid: identity.clientId,
    idtyp: 'app',
    oid: identity.principalId,
    sub: identity.principalId,
    tid,
    uti: uti(),
    ver: '2.0',
    xms_mirid: `/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/emulator/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${identity.clientId}`,
  });
  state.stats.managedIdentityTokens++;
  sendJson(ex, 200, {
    access_token: accessToken,
    expires_on: String(exp),
    resource,
    token_type: 'Bearer',
    client_id: identity.clientId,
  });
}
