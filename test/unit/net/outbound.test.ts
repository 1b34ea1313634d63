import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { connect as netConnect, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { Response } from 'undici';
import { listenOnLoopback } from '../../../sandbox/listen';
import { createOutbound, ProxyTunnelError, RetryAfterMemory } from '../../../shared/net/outbound';

const NO_PROXY = { proxy: { httpsProxy: undefined, noProxy: [] } };

/** Runs `fn` with `server` listening on a loopback port, then closes it. */
async function withServer<T>(
  server: Server & { closeAllConnections?: () => void },
  fn: (port: number) => Promise<T>,
): Promise<T> {
  const port = await listenOnLoopback(server);
  try {
    return await fn(port);
  } finally {
    server.closeAllConnections?.();
    await new Promise((resolve) => server.close(resolve));
  }
}

function answer(status: number, headers: Record<string, string> = {}) {
  return new Response('', { status, headers });
}

describe('RetryAfterMemory', () => {
  it.each<[number, string | undefined, string | undefined, number | undefined]>([
    [429, '7', 'c1', 7],
    [503, '120', 'c1', 120],
    [500, '3', 'c1', 3],
    [400, '7', 'c1', undefined], // a client error is not a throttle
    [200, '7', 'c1', undefined],
    [429, undefined, 'c1', undefined], // nothing to honour
    [429, 'soon', 'c1', undefined],
    [429, '7', undefined, undefined], // no correlation id to file it under
  ])('HTTP %p with Retry-After %p (correlation id %p) → %p', (status, retryAfter, correlationId, seconds) => {
    const memory = new RetryAfterMemory();
    memory.remember(
      correlationId,
      answer(status, retryAfter === undefined ? {} : { 'Retry-After': retryAfter }),
    );
    expect(memory.get('c1')).toBe(seconds);
  });

  it('forgets the oldest entry past its limit', () => {
    const memory = new RetryAfterMemory(2);
    memory.remember('a', answer(429, { 'Retry-After': '1' }));
    memory.remember('b', answer(429, { 'Retry-After': '2' }));
    memory.remember('c', answer(429, { 'Retry-After': '3' }));
    expect([memory.get('a'), memory.get('b'), memory.get('c')]).toEqual([undefined, 2, 3]);
  });
});

describe('createOutbound().msalNetworkModule', () => {
  it('hands MSAL the status, lower-cased headers and the JSON body, and remembers Retry-After', async () => {
    const server = createHttpServer((_request, response) => {
      response.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '42', 'X-Ms-Thing': 'v' });
      response.end('{"error":"temporarily_unavailable"}');
    });
    await withServer(server, async (port) => {
      const outbound = createOutbound(NO_PROXY);
      const answer = await outbound.msalNetworkModule.sendPostRequestAsync<unknown>(
        `http://127.0.0.1:${port}/token`,
        { body: 'grant_type=x', correlationId: 'corr-1' },
      );
      expect(answer.status).toBe(503);
      expect(answer.headers['x-ms-thing']).toBe('v');
      expect(answer.body).toEqual({ error: 'temporarily_unavailable' });
      expect(outbound.retryAfterFor('corr-1')).toBe(42);
      expect(outbound.retryAfterFor('corr-2')).toBeUndefined();
    });
  });

  it.each<[string, unknown]>([
    ['', {}],
    [
      '<html>Bad gateway</html>',
      { error: 'temporarily_unavailable', error_description: 'Non-JSON response (HTTP 502)' },
    ],
  ])('turns the body %p into %p (a proxy page never reaches MSAL)', async (text, body) => {
    const server = createHttpServer((_request, response) => {
      response.writeHead(502).end(text);
    });
    await withServer(server, async (port) => {
      const answer = await createOutbound(NO_PROXY).msalNetworkModule.sendGetRequestAsync<unknown>(
        `http://127.0.0.1:${port}/metadata`,
      );
      expect(answer.body).toEqual(body);
    });
  });
});

describe('createOutbound().connect', () => {
  function echo(): Server {
    return createTcpServer((socket) => socket.pipe(socket));
  }

  async function roundTrip(socket: Socket): Promise<string> {
    const received = new Promise<string>((resolve) => {
      socket.once('data', (data: Buffer) => {
        resolve(data.toString());
      });
    });
    socket.write('ping');
    const text = await received;
    socket.destroy();
    return text;
  }

  /** An HTTP proxy that answers CONNECT with `status` and, on 200, splices the tunnel to `target`. */
  function connectProxy(status: number, seen: { path?: string; authorization?: string }) {
    const proxy = createHttpServer();
    proxy.on('connect', (request: IncomingMessage, client: Socket) => {
      seen.path = request.url;
      seen.authorization = request.headers['proxy-authorization'];
      if (status !== 200) {
        client.end(`HTTP/1.1 ${status} No\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
      const [host, port] = (request.url ?? '').split(':');
      const upstream = netConnect({ host, port: Number(port) });
      upstream.once('connect', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.pipe(client).pipe(upstream);
      });
    });
    return proxy;
  }

  it('connects directly without a proxy', async () => {
    await withServer(echo(), async (port) => {
      const socket = await createOutbound(NO_PROXY).connect('127.0.0.1', port, AbortSignal.timeout(5000));
      expect(await roundTrip(socket)).toBe('ping');
    });
  });

  it('tunnels through HTTPS_PROXY with the credentials of its URL', async () => {
    const seen: { path?: string; authorization?: string } = {};
    await withServer(echo(), (target) =>
      withServer(connectProxy(200, seen), async (proxyPort) => {
        const outbound = createOutbound({
          proxy: { httpsProxy: `http://us%40er:p%3Ass@127.0.0.1:${proxyPort}`, noProxy: [] },
        });
        const socket = await outbound.connect('127.0.0.1', target, AbortSignal.timeout(5000));
        expect(await roundTrip(socket)).toBe('ping');
        expect(seen.path).toBe(`127.0.0.1:${target}`);
        expect(seen.authorization).toBe(`Basic ${Buffer.from('us@er:p:ss').toString('base64')}`);
      }),
    );
  });

  it('goes around the proxy for a host NO_PROXY names', async () => {
    const seen: { path?: string } = {};
    await withServer(echo(), (target) =>
      withServer(connectProxy(200, seen), async (proxyPort) => {
        const outbound = createOutbound({
          proxy: { httpsProxy: `http://127.0.0.1:${proxyPort}`, noProxy: ['127.0.0.1'] },
        });
        const socket = await outbound.connect('127.0.0.1', target, AbortSignal.timeout(5000));
        expect(await roundTrip(socket)).toBe('ping');
        expect(seen.path).toBeUndefined();
      }),
    );
  });

  it("keeps a greeting that came in the same packet as the proxy's 200 (regression: SMTP stalled)", async () => {
    // A server that speaks first, behind a proxy that answers the CONNECT and the greeting at once.
    const proxy = createHttpServer();
    proxy.on('connect', (_request: IncomingMessage, client: Socket) => {
      client.end('HTTP/1.1 200 Connection Established\r\n\r\n220 smtp.contoso.test ESMTP ready\r\n');
    });
    await withServer(proxy, async (proxyPort) => {
      const outbound = createOutbound({
        proxy: { httpsProxy: `http://127.0.0.1:${proxyPort}`, noProxy: [] },
      });
      const socket = await outbound.connect('smtp.contoso.test', 587, AbortSignal.timeout(5000));
      const greeting = await new Promise<string>((resolve) => {
        const timer = setTimeout(() => {
          resolve('(nothing within 2 s)');
        }, 2000);
        socket.once('data', (data: Buffer) => {
          clearTimeout(timer);
          resolve(data.toString());
        });
      });
      socket.destroy();
      expect(greeting).toBe('220 smtp.contoso.test ESMTP ready\r\n');
    });
  });

  it('fails with ProxyTunnelError when the proxy refuses the CONNECT', async () => {
    await withServer(connectProxy(407, {}), async (proxyPort) => {
      const outbound = createOutbound({
        proxy: { httpsProxy: `http://127.0.0.1:${proxyPort}`, noProxy: [] },
      });
      const refused = outbound.connect('mail.contoso.test', 993, AbortSignal.timeout(5000));
      await expect(refused).rejects.toBeInstanceOf(ProxyTunnelError);
      await expect(refused).rejects.toMatchObject({ status: 407 });
    });
  });
});
