/**
 * What "Test connection" answers: one stable shape for every protocol, and a small set of stable
 * failure codes, each with a remedy written for the Exchange or Entra admin who must act.
 */

export type ProbeProtocol = 'ews' | 'graph' | 'imap' | 'pop' | 'smtp';

export type ProbeCode =
  /** 403, X-EWS-Policy-Reason "EWS is blocked by policy…": EwsAllowedAppIDs or a User-Agent policy. */
  | 'ews_blocked'
  /** 403, X-EWS-Policy-Reason "EWS is disabled…": the organization's or the mailbox's EwsEnabled. */
  | 'ews_disabled'
  /** 403 that names neither an EWS access control nor a token problem: reported as it came. */
  | 'ews_forbidden'
  | 'token_expired'
  | 'token_wrong_audience'
  | 'token_wrong_scope'
  /** The resource refused the token for another reason (signature, format, tenant). */
  | 'token_invalid'
  /** No usable token: the connection must be authorized again, or Entra is unreachable. */
  | 'reauthorization_required'
  | 'token_unavailable'
  | 'mailbox_not_found'
  | 'mailbox_access_denied'
  | 'impersonation_denied'
  /** IMAP/POP/SMTP refused SASL XOAUTH2. */
  | 'mail_auth_failed'
  | 'throttled'
  | 'upstream_error'
  | 'tls_failed'
  | 'dns_failed'
  | 'connect_failed'
  | 'timeout'
  | 'not_supported';

export interface ProbeResult {
  ok: boolean;
  protocol: ProbeProtocol | null;
  mailbox: string;
  /** ISO 8601 UTC time the test finished (the console shows it: allow-list changes take up to 24 h). */
  testedAt: string;
  durationMs: number;
  /** What the mailbox showed: folder name, counts, server version (success); what was tried (failure). */
  details: Record<string, string | number | boolean | null>;
  code?: ProbeCode;
  /** What the server said, in plain words (never a token or an upstream body). */
  detail?: string;
  remedy?: string;
  retryAfterSeconds?: number;
}

/** A probe's failure: classified where the protocol is understood, shaped once by the tester. */
export class ProbeFailure extends Error {
  constructor(
    readonly code: ProbeCode,
    message: string,
    readonly options: { remedy?: string; retryAfterSeconds?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProbeFailure';
  }
}

/** What one probe found when it worked. */
export type ProbeDetails = ProbeResult['details'];
