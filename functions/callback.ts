import { adminConsentPage, callbackPage } from '../shared/http/pages';
import { bindingCookie, readBindingCookie, readFormBody, singleValue } from '../shared/http/request';
import { toBrokerError } from '../shared/http/responses';
import type { Handler } from './route';
import type { HttpFunctionDefinition } from './route';

/**
 * `POST /api/callback`: where Entra returns the browser with the code of a sign-in the authorize
 * route started in this browser (its binding cookie), in a form it POSTs (response_mode=form_post,
 * so the code and state never stand in a URL); `GET /api/callback` for the admin-consent endpoint's
 * return (and a query-mode answer). Answers the popup's result page, success or failure; clears
 * the binding cookie on success.
 */
const handler: Handler<'authorization' | 'config' | 'logger'> = async (broker, request) => {
  const params = request.method === 'POST' ? await readFormBody(request) : request.url.searchParams;
  const take = (key: string) => singleValue(params, key);
  const state = take('state');
  if (state === undefined && (params.has('admin_consent') || params.has('error'))) {
    // The admin-consent endpoint's return: no authorization of ours is in flight.
    return adminConsentPage(take('admin_consent'), take('tenant'), take('error'), take('error_description'));
  }
  const appOrigin = new URL(broker.config.publicBaseUrl).origin;
  const binding = readBindingCookie(broker.config, request, state ?? '');
  try {
    const completed = await broker.authorization.complete(
      { code: take('code'), state, error: take('error'), error_description: take('error_description') },
      binding,
      request.correlationId,
    );
    const connection = completed.connection.name;
    broker.logger.info('authorization.completed', { connection, correlationId: request.correlationId });
    const response = callbackPage(appOrigin, {
      ok: true,
      connection,
      status: completed.connection.status,
      signedInAs: completed.signedInAs,
      ...(completed.viaInvitation ? { invitation: { mailbox: completed.connection.mailbox } } : {}),
    });
    return { ...response, cookies: [bindingCookie(broker.config, state ?? '', '', 0)] };
  } catch (thrown) {
    const error = toBrokerError(thrown, broker.logger, request.correlationId);
    return callbackPage(appOrigin, {
      ok: false,
      connection: null,
      error,
      correlationId: request.correlationId,
    });
  }
};

export const callback: HttpFunctionDefinition = {
  name: 'callback',
  route: 'callback',
  methods: ['GET', 'POST'],
  kind: 'browser',
  // Entra POSTs the form from its own origin; state, the binding cookie and PKCE protect it.
  acceptsCrossSitePost: true,
  authLevel: 'anonymous',
  handler,
};
