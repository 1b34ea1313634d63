import type { BrokerConfig } from '../config';
import { BrokerError } from '../errors';
import type { BrokerRequest } from './types';

export const ADMIN_ROLE = 'Broker.Admin';
export const TOKEN_READER_ROLE = 'Broker.TokenReader';

export interface Caller {
  /** How the caller was recognised. */
  via: 'app-service-auth' | 'local-admin' | 'none';
  name: string;
  roles: string[];
  /** Entra object id of the signed-in user or the calling app's service principal (`oid`). */
  objectId?: string;
  /** The calling application's client id (`appid` / `azp`), for app-only consumers. */
  appId?: string;
  /**
   * True for an app calling as itself (its token has no delegated scope, `scp`). Only then does an
   * app id in `readers` match: a user's token also names the app the user signed in to, and
   * listing a consumer app must not let every user of that app read the mailbox's token.
   */
  appOnly?: boolean;
}

interface ClientPrincipal {
  auth_typ?: string;
  name_typ?: string;
  role_typ?: string;
  claims?: { typ?: string; val?: string }[];
}

const ROLE_CLAIM_TYPES = ['roles', 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role'];
const OBJECT_ID_CLAIM_TYPES = ['oid', 'http://schemas.microsoft.com/identity/claims/objectidentifier'];
const APP_ID_CLAIM_TYPES = ['appid', 'azp'];
const SCOPE_CLAIM_TYPES = ['scp', 'http://schemas.microsoft.com/identity/claims/scope'];
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_PRINCIPAL_HEADER = 16 * 1024;

/**
 * Who is calling. App Service Authentication's `X-MS-CLIENT-PRINCIPAL` header is trusted only
 * when the platform says authentication is on (WEBSITE_AUTH_ENABLED): otherwise anyone could
 * send the header. Locally, BROKER_LOCAL_ADMIN opens the admin routes.
 */
export function identifyCaller(request: BrokerRequest, config: BrokerConfig): Caller {
  if (config.platformAuthEnabled) {
    const encoded = request.headers.get('x-ms-client-principal');
    if (encoded && encoded.length <= MAX_PRINCIPAL_HEADER) {
      const principal = decodePrincipal(encoded);
      if (principal) {
        const roleTypes = new Set([...(principal.role_typ ? [principal.role_typ] : []), ...ROLE_CLAIM_TYPES]);
        const roles = (principal.claims ?? [])
          .filter(
            (claim) => claim.typ !== undefined && roleTypes.has(claim.typ) && typeof claim.val === 'string',
          )
          .map((claim) => claim.val as string);
        const name =
          request.headers.get('x-ms-client-principal-name') ??
          principal.claims?.find((claim) => claim.typ === principal.name_typ)?.val ??
          'unknown';
        const guidClaim = (types: string[]) => {
          const value = principal.claims?.find(
            (claim) => claim.typ !== undefined && types.includes(claim.typ),
          )?.val;
          return value !== undefined && GUID.test(value) ? value.toLowerCase() : undefined;
        };
        const objectId = guidClaim(OBJECT_ID_CLAIM_TYPES);
        const appId = guidClaim(APP_ID_CLAIM_TYPES);
        const delegated = (principal.claims ?? []).some(
          (claim) => claim.typ !== undefined && SCOPE_CLAIM_TYPES.includes(claim.typ),
        );
        return {
          via: 'app-service-auth',
          name,
          roles,
          appOnly: !delegated,
          ...(objectId ? { objectId } : {}),
          ...(appId ? { appId } : {}),
        };
      }
    }
  }
  // Where the platform authenticates, a request without a principal is anonymous, whatever the
  // settings say: local admin is for a workstation, never a fallback behind App Service.
  if (config.localAdmin && !config.platformAuthEnabled)
    return { via: 'local-admin', name: 'local-admin', roles: [ADMIN_ROLE] };
  return { via: 'none', name: 'anonymous', roles: [] };
}

function decodePrincipal(encoded: string): ClientPrincipal | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8'));
    return parsed && typeof parsed === 'object' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export function requireAdmin(caller: Caller): Caller {
  if (caller.roles.includes(ADMIN_ROLE)) return caller;
  if (caller.via === 'none') {
    throw new BrokerError('unauthenticated', 'Sign in as a broker administrator to use this route.', {
      remedy: 'In Azure, sign in through App Service Authentication; locally, set BROKER_LOCAL_ADMIN=true.',
    });
  }
  throw new BrokerError('forbidden', `${caller.name} does not hold the ${ADMIN_ROLE} app role.`, {
    remedy: `Ask an Entra administrator to assign the ${ADMIN_ROLE} role of the broker's App Registration.`,
  });
}

/**
 * Who may read a connection's token: an admin, or a caller App Service Authentication identified
 * that holds Broker.TokenReader AND is listed in the connection's `readers` (by object id or app
 * id). A role alone opens no connection, and no host-level key opens them all; nothing is
 * anonymous, locally either (there only BROKER_LOCAL_ADMIN reads tokens).
 */
export function requireTokenReader(
  caller: Caller,
  /** The connection's readers; undefined for the check before the connection is looked up (roles only). */
  readers: readonly string[] | undefined,
  connection: string,
): Caller {
  if (caller.roles.includes(ADMIN_ROLE)) return caller;
  if (caller.via === 'none') {
    throw new BrokerError('unauthenticated', 'Present an Entra token for the broker to read tokens.', {
      remedy: `Call with a bearer token for api://{ENTRA_CLIENT_ID} whose app or user holds ${TOKEN_READER_ROLE} and is listed in the connection's readers.`,
    });
  }
  // A user matches by object id; an app calling as itself by its service principal's object id or
  // its app id. A user's token never matches by app id (see Caller.appOnly).
  const ids = caller.appOnly ? [caller.objectId, caller.appId] : [caller.objectId];
  const listed = readers === undefined || ids.some((id) => id !== undefined && readers.includes(id));
  if (!caller.roles.includes(TOKEN_READER_ROLE) || !listed) {
    throw new BrokerError('forbidden', `${caller.name} may not read the token of ${connection}.`, {
      remedy: `An admin lists the caller's object id or app id in the connection's readers, and assigns it the ${TOKEN_READER_ROLE} app role.`,
    });
  }
  return caller;
}
