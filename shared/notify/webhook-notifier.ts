import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { LogFields, Logger } from '../logging';
import type { Outbound } from '../net/outbound';
import {
  deliver,
  describeError,
  originOf,
  queuedEvent,
  toPayload,
  type QueuedEvent,
  type WebhookEndpoint,
  type WebhookPayload,
} from './delivery';
import type { Notifier, StatusNotification } from './notifier';
import { createDeliveryQueue, type RetryPolicy } from './queue';

export {
  EVENT_HEADER,
  EVENT_ID_HEADER,
  SIGNATURE_HEADER,
  signBody,
  verifySignature,
  SIGNATURE_TOLERANCE_SECONDS,
  type WebhookPayload,
} from './delivery';

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
 *
 * This file wires two parts together: delivery.ts (one signed POST and what its answer means) and
 * queue.ts (waiting, concurrency, dropping, retry timing).
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

function logNotification(
  logger: Logger,
  event: StatusNotification,
  payload: WebhookPayload,
  webhook: boolean,
): void {
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
  // A warning only when a connection stopped serving by itself: an admin's action (a reset, also
  // of the source its dependants sign in through) or a recovery is news. Without a webhook this
  // line is the only alert there is, so a real failure stays a warning either way.
  const trouble =
    (payload.type === 'connection.reauthorization_required' || payload.type === 'connection.degraded') &&
    event.followsAdminAction !== true;
  if (trouble) logger.warn('connection.notification', fields);
  else logger.info('connection.notification', fields);
}

function logOnlyNotifier(logger: Logger, now: () => Date): Notifier {
  return {
    notify(event) {
      try {
        logNotification(logger, event, toPayload(event, randomUUID(), now().toISOString()), false);
      } catch {
        // notify never throws into the caller.
      }
    },
    drain: () => Promise.resolve(),
  };
}

export function createNotifier(options: WebhookNotifierOptions): Notifier {
  const logger = safeLogger(options.logger);
  const now = options.now ?? (() => new Date());
  if (!options.url) return logOnlyNotifier(logger, now);
  if (!options.secret) {
    // config.ts refuses this combination; reaching here is a wiring bug, so fail at startup.
    throw new Error('createNotifier: a webhook secret is required with a webhook URL');
  }

  const { url, secret } = options;
  const endpoint: WebhookEndpoint = {
    url,
    secret,
    target: originOf(url),
    timeoutMs: positiveInt(options.timeoutMs, DEFAULTS.timeoutMs, 1),
    outbound: options.outbound,
    now,
  };
  const retry: RetryPolicy = {
    maxAttempts: positiveInt(options.maxAttempts, DEFAULTS.maxAttempts, 1),
    baseDelayMs: positiveInt(options.baseDelayMs, DEFAULTS.baseDelayMs, 0),
    maxDelayMs: positiveInt(options.maxDelayMs, DEFAULTS.maxDelayMs, 0),
    random: options.random ?? Math.random,
  };
  const safeError = (error: unknown) => describeError(error, url, endpoint.target);
  const queue = createDeliveryQueue<QueuedEvent>({
    attempt: (event) => deliver(endpoint, event),
    retry,
    sleep: options.sleep ?? ((ms: number) => delay(ms)),
    maxQueue: positiveInt(options.maxQueue, DEFAULTS.maxQueue, 1),
    concurrency: positiveInt(options.concurrency, DEFAULTS.concurrency, 1),
    logger,
    fieldsOf: ({ payload }) => ({
      eventId: payload.id,
      type: payload.type,
      connection: payload.connection,
      target: endpoint.target,
    }),
    describeError: safeError,
  });

  return {
    notify(event) {
      try {
        const payload = toPayload(event, randomUUID(), now().toISOString());
        logNotification(logger, event, payload, true);
        queue.enqueue(queuedEvent(payload));
      } catch (error) {
        try {
          logger.error('notify.failed', { reason: 'internal_error', error: safeError(error) });
        } catch {
          // notify never throws into the caller (describing the error could, in theory).
        }
      }
    },
    drain: () => queue.drain(),
  };
}
