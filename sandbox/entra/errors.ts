/**
 * The AADSTS codes the emulator can return, in one table: number → OAuth `error`, default HTTP
 * status (token endpoint), optional `suberror`, and Microsoft's wording. `{name}` placeholders are
 * filled from the params passed to {@link aadsts}. Wording follows Entra's responses and the
 * "Microsoft Entra authentication and authorization error codes" reference as closely as known.
 */
import { randomUUID } from 'node:crypto';

export interface AadstsDefinition {
  error: string;
  status: number;
  suberror?: string;
  message: string;
}

export const AADSTS_TABLE = {
  // Tenants and applications
  90002: {
    error: 'invalid_tenant',
    status: 400,
    message:
      "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.",
  },
  700016: {
    error: 'unauthorized_client',
    status: 400,
    message:
      "Application with identifier '{clientId}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
  },
  50011: {
    error: 'invalid_request',
    status: 400,
    message:
      "The redirect URI '{redirectUri}' specified in the request does not match the redirect URIs configured for the application '{clientId}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
  },
  50194: {
    error: 'invalid_request',
    status: 400,
    message:
      "Application '{clientId}'({appName}) is not configured as a multi-tenant application. Usage of the /common endpoint is not supported for such applications created after '10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant.",
  },
  50020: {
    error: 'invalid_request',
    status: 400,
    message:
      "User account '{username}' from identity provider '{idp}' does not exist in tenant '{tenantName}' and cannot access the application '{clientId}'({appName}) in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account.",
  },
  // Request shape
  900144: {
    error: 'invalid_request',
    status: 400,
    message: "The request body must contain the following parameter: '{parameter}'.",
  },
  70011: {
    error: 'invalid_scope',
    status: 400,
    message:
      "The provided value for the input parameter 'scope' is not valid. The scope '{scope}' is not valid.",
  },
  1002012: {
    error: 'invalid_scope',
    status: 400,
    message:
      'The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).',
  },
  28000: {
    error: 'invalid_request',
    status: 400,
    message:
      "Provided value for the input parameter scope '{scope}' is not valid because it contains more than one resource. Scope {scope} is not valid.",
  },
  700054: {
    error: 'unsupported_response_type',
    status: 400,
    message: "response_type '{responseType}' is not enabled for the application.",
  },
  9001023: {
    error: 'invalid_request',
    status: 400,
    message:
      'The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.',
  },
  70003: {
    error: 'unsupported_grant_type',
    status: 400,
    message: "The app requested an unsupported grant type '{grantType}'.",
  },
  90023: {
    error: 'invalid_request',
    status: 400,
    message: "Invalid value '{value}' for parameter '{parameter}'.",
  },
  501491: { error: 'invalid_request', status: 400, message: 'Invalid size of Code_Challenge parameter.' },
  // Interactive outcomes
  65004: { error: 'access_denied', status: 400, message: 'User declined to consent to access the app.' },
  65001: {
    error: 'invalid_grant',
    status: 400,
    suberror: 'consent_required',
    message:
      "The user or administrator has not consented to use the application with ID '{clientId}' named '{appName}'. Send an interactive authorization request for this user and resource.",
  },
  90094: { error: 'access_denied', status: 400, message: 'The grant requires admin permission.' },
  50058: {
    error: 'login_required',
    status: 400,
    message:
      "A silent sign-in request was sent but no user is signed in. The cookies used to represent the user's session were not sent in the request to Azure AD.",
  },
  50126: {
    error: 'invalid_grant',
    status: 400,
    message: 'Error validating credentials due to invalid username or password.',
  },
  50034: {
    error: 'invalid_grant',
    status: 400,
    message:
      'The user account {username} does not exist in the {tenant} directory. To sign into this application, the account must be added to the directory.',
  },
  // Codes and refresh tokens
  70008: {
    error: 'invalid_grant',
    status: 400,
    message:
      'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.',
  },
  54005: {
    error: 'invalid_grant',
    status: 400,
    message:
      'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.',
  },
  9002313: {
    error: 'invalid_grant',
    status: 400,
    message: 'Invalid request. Request is malformed or invalid.',
  },
  70000: { error: 'invalid_grant', status: 400, message: '{detail}' },
  500112: {
    error: 'invalid_grant',
    status: 400,
    message:
      "The reply address '{presented}' does not match the reply address '{expected}' provided when requesting Authorization code.",
  },
  501481: {
    error: 'invalid_grant',
    status: 400,
    message: 'The Code_Verifier does not match the code_challenge supplied in the authorization request.',
  },
  700005: {
    error: 'invalid_grant',
    status: 400,
    message: 'Provided Authorization Code is intended to use against other tenant, thus rejected.',
  },
  700082: {
    error: 'invalid_grant',
    status: 400,
    message:
      'The refresh token has expired due to inactivity. The token was issued on {issued} and was inactive for {inactive}.',
  },
  50173: {
    error: 'invalid_grant',
    status: 400,
    message:
      "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{issued}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{validFrom}'.",
  },
  // User state and policies. 50076 / 50079: a refresh (or OBO) answers interaction_required; the
  // password grant answers invalid_grant with the same suberror (token-endpoint.ts overrides `error`).
  50076: {
    error: 'interaction_required',
    status: 400,
    suberror: 'basic_action',
    message:
      "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{resource}'.",
  },
  50079: {
    error: 'interaction_required',
    status: 400,
    suberror: 'basic_action',
    message:
      "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '{resource}'.",
  },
  50055: {
    error: 'invalid_grant',
    status: 400,
    suberror: 'user_password_expired',
    message: 'The password is expired.',
  },
  53003: {
    error: 'invalid_grant',
    status: 400,
    suberror: 'message_only',
    message:
      'Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.',
  },
  50057: {
    error: 'invalid_grant',
    status: 400,
    message:
      'The user account is disabled. The user object in Active Directory backing this account has been disabled. An admin can re-enable this account through PowerShell',
  },
  // Client authentication
  7000215: {
    error: 'invalid_client',
    status: 401,
    message:
      "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{clientId}'.",
  },
  7000218: {
    error: 'invalid_client',
    status: 401,
    message: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
  },
  70021: {
    error: 'invalid_client',
    status: 401,
    message:
      "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{aud}'. https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
  },
  700024: {
    error: 'invalid_client',
    status: 401,
    message:
      'Client assertion is not within its valid time range. Current time: {now}, assertion valid from {nbf}, expiry time of assertion {exp}.',
  },
  700027: {
    error: 'invalid_client',
    status: 401,
    message: 'Client assertion failed signature validation. {detail}',
  },
  50027: { error: 'invalid_request', status: 400, message: 'JWT token is invalid or malformed.' },
  // Service health (fault injection)
  50196: {
    error: 'temporarily_unavailable',
    status: 429,
    message:
      'The server terminated an operation because it encountered a client request loop. Please contact your app vendor.',
  },
  90033: {
    error: 'temporarily_unavailable',
    status: 503,
    message: 'A transient error has occurred. Please try again.',
  },
  50000: {
    error: 'server_error',
    status: 500,
    message: 'There was an error issuing a token or an issue with our sign-in service.',
  },
} as const satisfies Record<number, AadstsDefinition>;

export type AadstsCode = keyof typeof AADSTS_TABLE;

export interface AadstsError {
  code: AadstsCode;
  error: string;
  status: number;
  suberror?: string;
  /** "AADSTSnnn: message" without the trace lines. */
  message: string;
}

/** Builds one AADSTS error from the table, filling `{name}` placeholders. */
export function aadsts(
  code: AadstsCode,
  params: Record<string, string> = {},
  overrides?: { error?: string; status?: number },
): AadstsError {
  const def: AadstsDefinition = AADSTS_TABLE[code];
  const text = def.message.replace(/\{(\w+)\}/g, (_m, name: string) => params[name] ?? `{${name}}`);
  return {
    code,
    error: overrides?.error ?? def.error,
    status: overrides?.status ?? def.status,
    ...(def.suberror ? { suberror: def.suberror } : {}),
    message: `AADSTS${code}: ${text}`,
  };
}

/** Entra's timestamp format: `2024-05-01 12:34:56Z`. */
export function entraTimestamp(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, 'Z');
}

export interface TraceInfo {
  traceId: string;
  correlationId: string;
  timestamp: string;
}

export function newTrace(nowMs: number, correlationId?: string): TraceInfo {
  return {
    traceId: randomUUID(),
    correlationId: correlationId ?? randomUUID(),
    timestamp: entraTimestamp(nowMs),
  };
}

/** `error_description` as Entra writes it: message, then Trace ID / Correlation ID / Timestamp lines. */
export function describe(err: AadstsError, trace: TraceInfo): string {
  return `${err.message}\r\nTrace ID: ${trace.traceId}\r\nCorrelation ID: ${trace.correlationId}\r\nTimestamp: ${trace.timestamp}`;
}

/** The JSON body of a token-endpoint error, exactly in Entra's shape. */
export function errorBody(err: AadstsError, trace: TraceInfo, authorityUrl: string): Record<string, unknown> {
  return {
    error: err.error,
    error_description: describe(err, trace),
    error_codes: [err.code],
    timestamp: trace.timestamp,
    trace_id: trace.traceId,
    correlation_id: trace.correlationId,
    error_uri: `${authorityUrl}/error?code=${err.code}`,
    ...(err.suberror ? { suberror: err.suberror } : {}),
  };
}
