/**
 * The vault's secrets and their soft-delete life cycle. Transitions (deleting → deleted,
 * recovering → active, deleted → purged at the end of retention) are evaluated lazily against the
 * clock whenever a secret is looked up, which is what makes deletion and recovery eventually
 * consistent the way the SDK's pollers expect.
 */
import type { SecretState } from './types';
import { conflictFor, deletedNotFound, notFound } from './errors';

export interface StoredVersion {
  version: string;
  value: string;
  contentType: string | undefined;
  tags: Record<string, string> | undefined;
  enabled: boolean;
  nbf: number | undefined;
  exp: number | undefined;
  created: number;
  updated: number;
}

export interface StoredSecret {
  /** Name as first written (Key Vault names are case-insensitive). */
  name: string;
  versions: StoredVersion[];
  state: SecretState;
  /** When the current transition (deleting, recovering, purging) completes (ms). */
  transitionEndsAt: number;
  deletedDate: number | undefined;
  scheduledPurgeDate: number | undefined;
}

export const latest = (secret: StoredSecret): StoredVersion => {
  const last = secret.versions.at(-1);
  if (!last) throw new Error('secret without versions');
  return last;
};

export class SecretStore {
  private readonly secrets = new Map<string, StoredSecret>();

  constructor(private readonly now: () => number) {}

  /** The secret under `name` (case-insensitive) after settling its transition; undefined once purged. */
  lookup(name: string): StoredSecret | undefined {
    const secret = this.secrets.get(name.toLowerCase());
    if (!secret) return undefined;
    this.settle(secret);
    return this.secrets.get(name.toLowerCase());
  }

  /** Every secret in `state`, settled, sorted by name as the service lists them. */
  inState(state: SecretState): StoredSecret[] {
    return this.all()
      .filter((s) => s.state === state)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Every secret not yet purged, in any state. */
  all(): StoredSecret[] {
    return [...this.secrets.values()]
      .map((s) => this.lookup(s.name))
      .filter((s): s is StoredSecret => s !== undefined);
  }

  /** Whether any stored version of any secret, in any state, holds `value`. */
  holds(value: string): boolean {
    return [...this.secrets.values()].some((s) => s.versions.some((v) => v.value === value));
  }

  /** The active secret to add a version to, created when the name is free; 409 while it is being deleted, deleted or recovered. */
  writable(name: string): StoredSecret {
    const existing = this.lookup(name);
    if (existing && existing.state !== 'active') throw conflictFor(existing);
    if (existing) return existing;
    const secret: StoredSecret = {
      name,
      versions: [],
      state: 'active',
      transitionEndsAt: 0,
      deletedDate: undefined,
      scheduledPurgeDate: undefined,
    };
    this.secrets.set(name.toLowerCase(), secret);
    return secret;
  }

  /** An active secret and the version asked for (its latest without one): 404 otherwise. */
  activeVersion(name: string, wanted: string | undefined): { secret: StoredSecret; version: StoredVersion } {
    const secret = this.lookup(name);
    if (!secret || secret.state !== 'active') throw notFound(name, wanted);
    const version =
      wanted === undefined
        ? latest(secret)
        : secret.versions.find((v) => v.version.toLowerCase() === wanted.toLowerCase());
    if (!version) throw notFound(name, wanted);
    return { secret, version };
  }

  /** The soft-deleted secret recover and purge act on: 404 unless deleted, 409 while still being deleted. */
  softDeleted(name: string): StoredSecret {
    const secret = this.lookup(name);
    if (!secret || secret.state === 'active' || secret.state === 'recovering' || secret.state === 'purging')
      throw deletedNotFound(name);
    if (secret.state === 'deleting') throw conflictFor(secret);
    return secret;
  }

  /** Starts a transition that completes `durationMs` from now (immediately when 0). */
  begin(secret: StoredSecret, state: 'deleting' | 'recovering' | 'purging', durationMs: number): void {
    secret.state = state;
    secret.transitionEndsAt = this.now() + durationMs;
    this.settle(secret);
  }

  private settle(secret: StoredSecret): void {
    const t = this.now();
    if (secret.state === 'deleting' && t >= secret.transitionEndsAt) secret.state = 'deleted';
    if (secret.state === 'recovering' && t >= secret.transitionEndsAt) {
      secret.state = 'active';
      secret.deletedDate = undefined;
      secret.scheduledPurgeDate = undefined;
    }
    if (
      secret.state === 'deleted' &&
      secret.scheduledPurgeDate !== undefined &&
      t >= secret.scheduledPurgeDate
    ) {
      // Retention over: the service purges on its own.
      secret.state = 'purging';
      secret.transitionEndsAt = t;
    }
    if (secret.state === 'purging' && t >= secret.transitionEndsAt)
      this.secrets.delete(secret.name.toLowerCase());
  }
}
