/**
 * Sharing one promise among callers: the two ways the broker does it, each written once.
 */

/** Runs one `work` per key at a time: callers that come while it runs get its promise. */
export function singleFlight<T>(): (key: string, work: () => Promise<T>) => Promise<T> {
  const running = new Map<string, Promise<T>>();
  return (key, work) => {
    let pending = running.get(key);
    if (!pending) {
      pending = work().finally(() => {
        running.delete(key);
      });
      running.set(key, pending);
    }
    return pending;
  };
}

/**
 * Loads each input once and keeps the result; a failure is forgotten, so the next call tries
 * again. Inputs are told apart by `keyOf` (by default, the input itself as a string).
 */
export function memoizeUntilFailure<I, T>(
  load: (input: I) => Promise<T>,
  keyOf: (input: I) => string = String,
): (input: I) => Promise<T> {
  const loaded = new Map<string, Promise<T>>();
  return (input) => {
    const key = keyOf(input);
    let pending = loaded.get(key);
    if (!pending) {
      pending = load(input);
      pending.catch(() => loaded.delete(key));
      loaded.set(key, pending);
    }
    return pending;
  };
}
