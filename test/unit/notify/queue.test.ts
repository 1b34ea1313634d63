import { createLogger } from '../../../shared/logging';
import type { AttemptOutcome } from '../../../shared/notify/delivery';
import {
  backoffMs,
  createDeliveryQueue,
  type DeliveryQueueOptions,
  type RetryPolicy,
} from '../../../shared/notify/queue';

interface Item {
  name: string;
}

const delivered: AttemptOutcome = { kind: 'delivered', status: 200 };
const busy = (retryAfterMs?: number): AttemptOutcome => ({
  kind: 'retry',
  status: 503,
  error: 'http_503',
  ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
});

/** A queue whose attempts answer from `script` (per item name, last answer repeats). */
function setup(
  script: Record<string, (AttemptOutcome | Error)[]>,
  options: Partial<Omit<DeliveryQueueOptions<Item>, 'retry'>> & { retry?: Partial<RetryPolicy> } = {},
) {
  const attempts: string[] = [];
  const sleeps: number[] = [];
  const lines: string[] = [];
  const queue = createDeliveryQueue<Item>({
    attempt: ({ name }) => {
      attempts.push(name);
      const answers = script[name] ?? [delivered];
      const next = answers.length > 1 ? answers.shift()! : answers[0]!;
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    maxQueue: 100,
    concurrency: 1,
    logger: createLogger((_level, line) => lines.push(line)),
    fieldsOf: ({ name }) => ({ item: name }),
    describeError: (error) => `described: ${String(error)}`,
    ...options,
    retry: { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.5, ...options.retry },
  });
  const events = (name: string) =>
    lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((e) => e.event === name);
  return { queue, attempts, sleeps, events };
}

describe('backoffMs', () => {
  const policy: RetryPolicy = { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.5 };

  it.each<[string, Partial<RetryPolicy>, number, number | undefined, number]>([
    ['half the ceiling after attempt 1', {}, 1, undefined, 50],
    ['doubles per attempt', {}, 3, undefined, 200],
    ['the ceiling stops at maxDelayMs', {}, 6, undefined, 500],
    ['full jitter reaches 0', { random: () => 0 }, 4, undefined, 0],
    ['full jitter stays below the ceiling', { random: () => 0.999 }, 2, undefined, 199],
    ['Retry-After replaces the jitter', {}, 1, 300, 300],
    ['Retry-After is capped at maxDelayMs', {}, 1, 3_600_000, 1000],
    ['Retry-After 0 means at once', {}, 5, 0, 0],
  ])('%s', (_name, overrides, attempt, retryAfterMs, expected) => {
    expect(backoffMs({ ...policy, ...overrides }, attempt, retryAfterMs)).toBe(expected);
  });

  it('draws no jitter when the receiver named the wait', () => {
    const random = jest.fn(() => 0.5);
    backoffMs({ ...policy, random }, 1, 2000);
    expect(random).not.toHaveBeenCalled();
  });
});

describe('retry scheduling', () => {
  it('retries until delivered, logging each wait', async () => {
    const { queue, attempts, sleeps, events } = setup({ a: [busy(), busy(250), delivered] });
    queue.enqueue({ name: 'a' });
    await queue.drain();
    expect(attempts).toEqual(['a', 'a', 'a']);
    expect(sleeps).toEqual([50, 250]);
    expect(events('notify.retrying')).toEqual([
      expect.objectContaining({
        level: 'warn',
        item: 'a',
        attempt: 1,
        status: 503,
        error: 'http_503',
        delayMs: 50,
      }),
      expect.objectContaining({ item: 'a', attempt: 2, retryAfterMs: 250, delayMs: 250 }),
    ]);
    expect(events('notify.delivered')).toEqual([
      expect.objectContaining({ level: 'info', item: 'a', attempts: 3, status: 200 }),
    ]);
    expect(events('notify.failed')).toEqual([]);
  });

  it('gives up when out of attempts, with the last error', async () => {
    const { queue, attempts, sleeps, events } = setup({ a: [busy()] }, { retry: { maxAttempts: 3 } });
    queue.enqueue({ name: 'a' });
    await queue.drain();
    expect(attempts).toHaveLength(3);
    expect(sleeps).toEqual([50, 100]);
    expect(events('notify.failed')).toEqual([
      expect.objectContaining({
        level: 'error',
        item: 'a',
        attempts: 3,
        status: 503,
        reason: 'attempts_exhausted',
        error: 'http_503',
      }),
    ]);
  });

  it('gives up at once when delivery says so, with its reason', async () => {
    const { queue, attempts, sleeps, events } = setup({
      a: [{ kind: 'give_up', status: 302, reason: 'redirect_not_followed' }],
    });
    queue.enqueue({ name: 'a' });
    await queue.drain();
    expect(attempts).toEqual(['a']);
    expect(sleeps).toEqual([]);
    expect(events('notify.failed')).toEqual([
      expect.objectContaining({ item: 'a', attempts: 1, status: 302, reason: 'redirect_not_followed' }),
    ]);
  });

  it('logs an attempt that rejects as internal_error and goes on with the next item', async () => {
    const { queue, attempts, events } = setup({ a: [new Error('bug')] });
    queue.enqueue({ name: 'a' });
    queue.enqueue({ name: 'b' });
    await queue.drain();
    expect(attempts).toEqual(['a', 'b']);
    expect(events('notify.failed')).toEqual([
      expect.objectContaining({ item: 'a', reason: 'internal_error', error: 'described: Error: bug' }),
    ]);
    expect(events('notify.delivered')).toEqual([expect.objectContaining({ item: 'b' })]);
  });
});

describe('waiting and dropping', () => {
  it('starts items in the order they were queued, after the caller yields', async () => {
    const { queue, attempts } = setup({});
    for (const name of ['a', 'b', 'c']) queue.enqueue({ name });
    expect(attempts).toEqual([]);
    await queue.drain();
    expect(attempts).toEqual(['a', 'b', 'c']);
  });

  it('drops the oldest waiting items beyond maxQueue, never the one in flight', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const started: string[] = [];
    const { queue, events } = setup(
      {},
      {
        maxQueue: 2,
        attempt: async ({ name }) => {
          started.push(name);
          await gate;
          return delivered;
        },
      },
    );
    queue.enqueue({ name: 'first' });
    await Promise.resolve();
    expect(started).toEqual(['first']);
    for (const name of ['a', 'b', 'c', 'd']) queue.enqueue({ name });
    release();
    await queue.drain();
    expect(started).toEqual(['first', 'c', 'd']);
    expect(events('notify.dropped')).toEqual([
      expect.objectContaining({ level: 'warn', item: 'a', reason: 'queue_full', maxQueue: 2 }),
      expect.objectContaining({ item: 'b', reason: 'queue_full', maxQueue: 2 }),
    ]);
  });

  it('runs at most `concurrency` at once', async () => {
    let inFlight = 0;
    let peak = 0;
    const { queue, events } = setup(
      {},
      {
        concurrency: 3,
        attempt: async () => {
          inFlight++;
          peak = Math.max(peak, inFlight);
          await new Promise((resolve) => setTimeout(resolve, 2));
          inFlight--;
          return delivered;
        },
      },
    );
    for (let i = 0; i < 10; i++) queue.enqueue({ name: `t${i}` });
    await queue.drain();
    expect(events('notify.delivered')).toHaveLength(10);
    expect(peak).toBe(3);
  });

  it('keeps the slot of an item waiting to retry, and drain waits for it', async () => {
    let wake!: () => void;
    const { queue, attempts, sleeps } = setup(
      { a: [busy(), delivered] },
      {
        sleep: (ms) => {
          sleeps.push(ms);
          return new Promise<void>((resolve) => (wake = resolve));
        },
      },
    );
    queue.enqueue({ name: 'a' });
    queue.enqueue({ name: 'b' });
    let drained = false;
    const draining = queue.drain().then(() => (drained = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(sleeps).toEqual([50]);
    expect(attempts).toEqual(['a']);
    expect(drained).toBe(false);
    wake();
    await draining;
    expect(attempts).toEqual(['a', 'a', 'b']);
  });

  it('drain resolves at once when idle, and again after new work', async () => {
    const { queue, attempts } = setup({ a: [busy(), delivered] });
    await queue.drain();
    queue.enqueue({ name: 'a' });
    await queue.drain();
    expect(attempts).toEqual(['a', 'a']);
    await queue.drain();
  });
});
