import type { BrokerConfig } from '../config';
import { BrokerError } from '../errors';
import type { BrokerRequest } from './types';

export const ADMIN_ROLE = 'Broker.Admin';
export const TOKEN_READER_ROLE = 'Broker.TokenReader';

export interface Caller {
  /** How the caller was recognised. */
  via: 'app-service-auth' | 'local-admin' | 'function-key' | 'none';
  name: string;
  roles: string[];
}

interface ClientPrincipal {
  auth_typ?: string;
  name_typ?: string;
  role_typ?: string;
  claims?: { typ?: string; val?: string }[];
}

const ROLE_CLAIM_TYPES = ['roles', 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role'];
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
        return { via: 'app-service-auth', name, roles };
      }
    }
  }
  if (config.localAdmin) return { via: 'local-admin', name: 'local-admin', roles: [ADMIN_ROLE] };
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
 * Token readers: the route is protected by a function key at the host (authLevel `function`);
 * a caller that App Service Authentication identified must also hold a reader or admin role.
 * Locally, like `func start`, the host does not check keys.
 */
export function requireTokenReader(caller: Caller): Caller {
  if (caller.via === 'app-service-auth') {
    if (caller.roles.includes(TOKEN_READER_ROLE) || caller.roles.includes(ADMIN_ROLE)) return caller;
    throw new BrokerError('forbidden', `${caller.name} does not hold the ${TOKEN_READER_ROLE} app role.`);
  }
  return caller.via === 'none' ? { ...caller, via: 'function-key', name: 'function-key' } : caller;
}
