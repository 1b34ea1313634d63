/**
 * What stands between a request and the vault: the service's per-vault throttling limits and the
 * faults a test injects (429/5xx answers, connection resets).
 */
import { HttpError } from './errors';
import type { KeyVaultOperation } from './types';

const WINDOW_MS = 10_000;

export interface Fault {
  remaining: number;
  kind: 'status' | 'reset';
  status: number;
  retryAfterSeconds: number | undefined;
  operation: KeyVaultOperation | 'any';
  name: string | RegExp | undefined;
}

export interface VaultLimits {
  writesPer10s: number;
  othersPer10s: number;
}

const isWrite = (operation: KeyVaultOperation) => operation === 'set';

/** Sliding 10-second windows of secret writes and of other transactions. */
export class Throttle {
  private readonly writes: number[] = [];
  private readonly others: number[] = [];

  constructor(
    private readonly limits: VaultLimits | undefined,
    private readonly now: () => number,
  ) {}

  /** The 429 to answer, or undefined when the request is within the limits (and now counts). */
  check(operation: KeyVaultOperation): HttpError | undefined {
    if (!this.limits) return undefined;
    const t = this.now();
    const write = isWrite(operation);
    const window = write ? this.writes : this.others;
    const limit = write ? this.limits.writesPer10s : this.limits.othersPer10s;
    while (window.length > 0 && (window[0] ?? 0) <= t - WINDOW_MS) window.shift();
    if (window.length >= limit) {
      const retryAfter = Math.max(1, Math.ceil(((window[0] ?? t) + WINDOW_MS - t) / 1000));
      return new HttpError(
        429,
        'Throttled',
        `Request was not processed because too many requests were received. Reason: ${
          write
            ? `more than ${limit} secret writes in 10 seconds for this vault`
            : `more than ${limit} transactions in 10 seconds for this vault`
        }`,
        undefined,
        { 'Retry-After': String(retryAfter) },
      );
    }
    // Throttled requests do not count towards the limits (as documented for the service).
    window.push(t);
    return undefined;
  }
}

export class FaultQueue {
  private readonly queue: Fault[] = [];

  push(fault: Omit<Fault, 'remaining'>, count: number): void {
    this.queue.push({ ...fault, remaining: count });
  }

  clear(): void {
    this.queue.length = 0;
  }

  /** The first queued fault matching this request, consumed once. */
  take(operation: KeyVaultOperation, name: string | undefined): Fault | undefined {
    const index = this.queue.findIndex(
      (f) =>
        (f.operation === 'any' || f.operation === operation) &&
        (f.name === undefined ||
          (name !== undefined &&
            (typeof f.name === 'string' ? f.name.toLowerCase() === name.toLowerCase() : f.name.test(name)))),
    );
    const fault = this.queue.at(index);
    if (index < 0 || !fault) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.queue.splice(index, 1);
    return fault;
  }
}

/** The answer an injected status fault gives, shaped as the service's own 429/503/500. */
export function faultError(fault: Fault): HttpError {
  const retryHeaders: Record<string, string> =
    fault.retryAfterSeconds !== undefined ? { 'Retry-After': String(fault.retryAfterSeconds) } : {};
  if (fault.status === 429)
    return new HttpError(
      429,
      'Throttled',
      'Request was not processed because too many requests were received. Reason: injected by the emulator',
      undefined,
      retryHeaders,
    );
  if (fault.status === 503)
    return new HttpError(
      503,
      'ServiceUnavailable',
      'The service is temporarily unavailable. Please retry.',
      undefined,
      retryHeaders,
    );
  return new HttpError(
    fault.status,
    'InternalServerError',
    'An internal server error occurred. Please retry.',
    undefined,
    retryHeaders,
  );
}
