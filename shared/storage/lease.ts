/** A short, exclusive claim on one resource (e.g. one connection's refresh) across processes and instances. */
export interface Lease {
  readonly resource: string;
  /** When the claim lapses (ms since epoch, by the holder's clock): past it, another may hold it. */
  readonly expiresAtMs: number;
  /** Gives the claim up early; safe to call twice; never throws for a lease someone else has since taken. */
  release(): Promise<void>;
}

export interface LeaseStore {
  /** The lease, or undefined when someone else holds an unexpired one. */
  acquire(resource: string, owner: string, ttlMs: number): Promise<Lease | undefined>;
}
