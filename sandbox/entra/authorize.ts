/**
 * The interactive endpoints: /authorize, the sign-in and consent forms, /adminconsent, /logout.
 * Errors that must not be redirected (unknown app, unregistered redirect URI, wrong tenant) are
 * shown as an HTML error page; all others go back to the redirect URI as Entra does.
 */
import { randomBytes } from 'node:crypto';
import { count, parseCookies, sendHtml, sendRedirect, type EmulatorState, type Exchange } from './context';
import { aadsts, describe, type AadstsCode, type AadstsError } from './errors';
import { consentPage, errorPage, formPostPage, signedOutPage, signInPage } from './html';
import {
  OIDC_SCOPES,
  parseResourceScope,
  splitScopes,
  type AppRecord,
  type PendingAuthorize,
  type ResponseMode,
  type TenantInfo,
  type UserRecord,
} from './model';
import { newSessionId } from './tokens';

const SESSION_COOKIE = 'ESTSAUTH';
const CODE_LIFETIME_MS = 10 * 60 * 1000;
const PENDING_LIFETIME_MS = 60 * 60 * 1000;

type Resolved<T> = { ok: true; value: T } | { ok: false };

function showError(state: EmulatorState, ex: Exchange, err: AadstsError): void {
  count(state, 'error-page');
  sendHtml(ex, err.status, errorPage({ message: err.message, ...ex.trace }));
}

/** Resolves the tenant segment: undefined tenant for common/organizations. */
function resolveTenant(
  state: EmulatorState,
  ex: Exchange,
  segment: string,
): Resolved<TenantInfo | undefined> {
  const lower = segment.toLowerCase();
  if (lower === 'common' || lower === 'organizations') return { ok: true, value: undefined };
  const tenant = state.dir.findTenant(segment);
  if (!tenant) {
    showError(state, ex, aadsts(90002, { tenant: segment }));
    return { ok: false };
  }
  return { ok: true, value: tenant };
}

/** client_id and redirect_uri checks shared by /authorize and /adminconsent (never redirect on failure). */
function resolveClient(
  state: EmulatorState,
  ex: Exchange,
  params: URLSearchParams,
  segment: string,
  tenant: TenantInfo | undefined,
): Resolved<{ app: AppRecord; redirectUri: string }> {
  const clientId = params.get('client_id');
  if (!clientId) {
    showError(state, ex, aadsts(900144, { parameter: 'client_id' }));
    return { ok: false };
  }
  const app = state.dir.apps.get(clientId.toLowerCase());
  if (!app || (tenant && !app.multiTenant && tenant.tenantId !== app.tenantId)) {
    showError(state, ex, aadsts(700016, { clientId, tenant: tenant?.domain ?? segment }));
    return { ok: false };
  }
  if (!tenant && !app.multiTenant) {
    showError(state, ex, aadsts(50194, { clientId: app.clientId, appName: app.displayName }));
    return { ok: false };
  }
  const redirectUri = params.get('redirect_uri');
  if (!redirectUri) {
    showError(state, ex, aadsts(900144, { parameter: 'redirect_uri' }));
    return { ok: false };
  }
  if (!app.redirectUris.includes(redirectUri)) {
    showError(state, ex, aadsts(50011, { redirectUri, clientId: app.clientId }));
    return { ok: false };
  }
  return { ok: true, value: { app, redirectUri } };
}

/** Sends the authorization response (success or error) to the redirect URI in the requested response mode. */
function respond(
  ex: Exchange,
  p: Pick<PendingAuthorize, 'redirectUri' | 'responseMode'>,
  fields: Record<string, string>,
): void {
  if (p.responseMode === 'form_post') {
    sendHtml(ex, 200, formPostPage(p.redirectUri, fields));
    return;
  }
  const target = new URL(p.redirectUri);
  if (p.responseMode === 'fragment') {
    target.hash = new URLSearchParams(fields).toString();
  } else {
    for (const [k, v] of Object.entries(fields)) target.searchParams.append(k, v);
  }
  sendRedirect(ex, target.toString());
}

function respondError(
  state: EmulatorState,
  ex: Exchange,
  p: Pick<PendingAuthorize, 'redirectUri' | 'responseMode' | 'state'>,
  code: AadstsCode,
  params: Record<string, string> = {},
  extra: { error?: string; subcode?: string } = {},
): void {
  const err = aadsts(code, params, extra.error ? { error: extra.error } : undefined);
  const fields: Record<string, string> = { error: err.error };
  if (extra.subcode) fields.error_subcode = extra.subcode;
  fields.error_description = describe(err, ex.trace);
  fields.error_uri = `${state.browserUrl}/error?code=${code}`;
  if (p.state !== undefined) fields.state = p.state;
  respond(ex, p, fields);
}

/** AADSTS65001 consent_required for `app`, the answer when consent is missing. */
function respondConsentRequired(
  state: EmulatorState,
  ex: Exchange,
  p: Pick<PendingAuthorize, 'redirectUri' | 'responseMode' | 'state'>,
  app: { clientId: string; displayName: string },
): void {
  respondError(
    state,
    ex,
    p,
    65001,
    { clientId: app.clientId, appName: app.displayName },
    { error: 'consent_required' },
  );
}

/**
 * The browser session cookie. Over plain HTTP (the sandbox's sign-in pages on localhost) it cannot
 * be `Secure`, so not `SameSite=None` either: `Lax` still rides the popup's top-level navigations.
 */
function sessionCookie(ex: Exchange, value: string): string {
  const tls = 'encrypted' in ex.req.socket && ex.req.socket.encrypted === true;
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; ${tls ? 'Secure; SameSite=None' : 'SameSite=Lax'}`;
}

function sessionFrom(
  state: EmulatorState,
  ex: Exchange,
): { id: string; user: UserRecord; authTime: number } | undefined {
  const id = parseCookies(ex.req).get(SESSION_COOKIE);
  return id ? state.dir.sessions.get(id) : undefined;
}

/** Normalizes requested scopes: OIDC scopes as-is, resource scopes fully qualified. */
export function normalizeScopes(raw: string[]): string[] {
  return [...new Set(raw.map((s) => (OIDC_SCOPES.has(s) ? s : parseResourceScope(s).full)))];
}

export function handleAuthorize(
  state: EmulatorState,
  ex: Exchange,
  params: URLSearchParams,
  segment: string,
): void {
  count(state, 'authorize');
  const tenant = resolveTenant(state, ex, segment);
  if (!tenant.ok) return;
  const client = resolveClient(state, ex, params, segment, tenant.value);
  if (!client.ok) return;
  const { app, redirectUri } = client.value;
  const modeParam = params.get('response_mode') ?? 'query';
  const responseMode: ResponseMode =
    modeParam === 'form_post' || modeParam === 'fragment' ? modeParam : 'query';
  const base = { redirectUri, responseMode, state: params.get('state') ?? undefined };

  const responseType = params.get('response_type');
  if (!responseType) {
    respondError(state, ex, base, 900144, { parameter: 'response_type' });
    return;
  }
  if (responseType !== 'code') {
    respondError(state, ex, base, 700054, { responseType });
    return;
  }

  const rawScopes = splitScopes(params.get('scope'));
  if (rawScopes.length === 0) {
    respondError(state, ex, base, 900144, { parameter: 'scope' });
    return;
  }
  const scopes = normalizeScopes(rawScopes);
  if (!scopes.some((s) => s === 'openid' || !OIDC_SCOPES.has(s))) {
    respondError(state, ex, base, 70011, { scope: rawScopes.join(' ') });
    return;
  }

  const codeChallenge = params.get('code_challenge') ?? undefined;
  let codeChallengeMethod: 'S256' | 'plain' | undefined;
  if (codeChallenge !== undefined) {
    const method = params.get('code_challenge_method') ?? 'plain';
    if (method !== 'S256' && method !== 'plain') {
      respondError(state, ex, base, 90023, { value: method, parameter: 'code_challenge_method' });
      return;
    }
    if (codeChallenge.length < 43 || codeChallenge.length > 128) {
      respondError(state, ex, base, 501491);
      return;
    }
    codeChallengeMethod = method;
  }

  if (state.settings.interactionRequired) {
    respondError(state, ex, base, 50076, { resource: app.displayName }, { error: 'interaction_required' });
    return;
  }
  if (
    state.settings.consentRequired &&
    !state.dir.hasAdminConsent(tenant.value?.tenantId ?? app.tenantId, app.clientId)
  ) {
    respondConsentRequired(state, ex, base, app);
    return;
  }

  const pending: PendingAuthorize = {
    id: randomBytes(24).toString('base64url'),
    kind: 'authorize',
    tenantSegment: segment,
    authorityTenant: tenant.value,
    app,
    redirectUri,
    scopes,
    state: base.state,
    nonce: params.get('nonce') ?? undefined,
    codeChallenge,
    codeChallengeMethod,
    responseMode,
    prompt: params.get('prompt') ?? undefined,
    loginHint: params.get('login_hint') ?? undefined,
    correlationId: ex.trace.correlationId,
    createdAt: state.now(),
  };

  // Single sign-on from the browser session cookie, unless the app asks for a fresh sign-in.
  const session = sessionFrom(state, ex);
  const hintMatches = !pending.loginHint || pending.loginHint.toLowerCase() === session?.user.username;
  if (pending.prompt === 'none') {
    if (!session || !hintMatches) {
      respondError(state, ex, base, 50058, {}, { error: 'login_required' });
      return;
    }
    if (state.dir.missingConsent(session.user, app.clientId, scopes).length > 0) {
      respondConsentRequired(state, ex, base, app);
      return;
    }
    pending.user = session.user;
    pending.authTime = session.authTime;
    completeAuthorize(state, ex, pending, session.id);
    return;
  }
  state.dir.pending.set(pending.id, pending);
  if (session && hintMatches && pending.prompt !== 'login' && pending.prompt !== 'select_account') {
    pending.user = session.user;
    pending.authTime = session.authTime;
    afterSignIn(state, ex, pending, session.id);
    return;
  }
  renderSignIn(ex, pending);
}

export function handleAdminConsent(
  state: EmulatorState,
  ex: Exchange,
  params: URLSearchParams,
  segment: string,
): void {
  count(state, 'adminconsent');
  const tenant = resolveTenant(state, ex, segment);
  if (!tenant.ok) return;
  const client = resolveClient(state, ex, params, segment, tenant.value);
  if (!client.ok) return;
  const pending: PendingAuthorize = {
    id: randomBytes(24).toString('base64url'),
    kind: 'adminconsent',
    tenantSegment: segment,
    authorityTenant: tenant.value,
    app: client.value.app,
    redirectUri: client.value.redirectUri,
    scopes: normalizeScopes(splitScopes(params.get('scope'))),
    state: params.get('state') ?? undefined,
    nonce: undefined,
    codeChallenge: undefined,
    codeChallengeMethod: undefined,
    responseMode: 'query',
    prompt: 'login',
    loginHint: params.get('login_hint') ?? undefined,
    correlationId: ex.trace.correlationId,
    createdAt: state.now(),
  };
  state.dir.pending.set(pending.id, pending);
  renderSignIn(ex, pending);
}

function renderSignIn(ex: Exchange, p: PendingAuthorize, error?: string, status = 200): void {
  sendHtml(
    ex,
    status,
    signInPage({
      action: `/${encodeURIComponent(p.tenantSegment)}/login`,
      ctx: p.id,
      loginHint: p.loginHint ?? '',
      appName: p.app.displayName,
      admin: p.kind === 'adminconsent',
      ...(error ? { error } : {}),
    }),
  );
}

function takePending(
  state: EmulatorState,
  ex: Exchange,
  form: URLSearchParams,
): PendingAuthorize | undefined {
  const ctx = form.get('ctx') ?? '';
  const pending = state.dir.pending.get(ctx);
  if (!pending || state.now() - pending.createdAt > PENDING_LIFETIME_MS) {
    showError(state, ex, aadsts(900144, { parameter: 'ctx' }));
    return undefined;
  }
  return pending;
}

/** POST of the sign-in form. */
export function handleLogin(state: EmulatorState, ex: Exchange, form: URLSearchParams): void {
  count(state, 'login');
  const pending = takePending(state, ex, form);
  if (!pending) return;
  if (form.get('action') === 'cancel') {
    state.dir.pending.delete(pending.id);
    respondError(state, ex, pending, 65004, {}, { subcode: 'cancel' });
    return;
  }
  const username = (form.get('login') ?? '').trim();
  const password = form.get('passwd') ?? '';
  pending.loginHint = username;
  const user = state.dir.findUser(username);
  if (!user) {
    state.stats.failedSignIns++;
    renderSignIn(
      ex,
      pending,
      'This username may be incorrect. Make sure you typed it correctly. Otherwise, contact your admin.',
    );
    return;
  }
  if (user.password !== password) {
    state.stats.failedSignIns++;
    renderSignIn(
      ex,
      pending,
      "Your account or password is incorrect. If you don't remember your password, reset it now.",
    );
    return;
  }
  if (user.disabled) {
    state.stats.failedSignIns++;
    state.dir.pending.delete(pending.id);
    showError(state, ex, aadsts(50057));
    return;
  }
  if (pending.authorityTenant && user.tenantId !== pending.authorityTenant.tenantId) {
    state.stats.failedSignIns++;
    state.dir.pending.delete(pending.id);
    const home = state.dir.tenants.get(user.tenantId);
    showError(
      state,
      ex,
      aadsts(50020, {
        username: user.username,
        idp: `https://sts.windows.net/${home?.tenantId ?? user.tenantId}/`,
        tenantName: pending.authorityTenant.displayName,
        clientId: pending.app.clientId,
        appName: pending.app.displayName,
      }),
    );
    return;
  }
  state.stats.signIns++;
  const now = state.now();
  const session = { id: newSessionId(), user, authTime: now };
  state.dir.sessions.set(session.id, session);
  pending.user = user;
  pending.authTime = now;
  afterSignIn(state, ex, pending, session.id, {
    'set-cookie': sessionCookie(ex, session.id),
  });
}

function afterSignIn(
  state: EmulatorState,
  ex: Exchange,
  p: PendingAuthorize,
  sessionId: string,
  headers: Record<string, string> = {},
): void {
  const user = p.user;
  if (!user) return;
  if (user.conditionalAccessBlocked) {
    state.dir.pending.delete(p.id);
    if (headers['set-cookie']) ex.res.setHeader('set-cookie', headers['set-cookie']);
    respondError(state, ex, p, 53003, {}, { error: 'access_denied' });
    return;
  }
  if (p.kind === 'adminconsent' && !user.isAdmin) {
    state.dir.pending.delete(p.id);
    respondError(state, ex, p, 90094);
    return;
  }
  const missing =
    p.kind === 'adminconsent' || p.prompt === 'consent'
      ? p.scopes
      : state.dir.missingConsent(user, p.app.clientId, p.scopes);
  if (p.kind === 'adminconsent' || missing.length > 0) {
    p.sessionId = sessionId;
    const shown = (missing.length > 0 ? missing : p.scopes).filter((s) => s !== 'openid');
    sendHtml(
      ex,
      200,
      consentPage({
        action: `/${encodeURIComponent(p.tenantSegment)}/Consent/Set`,
        ctx: p.id,
        appName: p.app.displayName,
        username: user.username,
        admin: p.kind === 'adminconsent',
        scopes: (shown.length > 0 ? shown : ['(all permissions the application requires)']).map((scope) => ({
          scope,
          description: scopeDescription(scope),
        })),
      }),
      headers,
    );
    return;
  }
  if (headers['set-cookie']) ex.res.setHeader('set-cookie', headers['set-cookie']);
  completeAuthorize(state, ex, p, sessionId);
}

function scopeDescription(scope: string): string {
  switch (scope) {
    case 'offline_access':
      return 'Maintain access to data you have given it access to';
    case 'profile':
      return 'View your basic profile';
    case 'email':
      return 'View your email address';
    default: {
      const { resource, permission } = parseResourceScope(scope);
      if (permission === 'EWS.AccessAsUser.All')
        return 'Access mailboxes as the signed-in user via Exchange Web Services';
      if (permission === '.default') return `All permissions the application requires for ${resource}`;
      return `${permission} (${resource})`;
    }
  }
}

/** POST of the consent form. */
export function handleConsent(state: EmulatorState, ex: Exchange, form: URLSearchParams): void {
  count(state, 'consent');
  const p = takePending(state, ex, form);
  if (!p?.user) {
    if (p) showError(state, ex, aadsts(900144, { parameter: 'login' }));
    return;
  }
  const sessionId = p.sessionId ?? newSessionId();
  if (form.get('action') !== 'accept') {
    state.dir.pending.delete(p.id);
    respondError(state, ex, p, 65004, {}, { subcode: 'cancel' });
    return;
  }
  state.stats.consentsGranted++;
  if (p.kind === 'adminconsent') {
    state.dir.pending.delete(p.id);
    state.dir.adminConsents.add(`${p.user.tenantId}|${p.app.clientId}`);
    const fields: Record<string, string> = { admin_consent: 'True', tenant: p.user.tenantId };
    if (p.scopes.length > 0) fields.scope = p.scopes.join(' ');
    if (p.state !== undefined) fields.state = p.state;
    respond(ex, p, fields);
    return;
  }
  state.dir.grantConsent(
    p.user,
    p.app.clientId,
    p.scopes.filter((s) => s !== 'openid'),
  );
  completeAuthorize(state, ex, p, sessionId);
}

function completeAuthorize(state: EmulatorState, ex: Exchange, p: PendingAuthorize, sessionId: string): void {
  state.dir.pending.delete(p.id);
  const user = p.user;
  if (!user) return;
  const code = `1.${randomBytes(150).toString('base64url')}`;
  state.dir.codes.set(code, {
    code,
    clientId: p.app.clientId,
    redirectUri: p.redirectUri,
    user,
    scopes: p.scopes,
    nonce: p.nonce,
    codeChallenge: p.codeChallenge,
    codeChallengeMethod: p.codeChallengeMethod,
    issuedAt: state.now(),
    authTime: p.authTime ?? state.now(),
    sessionId,
    mfa: user.mfaRequired,
  });
  state.stats.codesIssued++;
  const fields: Record<string, string> = { code };
  if (p.state !== undefined) fields.state = p.state;
  fields.session_state = sessionId;
  respond(ex, p, fields);
}

export const AUTH_CODE_LIFETIME_MS = CODE_LIFETIME_MS;

export function handleLogout(state: EmulatorState, ex: Exchange, params: URLSearchParams): void {
  count(state, 'logout');
  const id = parseCookies(ex.req).get(SESSION_COOKIE);
  if (id) state.dir.sessions.delete(id);
  const clear = { 'set-cookie': `${sessionCookie(ex, '')}; Max-Age=0` };
  const target = params.get('post_logout_redirect_uri');
  const registered = target
    ? [...state.dir.apps.values()].some((a) => a.redirectUris.includes(target))
    : false;
  if (target && registered) {
    const url = new URL(target);
    const st = params.get('state');
    if (st) url.searchParams.set('state', st);
    sendRedirect(ex, url.toString(), clear);
    return;
  }
  sendHtml(ex, 200, signedOutPage(), clear);
}
