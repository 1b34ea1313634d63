import { USER_AGENT } from '../../../shared/net/user-agent';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../../shared/logging';
import { createOutbound } from '../../../shared/net/outbound';
import type { StatusNotification } from '../../../shared/notify/notifier';
import {
  createNotifier,
  verifySignature,
  type WebhookNotifierOptions,
} from '../../../shared/notify/webhook-notifier';

const SECRET = 'integration-webhook-signing-key';

interface Received {
  method: string | undefined;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

type Handler = (request: Received, response: ServerResponse, index: number) => void;

/** A real HTTP receiver on 127.0.0.1 for the duration of `fn`; records every request. */
async function withServer<T>(
  handler: Handler,
  fn: (url: string, received: Received[]) => Promise<T>,
): Promise<T> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request = { method: req.method, headers: req.headers, body: Buffer.concat(chunks) };
      received.push(request);
      handler(request, res, received.length - 1);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await fn(`http://127.0.0.1:${port}/hooks/broker`, received);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  }
}

function event(): StatusNotification {
  return {
    type: 'connection.degraded',
    connection: 'support',
    mailbox: 'support@contoso.com',
    status: 'degraded',
    previousStatus: 'authorized',
    reason: 'Refresh has failed for 61 minutes.',
    aadsts: 7000215,
    remedy: 'Check the client credential.',
    at: new Date().toISOString(),
  };
}

function notifierFor(url: string, options: Partial<WebhookNotifierOptions> = {}) {
  const events: Record<string, unknown>[] = [];
  const logger = createLogger((_level, line) => events.push(JSON.parse(line) as Record<string, unknown>));
  const notifier = createNotifier({
    url,
    secret: SECRET,
    outbound: createOutbound({ proxy: { httpsProxy: undefined, noProxy: [] } }),
    logger,
    baseDelayMs: 10,
    maxDelayMs: 50,
    timeoutMs: 2000,
    ...options,
  });
  return { notifier, events: (name: string) => events.filter((e) => e.event === name) };
}

describe('webhook delivery over real HTTP', () => {
  it('retries 503 twice, then delivers on attempt 3 with the same id and body, each attempt signed when sent', async () => {
    await withServer(
      (_req, res, index) => {
        res.writeHead(index < 2 ? 503 : 200).end();
      },
      async (url, received) => {
        const { notifier, events } = notifierFor(url);
        notifier.notify(event());
        await notifier.drain();

        expect(received).toHaveLength(3);
        const first = received[0]!;
        const id = first.headers['x-broker-event-id'];
        for (const request of received) {
          expect(request.method).toBe('POST');
          expect(request.headers['content-type']).toBe('application/json');
          expect(request.headers['user-agent']).toBe(USER_AGENT);
          expect(request.headers['x-broker-event']).toBe('connection.degraded');
          expect(request.headers['x-broker-event-id']).toBe(id);
          // Signed per attempt (t=…): a retry an hour later must still carry a fresh timestamp.
          expect(request.headers['x-broker-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
          expect(request.body.equals(first.body)).toBe(true);
          const signature = request.headers['x-broker-signature'];
          expect(
            verifySignature(request.body, typeof signature === 'string' ? signature : null, SECRET),
          ).toBe(true);
        }
        expect(verifySignature(first.body, first.headers['x-broker-signature'] as string, 'wrong')).toBe(
          false,
        );
        expect(JSON.parse(first.body.toString('utf8'))).toMatchObject({
          id,
          type: 'connection.degraded',
          connection: 'support',
          aadsts: 7000215,
        });
        expect(events('notify.retrying')).toHaveLength(2);
        expect(events('notify.delivered')).toEqual([
          expect.objectContaining({ connection: 'support', attempts: 3, status: 200 }),
        ]);
      },
    );
  });

  it('times out a receiver that never answers, and retries', async () => {
    await withServer(
      () => {
        // never answer
      },
      async (url, received) => {
        const { notifier, events } = notifierFor(url, { timeoutMs: 100, maxAttempts: 3 });
        notifier.notify(event());
        await notifier.drain();
        expect(received).toHaveLength(3);
        expect(events('notify.retrying').map((e) => e.error)).toEqual(['timeout', 'timeout']);
        expect(events('notify.failed')).toEqual([
          expect.objectContaining({ attempts: 3, reason: 'attempts_exhausted', error: 'timeout' }),
        ]);
      },
    );
  });

  it('gives up after one attempt on a 400', async () => {
    await withServer(
      (_req, res) => {
        res.writeHead(400, { 'Content-Type': 'text/plain' }).end('bad event');
      },
      async (url, received) => {
        const { notifier, events } = notifierFor(url);
        notifier.notify(event());
        await notifier.drain();
        expect(received).toHaveLength(1);
        expect(events('notify.failed')).toEqual([
          expect.objectContaining({ attempts: 1, status: 400, reason: 'refused' }),
        ]);
        expect(events('notify.retrying')).toHaveLength(0);
      },
    );
  });

  it('retries a refused connection (nothing listening)', async () => {
    const url = await withServer(
      () => undefined,
      (serverUrl) => Promise.resolve(serverUrl),
    );
    const { notifier, events } = notifierFor(url, { maxAttempts: 2 });
    notifier.notify(event());
    await notifier.drain();
    expect(events('notify.retrying')).toEqual([expect.objectContaining({ error: expect.any(String) })]);
    expect(events('notify.failed')).toEqual([expect.objectContaining({ attempts: 2 })]);
  });

  it('notify returns at once even when the receiver hangs', async () => {
    await withServer(
      () => {
        // never answer
      },
      async (url, received) => {
        const { notifier } = notifierFor(url, { timeoutMs: 200, maxAttempts: 1 });
        const started = performance.now();
        for (let i = 0; i < 10; i++) notifier.notify(event());
        const elapsed = performance.now() - started;
        expect(elapsed).toBeLessThan(50);
        await notifier.drain();
        expect(received.length).toBeGreaterThan(0);
      },
    );
  });
});
