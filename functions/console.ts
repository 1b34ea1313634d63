import { identifyCaller, requireAdmin } from '../shared/http/caller';
import { consoleScript } from '../shared/http/console-asset';
import { consolePage } from '../shared/http/pages';
import type { Handler } from './route';
import type { HttpFunctionDefinition } from './route';

/** `GET /api/console` (admin): the admin console page. */
const handler: Handler<'config' | 'secrets'> = async (broker, request) => {
  const caller = identifyCaller(request, broker.config);
  if (caller.via === 'none' && broker.config.platformAuthEnabled) {
    // Signed out in Azure: App Service Authentication signs the admin in and sends them back here.
    return {
      status: 302,
      headers: {
        Location: `/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent('/api/console')}`,
        'Cache-Control': 'no-store',
      },
    };
  }
  requireAdmin(caller);
  const script = await consoleScript();
  return consolePage({
    sandbox: broker.config.sandbox,
    secretStore: broker.secrets.kind,
    redirectUri: broker.config.redirectUri,
    publicBaseUrl: broker.config.publicBaseUrl,
    tenantId: broker.config.tenantId,
    scriptUrl: `/api/console.js?v=${script.hash}`,
  });
};

export const adminConsole: HttpFunctionDefinition = {
  name: 'console',
  route: 'console',
  methods: ['GET'],
  kind: 'browser',
  authLevel: 'anonymous',
  handler,
};
