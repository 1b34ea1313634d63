/**
 * The local host's stand-in for the Functions timer trigger: runs a job at each occurrence of a
 * schedule, one run at a time, as the Functions host does for a timer function. croner computes the
 * occurrences (./ncrontab); the waiting is done here, on a clock and timers that tests can inject.
 */
import type { Schedule } from './ncrontab';

/** setTimeout's longest delay (2^31 - 1 ms, about 24.8 days); longer waits are chained. */
export const MAX_TIMER_DELAY_MS = 2_147_483_647;

export interface LocalTimerOptions {
  schedule: Schedule;
  run: () => Promise<void>;
  /** Gets what a run threw or rejected with (and a schedule that has no next occurrence); the timer goes on. */
  onError: (error: unknown) => void;
  /** Told about an occurrence skipped because the previous run was still going. */
  onSkip?: (occurrence: Date) => void;
  now?: () => Date;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** Also run once right away (like the trigger's RunOnStartup); default false. */
  runOnStart?: boolean;
}

export interface LocalTimer {
  /** Fires no more; resolves when a run that is going has finished. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts running `run` at each occurrence of `schedule` after now.
 *
 * - Never two runs at once: an occurrence that comes while a run is still going is skipped (not
 *   queued), like the Functions host's singleton timer.
 * - A run that throws or rejects goes to `onError`; the next occurrence runs as usual.
 * - After each occurrence the next one is computed from the clock, so after the process was
 *   suspended (a laptop asleep) the timer fires once, not once per missed occurrence. Waits longer
 *   than setTimeout allows are chained; a timer that fires early waits out the rest.
 */
export function startLocalTimer(options: LocalTimerOptions): LocalTimer {
  const timer = new ScheduledRuns(options);
  timer.start();
  return { stop: () => timer.stop() };
}

/** One timer's state: the occurrence it waits for, its pending setTimer, the run that is going. */
class ScheduledRuns {
  private readonly now: () => Date;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private handle: unknown;
  private running: Promise<void> | undefined;
  private due: number | undefined;

  constructor(private readonly options: LocalTimerOptions) {
    this.now = options.now ?? (() => new Date());
    this.setTimer = options.setTimer ?? ((fn: () => void, ms: number) => setTimeout(fn, ms));
    this.clearTimer =
      options.clearTimer ??
      ((handle: unknown) => {
        clearTimeout(handle as NodeJS.Timeout);
      });
  }

  start(): void {
    this.plan(this.now().getTime());
    if (this.options.runOnStart) this.fire(this.now());
    this.arm();
  }

  stop(): Promise<void> {
    if (!this.stopping) {
      this.stopped = true;
      if (this.handle !== undefined) this.clearTimer(this.handle);
      this.handle = undefined;
      this.stopping = (async () => {
        while (this.running) await this.running;
      })();
    }
    return this.stopping;
  }

  private report(error: unknown): void {
    try {
      this.options.onError(error);
    } catch {
      // A throwing error handler must not stop the timer.
    }
  }

  /** Starts a run, or skips the occurrence while the previous run is still going. */
  private fire(occurrence: Date): void {
    if (this.running) {
      try {
        this.options.onSkip?.(occurrence);
      } catch (error) {
        this.report(error);
      }
      return;
    }
    this.running = (async () => {
      try {
        await this.options.run();
      } catch (error) {
        this.report(error);
      }
    })().finally(() => {
      this.running = undefined;
    });
  }

  /** Sets `due` to the first occurrence after `from`; undefined (and reported) when there is none. */
  private plan(from: number): void {
    try {
      this.due = this.options.schedule.next(new Date(from))?.getTime();
      if (this.due === undefined) {
        this.report(
          new Error(
            `"${this.options.schedule.expression}" has no occurrence after ${new Date(from).toISOString()}.`,
          ),
        );
      }
    } catch (error) {
      this.due = undefined;
      this.report(error);
    }
  }

  private arm(): void {
    if (this.stopped || this.due === undefined) return;
    const delay = Math.min(Math.max(this.due - this.now().getTime(), 0), MAX_TIMER_DELAY_MS);
    this.handle = this.setTimer(() => {
      this.tick();
    }, delay);
  }

  private tick(): void {
    this.handle = undefined;
    if (this.stopped || this.due === undefined) return;
    const at = this.now().getTime();
    if (at >= this.due) {
      this.fire(new Date(this.due));
      this.plan(at);
    }
    this.arm();
  }
}
