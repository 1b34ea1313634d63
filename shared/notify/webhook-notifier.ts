import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { LogFields, Logger } from '../logging';
import type { Outbound } from '../net/outbound';
import { parseRetryAfter } from '../net/retry-after';
import type { Notifier, StatusNotification } from './notifier';

/**
 * Delivers status notifications to the operator's webhook as signed JSON POSTs.
 *
 * - `notify` only validates, signs and queues; delivery happens later, never in the caller's stack.
 * - The body (and so its id and signature) is fixed when the event is queued: every retry sends
 *   the same bytes, so a receiver can de-duplicate on `id`.
 * - Retries: network errors, timeouts, 408, 429 and 5xx, with exponential backoff and full jitter
 *   (a Retry-After on the response replaces the jitter, capped at `maxDelayMs`). 2xx is delivered;
 *   anything else (other 4xx, a 3xx: redirects are not followed) is given up at once.
 * - At most `maxQueue` events wait; beyond that the oldest waiting one is dropped (logged).
 * - Every event is also logged as `connection.notification`, webhook or not, so alerts can be
 *   built on the log alone.
 */

export interface WebhookNotifierOptions {
  /** The receiver; undefined = log only. */
  url: string | undefined;
  /** HMAC-SHA256 key; required with `url`. */
  secret: string | undefined;
  outbound: Pick<Outbound, 'fetch'>;
  logger: Logger;
  now?: () => Date;
  /** Attempts per event, the first included (default 6). */
  maxAttempts?: number;
  /** Backoff base: the cap before attempt n+1 is baseDelayMs·2^(n-1) (default 1000). */
  baseDelayMs?: number;
  /** Upper bound of any wait, Retry-After included (default 60 000). */
  maxDelayMs?: number;
  /** Per-attempt timeout (default 10 000). */
  timeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Source of jitter in [0, 1) (default Math.random); for tests. */
  random?: () => number;
  /** Events waiting to start (default 1000); beyond it the oldest waiting one is dropped. */
  maxQueue?: number;
  /** Deliveries in flight at once (default 4). */
  concurrency?: number;
}

/** The JSON body POSTed to the webhook (every key always present). */
export interface WebhookPayload {
  /** UUID of this event; identical on every retry. */
  id: string;
  type: StatusNotification['type'];
  connection: string;
  mailbox: string;
  status: string;
  previousStatus: string;
  reason: string | null;
  aadsts: number | null;
  remedy: string | null;
  /** ISO 8601 UTC time of the status change. */
  at: string;
  /** ISO 8601 UTC time the broker queued the delivery; identical on every retry. */
  sentAt: string;
}

export const SIGNATURE_HEADER = 'X-Broker-Signature';
export const EVENT_HEADER = 'X-Broker-Event';
export const EVENT_ID_HEADER = 'X-Broker-Event-Id';
export const USER_AGENT = 'ews-oauth-broker';

const SIGNATURE_PREFIX = 'sha256=';

/** `sha256=<hex HMAC-SHA256 of body under secret>`: the value of X-Broker-Signature. */
export function signBody(body: string | Buffer, secret: string): string {
  return SIGNATURE_PREFIX + createHmac('sha256', secret).update(body).digest('hex');
}

/**
 * What a receiver does: checks X-Broker-Signature against the raw request body (the exact bytes
 * received, not re-serialized JSON), in constant time. False for a missing or malformed header
 * or an empty secret.
 */
export function verifySignature(body: string | Buffer, header: string | null, secret: string): boolean {
  if (!header || !secret) return false;
  const match = /^sha256=([0-9a-f]{64})$/i.exec(header.trim());
  if (!match?.[1]) return false;
  const received = Buffer.from(match[1], 'hex');
  const expected = createHmac('sha256', secret).update(body).digest();
  return received.length === expected.length && timingSafeEqual(received, expected);
}

interface Delivery {
  payload: WebhookPayload;
  body: string;
  signature: string;
}

type AttemptOutcome =
  | { kind: 'delivered'; status: number }
  | { kind: 'retry'; status?: number; error: string; retryAfterMs?: number }
  | { kind: 'refused'; status: number };

const DEFAULTS = {
  maxAttempts: 6,
  baseDelayMs: 1000,
  maxDelayMs: 60_000,
  timeoutMs: 10_000,
  maxQueue: 1000,
  concurrency: 4,
};

function positiveInt(value: number | undefined, fallback: number, min: number): number {
  return value !== undefined && Number.isFinite(value) ? Math.max(min, Math.floor(value)) : fallback;
}

/** Logs through `logger` but never lets a logger failure escape. */
function safeLogger(logger: Logger): Logger {
  const guard =
    (level: keyof Logger) =>
    (event: string, fields?: LogFields): void => {
      try {
        logger[level](event, fields);
      } catch {
        // A broken logger must not break delivery or the caller.
      }
    };
  return { info: guard('info'), warn: guard('warn'), error: guard('error') };
}

function toPayload(event: StatusNotification, id: string, sentAt: string): WebhookPayload {
  return {
    id,
    type: event.type,
    connection: event.connection,
    mailbox: event.mailbox,
    status: event.status,
    previousStatus: event.previousStatus,
    reason: event.reason ?? null,
    aadsts: typeof event.aadsts === 'number' && Number.isFinite(event.aadsts) ? event.aadsts : null,
    remedy: event.remedy ?? null,
    at: event.at,
    sentAt,
  };
}

function logNotification(logger: Logger, payload: WebhookPayload, webhook: boolean): void {
  const fields: LogFields = {
    eventId: payload.id,
    type: payload.type,
    connection: payload.connection,
    mailbox: payload.mailbox,
    status: payload.status,
    previousStatus: payload.previousStatus,
    reason: payload.reason ?? undefined,
    aadsts: payload.aadsts ?? undefined,
    remedy: payload.remedy ?? undefined,
    at: payload.at,
    webhook,
  };
  if (payload.type === 'connection.recovered') logger.info('connection.notification', fields);
  else logger.warn('connection.notification', fields);
}

/** Origin only: a webhook URL's path may itself be a credential (many services put one there). */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '[invalid url]';
  }
}

function describeError(error: unknown, url: string, target: string): string {
  let text: string;
  if (error instanceof Error) {
    const cause: unknown = error.cause;
    let causeText: string | undefined;
    if (cause instanceof Error) {
      const code: unknown = (cause as Error & { code?: unknown }).code;
      causeText = `${typeof code === 'string' ? code : cause.name}: ${cause.message}`;
    }
    text = `${error.name}: ${error.message}${causeText ? ` (${causeText})` : ''}`;
  } else {
    text = String(error);
  }
  return text.split(url).join(target);
}

/** AbortSignal.timeout's DOMException (by name: it may come from another realm). */
function isTimeout(error: unknown): boolean {
  const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  return name === 'TimeoutError' || name === 'AbortError';
}

export function createNotifier(options: WebhookNotifierOptions): Notifier {
  const logger = safeLogger(options.logger);
  const now = options.now ?? (() => new Date());

  if (!options.url) {
    return {
      notify(event) {
        try {
          logNotification(logger, toPayload(event, randomUUID(), now().toISOString()), false);
        } catch {
          // notify never throws into the caller.
        }
      },
      drain: () => Promise.resolve(),
    };
  }
  if (!options.secret) {
    // config.ts refuses this combination; reaching here is a wiring bug, so fail at startup.
    throw new Error('createNotifier: a webhook secret is required with a webhook URL');
  }

  const url = options.url;
  const secret = options.secret;
  const target = originOf(url);
  const { outbound } = options;
  const maxAttempts = positiveInt(options.maxAttempts, DEFAULTS.maxAttempts, 1);
  const baseDelayMs = positiveInt(options.baseDelayMs, DEFAULTS.baseDelayMs, 0);
  const maxDelayMs = positiveInt(options.maxDelayMs, DEFAULTS.maxDelayMs, 0);
  const timeoutMs = positiveInt(options.timeoutMs, DEFAULTS.timeoutMs, 1);
  const maxQueue = positiveInt(options.maxQueue, DEFAULTS.maxQueue, 1);
  const concurrency = positiveInt(options.concurrency, DEFAULTS.concurrency, 1);
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  const random = options.random ?? Math.random;

  const pending: Delivery[] = [];
  let active = 0;
  let pumpScheduled = false;
  let idleWaiters: (() => void)[] = [];

  function basics(delivery: Delivery): LogFields {
    return {
      eventId: delivery.payload.id,
      type: delivery.payload.type,
      connection: delivery.payload.connection,
      target,
    };
  }

  /** Wait before attempt `attempt + 1`, after attempt `attempt` failed. */
  function backoffMs(attempt: number, retryAfterMs: number | undefined): number {
    if (retryAfterMs !== undefined) return Math.min(maxDelayMs, retryAfterMs);
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
    return Math.floor(random() * ceiling);
  }

  async function attemptOnce(delivery: Delivery): Promise<AttemptOutcome> {
    let response: Awaited<ReturnType<Outbound['fetch']>>;
    try {
      response = await outbound.fetch(url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': USER_AGENT,
          [EVENT_HEADER]: delivery.payload.type,
          [EVENT_ID_HEADER]: delivery.payload.id,
          [SIGNATURE_HEADER]: delivery.signature,
        },
        body: delivery.body,
        timeoutMs,
      });
    } catch (error) {
      return {
        kind: 'retry',
        error: isTimeout(error) ? 'timeout' : describeError(error, url, target),
      };
    }
    const status = response.status;
    // The answer's body is of no interest; release the connection.
    try {
      void response.body?.cancel().catch(() => undefined);
    } catch {
      // ignore
    }
    if (status >= 200 && status < 300) return { kind: 'delivered', status };
    if (status === 408 || status === 429 || status >= 500) {
      const seconds = parseRetryAfter(response.headers.get('retry-after'), now().getTime());
      return {
        kind: 'retry',
        status,
        error: `http_${status}`,
        ...(seconds !== undefined ? { retryAfterMs: seconds * 1000 } : {}),
      };
    }
    return { kind: 'refused', status };
  }

  async function deliver(delivery: Delivery): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const outcome = await attemptOnce(delivery);
      if (outcome.kind === 'delivered') {
        logger.info('notify.delivered', { ...basics(delivery), attempts: attempt, status: outcome.status });
        return;
      }
      if (outcome.kind === 'refused') {
        logger.error('notify.failed', {
          ...basics(delivery),
          attempts: attempt,
          status: outcome.status,
          reason: outcome.status >= 300 && outcome.status < 400 ? 'redirect_not_followed' : 'refused',
        });
        return;
      }
      if (attempt >= maxAttempts) {
        logger.error('notify.failed', {
          ...basics(delivery),
          attempts: attempt,
          status: outcome.status,
          reason: 'attempts_exhausted',
          error: outcome.error,
        });
        return;
      }
      const waitMs = backoffMs(attempt, outcome.retryAfterMs);
      logger.warn('notify.retrying', {
        ...basics(delivery),
        attempt,
        status: outcome.status,
        error: outcome.error,
        retryAfterMs: outcome.retryAfterMs,
        delayMs: waitMs,
      });
      await sleep(waitMs);
    }
  }

  function settleIfIdle(): void {
    if (active > 0 || pending.length > 0 || pumpScheduled) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  function pump(): void {
    pumpScheduled = false;
    while (active < concurrency) {
      const next = pending.shift();
      if (!next) break;
      active++;
      void (async () => {
        try {
          await deliver(next);
        } catch (error) {
          logger.error('notify.failed', {
            ...basics(next),
            reason: 'internal_error',
            error: describeError(error, url, target),
          });
        } finally {
          active--;
          pump();
        }
      })();
    }
    settleIfIdle();
  }

  function schedulePump(): void {
    if (pumpScheduled) return;
    pumpScheduled = true;
    // Deliveries start after the caller's synchronous code: notify itself only queues.
    queueMicrotask(pump);
  }

  return {
    notify(event) {
      try {
        const payload = toPayload(event, randomUUID(), now().toISOString());
        logNotification(logger, payload, true);
        const body = JSON.stringify(payload);
        pending.push({ payload, body, signature: signBody(body, secret) });
        while (pending.length > maxQueue) {
          const dropped = pending.shift();
          if (dropped) {
            logger.warn('notify.dropped', { ...basics(dropped), reason: 'queue_full', maxQueue });
          }
        }
        schedulePump();
      } catch (error) {
        try {
          logger.error('notify.failed', {
            reason: 'internal_error',
            error: describeError(error, url, target),
          });
        } catch {
          // notify never throws into the caller.
        }
      }
    },
    drain() {
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        settleIfIdle();
      });
    },
  };
}
