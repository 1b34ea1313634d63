import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { CryptoProvider, type AuthenticationResult } from '@azure/msal-node';
import type { BrokerConfig } from '../config';
import type { Connection } from '../connections/connection';
import { delegatedScopes } from '../connections/profiles';
import {
  canLendSignIn,
  dependantsOf,
  requireConnection,
  type ConnectionRegistry,
} from '../connections/registry';
import { BrokerError } from '../errors';
import type { Logger } from '../logging';
import type { AuthSession, AuthSessionStore } from './auth-session';
import { brokerErrorForInteractive, classifyEntraAnswer, classifyMsalError, aadstsOf } from './entra-errors';
import { OperationCache, type MsalClientFactory } from './msal-client';
import { refreshOutcomeError, type RefreshOutcome } from './refresh';
import { acquireAppOnly, acquireWithPassword, forPasswordGrant, storedPassword } from './server-grants';
import { refuseUnlessBound, type ConnectionStateWriter } from '../connections/state';
import type { SecretStore } from '../secrets/secret-store';
import { authorizationBinding, isServerSideGrant } from '../connections/connection';

export interface AuthorizationServiceOptions {
  config: BrokerConfig;
  registry: ConnectionRegistry;
  sessions: AuthSessionStore;
  msal: MsalClientFactory;
  state: ConnectionStateWriter;
  secrets: SecretStore;
  logger: Logger;
  now: () => Date;
  /** Marks an invitation used once the sign-in it started is verified (README "Invitations for mailbox owners"). */
  invitations?: InvitationRedeemer;
  /** Connections that sign in through another (`signInFrom`): the refresh service redeems their tokens. */
  dependants?: {
    signInThroughSource(dependant: Connection, actor: string): Promise<RefreshOutcome & { row: Connection }>;
    reviveDependants(source: string, actor: string): Promise<void>;
  };
}

/** The invitations' side of a sign-in started from an invitation link. */
export interface InvitationRedeemer {
  /** Refuses (`invitation_invalid`) unless the invitation is still usable for `connection`; marks it used. */
  redeem(
    invitation: string,
    connection: Connection,
    signedInAs: string,
    correlationId: string,
  ): Promise<void>;
}

export interface StartedAuthorization {
  /** Entra's authorize URL to redirect the browser to. */
  redirectUrl: string;
  /** The flow's `state` (also in redirectUrl): names the flow's own binding cookie. */
  state: string;
  /** Value of the browser-binding cookie; only its hash is stored. */
  browserBinding: string;
  ttlSeconds: number;
}

/** Who signed in, as the ID token (or the password grant's account) says. */
interface SignIn {
  tenantId: string;
  signedInAs: string;
}

export interface CompletedAuthorization {
  connection: Connection;
  signedInAs: string;
  /** Started from an invitation link: the owner's browser has no console to report to. */
  viaInvitation?: boolean;
}

/** The query parameters Entra may put on the redirect to `/api/callback`. */
export interface CallbackParameters {
  code?: string;
  state?: string;
  error?: string;
  error_description?: string;
}

const STATE_SHAPE = /^[A-Za-z0-9_-]{43}$/;
const CODE_SHAPE = /^[\x21-\x7e]{1,4096}$/;
const ERROR_SHAPE = /^[a-z_]{1,64}$/;

const randomToken = () => randomBytes(32).toString('base64url');
const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Sign-in names compared as Entra treats them: Unicode-normalized (NFKC), ASCII letters case-folded. */
export function sameSignInName(a: string, b: string): boolean {
  const fold = (value: string) => value.normalize('NFKC').replace(/[A-Z]/g, (c) => c.toLowerCase());
  return fold(a) === fold(b);
}

/**
 * Whether the account that signed in may hold this connection's grant: its sign-in name must be
 * the connection's account and, once the connection has been authorized, the very same user
 * (object id) — a recreated account with the same name is another user.
 */
export function accountMismatch(
  connection: Pick<Connection, 'name' | 'account' | 'homeAccountId'>,
  signedInAs: string,
  homeAccountId: string | undefined,
): BrokerError | undefined {
  if (!sameSignInName(signedInAs, connection.account)) {
    return new BrokerError(
      'account_mismatch',
      `You signed in as ${signedInAs || '(unknown)'}, but connection ${connection.name} is for ${connection.account}.`,
      { remedy: `Start again and sign in as ${connection.account}.` },
    );
  }
  if (connection.homeAccountId && homeAccountId && connection.homeAccountId !== homeAccountId) {
    return new BrokerError(
      'account_mismatch',
      `${signedInAs} is not the same user (object id) that authorized connection ${connection.name} before.`,
      {
        remedy: `If the account was recreated, reset the connection and authorize it again: in the console, the connection's More → Reset, then Authorize (API: \`PUT /api/connections/${connection.name}?reset=true\` with its definition).`,
      },
    );
  }
  return undefined;
}

/**
 * The interactive authorization: `start` (the `authorize` route) and `complete` (the `callback`
 * route). As README "How the authorization is protected" says: it completes only in the browser that started it, once, within its TTL, with
 * PKCE, for the connection's account in an allowed tenant, or nothing changes.
 */
export class AuthorizationService {
  private readonly crypto = new CryptoProvider();

  constructor(private readonly options: AuthorizationServiceOptions) {}

  async adminConsentUrl(): Promise<string> {
    const { config, msal } = this.options;
    const url = new URL(`${await msal.signInUrl().catch(() => msal.authorityUrl())}/adminconsent`);
    url.searchParams.set('client_id', config.clientId);
    url.searchParams.set('redirect_uri', config.redirectUri);
    return url.toString();
  }

  /**
   * The popup's Authorize, with one read of the connection: the sign-in to start for a grant that
   * needs a browser; for the others the token is acquired now, and the outcome (a refusal too)
   * comes back for the popup's result page.
   */
  async begin(
    name: string,
    actor: string,
    correlationId: string,
  ): Promise<
    | { way: 'browser'; started: StartedAuthorization }
    | { way: 'server'; completed: CompletedAuthorization }
    | { way: 'server'; failure: unknown }
  > {
    const connection = await requireConnection(this.options.registry, name);
    if (connection.signInFrom !== undefined) {
      return this.authorizeThroughSource(connection, actor).then(
        (completed) => ({ way: 'server', completed }) as const,
        (failure: unknown) => ({ way: 'server', failure }) as const,
      );
    }
    if (!isServerSideGrant(connection.grant))
      return { way: 'browser', started: await this.start(authorizable(connection, 'browser'), actor) };
    try {
      const completed = await this.authorizeServerSideFor(
        authorizable(connection, 'server'),
        actor,
        correlationId,
      );
      return { way: 'server', completed };
    } catch (failure) {
      return { way: 'server', failure };
    }
  }

  /**
   * The Sign in of an invitation link: the same sign-in as Authorize, for whoever holds the link;
   * the session names the invitation, which `complete` marks used once the sign-in is verified.
   */
  async startForInvitation(
    connection: Connection,
    invitation: string,
    actor: string,
  ): Promise<StartedAuthorization> {
    return this.start(authorizable(connection, 'browser'), actor, invitation);
  }

  private async start(
    connection: Connection,
    actor: string,
    invitation?: string,
  ): Promise<StartedAuthorization> {
    const { config, sessions, msal, now } = this.options;
    const name = connection.name;
    const { verifier, challenge } = await this.crypto.generatePkceCodes();
    const state = randomToken();
    const nonce = randomToken();
    const browserBinding = randomToken();
    const createdAt = now();
    await sessions.create({
      state,
      connection: name,
      codeVerifier: verifier,
      nonce,
      browserBindingHash: sha256(browserBinding),
      startedBy: actor,
      binding: authorizationBinding(connection),
      ...(invitation ? { invitation } : {}),
      createdAt: createdAt.toISOString(),
      expiresOn: new Date(createdAt.getTime() + config.authSessionTtlSeconds * 1000).toISOString(),
    });
    const client = await msal.create(new OperationCache());
    const redirectUrl = await client.getAuthCodeUrl({
      scopes: delegatedScopes(connection, config.cloud),
      // One sign-in, several connections: consent covers the scopes of its dependants too.
      extraScopesToConsent: await this.dependantScopes(connection),
      redirectUri: config.redirectUri,
      codeChallenge: challenge,
      codeChallengeMethod: 'S256',
      state,
      nonce,
      loginHint: connection.account,
      // The code and state come back in a POSTed form, never in a URL: request logs, Application
      // Insights request telemetry, proxies and browser history see only /api/callback.
      responseMode: 'form_post',
    });
    return { redirectUrl, state, browserBinding, ttlSeconds: config.authSessionTtlSeconds };
  }

  /** The scopes of the connections that sign in through `source`, beyond its own. */
  private async dependantScopes(source: Connection): Promise<string[] | undefined> {
    const { config, registry } = this.options;
    const own = new Set(delegatedScopes(source, config.cloud));
    const extra = new Set<string>();
    for (const dependant of await dependantsOf(registry, source.name)) {
      for (const scope of delegatedScopes(dependant, config.cloud)) if (!own.has(scope)) extra.add(scope);
    }
    return extra.size > 0 ? [...extra] : undefined;
  }

  /**
   * The callback: consume the session (this browser, once, in time), redeem the code with its
   * PKCE verifier and nonce, verify who signed in, then store. A failure after the session is
   * consumed is an audit event; nothing is stored.
   */
  async complete(
    parameters: CallbackParameters,
    browserBinding: string | undefined,
    correlationId: string,
  ): Promise<CompletedAuthorization> {
    const session = await this.consumeSession(parameters.state, browserBinding);
    const actor = session.startedBy;
    let verified: { connection: Connection; result: AuthenticationResult; cache: string; signIn: SignIn };
    try {
      const code = await this.codeOf(parameters);
      const connection = await this.options.registry.get(session.connection);
      if (!connection)
        throw new BrokerError(
          'connection_not_found',
          `Connection ${session.connection} was removed meanwhile.`,
        );
      // Before redeeming: a code for a connection that changed meanwhile is not worth the call.
      // (The check that counts runs again under the lease, right before anything is written.)
      refuseUnlessBound(connection, session.binding);
      const { result, cache } = await this.redeem(connection, code, session);
      const claims = result.idTokenClaims as Record<string, unknown>;
      // Never `email`: it is not verified by Entra and a user can often set it themselves.
      const nameClaim = [claims.preferred_username, claims.upn].find((value) => typeof value === 'string');
      const signIn = {
        tenantId: typeof claims.tid === 'string' ? claims.tid.toLowerCase() : '',
        signedInAs: typeof nameClaim === 'string' ? nameClaim.toLowerCase() : '',
      };
      verified = { connection, result, cache: await this.verify(connection, result, cache, signIn), signIn };
      // Verified and about to be stored: only now is an invitation used (a wrong account left it open).
      if (session.invitation)
        await this.redeemInvitation(session.invitation, connection, signIn.signedInAs, correlationId);
    } catch (error) {
      if (error instanceof BrokerError)
        return this.recordFailure(session.connection, actor, correlationId, error);
      throw error;
    }
    const { connection, result, cache, signIn } = verified;
    const updated = await this.options.state
      .storeAuthorization(connection, session.binding, result, cache, { actor, ...signIn, correlationId })
      .catch((error: unknown) => this.recordIfRefused(connection.name, actor, correlationId, error));
    await this.reviveDependants(updated, actor);
    return {
      connection: updated,
      signedInAs: signIn.signedInAs,
      ...(session.invitation ? { viaInvitation: true } : {}),
    };
  }

  private async redeemInvitation(
    invitation: string,
    connection: Connection,
    signedInAs: string,
    correlationId: string,
  ): Promise<void> {
    if (!this.options.invitations)
      throw new BrokerError('invitation_invalid', 'Invitations are not available here.');
    await this.options.invitations.redeem(invitation, connection, signedInAs, correlationId);
  }

  /**
   * Authorize for the grants that need no browser: app-only acquires a token with the app's
   * credential; the password grant signs in as the account with its stored password. Nothing is
   * written unless Entra answered and (for the password grant) the tenant and account match.
   */
  async authorizeServerSide(
    name: string,
    actor: string,
    correlationId: string,
  ): Promise<CompletedAuthorization> {
    const found = await requireConnection(this.options.registry, name);
    if (found.signInFrom !== undefined) return this.authorizeThroughSource(found, actor);
    const connection = authorizable(found, 'server');
    return this.authorizeServerSideFor(connection, actor, correlationId);
  }

  /**
   * Authorize on a dependant: no sign-in of its own, its token is redeemed from its source's
   * sign-in now. A source that holds none is named in the error, with what to do.
   */
  private async authorizeThroughSource(
    dependant: Connection,
    actor: string,
  ): Promise<CompletedAuthorization> {
    const sourceName = dependant.signInFrom ?? '';
    if (dependant.status === 'disabled') {
      throw new BrokerError('connection_disabled', `Connection ${dependant.name} is disabled.`);
    }
    const source = await this.options.registry.get(sourceName);
    if (!source || !canLendSignIn(source) || !this.options.dependants) {
      throw new BrokerError(
        'connection_not_authorized',
        `Connection ${dependant.name} signs in through ${sourceName}, which holds no sign-in yet.`,
        { remedy: `Authorize ${sourceName}: its sign-in serves ${dependant.name} too.` },
      );
    }
    const outcome = await this.options.dependants.signInThroughSource(dependant, actor);
    if (outcome.row.status !== 'authorized') throw refreshOutcomeError(outcome, 'admin');
    return { connection: outcome.row, signedInAs: outcome.row.authorizedBy ?? source.authorizedBy ?? '' };
  }

  /** After a source signed in: its dependants get their tokens now (a failure is theirs, not the sign-in's). */
  private async reviveDependants(source: Connection, actor: string): Promise<void> {
    if (source.signInFrom !== undefined || !this.options.dependants) return;
    await this.options.dependants.reviveDependants(source.name, actor).catch((error: unknown) => {
      this.options.logger.warn('authorization.dependants_failed', { connection: source.name, error });
    });
  }

  private async authorizeServerSideFor(
    connection: Connection,
    actor: string,
    correlationId: string,
  ): Promise<CompletedAuthorization> {
    const { config, msal, state } = this.options;
    const name = connection.name;
    const appOnly = connection.grant === 'client_credentials';
    let stored: { result: AuthenticationResult; cache: string | undefined; signIn: SignIn };
    try {
      const { result, cache } = await this.acquireServerSide(connection);
      if (appOnly) {
        const tenantId = (await msal.resolvedTenantId()) ?? config.allowedTenants[0] ?? '';
        // App-only grants have no refresh token: nothing of their cache is kept.
        stored = { result, cache: undefined, signIn: { tenantId, signedInAs: `app ${config.clientId}` } };
      } else {
        const claims = result.idTokenClaims as Record<string, unknown>;
        const signIn = {
          tenantId:
            typeof claims.tid === 'string' ? claims.tid.toLowerCase() : (result.tenantId || '').toLowerCase(),
          signedInAs: (result.account?.username ?? '').toLowerCase(),
        };
        stored = { result, cache: await this.verify(connection, result, cache, signIn), signIn };
      }
    } catch (error) {
      if (error instanceof BrokerError) return this.recordFailure(name, actor, correlationId, error);
      throw error;
    }
    const updated = await state
      .storeAuthorization(connection, authorizationBinding(connection), stored.result, stored.cache, {
        actor,
        ...stored.signIn,
        correlationId,
      })
      .catch((error: unknown) => this.recordIfRefused(name, actor, correlationId, error));
    await this.reviveDependants(updated, actor);
    return { connection: updated, signedInAs: stored.signIn.signedInAs };
  }

  /** The session of `state`, consumed: only in the browser that started it, once, within its TTL. */
  private async consumeSession(
    state: string | undefined,
    browserBinding: string | undefined,
  ): Promise<AuthSession> {
    const { sessions, now } = this.options;
    const restart = { remedy: 'Start again from the console.' };
    if (!state || !STATE_SHAPE.test(state)) {
      throw new BrokerError(
        'state_invalid',
        'This sign-in response does not belong to an authorization started here.',
        restart,
      );
    }
    const session = await sessions.peek(state);
    if (!session)
      throw new BrokerError('state_invalid', 'This sign-in was already completed or is unknown.', restart);
    if (Date.parse(session.expiresOn) <= now().getTime()) {
      await sessions.consume(state);
      throw new BrokerError('state_expired', 'This sign-in took too long and has expired.', {
        remedy: 'Start again from the console and finish within the time allowed.',
      });
    }
    if (!browserBinding || !sameHash(sha256(browserBinding), session.browserBindingHash)) {
      // Not consumed: the browser that started it can still finish.
      throw new BrokerError(
        'state_invalid',
        'This sign-in was started in a different browser or its cookie is gone.',
        {
          remedy: 'Finish the sign-in in the browser where you clicked Authorize, or start again.',
        },
      );
    }
    const consumed = await sessions.consume(state);
    if (!consumed) throw new BrokerError('state_invalid', 'This sign-in was already completed.', restart);
    return consumed;
  }

  /** The authorization code of the callback, or the error Entra sent instead. */
  private async codeOf(parameters: CallbackParameters): Promise<string> {
    if (parameters.error !== undefined) {
      const error = ERROR_SHAPE.test(parameters.error) ? parameters.error : 'invalid_request';
      const failure = classifyEntraAnswer(error, aadstsOf(parameters.error_description));
      throw brokerErrorForInteractive(failure, await this.adminConsentUrl());
    }
    if (!parameters.code || !CODE_SHAPE.test(parameters.code)) {
      throw new BrokerError('invalid_request', 'The sign-in response carries no authorization code.');
    }
    return parameters.code;
  }

  /** Redeems the code with the session's PKCE verifier and nonce. */
  private async redeem(
    connection: Connection,
    code: string,
    session: AuthSession,
  ): Promise<{ result: AuthenticationResult; cache: OperationCache }> {
    const { config, msal } = this.options;
    const cache = new OperationCache();
    try {
      const client = await msal.create(cache);
      const result = await client.acquireTokenByCode({
        code,
        scopes: delegatedScopes(connection, config.cloud),
        redirectUri: config.redirectUri,
        codeVerifier: session.codeVerifier,
        nonce: session.nonce,
      });
      return { result, cache };
    } catch (error) {
      if (error instanceof BrokerError) throw error;
      throw brokerErrorForInteractive(classifyMsalError(error), await this.adminConsentUrl());
    }
  }

  /** A token by the connection's server-side grant (app-only, or the password grant). */
  private async acquireServerSide(
    connection: Connection,
  ): Promise<{ result: AuthenticationResult; cache: OperationCache }> {
    const { config, secrets, msal } = this.options;
    const cache = new OperationCache();
    const appOnly = connection.grant === 'client_credentials';
    try {
      const result = appOnly
        ? await acquireAppOnly(msal, cache, connection, config.cloud)
        : await acquireWithPassword(
            msal,
            cache,
            connection,
            config.cloud,
            await storedPassword(secrets, connection),
          );
      return { result, cache };
    } catch (error) {
      if (error instanceof BrokerError) throw error;
      const failure = appOnly
        ? classifyMsalError(error)
        : forPasswordGrant(classifyMsalError(error), connection.name);
      throw brokerErrorForInteractive(failure, await this.adminConsentUrl(), 'server');
    }
  }

  /**
   * Who signed in may hold this connection's grant: an allowed tenant and the connection's account.
   * Returns the cache to keep.
   */
  private async verify(
    connection: Connection,
    result: AuthenticationResult,
    cache: OperationCache,
    signIn: SignIn,
  ): Promise<string> {
    const { config, msal } = this.options;
    const allowed =
      config.allowedTenants.length > 0 ? config.allowedTenants : [await msal.resolvedTenantId()];
    if (!allowed.includes(signIn.tenantId)) {
      throw new BrokerError(
        'tenant_not_allowed',
        `Accounts of tenant ${signIn.tenantId || '(unknown)'} may not authorize here.`,
        {
          remedy: 'Sign in with an account of an allowed tenant, or add the tenant to ALLOWED_TENANTS.',
        },
      );
    }
    const mismatch = accountMismatch(connection, signIn.signedInAs, result.account?.homeAccountId);
    if (mismatch) throw mismatch;
    if (!cache.contents)
      throw new BrokerError('authorization_failed', 'Entra ID returned no token cache to keep.');
    return cache.contents;
  }

  /** A refused store (the connection changed meanwhile) is a failed authorization; anything else propagates. */
  private async recordIfRefused(
    name: string,
    actor: string,
    correlationId: string,
    error: unknown,
  ): Promise<never> {
    if (error instanceof BrokerError) return this.recordFailure(name, actor, correlationId, error);
    throw error;
  }

  /** An authorization that ended without tokens: an audit event and a log line, then the error. */
  private async recordFailure(
    name: string,
    actor: string,
    correlationId: string,
    error: BrokerError,
  ): Promise<never> {
    await this.options.state.recordEvent(name, {
      type: 'authorization.failed',
      actor,
      reason: `${error.code}: ${error.message}`,
      aadsts: error.aadsts,
      correlationId,
    });
    throw error;
  }
}

/** The connection, if it is enabled and is authorized the way asked (browser or server side). */
function authorizable(connection: Connection, way: 'browser' | 'server'): Connection {
  const name = connection.name;
  if (connection.status === 'disabled') {
    throw new BrokerError('connection_disabled', `Connection ${name} is disabled.`);
  }
  if (way === 'browser' && isServerSideGrant(connection.grant)) {
    throw new BrokerError(
      'invalid_request',
      `Connection ${name} uses the ${connection.grant} grant: it is authorized without a browser.`,
      { remedy: `Click Authorize in the console (API: \`POST /api/connections/${name}/authorize\`).` },
    );
  }
  if (way === 'server' && !isServerSideGrant(connection.grant)) {
    throw new BrokerError('invalid_request', `Connection ${name} is authorized by signing in in a browser.`, {
      remedy: `Click Authorize in the console (API: open \`GET /api/connections/${name}/authorize\` in a browser).`,
    });
  }
  return connection;
}
