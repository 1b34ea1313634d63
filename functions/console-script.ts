import { consoleScript } from '../shared/http/console-asset';
import { BASE_SECURITY_HEADERS } from '../shared/http/responses';
import type { Handler, HttpFunctionDefinition } from './route';

/**
 * `GET /api/console.js` (anyone: it holds no data): the console's browser script. The console page
 * names it `?v={content hash}`; that URL may be cached for good, any other is revalidated.
 */
const handler: Handler<never> = async (_services, request) => {
  const { text, hash } = await consoleScript();
  const { Pragma: _pragma, ...headers } = BASE_SECURITY_HEADERS;
  return {
    status: 200,
    headers: {
      ...headers,
      'Content-Type': 'text/javascript; charset=utf-8',
      'Cache-Control':
        request.url.searchParams.get('v') === hash ? 'public, max-age=31536000, immutable' : 'no-cache',
      ETag: `"${hash}"`,
    },
    body: text,
  };
};

export const consoleScriptAsset: HttpFunctionDefinition = {
  name: 'consoleScript',
  route: 'console.js',
  methods: ['GET'],
  kind: 'api',
  authLevel: 'anonymous',
  handler,
};
