import { invitationPage } from '../shared/http/pages';
import { bindingCookie, readFormBody, readJsonBody, singleValue } from '../shared/http/request';
import { json } from '../shared/http/responses';
import { assertInvitationToken } from '../shared/invitations/invitation';
import type { Handler, HttpFunctionDefinition } from './route';

/**
 * The invitation link, for whoever holds it (no role in the broker). The link is
 * `/api/invitation#{secret}`: the secret never stands in a request line, so no request log holds it.
 * `GET` is the same page for every link (it reads nothing, consumes nothing); its `POST` (the
 * page's Sign in button, a same-origin form carrying the secret) starts the same sign-in as
 * Authorize, bound to this browser by a cookie.
 */
const link: Handler<'config' | 'invitations' | 'msal'> = async (broker, request) => {
  if (request.method === 'GET') {
    return invitationPage({
      appOrigin: new URL(broker.config.publicBaseUrl).origin,
      clientId: broker.config.clientId,
      // Form-action must allow every hop of the Sign in's redirect: where the browser signs in.
      signInOrigin: new URL(await broker.msal.signInUrl().catch(() => broker.config.cloud.authorityHost))
        .origin,
    });
  }
  const token = assertInvitationToken(singleValue(await readFormBody(request), 'token'));
  const started = await broker.invitations.begin(token);
  return {
    status: 302,
    headers: { Location: started.redirectUrl, 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' },
    cookies: [bindingCookie(broker.config, started.state, started.browserBinding, started.ttlSeconds)],
  };
};

/** `POST /api/invitation/details` with `{ "token": "…" }`: what the link is for (mailbox, account, capability, expiry). Consumes nothing. */
const details: Handler<'invitations'> = async (broker, request) => {
  const body = await readJsonBody(request);
  const token = assertInvitationToken((body as { token?: unknown } | null)?.token);
  const { mailbox, account, capability, expiresOn } = await broker.invitations.view(token);
  return json(200, { mailbox, account, capability, expiresOn });
};

export const invitationLink: HttpFunctionDefinition = {
  name: 'invitationLink',
  route: 'invitation',
  methods: ['GET', 'POST'],
  kind: 'browser',
  authLevel: 'anonymous',
  handler: link,
};

export const invitationDetails: HttpFunctionDefinition = {
  name: 'invitationDetails',
  route: 'invitation/details',
  methods: ['POST'],
  kind: 'api',
  authLevel: 'anonymous',
  handler: details,
};
