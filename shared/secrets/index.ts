import type { TokenCredential } from '@azure/identity';
import type { BrokerConfig } from '../config';
import { BrokerError } from '../errors';
import type { Logger } from '../logging';
import { KeyVaultSecretStore, type KeyVaultTuning } from './key-vault-store';
import { LocalFileSecretStore } from './local-file-store';
import type { SecretStore } from './secret-store';
import { ShardedSecretStore } from './sharded-store';
import { SplitSecretStore } from './split-store';

export type { SecretProperties, SecretStore, StoredSecret } from './secret-store';
export { secretNames } from './secret-store';
export {
  KeyVaultSecretStore,
  createSecretClient,
  type KeyVaultSecretStoreOptions,
  type KeyVaultTuning,
} from './key-vault-store';
export { LocalFileSecretStore, type LocalFileSecretStoreOptions } from './local-file-store';
export { ShardedSecretStore } from './sharded-store';

export interface CreateSecretStoreOptions {
  logger?: Logger;
  /** Key Vault retry/poll/timeout tuning (tests shorten it). */
  keyVault?: KeyVaultTuning;
}

/**
 * Key Vault when KEY_VAULT_URL is set (always in Azure: config.ts requires it there), otherwise
 * the encrypted local file keyed by BROKER_LOCAL_SECRET_KEY.
 */
export function createSecretStore(
  config: BrokerConfig,
  credential: TokenCredential,
  options: CreateSecretStoreOptions = {},
): SecretStore {
  const vaults = (urls: string[]): SecretStore => {
    const shards = urls.map((vaultUrl) => ({
      url: vaultUrl,
      store: new KeyVaultSecretStore({
        vaultUrl,
        credential,
        proxy: config.proxy,
        ...(options.logger ? { logger: options.logger } : {}),
        ...options.keyVault,
      }),
    }));
    const [only] = shards;
    return shards.length === 1 && only ? only.store : new ShardedSecretStore(shards);
  };
  if (config.keyVaultUrls.length > 0) {
    // KEY_VAULT_PRIVATE_URL keeps caches and passwords apart from the published tokens consumers read.
    return config.keyVaultPrivateUrls.length > 0
      ? new SplitSecretStore(vaults(config.keyVaultUrls), vaults(config.keyVaultPrivateUrls))
      : vaults(config.keyVaultUrls);
  }
  if (!config.localSecretKey) {
    throw new BrokerError('configuration_error', 'Neither KEY_VAULT_URL nor BROKER_LOCAL_SECRET_KEY is set', {
      remedy: 'Set KEY_VAULT_URL (Azure), or BROKER_LOCAL_SECRET_KEY for the local encrypted file.',
    });
  }
  return new LocalFileSecretStore({ file: config.localSecretFile, key: config.localSecretKey });
}
