import { USER_AGENT } from '../../../shared/net/user-agent';
import { createHmac } from 'node:crypto';
import { Response } from 'undici';
import { createLogger, type Logger } from '../../../shared/logging';
import type { Outbound } from '../../../shared/net/outbound';
import type { StatusNotification } from '../../../shared/notify/notifier';
import {
  createNotifier,
  signBody,
  SIGNATURE_TOLERANCE_SECONDS,
  verifySignature,
  type WebhookNotifierOptions,
  type WebhookPayload,
} from '../../../shared/notify/webhook-notifier';

const SECRET = 'whsec-unit-test-signing-key';
const URL_WITH_PATH_SECRET = 'https://hooks.example.test/services/T000/B000/pathcredential123';

type FetchImpl = Outbound['fetch'];
interface SentRequest {
  url: string;
  method: string | undefined;
  headers: Record<string, string>;
  body: string;
}

function event(overrides: Partial<StatusNotification> = {}): StatusNotification {
  return {
    type: 'connection.reauthorization_required',
    connection: 'sales',
    mailbox: 'sales@contoso.com',
    status: 'reauthorization_required',
    previousStatus: 'authorized',
    reason: 'The refresh token was revoked.',
    aadsts: 50173,
    remedy: 'Authorize the connection again.',
    at: '2025-01-02T03:04:05.000Z',
    ...overrides,
  };
}

function fakeOutbound(impl: FetchImpl): { outbound: Pick<Outbound, 'fetch'>; sent: SentRequest[] } {
  const sent: SentRequest[] = [];
  const outbound: Pick<Outbound, 'fetch'> = {
    fetch: (url, init) => {
      sent.push({
        url,
        method: init?.method,
        headers: { ...(init?.headers as Record<string, string>) },
        body: init?.body as string,
      });
      return impl(url, init);
    },
  };
  return { outbound, sent };
}

function capturingLogger(): { logger: Logger; lines: string[]; events: Record<string, unknown>[] } {
  const lines: string[] = [];
  const logger = createLogger((_level, line) => lines.push(line));
  return {
    logger,
    lines,
    get events() {
      return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    },
  };
}

const respond =
  (...statuses: (number | [number, Record<string, string>])[]): FetchImpl =>
  () => {
    const next = statuses.length > 1 ? statuses.shift()! : statuses[0]!;
    const [status, headers] = Array.isArray(next) ? next : [next, {}];
    return Promise.resolve(new Response(status === 204 ? null : 'ok', { status, headers }));
  };

function setup(impl: FetchImpl, options: Partial<WebhookNotifierOptions> = {}) {
  const { outbound, sent } = fakeOutbound(impl);
  const log = capturingLogger();
  const sleeps: number[] = [];
  const notifier = createNotifier({
    url: URL_WITH_PATH_SECRET,
    secret: SECRET,
    outbound,
    logger: log.logger,
    now: () => new Date('2025-01-02T03:04:06.000Z'),
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    random: () => 0.5,
    ...options,
  });
  return { notifier, sent, sleeps, log };
}

const named = (events: Record<string, unknown>[], name: string) => events.filter((e) => e.event === name);

describe('webhook delivery format', () => {
  it('POSTs the JSON body with the documented headers and an HMAC-SHA256 signature of the exact bytes', async () => {
    const { notifier, sent, log } = setup(respond(204));
    notifier.notify(event());
    await notifier.drain();

    expect(sent).toHaveLength(1);
    const request = sent[0]!;
    expect(request.url).toBe(URL_WITH_PATH_SECRET);
    expect(request.method).toBe('POST');
    const payload = JSON.parse(request.body) as WebhookPayload;
    expect(Object.keys(payload)).toEqual([
      'id',
      'type',
      'connection',
      'mailbox',
      'status',
      'previousStatus',
      'reason',
      'aadsts',
      'remedy',
      'at',
      'sentAt',
    ]);
    expect(payload).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      type: 'connection.reauthorization_required',
      connection: 'sales',
      mailbox: 'sales@contoso.com',
      status: 'reauthorization_required',
      previousStatus: 'authorized',
      reason: 'The refresh token was revoked.',
      aadsts: 50173,
      remedy: 'Authorize the connection again.',
      at: '2025-01-02T03:04:05.000Z',
      sentAt: '2025-01-02T03:04:06.000Z',
    });
    // Signed at the attempt's time (the notifier's clock): t, then the HMAC of "t." and the exact bytes.
    const t = Math.floor(Date.parse('2025-01-02T03:04:06.000Z') / 1000);
    const expected = `t=${t},v1=` + createHmac('sha256', SECRET).update(`${t}.${request.body}`).digest('hex');
    expect(request.headers).toEqual({
      'Content-Type': 'application/json',
      'User-Agent': USER_AGENT,
      'X-Broker-Event': 'connection.reauthorization_required',
      'X-Broker-Event-Id': payload.id,
      'X-Broker-Signature': expected,
    });
    expect(
      verifySignature(request.body, request.headers['X-Broker-Signature']!, SECRET, { nowMs: t * 1000 }),
    ).toBe(true);

    expect(named(log.events, 'notify.delivered')).toEqual([
      expect.objectContaining({
        type: 'connection.reauthorization_required',
        connection: 'sales',
        attempts: 1,
        status: 204,
        eventId: payload.id,
      }),
    ]);
  });

  it('sends null (never a missing key) for absent reason, aadsts and remedy', async () => {
    const { notifier, sent } = setup(respond(200));
    notifier.notify({
      type: 'connection.recovered',
      connection: 'sales',
      mailbox: 'sales@contoso.com',
      status: 'authorized',
      previousStatus: 'degraded',
      at: '2025-01-02T03:04:05.000Z',
    });
    await notifier.drain();
    const payload = JSON.parse(sent[0]!.body) as WebhookPayload;
    expect(payload).toMatchObject({ reason: null, aadsts: null, remedy: null });
    expect(sent[0]!.headers['X-Broker-Event']).toBe('connection.recovered');
  });

  it('never logs the secret, the signature or the webhook path', async () => {
    const { notifier, sent, log } = setup(respond(503, 503, 200));
    notifier.notify(event());
    await notifier.drain();
    const all = log.lines.join('\n');
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(sent[0]!.headers['X-Broker-Signature']!.slice('sha256='.length));
    expect(all).not.toContain('pathcredential123');
    expect(all).toContain('https://hooks.example.test');
  });

  it('logs every event as connection.notification', async () => {
    const { notifier, log } = setup(respond(200));
    notifier.notify(event());
    notifier.notify(event({ type: 'connection.recovered', status: 'authorized' }));
    // A normal session's events (an admin authorized, reset, deleted) are news, not warnings.
    notifier.notify(event({ type: 'connection.authorized', status: 'authorized' }));
    await notifier.drain();
    const logged = named(log.events, 'connection.notification');
    expect(logged).toEqual([
      expect.objectContaining({
        level: 'warn',
        type: 'connection.reauthorization_required',
        connection: 'sales',
        mailbox: 'sales@contoso.com',
        aadsts: 50173,
        webhook: true,
      }),
      expect.objectContaining({ level: 'info', type: 'connection.recovered', status: 'authorized' }),
      expect.objectContaining({ level: 'info', type: 'connection.authorized', status: 'authorized' }),
    ]);
  });

  it('regression: a reset of a source warned once per dependant — what an admin did is news, with or without a webhook', async () => {
    const byReset = event({ followsAdminAction: true, aadsts: undefined });
    const withWebhook = setup(respond(200));
    withWebhook.notifier.notify(byReset);
    await withWebhook.notifier.drain();
    const { outbound } = fakeOutbound(respond(200));
    const logOnly = capturingLogger();
    const notifier = createNotifier({ url: undefined, secret: undefined, outbound, logger: logOnly.logger });
    notifier.notify(byReset);
    // Without a webhook the log line is the only alert: a real failure stays a warning.
    notifier.notify(event());
    expect(named(withWebhook.log.events, 'connection.notification')).toEqual([
      expect.objectContaining({ level: 'info', type: 'connection.reauthorization_required', webhook: true }),
    ]);
    expect(named(logOnly.events, 'connection.notification')).toEqual([
      expect.objectContaining({ level: 'info', webhook: false }),
      expect.objectContaining({ level: 'warn', webhook: false, aadsts: 50173 }),
    ]);
    // The payload receivers get is unchanged: the flag is the broker's own.
    expect(withWebhook.sent[0]!.body).not.toContain('followsAdminAction');
  });
});

describe('verifySignature', () => {
  const body = JSON.stringify({ id: 'x', type: 'connection.degraded' });
  const nowMs = Date.parse('2025-01-02T03:04:06.000Z');
  const t = Math.floor(nowMs / 1000);
  const header = signBody(body, SECRET, t);
  const at = { nowMs };

  it('accepts the signature of the exact body, as a string or a Buffer, within the tolerance', () => {
    expect(verifySignature(body, header, SECRET, at)).toBe(true);
    expect(verifySignature(Buffer.from(body), header, SECRET, at)).toBe(true);
    expect(
      verifySignature(
        body,
        header.replace('v1=', 'v1=').toUpperCase().replace('T=', 't=').replace('V1=', 'v1='),
        SECRET,
        at,
      ),
    ).toBe(true);
    expect(verifySignature(body, header, SECRET, { nowMs: nowMs + SIGNATURE_TOLERANCE_SECONDS * 1000 })).toBe(
      true,
    );
  });

  it('regression: a captured event could be replayed forever — a timestamp outside 5 minutes is refused', () => {
    expect(SIGNATURE_TOLERANCE_SECONDS).toBe(300);
    expect(verifySignature(body, header, SECRET, { nowMs: nowMs + 301_000 })).toBe(false);
    expect(verifySignature(body, header, SECRET, { nowMs: nowMs - 301_000 })).toBe(false);
    // The timestamp is signed: a fresh one on a captured signature does not verify.
    const replayed = header.replace(`t=${t}`, `t=${t + 600}`);
    expect(verifySignature(body, replayed, SECRET, { nowMs: nowMs + 600_000 })).toBe(false);
  });

  it('rejects a tampered body', () => {
    expect(verifySignature(body.replace('degraded', 'recovered'), header, SECRET, at)).toBe(false);
    expect(verifySignature(`${body} `, header, SECRET, at)).toBe(false);
  });

  it('rejects the wrong secret and an empty secret', () => {
    expect(verifySignature(body, header, 'another-secret', at)).toBe(false);
    expect(verifySignature(body, signBody(body, '', t), '', at)).toBe(false);
  });

  it.each([
    ['missing', null],
    ['empty', ''],
    ['without a timestamp', header.replace(`t=${t},`, '')],
    ['two timestamps', `t=${t},${header}`],
    ['the old sha256= form', `sha256=${'a'.repeat(64)}`],
    ['truncated', header.slice(0, -2)],
    ['too long', `${header}00`],
    ['not hex', `t=${t},v1=${'z'.repeat(64)}`],
    ['a timestamp that is no number', header.replace(`t=${t}`, 't=soon')],
  ])('rejects a %s header', (_name, value) => {
    expect(verifySignature(body, value, SECRET, at)).toBe(false);
  });
});

describe('retries', () => {
  it('backs off exponentially with full jitter, capped at maxDelayMs, then gives up', async () => {
    const { notifier, sent, sleeps, log } = setup(respond(503), {
      baseDelayMs: 100,
      maxDelayMs: 1000,
      random: () => 0.5,
    });
    notifier.notify(event());
    await notifier.drain();

    expect(sent).toHaveLength(6);
    // random 0.5 × min(1000, 100·2^(n-1)) for n = 1..5
    expect(sleeps).toEqual([50, 100, 200, 400, 500]);
    expect(named(log.events, 'notify.retrying')).toHaveLength(5);
    expect(named(log.events, 'notify.failed')).toEqual([
      expect.objectContaining({
        attempts: 6,
        status: 503,
        reason: 'attempts_exhausted',
        connection: 'sales',
      }),
    ]);
    expect(named(log.events, 'notify.delivered')).toHaveLength(0);
  });

  it('jitters over the full range [0, ceiling)', async () => {
    const low = setup(respond(500), { baseDelayMs: 100, maxAttempts: 3, random: () => 0 });
    low.notifier.notify(event());
    await low.notifier.drain();
    expect(low.sleeps).toEqual([0, 0]);

    const high = setup(respond(500), { baseDelayMs: 100, maxAttempts: 3, random: () => 0.999 });
    high.notifier.notify(event());
    await high.notifier.drain();
    expect(high.sleeps).toEqual([99, 199]);
  });

  it('sends the same id and body on every attempt, each signed at the time it is sent', async () => {
    const { notifier, sent } = setup(respond(502, 504, 200));
    notifier.notify(event());
    await notifier.drain();
    expect(sent).toHaveLength(3);
    const [first, ...rest] = sent;
    const unsigned = (headers: Record<string, string>) =>
      Object.fromEntries(Object.entries(headers).filter(([name]) => name !== 'X-Broker-Signature'));
    for (const request of rest) {
      expect(request.body).toBe(first!.body);
      expect(unsigned(request.headers)).toEqual(unsigned(first!.headers));
      const signature = request.headers['X-Broker-Signature'];
      // This clock stands still, so the timestamp does too; on a real one each attempt has its own.
      expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    }
  });

  it('retries network errors, timeouts, 408 and 429', async () => {
    const outcomes: (() => Promise<Response>)[] = [
      () => Promise.reject(new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') })),
      () => Promise.reject(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
      () => Promise.resolve(new Response(null, { status: 408 })),
      () => Promise.resolve(new Response(null, { status: 429 })),
      () => Promise.resolve(new Response(null, { status: 200 })),
    ];
    const { notifier, sent, log } = setup(() => outcomes.shift()!());
    notifier.notify(event());
    await notifier.drain();
    expect(sent).toHaveLength(5);
    expect(named(log.events, 'notify.retrying').map((e) => e.error)).toEqual([
      expect.stringContaining('ECONNREFUSED'),
      'timeout',
      'http_408',
      'http_429',
    ]);
    expect(named(log.events, 'notify.delivered')).toEqual([expect.objectContaining({ attempts: 5 })]);
  });

  it('passes the per-attempt timeout to Outbound.fetch', async () => {
    let seen: number | undefined;
    const { notifier } = setup(
      (_url, init) => {
        seen = init?.timeoutMs;
        return respond(200)(_url, init);
      },
      { timeoutMs: 1234 },
    );
    notifier.notify(event());
    await notifier.drain();
    expect(seen).toBe(1234);
  });

  it('honours Retry-After in seconds instead of the jittered delay', async () => {
    const { notifier, sleeps } = setup(respond([429, { 'Retry-After': '3' }], 200), { baseDelayMs: 10 });
    notifier.notify(event());
    await notifier.drain();
    expect(sleeps).toEqual([3000]);
  });

  it('honours Retry-After as an HTTP date', async () => {
    const { notifier, sleeps } = setup(
      respond([503, { 'Retry-After': 'Thu, 02 Jan 2025 03:04:16 GMT' }], 200),
    );
    notifier.notify(event());
    await notifier.drain();
    expect(sleeps).toEqual([10_000]); // now() is 03:04:06
  });

  it('caps Retry-After at maxDelayMs', async () => {
    const { notifier, sleeps } = setup(respond([503, { 'Retry-After': '3600' }], 200), {
      maxDelayMs: 60_000,
    });
    notifier.notify(event());
    await notifier.drain();
    expect(sleeps).toEqual([60_000]);
  });

  it.each([400, 401, 403, 404, 410, 422])('gives up at once on %i', async (status) => {
    const { notifier, sent, sleeps, log } = setup(respond(status));
    notifier.notify(event());
    await notifier.drain();
    expect(sent).toHaveLength(1);
    expect(sleeps).toEqual([]);
    expect(named(log.events, 'notify.failed')).toEqual([
      expect.objectContaining({
        attempts: 1,
        status,
        reason: 'refused',
        type: 'connection.reauthorization_required',
      }),
    ]);
  });

  it('does not follow a redirect: gives up at once', async () => {
    const { notifier, sent, log } = setup(respond([302, { Location: 'https://elsewhere.test/' }]));
    notifier.notify(event());
    await notifier.drain();
    expect(sent).toHaveLength(1);
    expect(named(log.events, 'notify.failed')).toEqual([
      expect.objectContaining({ status: 302, reason: 'redirect_not_followed' }),
    ]);
  });
});

describe('queue', () => {
  it('drops the oldest waiting events beyond maxQueue, with a warning', async () => {
    const { notifier, sent, log } = setup(respond(200), { maxQueue: 3, concurrency: 1 });
    for (let i = 1; i <= 5; i++) notifier.notify(event({ connection: `c${i}` }));
    await notifier.drain();
    expect(sent.map((r) => (JSON.parse(r.body) as WebhookPayload).connection)).toEqual(['c3', 'c4', 'c5']);
    expect(named(log.events, 'notify.dropped')).toEqual([
      expect.objectContaining({ level: 'warn', connection: 'c1', reason: 'queue_full', maxQueue: 3 }),
      expect.objectContaining({ level: 'warn', connection: 'c2', reason: 'queue_full' }),
    ]);
  });

  it('keeps the one in flight and drops the oldest waiting one', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { notifier, sent, log } = setup(
      async () => {
        await gate;
        return new Response(null, { status: 200 });
      },
      { maxQueue: 2, concurrency: 1 },
    );
    notifier.notify(event({ connection: 'first' }));
    await Promise.resolve(); // let it start
    expect(sent).toHaveLength(1);
    for (const name of ['a', 'b', 'c']) notifier.notify(event({ connection: name }));
    release();
    await notifier.drain();
    expect(sent.map((r) => (JSON.parse(r.body) as WebhookPayload).connection)).toEqual(['first', 'b', 'c']);
    expect(named(log.events, 'notify.dropped').map((e) => e.connection)).toEqual(['a']);
  });

  it('runs at most `concurrency` deliveries at once', async () => {
    let inFlight = 0;
    let peak = 0;
    const { notifier, sent } = setup(
      async () => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 2));
        inFlight--;
        return new Response(null, { status: 200 });
      },
      { concurrency: 4 },
    );
    for (let i = 0; i < 12; i++) notifier.notify(event({ connection: `c${i}` }));
    await notifier.drain();
    expect(sent).toHaveLength(12);
    expect(peak).toBe(4);
  });

  it('notify only queues: nothing is sent before the caller yields', async () => {
    const { notifier, sent } = setup(respond(200));
    notifier.notify(event());
    expect(sent).toHaveLength(0);
    await notifier.drain();
    expect(sent).toHaveLength(1);
  });

  it('drain resolves at once when idle, and waits for retries otherwise', async () => {
    const { notifier, sent } = setup(respond(503, 503, 200));
    await notifier.drain();
    notifier.notify(event());
    await notifier.drain();
    expect(sent).toHaveLength(3);
  });
});

describe('never throws into the caller', () => {
  it('survives a logger that throws', async () => {
    const { outbound, sent } = fakeOutbound(respond(503, 200));
    const throwing: Logger = {
      info: () => {
        throw new Error('sink down');
      },
      warn: () => {
        throw new Error('sink down');
      },
      error: () => {
        throw new Error('sink down');
      },
    };
    const notifier = createNotifier({
      url: URL_WITH_PATH_SECRET,
      secret: SECRET,
      outbound,
      logger: throwing,
      sleep: () => Promise.resolve(),
    });
    expect(() => {
      notifier.notify(event());
    }).not.toThrow();
    await notifier.drain();
    expect(sent).toHaveLength(2);
  });

  it('survives a fetch that throws synchronously', async () => {
    const { notifier, log } = setup(
      () => {
        throw new Error('boom');
      },
      { maxAttempts: 2 },
    );
    expect(() => {
      notifier.notify(event());
    }).not.toThrow();
    await notifier.drain();
    expect(named(log.events, 'notify.failed')).toEqual([
      expect.objectContaining({ attempts: 2, reason: 'attempts_exhausted', error: 'Error: boom' }),
    ]);
  });

  it('survives a clock or sleep that throws', async () => {
    const clock = setup(respond(200), {
      now: () => {
        throw new Error('clock');
      },
    });
    expect(() => {
      clock.notifier.notify(event());
    }).not.toThrow();
    await clock.notifier.drain();
    expect(named(clock.log.events, 'notify.failed')).toEqual([
      expect.objectContaining({ reason: 'internal_error' }),
    ]);

    const sleepy = setup(respond(503), {
      sleep: () => Promise.reject(new Error('sleep')),
    });
    sleepy.notifier.notify(event());
    await sleepy.notifier.drain();
    expect(named(sleepy.log.events, 'notify.failed')).toEqual([
      expect.objectContaining({ reason: 'internal_error', connection: 'sales' }),
    ]);
  });
});

describe('configuration', () => {
  it('without a URL only logs, and drain resolves at once', async () => {
    const fetch = jest.fn<ReturnType<FetchImpl>, Parameters<FetchImpl>>();
    const { outbound } = fakeOutbound(fetch);
    const log = capturingLogger();
    const notifier = createNotifier({ url: undefined, secret: undefined, outbound, logger: log.logger });
    notifier.notify(event());
    await notifier.drain();
    expect(fetch).not.toHaveBeenCalled();
    expect(log.events).toEqual([
      expect.objectContaining({ event: 'connection.notification', connection: 'sales', webhook: false }),
    ]);
  });

  it('refuses a URL without a secret', () => {
    const { outbound } = fakeOutbound(respond(200));
    expect(() =>
      createNotifier({
        url: URL_WITH_PATH_SECRET,
        secret: undefined,
        outbound,
        logger: capturingLogger().logger,
      }),
    ).toThrow(/secret is required/);
  });
});
