import {
  MAX_TIMER_DELAY_MS,
  startLocalTimer,
  type LocalTimerOptions,
} from '../../../shared/schedule/local-timer';
import { parseNcrontab } from '../../../shared/schedule/ncrontab';

/** A clock and timers the test drives: `advance` moves time, firing due timers in order. */
class FakeTime {
  private ms: number;
  private nextId = 1;
  readonly timers = new Map<number, { at: number; fn: () => void }>();
  /** Every delay asked of setTimer. */
  readonly delays: number[] = [];

  constructor(start: string) {
    this.ms = Date.parse(start);
  }

  now = (): Date => new Date(this.ms);

  setTimer = (fn: () => void, ms: number): number => {
    const id = this.nextId++;
    this.delays.push(ms);
    this.timers.set(id, { at: this.ms + ms, fn });
    return id;
  };

  clearTimer = (handle: unknown): void => {
    this.timers.delete(handle as number);
  };

  /** Moves the clock forward by `ms`, running each timer at its time and letting promises settle between. */
  async advance(ms: number): Promise<void> {
    const end = this.ms + ms;
    for (;;) {
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (!first || entry[1].at < first[1].at) first = entry;
      if (!first || first[1].at > end) break;
      this.timers.delete(first[0]);
      this.ms = Math.max(this.ms, first[1].at);
      first[1].fn();
      await settle();
    }
    this.ms = end;
    await settle();
  }

  /** Moves the clock without firing timers (the process was suspended). */
  jump(ms: number): void {
    this.ms += ms;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

function deferred() {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const MINUTE = 60_000;

function start(time: FakeTime, overrides: Partial<LocalTimerOptions> & Pick<LocalTimerOptions, 'run'>) {
  const errors: unknown[] = [];
  const skipped: string[] = [];
  const timer = startLocalTimer({
    schedule: parseNcrontab('0 */10 * * * *'),
    onError: (error) => errors.push(error),
    onSkip: (occurrence) => skipped.push(occurrence.toISOString()),
    now: time.now,
    setTimer: time.setTimer,
    clearTimer: time.clearTimer,
    ...overrides,
  });
  return { timer, errors, skipped };
}

describe('startLocalTimer', () => {
  it('runs at each occurrence of the schedule', async () => {
    const time = new FakeTime('2026-03-15T12:34:56Z');
    const runs: string[] = [];
    const { timer } = start(time, {
      run: () => {
        runs.push(time.now().toISOString());
        return Promise.resolve();
      },
    });
    await time.advance(5 * MINUTE + 3_999);
    expect(runs).toEqual([]);
    await time.advance(1);
    expect(runs).toEqual(['2026-03-15T12:40:00.000Z']);
    await time.advance(30 * MINUTE);
    expect(runs).toEqual([
      '2026-03-15T12:40:00.000Z',
      '2026-03-15T12:50:00.000Z',
      '2026-03-15T13:00:00.000Z',
      '2026-03-15T13:10:00.000Z',
    ]);
    await timer.stop();
    await time.advance(60 * MINUTE);
    expect(runs).toHaveLength(4);
    expect(time.timers.size).toBe(0);
  });

  it('runs once at start when asked', async () => {
    const time = new FakeTime('2026-03-15T12:34:56Z');
    const run = jest.fn(() => Promise.resolve());
    const { timer } = start(time, { run, runOnStart: true });
    await settle();
    expect(run).toHaveBeenCalledTimes(1);
    await time.advance(6 * MINUTE);
    expect(run).toHaveBeenCalledTimes(2);
    await timer.stop();
  });

  it('skips occurrences that come while a run is still going', async () => {
    const time = new FakeTime('2026-03-15T12:35:00Z');
    const slow = deferred();
    const starts: string[] = [];
    const { timer, skipped } = start(time, {
      run: () => {
        starts.push(time.now().toISOString());
        return starts.length === 1 ? slow.promise : Promise.resolve();
      },
    });
    await time.advance(5 * MINUTE); // 12:40: the slow run starts
    await time.advance(25 * MINUTE); // 12:50, 13:00 come while it runs
    expect(starts).toEqual(['2026-03-15T12:40:00.000Z']);
    expect(skipped).toEqual(['2026-03-15T12:50:00.000Z', '2026-03-15T13:00:00.000Z']);

    slow.resolve();
    await settle();
    await time.advance(10 * MINUTE); // 13:10: runs again, skipped ones are not made up
    expect(starts).toEqual(['2026-03-15T12:40:00.000Z', '2026-03-15T13:10:00.000Z']);
    await timer.stop();
  });

  it.each<[string, () => Promise<void>]>([
    ['rejects', () => Promise.reject(new Error('boom'))],
    [
      'throws synchronously',
      () => {
        throw new Error('boom');
      },
    ],
  ])('keeps going after a run that %s', async (_label, failing) => {
    const time = new FakeTime('2026-03-15T12:35:00Z');
    let calls = 0;
    const { timer, errors } = start(time, {
      run: () => {
        calls++;
        return calls === 1 ? failing() : Promise.resolve();
      },
    });
    await time.advance(15 * MINUTE);
    expect(calls).toBe(2);
    expect(errors).toEqual([new Error('boom')]);
    await timer.stop();
  });

  it('keeps going when the error handler itself throws', async () => {
    const time = new FakeTime('2026-03-15T12:35:00Z');
    const run = jest.fn(() => Promise.reject(new Error('boom')));
    const timer = startLocalTimer({
      schedule: parseNcrontab('0 */10 * * * *'),
      run,
      onError: () => {
        throw new Error('handler broke');
      },
      now: time.now,
      setTimer: time.setTimer,
      clearTimer: time.clearTimer,
    });
    await time.advance(25 * MINUTE);
    expect(run).toHaveBeenCalledTimes(3);
    await timer.stop();
  });

  it('stop waits for the run that is going, and starts no other', async () => {
    const time = new FakeTime('2026-03-15T12:39:00Z');
    const slow = deferred();
    const run = jest.fn(() => slow.promise);
    const { timer } = start(time, { run });
    await time.advance(MINUTE);
    expect(run).toHaveBeenCalledTimes(1);

    let stopped = false;
    const stopping = timer.stop().then(() => {
      stopped = true;
    });
    await settle();
    expect(stopped).toBe(false);
    expect(timer.stop()).toBe(timer.stop()); // twice is the same wait
    slow.resolve();
    await stopping;
    expect(stopped).toBe(true);
    await time.advance(60 * MINUTE);
    expect(run).toHaveBeenCalledTimes(1);
  });

  it('stop resolves at once when nothing runs, even if a run failed', async () => {
    const time = new FakeTime('2026-03-15T12:39:00Z');
    const { timer } = start(time, { run: () => Promise.reject(new Error('x')) });
    await time.advance(MINUTE);
    await expect(timer.stop()).resolves.toBeUndefined();
  });

  it('chains waits longer than setTimeout allows', async () => {
    const time = new FakeTime('2025-03-01T00:00:00Z');
    const runs: string[] = [];
    const { timer } = start(time, {
      schedule: parseNcrontab('0 0 12 29 2 *'),
      run: () => {
        runs.push(time.now().toISOString());
        return Promise.resolve();
      },
    });
    expect(time.delays).toEqual([MAX_TIMER_DELAY_MS]);
    const due = Date.parse('2028-02-29T12:00:00Z');
    await time.advance(due - time.now().getTime() - 1);
    expect(runs).toEqual([]);
    expect(time.delays.length).toBeGreaterThan(40); // about 3 years in 24.8-day steps
    expect(Math.max(...time.delays)).toBe(MAX_TIMER_DELAY_MS);
    await time.advance(1);
    expect(runs).toEqual(['2028-02-29T12:00:00.000Z']);
    await timer.stop();
  });

  it('waits out a timer that fires early', async () => {
    const time = new FakeTime('2026-03-15T12:39:00Z');
    const run = jest.fn(() => Promise.resolve());
    const { timer } = start(time, { run });
    // Fire the pending timer 10 s before it is due, as a drifting clock might.
    const [id, pending] = [...time.timers][0]!;
    time.timers.delete(id);
    time.jump(50_000);
    pending.fn();
    await settle();
    expect(run).not.toHaveBeenCalled();
    expect(time.delays.at(-1)).toBe(10_000);
    await time.advance(10_000);
    expect(run).toHaveBeenCalledTimes(1);
    await timer.stop();
  });

  it('fires once, not once per missed occurrence, after the process was suspended', async () => {
    const time = new FakeTime('2026-03-15T12:35:00Z');
    const run = jest.fn(() => Promise.resolve());
    const { timer } = start(time, { run });
    time.jump(3 * 60 * MINUTE); // asleep from 12:35 to 15:35
    await time.advance(0);
    expect(run).toHaveBeenCalledTimes(1);
    await time.advance(5 * MINUTE - 1);
    expect(run).toHaveBeenCalledTimes(1);
    await time.advance(1); // 15:40
    expect(run).toHaveBeenCalledTimes(2);
    await timer.stop();
  });

  it('reports a schedule that has no next occurrence, and waits for nothing', async () => {
    const time = new FakeTime('2026-03-15T12:35:00Z');
    const run = jest.fn(() => Promise.resolve());
    let calls = 0;
    const { timer, errors } = start(time, {
      // Fires at 12:40, then never again.
      schedule: {
        expression: 'once',
        next: () => (calls++ === 0 ? new Date('2026-03-15T12:40:00Z') : undefined),
      },
      run,
    });
    await time.advance(10 * MINUTE);
    expect(run).toHaveBeenCalledTimes(1);
    expect(errors).toEqual([new Error('"once" has no occurrence after 2026-03-15T12:40:00.000Z.')]);
    expect(time.timers.size).toBe(0);
    await time.advance(60 * MINUTE);
    expect(run).toHaveBeenCalledTimes(1);
    await expect(timer.stop()).resolves.toBeUndefined();
  });

  it('runs on real timers too', async () => {
    const ran = deferred();
    const timer = startLocalTimer({
      schedule: parseNcrontab('* * * * * *'),
      run: () => {
        ran.resolve();
        return Promise.resolve();
      },
      onError: (error) => {
        ran.reject(error);
      },
    });
    await ran.promise;
    await timer.stop();
  });
});
