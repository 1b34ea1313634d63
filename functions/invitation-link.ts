import { invitationPage } from '../shared/http/pages';
import { bindingCookie } from '../shared/http/request';
import { assertInvitationToken } from '../shared/invitations/invitation';
import type { Handler } from './route';
import type { HttpFunctionDefinition } from './route';

/**
 * The invitation link, for whoever holds it (no role in the broker): `GET` shows what it is for and
 * changes nothing (mail scanners open every link); `POST` (the page's Sign in button, a same-origin
 * form) starts the same sign-in as Authorize, bound to this browser by a cookie. The link's secret
 * is the path segment: its shape is checked before any lookup, and it is never logged.
 */
const handler: Handler<'config' | 'invitations'> = async (broker, request) => {
  const token = assertInvitationToken(request.params.token);
  if (request.method === 'GET') {
    const view = await broker.invitations.view(token);
    const appOrigin = new URL(broker.config.publicBaseUrl).origin;
    return invitationPage({ ...view, appOrigin }, new URL(broker.config.cloud.authorityHost).origin);
  }
  const started = await broker.invitations.begin(token);
  return {
    status: 302,
    headers: { Location: started.redirectUrl, 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' },
    cookies: [bindingCookie(broker.config, started.state, started.browserBinding, started.ttlSeconds)],
  };
};

export const invitationLink: HttpFunctionDefinition = {
  name: 'invitationLink',
  route: 'invitations/{token}',
  methods: ['GET', 'POST'],
  kind: 'browser',
  authLevel: 'anonymous',
  pathHoldsSecret: true,
  handler,
};
