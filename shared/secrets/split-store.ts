import type { SecretProperties, SecretStore, StoredSecret } from './secret-store';

/**
 * Published tokens in one store, everything else (token caches with their refresh tokens,
 * passwords) in another: consumers get a role on the vaults of published tokens only, so no
 * consumer's Key Vault access can ever reach a refresh token, whatever connections exist later.
 */
export class SplitSecretStore implements SecretStore {
  readonly kind = 'key-vault' as const;

  constructor(
    private readonly published: SecretStore,
    private readonly internal: SecretStore,
  ) {}

  private storeFor(name: string): SecretStore {
    return /^conn-.+-token$/.test(name) ? this.published : this.internal;
  }

  get(name: string): Promise<StoredSecret | undefined> {
    return this.storeFor(name).get(name);
  }

  set(name: string, value: string, properties?: SecretProperties): Promise<StoredSecret> {
    return this.storeFor(name).set(name, value, properties);
  }

  delete(name: string): Promise<void> {
    return this.storeFor(name).delete(name);
  }

  async check(): Promise<void> {
    await Promise.all([this.published.check(), this.internal.check()]);
  }

  uriOf(name: string): string | undefined {
    return this.storeFor(name).uriOf(name);
  }

  disableVersion(name: string, version: string): Promise<void> {
    return this.storeFor(name).disableVersion(name, version);
  }
}
