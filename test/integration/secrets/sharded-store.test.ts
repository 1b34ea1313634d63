/**
 * Several vaults as one store (KEY_VAULT_URL with a comma-separated list): each connection's
 * secrets live in one vault chosen by rendezvous hashing, and adding a vault moves few.
 */
import { KeyVaultSecretStore, type KeyVaultTuning } from '../../../shared/secrets/key-vault-store';
import { secretNames } from '../../../shared/secrets/secret-store';
import { ShardedSecretStore, type VaultShard } from '../../../shared/secrets/sharded-store';
import { startKeyVaultEmulator, type KeyVaultEmulator } from '../../../sandbox/keyvault';
import { testPki } from '../../support/pki';
import { testTokenSource } from './token-source';

const FAST: KeyVaultTuning = { pollIntervalMs: 10, retryDelayInMs: 20, maxRetryDelayInMs: 80, maxRetries: 2 };

describe('ShardedSecretStore over Key Vault emulators', () => {
  const source = testTokenSource();
  const vaults: KeyVaultEmulator[] = [];
  let shards: VaultShard[];

  beforeAll(async () => {
    for (let i = 0; i < 3; i++) {
      vaults.push(
        await startKeyVaultEmulator({
          pki: testPki(),
          authority: 'https://127.0.0.1:1/tenant',
          verifyToken: source.verifyToken,
        }),
      );
    }
    shards = vaults.map((vault) => ({
      url: vault.url,
      store: new KeyVaultSecretStore({ vaultUrl: vault.url, credential: source.credential, ...FAST }),
    }));
  });
  afterAll(async () => {
    await Promise.all(vaults.map((vault) => vault.close()));
  });

  it('keeps both secrets of a connection in one vault and spreads connections over all vaults', async () => {
    const store = new ShardedSecretStore(shards.slice(0, 2));
    const names = Array.from({ length: 40 }, (_, i) => `conn${String(i)}`);
    for (const name of names) {
      await store.set(secretNames.cache(name), `cache-${name}`);
      await store.set(secretNames.token(name), `token-${name}`);
    }
    const perVault = vaults.slice(0, 2).map((vault) => vault.secrets.names().length);
    expect(perVault.reduce((a, b) => a + b)).toBe(80);
    expect(Math.min(...perVault)).toBeGreaterThan(20); // roughly even
    for (const name of names) {
      const home = store.vaultFor(name);
      const vault = vaults.find((v) => v.url === home.url)!;
      expect(vault.secrets.current(secretNames.cache(name))?.value).toBe(`cache-${name}`);
      expect(vault.secrets.current(secretNames.token(name))?.value).toBe(`token-${name}`);
      expect(store.uriOf(secretNames.token(name))).toBe(`${home.url}/secrets/${secretNames.token(name)}`);
      expect((await store.get(secretNames.token(name)))?.value).toBe(`token-${name}`);
    }
  });

  it('after adding a vault, moves only the connections that hash to it, still finds them, and deletes everywhere', async () => {
    const before = new ShardedSecretStore(shards.slice(0, 2));
    const after = new ShardedSecretStore(shards);
    const names = Array.from({ length: 40 }, (_, i) => `conn${String(i)}`);
    const moved = names.filter((name) => after.vaultFor(name).url !== before.vaultFor(name).url);
    expect(moved.every((name) => after.vaultFor(name).url === vaults[2]!.url)).toBe(true);
    expect(moved.length).toBeGreaterThan(5);
    expect(moved.length).toBeLessThan(25);
    for (const name of moved) expect((await after.get(secretNames.cache(name)))?.value).toBe(`cache-${name}`);
    const [first] = moved;
    await after.set(secretNames.cache(first!), 'rewritten');
    expect(vaults[2]!.secrets.current(secretNames.cache(first!))?.value).toBe('rewritten');
    expect((await after.get(secretNames.cache(first!)))?.value).toBe('rewritten');
    await after.delete(secretNames.cache(first!));
    expect(await after.get(secretNames.cache(first!))).toBeUndefined();
  });
});
