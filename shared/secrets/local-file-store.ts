import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname, basename, join, resolve } from 'node:path';
import { BrokerError } from '../errors';
import type { SecretProperties, SecretStore, StoredSecret } from './secret-store';
import { assertValidSecretInput, assertValidSecretName } from './validation';

/**
 * The development/sandbox store: one JSON file, every value encrypted with AES-256-GCM under the
 * 32-byte key from BROKER_LOCAL_SECRET_KEY (random 96-bit IV per write, the secret's name as
 * additional authenticated data, so a value moved to another name fails to decrypt). Metadata
 * (content type, expiry, tags, version, time) is stored in clear, like Key Vault's own
 * non-secret attributes.
 *
 * Writes are atomic (temporary file in the same directory, then rename; file mode 0600, directory
 * 0700) and serialized within the process. Several processes writing the same file are not
 * coordinated: the last write wins. Names follow Key Vault's rules and, as in Key Vault, are
 * case-insensitive.
 */
export interface LocalFileSecretStoreOptions {
  file: string;
  /** 32 bytes. */
  key: Buffer;
  now?: () => Date;
}

const FORMAT = 'ews-oauth-broker/local-secrets';
const KEY_CHECK_AAD = 'key-check';
const KEY_CHECK_PLAINTEXT = 'ews-oauth-broker local secret key check';

interface Sealed {
  iv: string;
  tag: string;
  data: string;
}

interface FileEntry {
  name: string;
  value: Sealed;
  version: string;
  updatedOn: string;
  contentType?: string;
  expiresOn?: string;
  tags?: Record<string, string>;
}

interface FileContents {
  format: typeof FORMAT;
  formatVersion: 1;
  /** Encrypts a known text: tells a wrong key apart from a tampered entry, even in an empty file. */
  keyCheck: Sealed;
  secrets: Record<string, FileEntry | undefined>;
}

class SealError extends Error {}

export class LocalFileSecretStore implements SecretStore {
  readonly kind = 'local-file' as const;

  /** The file keeps only the current version of each secret. */
  disableVersion(): Promise<void> {
    return Promise.resolve();
  }

  uriOf(): undefined {
    return undefined;
  }
  private readonly file: string;
  private readonly key: Buffer;
  private readonly now: () => Date;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: LocalFileSecretStoreOptions) {
    if (options.key.length !== 32) {
      throw new BrokerError(
        'configuration_error',
        'BROKER_LOCAL_SECRET_KEY must be 32 bytes (64 hex characters or base64)',
      );
    }
    this.file = resolve(options.file);
    this.key = Buffer.from(options.key);
    this.now = options.now ?? (() => new Date());
  }

  async get(name: string): Promise<StoredSecret | undefined> {
    assertValidSecretName(name);
    const contents = await this.read();
    const entry = contents?.secrets[name.toLowerCase()];
    return entry ? this.open(entry) : undefined;
  }

  async set(name: string, value: string, properties: SecretProperties = {}): Promise<StoredSecret> {
    assertValidSecretInput(name, value, properties);
    return await this.serialized(async () => {
      const contents = (await this.read()) ?? this.empty();
      const existing = contents.secrets[name.toLowerCase()];
      const entry: FileEntry = {
        name: existing?.name ?? name,
        value: this.seal(value, name.toLowerCase()),
        version: randomBytes(16).toString('hex'),
        updatedOn: this.now().toISOString(),
        ...(properties.contentType !== undefined ? { contentType: properties.contentType } : {}),
        ...(properties.expiresOn !== undefined ? { expiresOn: properties.expiresOn.toISOString() } : {}),
        ...(properties.tags !== undefined ? { tags: { ...properties.tags } } : {}),
      };
      contents.secrets[name.toLowerCase()] = entry;
      await this.write(contents);
      return this.describe(entry, value);
    });
  }

  async delete(name: string): Promise<void> {
    assertValidSecretName(name);
    await this.serialized(async () => {
      const contents = await this.read();
      if (!contents?.secrets[name.toLowerCase()]) return;
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- a record keyed by secret name
      delete contents.secrets[name.toLowerCase()];
      await this.write(contents);
    });
  }

  async check(): Promise<void> {
    const contents = await this.read();
    if (contents) return;
    // No file yet: prove that it can be created where configured.
    const dir = dirname(this.file);
    try {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      await fs.access(dir, fs.constants.W_OK);
    } catch (error) {
      throw new BrokerError(
        'configuration_error',
        `The local secret directory ${dir} cannot be written (${codeOf(error)})`,
        {
          remedy: 'Set BROKER_LOCAL_SECRET_FILE to a writable path.',
        },
      );
    }
  }

  /** Runs `task` after every earlier write of this store has finished. */
  private serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private empty(): FileContents {
    return {
      format: FORMAT,
      formatVersion: 1,
      keyCheck: this.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD),
      secrets: {},
    };
  }

  private damaged(what: string): BrokerError {
    return new BrokerError('configuration_error', `The local secret file ${this.file} ${what}`, {
      remedy:
        'Restore the file from a backup, or delete it and authorize the connections again. If BROKER_LOCAL_SECRET_KEY changed, set it back to the key the file was written with.',
    });
  }

  private async read(): Promise<FileContents | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (error) {
      if (codeOf(error) === 'ENOENT') return undefined;
      throw new BrokerError(
        'configuration_error',
        `The local secret file ${this.file} cannot be read (${codeOf(error)})`,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw this.damaged('is not valid JSON (damaged or edited by hand)');
    }
    const contents = parsed as Partial<FileContents> | null;
    if (
      !contents ||
      typeof contents !== 'object' ||
      contents.format !== FORMAT ||
      contents.formatVersion !== 1 ||
      !isSealed(contents.keyCheck) ||
      !contents.secrets ||
      typeof contents.secrets !== 'object'
    ) {
      throw this.damaged('is not a broker secret file (unknown format or damaged)');
    }
    let check: string;
    try {
      check = this.unseal(contents.keyCheck, KEY_CHECK_AAD);
    } catch {
      throw this.damaged(
        'cannot be decrypted with the configured BROKER_LOCAL_SECRET_KEY (a different key, or the file was altered)',
      );
    }
    if (check !== KEY_CHECK_PLAINTEXT) throw this.damaged('failed its key check');
    for (const [id, entry] of Object.entries(contents.secrets)) {
      if (!isEntry(entry) || entry.name.toLowerCase() !== id)
        throw this.damaged(`has a damaged entry ("${id.slice(0, 127)}")`);
    }
    return contents as FileContents;
  }

  private async write(contents: FileContents): Promise<void> {
    const dir = dirname(this.file);
    const temp = join(dir, `.${basename(this.file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      const handle = await fs.open(temp, 'wx', 0o600);
      try {
        await handle.writeFile(`${JSON.stringify(contents, null, 2)}\n`, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(temp, this.file);
    } catch (error) {
      await fs.rm(temp, { force: true }).catch(() => undefined);
      throw new BrokerError(
        'configuration_error',
        `The local secret file ${this.file} cannot be written (${codeOf(error)})`,
        {
          remedy: 'Set BROKER_LOCAL_SECRET_FILE to a writable path.',
        },
      );
    }
  }

  private open(entry: FileEntry): StoredSecret {
    let value: string;
    try {
      value = this.unseal(entry.value, entry.name.toLowerCase());
    } catch {
      throw this.damaged(`has an entry ("${entry.name}") that fails authentication: it was altered or moved`);
    }
    return this.describe(entry, value);
  }

  private describe(entry: FileEntry, value: string): StoredSecret {
    return {
      name: entry.name,
      value,
      version: entry.version,
      updatedOn: new Date(entry.updatedOn),
      ...(entry.contentType !== undefined ? { contentType: entry.contentType } : {}),
      ...(entry.expiresOn !== undefined ? { expiresOn: new Date(entry.expiresOn) } : {}),
      ...(entry.tags !== undefined ? { tags: { ...entry.tags } } : {}),
    };
  }

  private seal(plaintext: string, aad: string): Sealed {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return {
      iv: iv.toString('base64'),
      tag: cipher.getAuthTag().toString('base64'),
      data: data.toString('base64'),
    };
  }

  private unseal(sealed: Sealed, aad: string): string {
    const iv = Buffer.from(sealed.iv, 'base64');
    const tag = Buffer.from(sealed.tag, 'base64');
    if (iv.length !== 12 || tag.length !== 16) throw new SealError('bad iv or tag');
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv, { authTagLength: 16 });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString(
      'utf8',
    );
  }
}

function codeOf(error: unknown): string {
  const code = error && typeof error === 'object' ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : 'error';
}

function isSealed(value: unknown): value is Sealed {
  if (!value || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return typeof v.iv === 'string' && typeof v.tag === 'string' && typeof v.data === 'string';
}

function isEntry(value: unknown): value is FileEntry {
  if (!value || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  const optionalString = (x: unknown) => x === undefined || typeof x === 'string';
  return (
    typeof v.name === 'string' &&
    isSealed(v.value) &&
    typeof v.version === 'string' &&
    typeof v.updatedOn === 'string' &&
    optionalString(v.contentType) &&
    optionalString(v.expiresOn) &&
    (v.tags === undefined ||
      (typeof v.tags === 'object' &&
        v.tags !== null &&
        Object.values(v.tags as Record<string, unknown>).every((t) => typeof t === 'string')))
  );
}
