import { AuthError, ServerError, InteractionRequiredAuthError } from '@azure/msal-node';
import { BrokerError, type BrokerErrorCode } from '../errors';

/**
 * The one place that reads Entra's answers. Everything that fails while talking to Entra (a
 * redirect with `error=`, a token endpoint error body surfaced by MSAL, a network failure) is
 * classified here into:
 *  - `definitive`: this connection's grant is gone; an admin must authorize again;
 *  - `configuration`: the app itself is misconfigured; no connection is to blame;
 *  - `transient`: try again later, with backoff;
 *  - `request`: the interactive sign-in ended without tokens (cancel, consent missing).
 */
export type EntraFailureKind = 'definitive' | 'configuration' | 'transient' | 'request';

export interface EntraFailure {
  kind: EntraFailureKind;
  /** Entra's `error` (e.g. `invalid_grant`), or `network_error`. */
  error: string;
  aadsts: number | undefined;
  /** Plain words for an operator; never includes Entra's raw description (it can echo input). */
  message: string;
  remedy: string;
  retryAfterSeconds?: number;
  /** MSAL could not use what came back (no refusal from Entra): a bad answer, not a decision. */
  unusableAnswer?: true;
}

interface Known {
  kind: EntraFailureKind;
  message: string;
  remedy: string;
}

const REAUTHORIZE = 'An admin must open the console and authorize the connection again.';

/** AADSTS numbers the broker acts on, with what they mean to an operator. */
const KNOWN_AADSTS: Record<number, Known> = {
  70008: { kind: 'definitive', message: 'The refresh token or code has expired.', remedy: REAUTHORIZE },
  700082: {
    kind: 'definitive',
    message: 'The refresh token expired after 90 days without use.',
    remedy: `${REAUTHORIZE} Keep-alive refreshes (REFRESH_KEEPALIVE_DAYS) prevent this.`,
  },
  700084: { kind: 'definitive', message: 'The refresh token has expired.', remedy: REAUTHORIZE },
  70000: { kind: 'definitive', message: 'The grant was revoked or is no longer valid.', remedy: REAUTHORIZE },
  50173: {
    kind: 'definitive',
    message: "The grant was revoked: the account's password changed or its sessions were revoked.",
    remedy: REAUTHORIZE,
  },
  50076: {
    kind: 'definitive',
    message: 'Multi-factor authentication is now required for this account.',
    remedy: `${REAUTHORIZE} The signing-in user completes MFA.`,
  },
  50079: {
    kind: 'definitive',
    message: 'The account must register for multi-factor authentication.',
    remedy: `${REAUTHORIZE} The signing-in user registers for MFA first.`,
  },
  53003: {
    kind: 'definitive',
    message: 'A Conditional Access policy blocked the token.',
    remedy:
      'Ask an Entra administrator to check the sign-in logs and Conditional Access policies, then authorize again.',
  },
  70043: {
    kind: 'definitive',
    message: 'The sign-in frequency set by Conditional Access has passed.',
    remedy: `${REAUTHORIZE} Consider excluding the broker from the sign-in frequency policy.`,
  },
  65001: {
    kind: 'definitive',
    message: 'Consent for the app was not given or was revoked.',
    remedy:
      'A Global Administrator grants admin consent (link below), then the connection is authorized again.',
  },
  50126: { kind: 'definitive', message: 'The user name or password is wrong.', remedy: REAUTHORIZE },
  90094: {
    kind: 'request',
    message: 'An administrator must approve the app ("Need admin approval").',
    remedy:
      'A Global Administrator grants admin consent (link below), then the connection is authorized again.',
  },
  90095: {
    kind: 'request',
    message: 'An administrator must approve the app (admin consent workflow: the request was sent).',
    remedy:
      'Once a Global Administrator approves the request (or grants consent with the link below), authorize again.',
  },
  50105: {
    kind: 'definitive',
    message:
      'The account is not assigned to the broker app (its enterprise application requires assignment).',
    remedy:
      "An Entra admin assigns the account the broker's Broker.MailboxSignIn app role (Enterprise applications → the broker → Users and groups, or BROKER_MAILBOX_SIGN_IN_PRINCIPAL_IDS and azd provision), then authorize again.",
  },
  50057: {
    kind: 'definitive',
    message: 'The account is disabled.',
    remedy: 'Enable the account, then authorize again.',
  },
  50053: {
    kind: 'transient',
    message: 'The account is locked after too many sign-in attempts.',
    remedy: 'Wait for the lockout to end; the broker retries.',
  },
  7000215: {
    kind: 'configuration',
    message: "The app's client secret is wrong or has expired.",
    remedy: 'Fix ENTRA_CLIENT_SECRET (or switch to ENTRA_CLIENT_CREDENTIAL=managed-identity).',
  },
  7000222: {
    kind: 'configuration',
    message: "The app's client secret has expired.",
    remedy: 'Create a new secret, or switch to ENTRA_CLIENT_CREDENTIAL=managed-identity.',
  },
  700016: {
    kind: 'configuration',
    message: 'The application (client) id was not found in the tenant.',
    remedy: 'Check ENTRA_CLIENT_ID and ENTRA_TENANT_ID.',
  },
  90002: { kind: 'configuration', message: 'The tenant was not found.', remedy: 'Check ENTRA_TENANT_ID.' },
  70021: {
    kind: 'configuration',
    message: "No federated identity credential of the app matches the managed identity's assertion.",
    remedy:
      "Check the App Registration's federated credential (issuer, subject = the identity's principal id, audience).",
  },
  700027: {
    kind: 'configuration',
    message: 'The client assertion or certificate was not accepted.',
    remedy: 'Check ENTRA_CLIENT_CERTIFICATE and the certificate registered on the App Registration.',
  },
  50011: {
    kind: 'configuration',
    message: 'The redirect URI is not registered on the App Registration.',
    remedy: 'Add {PUBLIC_BASE_URL}/api/callback as a Web redirect URI of the App Registration.',
  },
  501481: {
    kind: 'request',
    message: 'The PKCE code verifier did not match the challenge.',
    remedy: 'Start the authorization again from the console.',
  },
  54005: {
    kind: 'request',
    message: 'The authorization code was already redeemed.',
    remedy: 'Start the authorization again from the console.',
  },
  50020: {
    kind: 'request',
    message: "The account signed in is from a tenant the app doesn't accept.",
    remedy: "Sign in with an account of the app's tenant.",
  },
  65004: {
    kind: 'request',
    message: 'The user declined to consent.',
    remedy: 'Start again and accept the permissions, or ask an admin to grant consent.',
  },
};

const TRANSIENT_ERRORS = new Set(['temporarily_unavailable', 'server_error', 'network_error', 'timeout']);

export function aadstsOf(text: string | undefined): number | undefined {
  const match = text ? /AADSTS(\d{4,8})/.exec(text) : null;
  return match?.[1] ? Number(match[1]) : undefined;
}

/**
 * Classifies a raw Entra `error` + AADSTS number (+ HTTP status when known). One decision table,
 * read top to bottom (transient answers first, so nothing transient can become definitive); split,
 * its order would be harder to see.
 */
export function classifyEntraAnswer(
  error: string,
  aadsts: number | undefined,
  httpStatus?: number,
  retryAfterSeconds?: number,
): EntraFailure {
  const known = aadsts !== undefined ? KNOWN_AADSTS[aadsts] : undefined;
  if (httpStatus === 429 || (httpStatus !== undefined && httpStatus >= 500) || TRANSIENT_ERRORS.has(error)) {
    return {
      kind: 'transient',
      error,
      aadsts,
      message:
        httpStatus === 429 ? 'Entra ID is throttling requests.' : 'Entra ID is temporarily unavailable.',
      remedy: 'Nothing to do: the broker retries with backoff.',
      retryAfterSeconds,
    };
  }
  // Answers on the interactive redirect: the sign-in ended without a grant; nothing was lost.
  if (error === 'access_denied' && (aadsts === 90094 || aadsts === 90095) && known) {
    return { ...known, error, aadsts };
  }
  if (error === 'access_denied') {
    return {
      kind: 'request',
      error,
      aadsts,
      message: 'Sign-in was cancelled or denied.',
      remedy: 'Start again.',
    };
  }
  if (error === 'consent_required') {
    return {
      kind: 'request',
      error,
      aadsts: aadsts ?? 65001,
      message: 'Consent for the app was not given.',
      remedy:
        'A Global Administrator grants admin consent (link below), then the connection is authorized again.',
    };
  }
  if (known) return { ...known, error, aadsts };
  if (error === 'invalid_grant' || error === 'interaction_required') {
    return { kind: 'definitive', error, aadsts, message: 'Entra ID refused the grant.', remedy: REAUTHORIZE };
  }
  if (error === 'invalid_client' || error === 'unauthorized_client') {
    return {
      kind: 'configuration',
      error,
      aadsts,
      message: "Entra ID refused the app's credentials.",
      remedy: 'Check ENTRA_CLIENT_ID and the client credential settings.',
    };
  }
  return {
    kind: httpStatus !== undefined && httpStatus < 500 ? 'request' : 'transient',
    error,
    aadsts,
    message: `Entra ID answered "${error}".`,
    remedy: 'Check the Entra sign-in logs for the AADSTS code, then try again.',
  };
}

/**
 * Classifies what MSAL threw, or a network failure beneath it. `retryAfterFor` finds the
 * Retry-After Entra sent for the request (MSAL's errors keep no headers).
 */
export function classifyMsalError(
  error: unknown,
  retryAfterFor: (correlationId: string) => number | undefined = () => undefined,
): EntraFailure {
  if (error instanceof ServerError || error instanceof InteractionRequiredAuthError) {
    const aadsts = error.errorNo ? Number(error.errorNo) : aadstsOf(error.errorMessage);
    const status = error instanceof ServerError ? error.status : undefined;
    return classifyEntraAnswer(
      error.errorCode,
      Number.isFinite(aadsts) ? aadsts : undefined,
      status,
      retryAfterFor(error.correlationId),
    );
  }
  if (error instanceof AuthError) {
    // MSAL's own client-side errors: a network failure, a timeout, or a response it could not use.
    const transient = /network|timeout|endpoints_resolution|fetch/i.test(error.errorCode);
    return {
      ...(transient ? {} : { unusableAnswer: true as const }),
      kind: transient ? 'transient' : 'request',
      error: transient ? 'network_error' : error.errorCode,
      aadsts: undefined,
      message: transient
        ? 'Entra ID could not be reached.'
        : `The token response was not usable (${error.errorCode}).`,
      remedy: transient
        ? 'Nothing to do: the broker retries with backoff.'
        : 'Start the authorization again.',
    };
  }
  return {
    kind: 'transient',
    error: 'network_error',
    aadsts: undefined,
    message: 'Entra ID could not be reached.',
    remedy: 'Nothing to do: the broker retries with backoff.',
  };
}

/**
 * The broker error an authorization shows for a failure: the browser sign-in (callback) or a grant
 * acquired without a browser (`client_credentials`, `password`).
 */
export function brokerErrorForInteractive(
  failure: EntraFailure,
  adminConsentUrl: string,
  way: 'browser' | 'server' = 'browser',
): BrokerError {
  let code: BrokerErrorCode;
  if (failure.aadsts === 90094 || failure.aadsts === 90095) code = 'admin_consent_required';
  else if (failure.error === 'access_denied' && failure.aadsts !== 65001) code = 'access_denied';
  else if (failure.error === 'consent_required' || failure.aadsts === 65001) code = 'consent_required';
  else if (failure.error === 'interaction_required') code = 'interaction_required';
  else if (failure.kind === 'transient') code = 'upstream_unavailable';
  else if (failure.kind === 'configuration') code = 'configuration_error';
  else code = 'authorization_failed';
  const needsAdmin = code === 'consent_required' || code === 'admin_consent_required';
  // Entra refused the connection's own credentials (its stored password, the app's grant): a state
  // an admin fixes before Authorize can work (409), not a bad answer from Entra (502, the default).
  const refusedCredentials = code === 'authorization_failed' && way === 'server' && !failure.unusableAnswer;
  return new BrokerError(code, failure.message, {
    ...(refusedCredentials ? { status: 409 } : {}),
    aadsts: failure.aadsts,
    remedy:
      code === 'consent_required'
        ? 'Send the admin-consent link to a Global Administrator (or Privileged Role Administrator); once they accept, authorize again.'
        : failure.remedy,
    actionUrl: needsAdmin ? adminConsentUrl : undefined,
    retryAfterSeconds: failure.retryAfterSeconds,
  });
}
