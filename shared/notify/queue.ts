import type { LogFields, Logger } from '../logging';
import type { AttemptOutcome } from './delivery';

/**
 * The delivery queue: what waits, how many run at once, what is dropped when too many wait, and
 * when a failed attempt is tried again. It knows nothing of HTTP: an attempt is a function that
 * resolves to an `AttemptOutcome` (delivery.ts makes them).
 *
 * - Events start in the order they were queued, at most `concurrency` at once. An event keeps its
 *   slot while it waits between attempts, so `drain` also waits for pending retries.
 * - At most `maxQueue` events wait to start; beyond that the oldest waiting one is dropped (logged).
 *   One in flight is never dropped.
 * - Nothing starts in the caller's stack: the first start waits for a microtask.
 */

export interface RetryPolicy {
  /** Attempts per event, the first included. */
  maxAttempts: number;
  /** Backoff base: the cap before attempt n+1 is baseDelayMs·2^(n-1). */
  baseDelayMs: number;
  /** Upper bound of any wait, Retry-After included. */
  maxDelayMs: number;
  /** Source of jitter in [0, 1). */
  random: () => number;
}

/**
 * The wait before attempt `attempt + 1`, after attempt `attempt` failed: the receiver's
 * Retry-After when it sent one, else exponential backoff with full jitter; capped at maxDelayMs.
 */
export function backoffMs(policy: RetryPolicy, attempt: number, retryAfterMs: number | undefined): number {
  if (retryAfterMs !== undefined) return Math.min(policy.maxDelayMs, retryAfterMs);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(policy.random() * ceiling);
}

export interface DeliveryQueueOptions<T> {
  /** One attempt at `item`; a rejection is logged as `internal_error` and ends that item. */
  attempt: (item: T) => Promise<AttemptOutcome>;
  retry: RetryPolicy;
  sleep: (ms: number) => Promise<void>;
  /** Items waiting to start; beyond it the oldest waiting one is dropped. */
  maxQueue: number;
  /** Items in flight at once. */
  concurrency: number;
  /** Must not throw (webhook-notifier.ts wraps it). */
  logger: Logger;
  /** The fields naming `item` in every log event; never a secret. */
  fieldsOf: (item: T) => LogFields;
  /** Log-safe text of an unexpected error. */
  describeError: (error: unknown) => string;
}

export interface DeliveryQueue<T> {
  /** Queues `item` (dropping the oldest waiting one if full); starts it after the caller yields. */
  enqueue(item: T): void;
  /** Resolves when nothing waits and nothing is in flight. */
  drain(): Promise<void>;
}

/** Attempts `item` until it is delivered, given up, or out of attempts; logs the end and each retry. */
async function deliverWithRetries<T>(item: T, options: DeliveryQueueOptions<T>): Promise<void> {
  const { logger, retry } = options;
  for (let attempt = 1; ; attempt++) {
    const outcome = await options.attempt(item);
    if (outcome.kind === 'delivered') {
      logger.info('notify.delivered', {
        ...options.fieldsOf(item),
        attempts: attempt,
        status: outcome.status,
      });
      return;
    }
    if (outcome.kind === 'give_up') {
      logger.error('notify.failed', {
        ...options.fieldsOf(item),
        attempts: attempt,
        status: outcome.status,
        reason: outcome.reason,
      });
      return;
    }
    if (attempt >= retry.maxAttempts) {
      logger.error('notify.failed', {
        ...options.fieldsOf(item),
        attempts: attempt,
        status: outcome.status,
        reason: 'attempts_exhausted',
        error: outcome.error,
      });
      return;
    }
    const waitMs = backoffMs(retry, attempt, outcome.retryAfterMs);
    logger.warn('notify.retrying', {
      ...options.fieldsOf(item),
      attempt,
      status: outcome.status,
      error: outcome.error,
      retryAfterMs: outcome.retryAfterMs,
      delayMs: waitMs,
    });
    await options.sleep(waitMs);
  }
}

/** Drops the oldest waiting items beyond `maxQueue` (in flight ones are not in `pending`), logging each. */
function dropOverflow<T>(pending: T[], options: DeliveryQueueOptions<T>): void {
  while (pending.length > options.maxQueue) {
    const dropped = pending.shift();
    if (dropped !== undefined) {
      options.logger.warn('notify.dropped', {
        ...options.fieldsOf(dropped),
        reason: 'queue_full',
        maxQueue: options.maxQueue,
      });
    }
  }
}

export function createDeliveryQueue<T>(options: DeliveryQueueOptions<T>): DeliveryQueue<T> {
  const { logger, fieldsOf } = options;
  const pending: T[] = [];
  let active = 0;
  let pumpScheduled = false;
  let idleWaiters: (() => void)[] = [];

  function settleIfIdle(): void {
    if (active > 0 || pending.length > 0 || pumpScheduled) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  async function run(item: T): Promise<void> {
    try {
      await deliverWithRetries(item, options);
    } catch (error) {
      logger.error('notify.failed', {
        ...fieldsOf(item),
        reason: 'internal_error',
        error: options.describeError(error),
      });
    } finally {
      active--;
      pump();
    }
  }

  function pump(): void {
    pumpScheduled = false;
    while (active < options.concurrency) {
      const next = pending.shift();
      if (next === undefined) break;
      active++;
      void run(next);
    }
    settleIfIdle();
  }

  return {
    enqueue(item) {
      pending.push(item);
      dropOverflow(pending, options);
      if (pumpScheduled) return;
      pumpScheduled = true;
      // Deliveries start after the caller's synchronous code: notify itself only queues.
      queueMicrotask(pump);
    },
    drain() {
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        settleIfIdle();
      });
    },
  };
}
