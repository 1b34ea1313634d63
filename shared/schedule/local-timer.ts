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
  const now = options.now ?? (() => new Date());
  const setTimer = options.setTimer ?? ((fn: () => void, ms: number) => setTimeout(fn, ms));
  const clearTimer =
    options.clearTimer ??
    ((handle: unknown) => {
      clearTimeout(handle as NodeJS.Timeout);
    });

  let stopped = false;
  let stopping: Promise<void> | undefined;
  let handle: unknown;
  let running: Promise<void> | undefined;
  let due: number | undefined;

  const report = (error: unknown): void => {
    try {
      options.onError(error);
    } catch {
      // A throwing error handler must not stop the timer.
    }
  };

  const fire = (occurrence: Date): void => {
    if (running) {
      try {
        options.onSkip?.(occurrence);
      } catch (error) {
        report(error);
      }
      return;
    }
    running = (async () => {
      try {
        await options.run();
      } catch (error) {
        report(error);
      }
    })().finally(() => {
      running = undefined;
    });
  };

  /** Sets `due` to the first occurrence after `from`; undefined (and reported) when there is none. */
  const plan = (from: number): void => {
    try {
      due = options.schedule.next(new Date(from))?.getTime();
      if (due === undefined) {
        report(
          new Error(
            `"${options.schedule.expression}" has no occurrence after ${new Date(from).toISOString()}.`,
          ),
        );
      }
    } catch (error) {
      due = undefined;
      report(error);
    }
  };

  const arm = (): void => {
    if (stopped || due === undefined) return;
    const delay = Math.min(Math.max(due - now().getTime(), 0), MAX_TIMER_DELAY_MS);
    handle = setTimer(tick, delay);
  };

  function tick(): void {
    handle = undefined;
    if (stopped || due === undefined) return;
    const at = now().getTime();
    if (at >= due) {
      fire(new Date(due));
      plan(at);
    }
    arm();
  }

  plan(now().getTime());
  if (options.runOnStart) fire(now());
  arm();

  return {
    stop() {
      if (!stopping) {
        stopped = true;
        if (handle !== undefined) clearTimer(handle);
        handle = undefined;
        stopping = (async () => {
          while (running) await running;
        })();
      }
      return stopping;
    },
  };
}
