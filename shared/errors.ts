/**
 * The broker's one error type. Every failure that reaches a caller is a BrokerError with a stable
 * `code` (README "HTTP API"); `shared/http/responses.ts` is the one place that turns it into problem+json or a
 * page. Messages are written for the person who must act and never carry a token, code, verifier,
 * secret or an upstream body.
 */
export type BrokerErrorCode =
  | 'invalid_request'
  | 'invalid_connection_name'
  | 'invalid_connection'
  | 'connection_not_found'
  | 'connection_not_authorized'
  | 'connection_disabled'
  | 'connection_changed'
  | 'password_required'
  | 'connection_authorized'
  | 'connection_in_use'
  | 'connection_exists'
  | 'route_not_found'
  | 'method_not_allowed'
  | 'misdirected_request'
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'unauthenticated'
  | 'forbidden'
  | 'state_invalid'
  | 'state_expired'
  | 'access_denied'
  | 'consent_required'
  | 'admin_consent_required'
  | 'interaction_required'
  | 'authorization_failed'
  | 'account_mismatch'
  | 'tenant_not_allowed'
  | 'reauthorization_required'
  | 'refresh_in_progress'
  | 'invitation_invalid'
  | 'token_unavailable'
  | 'upstream_unavailable'
  | 'configuration_error'
  | 'internal_error';

const statusByCode: Record<BrokerErrorCode, number> = {
  invalid_request: 400,
  invalid_connection_name: 400,
  invalid_connection: 400,
  connection_not_found: 404,
  connection_not_authorized: 409,
  connection_disabled: 409,
  connection_changed: 409,
  password_required: 409,
  connection_authorized: 409,
  connection_in_use: 409,
  connection_exists: 409,
  // Only from `npm start`'s local host: in Azure the Functions host answers an unknown path itself.
  route_not_found: 404,
  method_not_allowed: 405,
  misdirected_request: 421,
  unsupported_media_type: 415,
  payload_too_large: 413,
  unauthenticated: 401,
  forbidden: 403,
  state_invalid: 400,
  state_expired: 400,
  access_denied: 403,
  consent_required: 403,
  admin_consent_required: 403,
  interaction_required: 403,
  // An answer of Entra's that could not be used; a refused password or app-only grant is a 409
  // (oauth/entra-errors.ts brokerErrorForInteractive).
  authorization_failed: 502,
  account_mismatch: 403,
  tenant_not_allowed: 403,
  reauthorization_required: 409,
  refresh_in_progress: 409,
  // One status for a forged, used, expired, revoked or voided link: the answer tells a guesser nothing.
  invitation_invalid: 410,
  token_unavailable: 503,
  upstream_unavailable: 503,
  configuration_error: 500,
  internal_error: 500,
};

/** Every code, for the README check that each has its `#error-{code}` anchor (problem `type`). */
export const BROKER_ERROR_CODES = Object.keys(statusByCode) as BrokerErrorCode[];

export interface BrokerErrorOptions {
  /** HTTP status; defaults to the code's usual status. */
  status?: number;
  /** Entra's AADSTS number, when Entra gave one. */
  aadsts?: number;
  /** What the person should do, in plain words. */
  remedy?: string;
  /** A link that helps (e.g. the admin-consent URL). Never carries a secret. */
  actionUrl?: string;
  /** Seconds the caller should wait before trying again. */
  retryAfterSeconds?: number;
  cause?: unknown;
}

export class BrokerError extends Error {
  readonly code: BrokerErrorCode;
  readonly status: number;
  readonly aadsts: number | undefined;
  readonly remedy: string | undefined;
  readonly actionUrl: string | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: BrokerErrorCode, message: string, options: BrokerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? statusByCode[code];
    this.aadsts = options.aadsts;
    this.remedy = options.remedy;
    this.actionUrl = options.actionUrl;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function isBrokerError(value: unknown): value is BrokerError {
  return value instanceof BrokerError;
}

/** The HTTP status an Azure SDK error carries (`RestError.statusCode`); undefined for a network failure. */
export function statusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const status = (error as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' ? status : undefined;
}
