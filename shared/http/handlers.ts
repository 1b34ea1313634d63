import { createHash } from 'node:crypto';
import type { Broker } from '../broker';
import {
  assertConnectionName,
  isServerSideGrant,
  parseConnectionDefinition,
  type Connection,
} from '../connections/connection';
import { BrokerError } from '../errors';
import { secretNames } from '../secrets/secret-store';
import { ADMIN_ROLE, identifyCaller, requireAdmin, requireTokenReader } from './caller';
import { adminConsentPage, callbackPage, consolePage, errorPage } from './pages';
import { json, noContent, problem, toBrokerError } from './responses';
import type { BrokerRequest, BrokerResponse, ResponseCookie } from './types';

/** A route's logic, independent of the Functions programming model. */
export type Handler = (broker: Broker, request: BrokerRequest) => Promise<BrokerResponse>;

const MAX_JSON_BODY_BYTES = 16 * 1024;
/**
 * The cookie that binds one authorization to the browser that started it. Its name carries a
 * digest of the flow's `state`, so two Authorize popups in one browser each keep their own.
 * `__Host-` pins it to this host and path over HTTPS; plain HTTP (localhost) cannot use it.
 */
function bindingCookieName(state: string, secure: boolean): string {
  const flow = createHash('sha256').update(state).digest('base64url').slice(0, 16);
  return `${secure ? '__Host-' : ''}broker_auth_${flow}`;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Refuses a request another site made the admin's browser send (a cross-site form post, a
 * fetch from a page that rebinds DNS): browsers say so in Sec-Fetch-Site and Origin. Scripts and
 * consumers send neither and are judged by their identity alone.
 */
export function refuseCrossSite(broker: Broker, request: BrokerRequest): void {
  const site = request.headers.get('sec-fetch-site');
  const origin = request.headers.get('origin');
  const ownOrigin = new URL(broker.config.publicBaseUrl).origin;
  if (
    (site !== null && site !== 'same-origin' && site !== 'none') ||
    (origin !== null && origin !== ownOrigin)
  ) {
    throw new BrokerError('forbidden', 'A request from another site may not change anything here.', {
      remedy: `Use the console at ${ownOrigin}/api/console, or call the API from a script.`,
    });
  }
}

/** API routes answer problem+json; browser routes a readable page. One place decides. */
export function guard(kind: 'api' | 'browser', methods: string[], handler: Handler): Handler {
  return async (broker, request) => {
    try {
      if (methods.includes(request.method) && !SAFE_METHODS.has(request.method))
        refuseCrossSite(broker, request);
      if (!methods.includes(request.method)) {
        const error = new BrokerError('method_not_allowed', `${request.method} is not allowed here.`);
        const response =
          kind === 'api' ? problem(error, request.correlationId) : errorPage(error, request.correlationId);
        response.headers.Allow = methods.join(', ');
        return response;
      }
      return await handler(broker, request);
    } catch (thrown) {
      const error = toBrokerError(thrown, broker.logger, request.correlationId);
      if (error.status >= 500) {
        broker.logger.error('request.failed', {
          code: error.code,
          correlationId: request.correlationId,
          path: request.url.pathname,
        });
      }
      return kind === 'api'
        ? problem(error, request.correlationId, request.url.pathname)
        : errorPage(error, request.correlationId);
    }
  };
}

/** The connection as admins see it: no etag, no cache ids. */
export function connectionView(connection: Connection, secrets?: Broker['secrets']) {
  return {
    name: connection.name,
    mailbox: connection.mailbox,
    account: connection.account,
    profile: connection.profile,
    grant: connection.grant,
    ...(connection.scopes ? { scopes: connection.scopes } : {}),
    ...(connection.ewsUrl ? { ewsUrl: connection.ewsUrl } : {}),
    readers: connection.readers,
    description: connection.description,
    status: connection.status,
    createdAt: connection.createdAt,
    updatedAt: connection.updatedAt,
    authorizedAt: connection.authorizedAt ?? null,
    authorizedBy: connection.authorizedBy ?? null,
    tenantId: connection.tenantId ?? null,
    tokenExpiresOn: connection.tokenExpiresOn ?? null,
    lastRefreshAt: connection.lastRefreshAt ?? null,
    consecutiveFailures: connection.consecutiveFailures,
    degradedSince: connection.degradedSince ?? null,
    nextAttemptAt: connection.nextAttemptAt ?? null,
    lastError: connection.lastError ?? null,
    // Where consumers read the published token (a Key Vault reference: @Microsoft.KeyVault(SecretUri=…)).
    tokenSecretUri: secrets?.uriOf(secretNames.token(connection.name)) ?? null,
  };
}

export async function existingConnection(broker: Broker, rawName: string | undefined): Promise<Connection> {
  const name = assertConnectionName(rawName);
  const connection = await broker.registry.get(name);
  if (!connection) throw new BrokerError('connection_not_found', `There is no connection named ${name}.`);
  return connection;
}

export async function readJsonBody(request: BrokerRequest): Promise<unknown> {
  const contentType = request.headers.get('content-type') ?? '';
  if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(contentType)) {
    throw new BrokerError('unsupported_media_type', 'Send the body as application/json.');
  }
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > MAX_JSON_BODY_BYTES) {
    throw new BrokerError('payload_too_large', `The body may be at most ${MAX_JSON_BODY_BYTES} bytes.`);
  }
  const text = await request.text(MAX_JSON_BODY_BYTES);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new BrokerError('invalid_request', 'The body is not valid JSON.');
  }
}

export const health: Handler = guard('api', ['GET'], async (broker, request) => {
  const report = await broker.healthService.report();
  const status = report.ok ? 200 : 503;
  // The public learns only whether the broker works; which store or credential fails is for admins.
  if (!identifyCaller(request, broker.config).roles.includes(ADMIN_ROLE)) {
    return json(status, { status: report.ok ? 'ok' : 'failing' });
  }
  return json(status, {
    status: report.ok ? 'ok' : 'unhealthy',
    checks: report.checks,
    secretStore: broker.secrets.kind,
    sandbox: broker.config.sandbox,
    ...(report.configurationProblem ? { configurationProblem: report.configurationProblem } : {}),
  });
});

export const listConnections: Handler = guard('api', ['GET'], async (broker, request) => {
  requireAdmin(identifyCaller(request, broker.config));
  const connections = await broker.registry.list();
  return json(200, {
    connections: connections.map((connection) => connectionView(connection, broker.secrets)),
  });
});

export const connectionByName: Handler = guard('api', ['GET', 'PUT', 'DELETE'], async (broker, request) => {
  const caller = requireAdmin(identifyCaller(request, broker.config));
  const name = assertConnectionName(request.params.name);
  if (request.method === 'GET') {
    const connection = await existingConnection(broker, name);
    const recentEvents = await broker.audit.list(name, 20);
    return json(200, { ...connectionView(connection, broker.secrets), recentEvents });
  }
  const change = { actor: caller.name, correlationId: request.correlationId };
  if (request.method === 'PUT') {
    const reset = request.url.searchParams.get('reset');
    if (reset !== null && reset !== 'true' && reset !== 'false') {
      throw new BrokerError('invalid_request', 'reset must be true or false.');
    }
    const definition = parseConnectionDefinition(await readJsonBody(request));
    const { connection, created } = await broker.connections.define(name, definition, {
      ...change,
      reset: reset === 'true',
    });
    return json(
      created ? 201 : 200,
      connectionView(connection),
      created ? { Location: `/api/connections/${name}` } : {},
    );
  }
  await broker.connections.delete(name, change);
  return noContent();
});

const authorizeInBrowser: Handler = guard('browser', ['GET', 'POST'], async (broker, request) => {
  const caller = requireAdmin(identifyCaller(request, broker.config));
  const name = assertConnectionName(request.params.name);
  const connection = await existingConnection(broker, name);
  if (isServerSideGrant(connection.grant)) {
    // Grants without a browser step: a GET does what the POST does and shows the result page, so
    // it is as state-changing as the POST: not from another site.
    refuseCrossSite(broker, request);
    const appOrigin = new URL(broker.config.publicBaseUrl).origin;
    try {
      const completed = await broker.authorization.authorizeServerSide(
        name,
        caller.name,
        request.correlationId,
      );
      broker.tokenReader.forget(name);
      return callbackPage(appOrigin, {
        ok: true,
        connection: name,
        status: completed.connection.status,
        signedInAs: completed.signedInAs,
      });
    } catch (thrown) {
      const error = toBrokerError(thrown, broker.logger, request.correlationId);
      return callbackPage(appOrigin, {
        ok: false,
        connection: name,
        error,
        correlationId: request.correlationId,
      });
    }
  }
  const started = await broker.authorization.start(name, caller.name);
  broker.logger.info('authorization.started', {
    connection: name,
    actor: caller.name,
    correlationId: request.correlationId,
  });
  const secure = broker.config.publicBaseUrl.startsWith('https://');
  const cookie: ResponseCookie = {
    name: bindingCookieName(started.state, secure),
    value: started.browserBinding,
    path: '/',
    maxAgeSeconds: started.ttlSeconds,
    secure,
    httpOnly: true,
    // Lax: the cookie must come back on Entra's top-level redirect to /api/callback.
    sameSite: 'Lax',
  };
  return {
    status: 302,
    headers: { Location: started.redirectUrl, 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' },
    cookies: [cookie],
  };
});

/** `POST /connections/{name}/authorize`: for grants without a browser step, acquire and publish now. */
const authorizeServerSide: Handler = guard('api', ['GET', 'POST'], async (broker, request) => {
  const caller = requireAdmin(identifyCaller(request, broker.config));
  const name = assertConnectionName(request.params.name);
  const completed = await broker.authorization.authorizeServerSide(name, caller.name, request.correlationId);
  broker.tokenReader.forget(name);
  broker.logger.info('authorization.completed', { connection: name, correlationId: request.correlationId });
  return json(200, {
    signedInAs: completed.signedInAs,
    connection: connectionView(completed.connection, broker.secrets),
  });
});

/** GET in a browser (interactive sign-in, or the result page); POST from the console or a script. */
export const authorize: Handler = (broker, request) =>
  request.method === 'POST' ? authorizeServerSide(broker, request) : authorizeInBrowser(broker, request);

function readCookie(request: BrokerRequest, name: string): string | undefined {
  const header = request.headers.get('cookie');
  if (!header || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const index = part.indexOf('=');
    if (index > 0 && part.slice(0, index).trim() === name) return part.slice(index + 1).trim();
  }
  return undefined;
}

const MAX_QUERY_VALUE = 8192;

export const callback: Handler = guard('browser', ['GET'], async (broker, request) => {
  const appOrigin = new URL(broker.config.publicBaseUrl).origin;
  const secure = broker.config.publicBaseUrl.startsWith('https://');
  const query = request.url.searchParams;
  const take = (key: string) => {
    const values = query.getAll(key);
    if (values.length > 1)
      throw new BrokerError('invalid_request', `The parameter ${key} appears more than once.`);
    const value: string | undefined = values[0];
    if (value !== undefined && value.length > MAX_QUERY_VALUE) {
      throw new BrokerError('invalid_request', `The parameter ${key} is too long.`);
    }
    return value;
  };
  const state = take('state');
  if (state === undefined && (query.has('admin_consent') || query.has('error'))) {
    // The admin-consent endpoint's return: no authorization of ours is in flight.
    return adminConsentPage(take('admin_consent'), take('tenant'), take('error'), take('error_description'));
  }
  const cookieName = bindingCookieName(state ?? '', secure);
  const binding = readCookie(request, cookieName);
  const clearCookie: ResponseCookie = {
    name: cookieName,
    value: '',
    path: '/',
    maxAgeSeconds: 0,
    secure,
    httpOnly: true,
    sameSite: 'Lax',
  };
  try {
    const completed = await broker.authorization.complete(
      {
        code: take('code'),
        state,
        error: take('error'),
        error_description: take('error_description'),
      },
      binding,
      request.correlationId,
    );
    broker.logger.info('authorization.completed', {
      connection: completed.connection.name,
      correlationId: request.correlationId,
    });
    const response = callbackPage(appOrigin, {
      ok: true,
      connection: completed.connection.name,
      status: completed.connection.status,
      signedInAs: completed.signedInAs,
    });
    return { ...response, cookies: [clearCookie] };
  } catch (thrown) {
    const error = toBrokerError(thrown, broker.logger, request.correlationId);
    return callbackPage(appOrigin, {
      ok: false,
      connection: null,
      error,
      correlationId: request.correlationId,
    });
  }
});

/** Access tokens live 60 to 90 minutes: a consumer may ask for at most 59 of them. */
const MAX_MIN_VALID_SECONDS = 3540;

function minValidSeconds(request: BrokerRequest): number {
  const values = request.url.searchParams.getAll('min_valid_seconds');
  if (values.length === 0) return 60;
  const value = values[0] ?? '';
  if (
    values.length > 1 ||
    !/^\d{1,5}$/.test(value) ||
    Number(value) < 60 ||
    Number(value) > MAX_MIN_VALID_SECONDS
  ) {
    throw new BrokerError(
      'invalid_request',
      `min_valid_seconds must be one whole number of seconds from 60 to ${MAX_MIN_VALID_SECONDS} (a token lives at most about an hour).`,
    );
  }
  return Number(value);
}

export const token: Handler = guard('api', ['GET'], async (broker, request) => {
  const caller = identifyCaller(request, broker.config);
  const name = assertConnectionName(request.params.name);
  requireTokenReader(caller, undefined, name);
  const published = await broker.tokenReader.read(name, minValidSeconds(request), (connection) =>
    requireTokenReader(caller, connection.readers, name),
  );
  return json(200, published);
});

export const refreshNow: Handler = guard('api', ['POST'], async (broker, request) => {
  const caller = requireAdmin(identifyCaller(request, broker.config));
  const connection = await existingConnection(broker, request.params.name);
  if (connection.status === 'new') {
    throw new BrokerError(
      'connection_not_authorized',
      `Connection ${connection.name} has not been authorized yet.`,
    );
  }
  const outcome = await broker.refresher.refresh(connection.name, { actor: caller.name, force: true });
  broker.tokenReader.forget(connection.name);
  if (outcome.result === 'busy') {
    throw new BrokerError('refresh_in_progress', `A refresh of ${connection.name} is already running.`, {
      retryAfterSeconds: 5,
    });
  }
  const current = await existingConnection(broker, connection.name);
  if (outcome.result === 'failed') {
    const definitive = outcome.status === 'reauthorization_required';
    throw new BrokerError(
      definitive
        ? 'reauthorization_required'
        : outcome.reason === 'configuration'
          ? 'configuration_error'
          : 'upstream_unavailable',
      outcome.failure?.message ?? 'The refresh failed.',
      {
        aadsts: outcome.failure?.aadsts,
        remedy: current.lastError?.remedy,
        retryAfterSeconds: definitive ? undefined : 60,
      },
    );
  }
  return json(200, { result: outcome.result, reason: outcome.reason, connection: connectionView(current) });
});

export const adminConsole: Handler = guard('browser', ['GET'], (broker, request) => {
  const caller = identifyCaller(request, broker.config);
  if (caller.via === 'none' && broker.config.platformAuthEnabled) {
    // Signed out in Azure: App Service Authentication signs the admin in and sends them back here.
    return Promise.resolve({
      status: 302,
      headers: {
        Location: `/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent('/api/console')}`,
        'Cache-Control': 'no-store',
      },
    });
  }
  requireAdmin(caller);
  return Promise.resolve(
    consolePage({
      sandbox: broker.config.sandbox,
      secretStore: broker.secrets.kind,
      redirectUri: broker.config.redirectUri,
    }),
  );
});
