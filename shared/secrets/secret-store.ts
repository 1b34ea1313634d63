/**
 * Where tokens live. Key Vault in Azure; an AES-256-GCM encrypted file for local use and the
 * sandbox. Values are never logged by any implementation.
 */
export interface SecretProperties {
  /** MIME type of the value, e.g. `application/json` for a token cache. */
  contentType?: string;
  /** When the value stops being useful (Key Vault attribute `exp`). */
  expiresOn?: Date;
  /** Small, non-secret labels (Key Vault tags: at most 15, names ≤ 512, values ≤ 256 chars). */
  tags?: Record<string, string>;
}

export interface StoredSecret extends SecretProperties {
  name: string;
  value: string;
  /** Opaque version id; changes with every write. */
  version: string;
  updatedOn: Date;
}

export interface SecretStore {
  /** `key-vault` or `local-file`, for the health route and the console. */
  readonly kind: 'key-vault' | 'local-file';
  /** The current version, or undefined when there is none (never written, or deleted). */
  get(name: string): Promise<StoredSecret | undefined>;
  /**
   * Writes a new version. A name whose secret was deleted but is still recoverable (Key Vault soft
   * delete) is recovered first and then written, so delete-then-recreate works.
   */
  set(name: string, value: string, properties?: SecretProperties): Promise<StoredSecret>;
  /** Removes the secret; a missing one is not an error. Purges where the vault allows it. */
  delete(name: string): Promise<void>;
  /** Proves the store is reachable and usable (health route); throws otherwise. */
  check(): Promise<void>;
  /** Where consumers find a secret (its Key Vault URI, for a Key Vault reference); undefined for a local store. */
  uriOf(name: string): string | undefined;
  /**
   * Makes an old version unreadable (Key Vault keeps every version until the secret is deleted;
   * a token cache's old versions hold old refresh tokens). A store that keeps no old versions
   * has nothing to do.
   */
  disableVersion(name: string, version: string): Promise<void>;
}

/** Secret names per connection (README "Where state lives"). */
export const secretNames = {
  cache: (connection: string) => `conn-${connection}-cache`,
  token: (connection: string) => `conn-${connection}-token`,
  /** The account's password, for the legacy `password` grant only; never returned by any route. */
  password: (connection: string) => `conn-${connection}-password`,
} as const;
