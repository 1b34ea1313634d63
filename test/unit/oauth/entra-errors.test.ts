import { ServerError, InteractionRequiredAuthError, AuthError } from '@azure/msal-node';
import {
  brokerErrorForInteractive,
  classifyEntraAnswer,
  classifyMsalError,
  type EntraFailure,
} from '../../../shared/oauth/entra-errors';

describe('classifyEntraAnswer', () => {
  it.each<[string, number | undefined, number | undefined, string]>([
    ['invalid_grant', 70008, 400, 'definitive'],
    ['invalid_grant', 700082, 400, 'definitive'],
    ['invalid_grant', 50173, 400, 'definitive'],
    ['interaction_required', 50076, 400, 'definitive'],
    ['interaction_required', 50079, 400, 'definitive'],
    ['invalid_grant', 53003, 400, 'definitive'],
    ['interaction_required', 70043, 400, 'definitive'],
    ['invalid_grant', 65001, 400, 'definitive'],
    ['invalid_grant', 50126, 400, 'definitive'],
    // The broker's service principal requires assignment (appRoleAssignmentRequired).
    ['invalid_grant', 50105, 400, 'definitive'],
    ['invalid_grant', undefined, 400, 'definitive'],
    ['invalid_client', 7000215, 401, 'configuration'],
    ['unauthorized_client', 700016, 400, 'configuration'],
    ['invalid_request', 90002, 400, 'configuration'],
    ['temporarily_unavailable', undefined, 503, 'transient'],
    ['server_error', undefined, 500, 'transient'],
    ['invalid_grant', 70008, 429, 'transient'],
    ['invalid_grant', 50173, 503, 'transient'],
    ['access_denied', 65004, undefined, 'request'],
    ['consent_required', 65001, undefined, 'request'],
  ])('%s AADSTS%s (HTTP %s) is %s', (error, aadsts, status, kind) => {
    expect(classifyEntraAnswer(error, aadsts, status).kind).toBe(kind);
  });

  it('never lets a transient answer become definitive, however it is worded', () => {
    for (const status of [429, 500, 502, 503, 504]) {
      expect(classifyEntraAnswer('invalid_grant', 700082, status).kind).toBe('transient');
    }
  });
});

describe('classifyMsalError', () => {
  it('reads the AADSTS number from a ServerError', () => {
    const error = new ServerError(
      'invalid_grant',
      'corr',
      'AADSTS50173: The provided grant has expired due to it being revoked.',
      undefined,
      undefined,
      400,
    );
    expect(classifyMsalError(error)).toMatchObject({
      kind: 'definitive',
      aadsts: 50173,
      error: 'invalid_grant',
    });
  });
  it('reads interaction_required', () => {
    const error = new InteractionRequiredAuthError(
      'interaction_required',
      'corr',
      'AADSTS50076: Due to a configuration change made by your administrator…',
    );
    expect(classifyMsalError(error)).toMatchObject({ kind: 'definitive', aadsts: 50076 });
  });
  it('treats MSAL network failures as transient', () => {
    expect(classifyMsalError(new AuthError('network_error', 'corr')).kind).toBe('transient');
    expect(classifyMsalError(new Error('socket hang up')).kind).toBe('transient');
  });
});

describe('brokerErrorForInteractive', () => {
  const adminConsentUrl = 'https://login.example/tenant/adminconsent?client_id=x';
  it.each<[string, number | undefined, string]>([
    ['access_denied', 65004, 'access_denied'],
    ['consent_required', 65001, 'consent_required'],
    ['interaction_required', 50076, 'interaction_required'],
    ['invalid_request', 90002, 'configuration_error'],
    ['server_error', undefined, 'upstream_unavailable'],
  ])('%s AADSTS%s becomes %s', (error, aadsts, code) => {
    expect(brokerErrorForInteractive(classifyEntraAnswer(error, aadsts), adminConsentUrl).code).toBe(code);
  });
  // A refusal of a password or app-only grant is a state to fix, not a bad gateway; an answer
  // MSAL could not use, or a refused browser code, is Entra's (502).
  it.each<[string, 'browser' | 'server', string, number, EntraFailure]>([
    [
      'a wrong stored password',
      'server',
      'authorization_failed',
      409,
      classifyEntraAnswer('invalid_grant', 50126, 400),
    ],
    [
      'MFA the password grant cannot do',
      'server',
      'authorization_failed',
      409,
      classifyEntraAnswer('invalid_grant', 50076, 400),
    ],
    [
      'an unknown refusal',
      'server',
      'authorization_failed',
      409,
      classifyEntraAnswer('invalid_scope', 70011, 400),
    ],
    [
      'a response MSAL could not use',
      'server',
      'authorization_failed',
      502,
      classifyMsalError(new AuthError('invalid_response', 'corr')),
    ],
    [
      'an expired code',
      'browser',
      'authorization_failed',
      502,
      classifyEntraAnswer('invalid_grant', 70008, 400),
    ],
    ['missing consent', 'server', 'consent_required', 403, classifyEntraAnswer('invalid_grant', 65001, 400)],
    [
      'Entra unreachable',
      'server',
      'upstream_unavailable',
      503,
      classifyMsalError(new Error('socket hang up')),
    ],
  ])('%s, %s side: %s %s', (_label, way, code, status, failure) => {
    const error = brokerErrorForInteractive(failure, adminConsentUrl, way);
    expect({ code: error.code, status: error.status }).toEqual({ code, status });
  });
  it('offers the admin-consent link only when consent is missing', () => {
    expect(
      brokerErrorForInteractive(classifyEntraAnswer('consent_required', 65001), adminConsentUrl).actionUrl,
    ).toBe(adminConsentUrl);
    expect(
      brokerErrorForInteractive(classifyEntraAnswer('access_denied', 65004), adminConsentUrl).actionUrl,
    ).toBeUndefined();
  });
});

describe('"Need admin approval" (AADSTS90094 / 90095) on the sign-in redirect', () => {
  it.each([90094, 90095])('AADSTS%s is admin_consent_required with the admin-consent link', (aadsts) => {
    const failure = classifyEntraAnswer('access_denied', aadsts);
    expect(failure.kind).toBe('request');
    const error = brokerErrorForInteractive(failure, 'https://login.example/tenant/adminconsent?client_id=x');
    expect(error.code).toBe('admin_consent_required');
    expect(error.actionUrl).toBe('https://login.example/tenant/adminconsent?client_id=x');
    expect(error.remedy).toMatch(/Global Administrator/);
  });
});

it('names the app role to assign when an account is not assigned to the broker (AADSTS50105)', () => {
  expect(classifyEntraAnswer('invalid_grant', 50105, 400).remedy).toContain('Broker.MailboxSignIn');
});
