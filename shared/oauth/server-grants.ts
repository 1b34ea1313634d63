/**
 * The grants that need no browser. `client_credentials` (app-only) acquires a fresh token from the
 * app's own credential each time; there is no refresh token and nothing secret to cache.
 * `password` (ROPC, legacy) signs in with the account's stored password once, then lives on its
 * refresh token like a delegated grant; the password is used again only when Entra refuses the
 * refresh token. Microsoft discourages ROPC: it fails with MFA, federated accounts and most
 * Conditional Access, and is here only for products that can do nothing else.
 */
import type { AuthenticationResult } from '@azure/msal-node';
import type { CloudEndpoints } from '../clouds';
import type { Connection } from '../connections/connection';
import { appOnlyScopes, delegatedScopes } from '../connections/profiles';
import { BrokerError } from '../errors';
import { secretNames, type SecretStore } from '../secrets/secret-store';
import type { EntraFailure } from './entra-errors';
import type { MsalClientFactory, OperationCache } from './msal-client';

const PASSWORD_REMEDY = `Set the account's current password, then Authorize again: in the console, the connection's More → Set password (API: \`PUT /api/connections/{name}/password\`).`;
const ROPC_CANNOT = `The password grant cannot do this. Move the connection to grant authorization_code (a one-time browser sign-in) — Microsoft recommends it — or have an Entra administrator exclude this account from the requirement for this app.`;

/** What Entra's answers mean for a password grant: the remedy is about the password, not a browser sign-in. */
const PASSWORD_FAILURES: Record<number, Pick<EntraFailure, 'kind' | 'message' | 'remedy'>> = {
  50126: {
    kind: 'definitive',
    message: 'Entra ID refused the stored password for this account (wrong user name or password).',
    remedy: PASSWORD_REMEDY,
  },
  50055: { kind: 'definitive', message: "The account's password has expired.", remedy: PASSWORD_REMEDY },
  50034: {
    kind: 'definitive',
    message: 'The account does not exist in the tenant.',
    remedy: "Check the connection's account.",
  },
  50076: {
    kind: 'definitive',
    message: 'Multi-factor authentication is required for this account.',
    remedy: ROPC_CANNOT,
  },
  50079: {
    kind: 'definitive',
    message: 'The account must register for multi-factor authentication.',
    remedy: ROPC_CANNOT,
  },
  53003: {
    kind: 'definitive',
    message: 'A Conditional Access policy blocked the sign-in.',
    remedy: `${ROPC_CANNOT} The Entra sign-in logs name the policy.`,
  },
  7000218: {
    kind: 'configuration',
    message: 'Entra ID expected the app to authenticate itself (client_secret or client_assertion).',
    remedy:
      'Check the client credential settings (ENTRA_CLIENT_CREDENTIAL); a public-client App Registration cannot be used with a secret.',
  },
};

/**
 * Entra's failure for a password-grant operation of connection `name`, with the password-grant
 * remedy where one applies (its `{name}` filled in: a remedy names the route to call as it is).
 */
export function forPasswordGrant(failure: EntraFailure, name: string): EntraFailure {
  const known = failure.aadsts !== undefined ? PASSWORD_FAILURES[failure.aadsts] : undefined;
  if (!known) return failure;
  return {
    ...failure,
    ...known,
    ...(known.remedy ? { remedy: known.remedy.split('{name}').join(name) } : {}),
  };
}

/** An app-only token for the connection's resource (`/.default`: the app's granted application permissions). */
export async function acquireAppOnly(
  msal: MsalClientFactory,
  cache: OperationCache,
  connection: Connection,
  cloud: CloudEndpoints,
): Promise<AuthenticationResult> {
  const client = await msal.create(cache);
  const result = await client.acquireTokenByClientCredential({
    scopes: appOnlyScopes(connection, cloud),
    skipCache: true,
  });
  if (!result) throw new BrokerError('authorization_failed', 'Entra ID returned no token.');
  return result;
}

/** Reads the connection's stored password, or says how to set one. */
export async function storedPassword(secrets: SecretStore, connection: Connection): Promise<string> {
  const secret = await secrets.get(secretNames.password(connection.name));
  if (!secret?.value) {
    throw new BrokerError('password_required', `Connection ${connection.name} has no password set.`, {
      remedy: `Set it, then Authorize: in the console, the connection's More → Set password (API: \`PUT /api/connections/${connection.name}/password\`).`,
    });
  }
  return secret.value;
}

/** Signs in as the connection's account with its password (ROPC); the cache receives the refresh token. */
export async function acquireWithPassword(
  msal: MsalClientFactory,
  cache: OperationCache,
  connection: Connection,
  cloud: CloudEndpoints,
  password: string,
): Promise<AuthenticationResult> {
  const client = await msal.create(cache);
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- the legacy grant is the point: products that can do nothing else (README: the password grant)
  const result = await client.acquireTokenByUsernamePassword({
    username: connection.account,
    password,
    scopes: delegatedScopes(connection, cloud),
  });
  if (!result) throw new BrokerError('authorization_failed', 'Entra ID returned no token.');
  return result;
}
