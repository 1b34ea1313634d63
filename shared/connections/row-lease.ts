import type { Lease, LeaseStore } from '../storage/lease';
import { leaseHeld } from './connection';
import { ConcurrentUpdateError, type ConnectionRegistry } from './registry';

/** Rounds of re-read and retry when giving a lease back meets another write of the row. */
const RELEASE_ATTEMPTS = 3;

/**
 * A connection's lease kept in its registry row (`leaseOwner`, `leaseExpiresOn`): taken with a
 * write guarded by the row's ETag, so of concurrent takers exactly one wins, and given back by
 * clearing the two columns. The refresh takes it with the ETag of the row its sweep already read
 * and gives it back in the write that records its outcome (see RefreshService), so a refresh costs
 * two Table round trips; admin changes, sign-ins and passwords take it through this store.
 *
 * Guarantee and limits are those of any lease judged by clocks: at most one unexpired holder as
 * each instance's clock sees it; a holder that overruns its TTL can be overtaken, so holders keep
 * their work under the TTL and write with the ETag of the row they hold (the refresh also stops
 * writing once its lease is about to lapse). A connection without a row has nothing to protect:
 * its lease is granted at once and gives nothing back.
 */
export class RowLeaseStore implements LeaseStore {
  constructor(
    private readonly registry: Pick<ConnectionRegistry, 'get' | 'updateState'>,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async acquire(resource: string, owner: string, ttlMs: number): Promise<Lease | undefined> {
    const row = await this.registry.get(resource);
    const nowMs = this.now().getTime();
    const expiresOnMs = nowMs + ttlMs;
    if (!row) return { resource, expiresOnMs, release: () => Promise.resolve() };
    if (leaseHeld(row, nowMs)) return undefined;
    try {
      await this.registry.updateState(
        resource,
        { leaseOwner: owner, leaseExpiresOn: new Date(expiresOnMs).toISOString() },
        row.etag,
        row,
      );
    } catch (error) {
      if (error instanceof ConcurrentUpdateError) return undefined;
      throw error;
    }
    return { resource, expiresOnMs, release: () => this.release(resource, owner) };
  }

  /** Clears the lease if `owner` still holds it; a lease already given back or taken over is left alone. */
  async release(resource: string, owner: string): Promise<void> {
    for (let attempt = 0; attempt < RELEASE_ATTEMPTS; attempt++) {
      const row = await this.registry.get(resource);
      if (!row || row.leaseOwner !== owner) return;
      try {
        await this.registry.updateState(
          resource,
          { leaseOwner: undefined, leaseExpiresOn: undefined },
          row.etag,
          row,
        );
        return;
      } catch (error) {
        if (!(error instanceof ConcurrentUpdateError)) throw error;
      }
    }
  }
}
