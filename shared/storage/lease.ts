import { BrokerError } from '../errors';

/** A short, exclusive claim on one resource (e.g. one connection's refresh) across processes and instances. */
export interface Lease {
  readonly resource: string;
  /** When the claim lapses (ms since epoch, by the holder's clock): past it, another may hold it. */
  readonly expiresOnMs: number;
  /** Gives the claim up early; safe to call twice; never throws for a lease someone else has since taken. */
  release(): Promise<void>;
}

export interface LeaseStore {
  /** The lease, or undefined when someone else holds an unexpired one. */
  acquire(resource: string, owner: string, ttlMs: number): Promise<Lease | undefined>;
}

/** How an admin action waits for a connection's lease. */
export interface LeaseWait {
  /** How long the lease is held at most (it is released as soon as the work ends). */
  ttlMs: number;
  /** How long to wait for another holder (a refresh in flight) to finish. */
  waitMs: number;
}

export const ADMIN_LEASE: LeaseWait = { ttlMs: 60_000, waitMs: 20_000 };

/**
 * Runs `work` holding `resource`'s lease — the one every refresh of a connection takes — so a
 * delete, a reset or a new authorization never interleaves with a refresh writing secrets.
 * A lease still taken after `waitMs` is `409 refresh_in_progress`.
 */
export async function withLease<T>(
  leases: LeaseStore,
  resource: string,
  owner: string,
  wait: LeaseWait,
  work: () => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + wait.waitMs;
  for (let pause = 50; ; pause = Math.min(pause * 2, 1000)) {
    const lease = await leases.acquire(resource, owner, wait.ttlMs);
    if (lease) {
      try {
        return await work();
      } finally {
        await lease.release().catch(() => undefined);
      }
    }
    if (Date.now() + pause > deadline) {
      throw new BrokerError('refresh_in_progress', `A refresh of ${resource} is still running.`, {
        retryAfterSeconds: 10,
        remedy: 'Try again in a moment.',
      });
    }
    await new Promise((done) => setTimeout(done, pause));
  }
}
