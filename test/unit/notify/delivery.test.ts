import { USER_AGENT } from '../../../shared/net/user-agent';
import { createHmac } from 'node:crypto';
import { Response } from 'undici';
import type { Outbound } from '../../../shared/net/outbound';
import {
  classifyAnswer,
  deliver,
  describeError,
  originOf,
  queuedEvent,
  signBody,
  toPayload,
  verifySignature,
  webhookHeaders,
  type AttemptOutcome,
  type WebhookEndpoint,
} from '../../../shared/notify/delivery';
import type { StatusNotification } from '../../../shared/notify/notifier';

const SECRET = 'whsec-delivery-unit-key';
const URL_WITH_PATH_SECRET = 'https://hooks.example.test/services/T000/B000/pathcredential123';
const NOW = Date.parse('2025-01-02T03:04:06.000Z');

function event(overrides: Partial<StatusNotification> = {}): StatusNotification {
  return {
    type: 'connection.degraded',
    connection: 'support',
    mailbox: 'support@contoso.com',
    status: 'degraded',
    previousStatus: 'authorized',
    reason: 'Refresh has failed for 61 minutes.',
    aadsts: 7000215,
    remedy: 'Check the client credential.',
    at: '2025-01-02T03:04:05.000Z',
    ...overrides,
  };
}

const signed = () => queuedEvent(toPayload(event(), 'evt-1', '2025-01-02T03:04:06.000Z'));
const T = Math.floor(NOW / 1000);

describe('classifyAnswer', () => {
  const clock = () => NOW;

  it.each<[number, string | null, AttemptOutcome]>([
    [200, null, { kind: 'delivered', status: 200 }],
    [202, null, { kind: 'delivered', status: 202 }],
    [204, '30', { kind: 'delivered', status: 204 }],
    [299, null, { kind: 'delivered', status: 299 }],
    [408, null, { kind: 'retry', status: 408, error: 'http_408' }],
    [429, null, { kind: 'retry', status: 429, error: 'http_429' }],
    [500, null, { kind: 'retry', status: 500, error: 'http_500' }],
    [503, null, { kind: 'retry', status: 503, error: 'http_503' }],
    [599, null, { kind: 'retry', status: 599, error: 'http_599' }],
    [429, '3', { kind: 'retry', status: 429, error: 'http_429', retryAfterMs: 3000 }],
    [503, '0', { kind: 'retry', status: 503, error: 'http_503', retryAfterMs: 0 }],
    [503, '1.2', { kind: 'retry', status: 503, error: 'http_503', retryAfterMs: 2000 }],
    [408, ' 7 ', { kind: 'retry', status: 408, error: 'http_408', retryAfterMs: 7000 }],
    [
      503,
      'Thu, 02 Jan 2025 03:04:16 GMT',
      { kind: 'retry', status: 503, error: 'http_503', retryAfterMs: 10_000 },
    ],
    [
      503,
      'Thu, 02 Jan 2025 03:00:00 GMT',
      { kind: 'retry', status: 503, error: 'http_503', retryAfterMs: 0 },
    ],
    [503, 'soon', { kind: 'retry', status: 503, error: 'http_503' }],
    [503, '-5', { kind: 'retry', status: 503, error: 'http_503' }],
    [400, null, { kind: 'give_up', status: 400, reason: 'refused' }],
    [401, null, { kind: 'give_up', status: 401, reason: 'refused' }],
    [404, null, { kind: 'give_up', status: 404, reason: 'refused' }],
    [410, null, { kind: 'give_up', status: 410, reason: 'refused' }],
    [422, '5', { kind: 'give_up', status: 422, reason: 'refused' }],
    [499, null, { kind: 'give_up', status: 499, reason: 'refused' }],
    [301, null, { kind: 'give_up', status: 301, reason: 'redirect_not_followed' }],
    [302, null, { kind: 'give_up', status: 302, reason: 'redirect_not_followed' }],
    [307, null, { kind: 'give_up', status: 307, reason: 'redirect_not_followed' }],
    [308, null, { kind: 'give_up', status: 308, reason: 'redirect_not_followed' }],
  ])('%i with Retry-After %p', (status, retryAfter, expected) => {
    expect(classifyAnswer(status, retryAfter, clock)).toStrictEqual(expected);
  });

  it('reads the clock only to resolve a Retry-After on a retryable answer', () => {
    const now = jest.fn(() => NOW);
    classifyAnswer(200, 'Thu, 02 Jan 2025 03:04:16 GMT', now);
    classifyAnswer(404, 'Thu, 02 Jan 2025 03:04:16 GMT', now);
    expect(now).not.toHaveBeenCalled();
    classifyAnswer(503, 'Thu, 02 Jan 2025 03:04:16 GMT', now);
    expect(now).toHaveBeenCalledTimes(1);
  });
});

describe('the signed event', () => {
  it('fixes the body and signs the timestamp with its exact bytes', () => {
    const { payload, body } = signed();
    expect(body).toBe(JSON.stringify(payload));
    const header = webhookHeaders(signed(), SECRET, T)['X-Broker-Signature']!;
    expect(header).toBe(`t=${T},v1=` + createHmac('sha256', SECRET).update(`${T}.${body}`).digest('hex'));
    expect(verifySignature(body, header, SECRET, { nowMs: NOW })).toBe(true);
  });

  it('turns absent or non-finite optional fields into null', () => {
    const payload = toPayload(
      event({ reason: undefined, aadsts: Number.NaN, remedy: undefined }),
      'evt-2',
      '2025-01-02T03:04:06.000Z',
    );
    expect(payload).toMatchObject({ id: 'evt-2', reason: null, aadsts: null, remedy: null });
  });

  it('builds the documented headers', () => {
    const delivery = signed();
    expect(webhookHeaders(delivery, SECRET, T)).toStrictEqual({
      'Content-Type': 'application/json',
      'User-Agent': USER_AGENT,
      'X-Broker-Event': 'connection.degraded',
      'X-Broker-Event-Id': 'evt-1',
      'X-Broker-Signature': signBody(delivery.body, SECRET, T),
    });
  });
});

describe('log-safe descriptions', () => {
  it('keeps only the origin of the webhook URL', () => {
    expect(originOf(URL_WITH_PATH_SECRET)).toBe('https://hooks.example.test');
    expect(originOf('not a url')).toBe('[invalid url]');
  });

  it('names the cause and replaces the URL by its origin', () => {
    const cause = Object.assign(new Error(`connect to ${URL_WITH_PATH_SECRET} refused`), {
      code: 'ECONNREFUSED',
    });
    const text = describeError(
      new TypeError('fetch failed', { cause }),
      URL_WITH_PATH_SECRET,
      'https://hooks.example.test',
    );
    expect(text).toBe(
      'TypeError: fetch failed (ECONNREFUSED: connect to https://hooks.example.test refused)',
    );
    expect(describeError('plain', URL_WITH_PATH_SECRET, 'x')).toBe('plain');
  });
});

describe('deliver', () => {
  type FetchImpl = Outbound['fetch'];

  function endpointWith(fetch: FetchImpl): WebhookEndpoint {
    return {
      url: URL_WITH_PATH_SECRET,
      secret: SECRET,
      target: 'https://hooks.example.test',
      timeoutMs: 1234,
      outbound: { fetch },
      now: () => new Date(NOW),
    };
  }

  it('POSTs the signed body with its headers and the per-attempt timeout', async () => {
    const fetch = jest.fn<ReturnType<FetchImpl>, Parameters<FetchImpl>>(() =>
      Promise.resolve(new Response(null, { status: 204 })),
    );
    const delivery = signed();
    await expect(deliver(endpointWith(fetch), delivery)).resolves.toStrictEqual({
      kind: 'delivered',
      status: 204,
    });
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(fetch).toHaveBeenCalledWith(URL_WITH_PATH_SECRET, {
      method: 'POST',
      headers: webhookHeaders(delivery, SECRET, T),
      body: delivery.body,
      timeoutMs: 1234,
    });
  });

  it('classifies the answer, Retry-After included', async () => {
    const fetch: FetchImpl = () =>
      Promise.resolve(new Response('busy', { status: 503, headers: { 'Retry-After': '4' } }));
    await expect(deliver(endpointWith(fetch), signed())).resolves.toStrictEqual({
      kind: 'retry',
      status: 503,
      error: 'http_503',
      retryAfterMs: 4000,
    });
  });

  it('releases the answer body unread', async () => {
    let cancelled = false;
    const body = new ReadableStream({
      cancel() {
        cancelled = true;
      },
    });
    const fetch: FetchImpl = () => Promise.resolve(new Response(body, { status: 400 }));
    await expect(deliver(endpointWith(fetch), signed())).resolves.toMatchObject({ kind: 'give_up' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(cancelled).toBe(true);
  });

  it.each<[string, () => Promise<Response>, string]>([
    [
      'a network error',
      () => Promise.reject(new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') })),
      'TypeError: fetch failed (Error: connect ECONNREFUSED)',
    ],
    ['a timeout', () => Promise.reject(new DOMException('timed out', 'TimeoutError')), 'timeout'],
    ['an abort', () => Promise.reject(new DOMException('aborted', 'AbortError')), 'timeout'],
    [
      'a synchronous throw',
      () => {
        throw new Error('boom');
      },
      'Error: boom',
    ],
    [
      'an error naming the URL',
      () => Promise.reject(new Error(`bad ${URL_WITH_PATH_SECRET}`)),
      'Error: bad https://hooks.example.test',
    ],
  ])('retries %s, with a log-safe error', async (_name, fetch, error) => {
    await expect(deliver(endpointWith(fetch), signed())).resolves.toStrictEqual({ kind: 'retry', error });
  });
});
