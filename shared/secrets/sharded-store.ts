import { createHash } from 'node:crypto';
import type { SecretProperties, SecretStore, StoredSecret } from './secret-store';

export interface VaultShard {
  url: string;
  store: SecretStore;
}

/** The connection a secret belongs to (`conn-{name}-cache` → `name`); other names stand for themselves. */
function placementKey(secretName: string): string {
  return /^conn-(.+)-(?:cache|token|password)$/.exec(secretName)?.[1] ?? secretName;
}

/**
 * Several vaults acting as one store, for deployments past one vault's write limit (300 secret
 * writes per 10 s). Each connection's secrets live together in one vault, chosen by rendezvous
 * hashing of the connection name over the vault URLs: adding a vault moves only the connections
 * that now hash to it (about 1/n), and those are still found where they were, because a read
 * that misses its vault looks in the others. The next write puts them in their new place.
 */
export class ShardedSecretStore implements SecretStore {
  readonly kind = 'key-vault' as const;

  constructor(private readonly shards: VaultShard[]) {
    if (shards.length === 0) throw new RangeError('at least one vault');
  }

  /** The vault that holds (or will hold) a connection's secrets. */
  vaultFor(connection: string): VaultShard {
    let best: VaultShard | undefined;
    let bestScore = '';
    for (const shard of this.shards) {
      const score = createHash('sha256').update(`${shard.url}\n${connection}`).digest('hex');
      if (!best || score > bestScore) {
        best = shard;
        bestScore = score;
      }
    }
    return best ?? (this.shards[0] as VaultShard);
  }

  uriOf(name: string): string | undefined {
    return this.vaultFor(placementKey(name)).store.uriOf(name);
  }

  disableVersion(name: string, version: string): Promise<void> {
    return this.vaultFor(placementKey(name)).store.disableVersion(name, version);
  }

  async get(name: string): Promise<StoredSecret | undefined> {
    const home = this.vaultFor(placementKey(name));
    const found = await home.store.get(name);
    if (found) return found;
    for (const shard of this.shards) {
      if (shard === home) continue;
      const elsewhere = await shard.store.get(name);
      if (elsewhere) return elsewhere;
    }
    return undefined;
  }

  set(name: string, value: string, properties?: SecretProperties): Promise<StoredSecret> {
    return this.vaultFor(placementKey(name)).store.set(name, value, properties);
  }

  async delete(name: string): Promise<void> {
    await Promise.all(this.shards.map((shard) => shard.store.delete(name)));
  }

  async check(): Promise<void> {
    await Promise.all(this.shards.map((shard) => shard.store.check()));
  }
}
