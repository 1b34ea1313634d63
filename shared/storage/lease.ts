/** A short, exclusive claim on one resource (e.g. one connection's refresh) across processes and instances. */
export interface Lease {
  readonly resource: string;
  /** Gives the claim up early; safe to call twice; never throws for a lease someone else has since taken. */
  release(): Promise<void>;
}

export interface LeaseStore {
  /** The lease, or undefined when someone else holds an unexpired one. */
  acquire(resource: string, owner: string, ttlMs: number): Promise<Lease | undefined>;
}
