/**
 * Published tokens apart from caches and passwords (KEY_VAULT_URL and KEY_VAULT_PRIVATE_URL):
 * consumers get a role on the first only, so no consumer's Key Vault access reaches a refresh
 * token. Built through createSecretStore from settings, over Key Vault emulators.
 */
import { loadConfig } from '../../../shared/config';
import { createSecretStore } from '../../../shared/secrets';
import { secretNames } from '../../../shared/secrets/secret-store';
import { startKeyVaultEmulator, type KeyVaultEmulator } from '../../../sandbox/keyvault';
import { testPki } from '../../support/pki';
import { testTokenSource } from './token-source';

const source = testTokenSource();
const vaults: KeyVaultEmulator[] = [];
const base = {
  ENTRA_TENANT_ID: '11111111-2222-3333-4444-555555555555',
  ENTRA_CLIENT_ID: '66666666-7777-8888-9999-000000000000',
  ENTRA_CLIENT_SECRET: 'x',
};

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
});
afterAll(async () => {
  await Promise.all(vaults.map((vault) => vault.close()));
});

it('keeps token caches and passwords out of the vaults consumers may read', async () => {
  const [published, privateA, privateB] = vaults as [KeyVaultEmulator, KeyVaultEmulator, KeyVaultEmulator];
  const config = loadConfig({
    ...base,
    KEY_VAULT_URL: published.url,
    KEY_VAULT_PRIVATE_URL: `${privateA.url},${privateB.url}`,
  });
  const store = createSecretStore(config, source.credential, {
    keyVault: { pollIntervalMs: 10, maxRetries: 1 },
  });
  for (const name of ['support-in', 'sales-in', 'genesys']) {
    await store.set(secretNames.cache(name), `cache-${name}`);
    await store.set(secretNames.token(name), `token-${name}`);
    await store.set(secretNames.password(name), `password-${name}`);
  }
  expect(published.secrets.names().sort()).toEqual(
    ['conn-genesys-token', 'conn-sales-in-token', 'conn-support-in-token'].sort(),
  );
  const internal = [...privateA.secrets.names(), ...privateB.secrets.names()];
  expect(internal.filter((name) => name.endsWith('-token'))).toEqual([]);
  expect(internal).toHaveLength(6);
  for (const secret of ['cache-support-in', 'password-support-in'])
    expect(published.secrets.containsValue(secret)).toBe(false);
  expect(store.uriOf(secretNames.token('support-in'))).toBe(`${published.url}/secrets/conn-support-in-token`);
  expect((await store.get(secretNames.cache('support-in')))?.value).toBe('cache-support-in');
  await store.delete(secretNames.cache('support-in'));
  expect(await store.get(secretNames.cache('support-in'))).toBeUndefined();
  await expect(store.check()).resolves.toBeUndefined();
});

it('refuses a private vault that consumers could read, or one without KEY_VAULT_URL', () => {
  const url = vaults[0]!.url;
  expect(() => loadConfig({ ...base, KEY_VAULT_URL: url, KEY_VAULT_PRIVATE_URL: url })).toThrow(
    /must name other vaults/,
  );
  expect(() => loadConfig({ ...base, KEY_VAULT_PRIVATE_URL: url })).toThrow(/needs KEY_VAULT_URL/);
});
