import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrokerError } from '../../../shared/errors';
import { createSecretStore } from '../../../shared/secrets';
import { LocalFileSecretStore } from '../../../shared/secrets/local-file-store';
import type { BrokerConfig } from '../../../shared/config';
import type { TokenCredential } from '@azure/identity';

let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'broker-secrets-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const key = () => randomBytes(32);
let counter = 0;
const newFile = () => join(root, `case-${++counter}`, 'nested', 'secrets.json');
const value = (label: string) => `${label}-${randomBytes(24).toString('base64url')}`;

async function failure(promise: Promise<unknown>): Promise<BrokerError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BrokerError) return error;
    throw error;
  }
  throw new Error('expected a BrokerError');
}

describe('LocalFileSecretStore', () => {
  it('round-trips values with their properties; every write is a new version', async () => {
    const store = new LocalFileSecretStore({ file: newFile(), key: key() });
    expect(store.kind).toBe('local-file');
    expect(await store.get('conn-a-cache')).toBeUndefined();

    const expiresOn = new Date('2030-01-01T00:00:00.000Z');
    const secret = value('cache');
    const written = await store.set('conn-a-cache', secret, {
      contentType: 'application/json',
      expiresOn,
      tags: { connection: 'a' },
    });
    expect(written).toMatchObject({
      name: 'conn-a-cache',
      value: secret,
      contentType: 'application/json',
      expiresOn,
      tags: { connection: 'a' },
    });
    expect(written.version).toMatch(/^[0-9a-f]{32}$/);
    expect(await store.get('conn-a-cache')).toEqual(written);

    const again = await store.set('conn-a-cache', 'second');
    expect(again.version).not.toBe(written.version);
    expect(await store.get('conn-a-cache')).toEqual(again);
    expect(again.contentType).toBeUndefined();

    // Names are case-insensitive, as in Key Vault.
    expect((await store.get('CONN-A-CACHE'))?.value).toBe('second');

    // A second store instance (a restarted process) reads the same file.
    await expect(store.check()).resolves.toBeUndefined();
  });

  it('encrypts: the file holds no plaintext, is mode 0600 in a 0700 directory, and every write uses a fresh IV', async () => {
    const file = newFile();
    const store = new LocalFileSecretStore({ file, key: key() });
    const secret = value('plaintext-check');
    await store.set('conn-b-token', secret);
    await store.set('conn-c-token', secret);
    const text = await fs.readFile(file, 'utf8');
    expect(text).not.toContain(secret);
    expect(text).not.toContain(Buffer.from(secret).toString('base64'));
    const parsed = JSON.parse(text) as {
      secrets: Record<string, { value: { iv: string; data: string } } | undefined>;
    };
    const b = parsed.secrets['conn-b-token']?.value;
    const c = parsed.secrets['conn-c-token']?.value;
    expect(b?.iv).not.toBe(c?.iv);
    expect(b?.data).not.toBe(c?.data);
    expect(Buffer.from(b?.iv ?? '', 'base64')).toHaveLength(12);

    if (process.platform !== 'win32') {
      expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
      expect((await fs.stat(join(file, '..'))).mode & 0o777).toBe(0o700);
    }
    // No temporary files left behind.
    expect(await fs.readdir(join(file, '..'))).toEqual(['secrets.json']);
  });

  it('detects tampering with a value, and a value moved to another name', async () => {
    const file = newFile();
    const k = key();
    const store = new LocalFileSecretStore({ file, key: k });
    await store.set('conn-d-token', value('d'));
    await store.set('conn-e-token', value('e'));
    const original = await fs.readFile(file, 'utf8');

    const flipped = JSON.parse(original) as {
      secrets: Record<string, { value: { data: string } } | undefined>;
    };
    const entry = flipped.secrets['conn-d-token'];
    if (!entry) throw new Error('entry missing');
    const bytes = Buffer.from(entry.value.data, 'base64');
    bytes.writeUInt8(bytes.readUInt8(0) ^ 0x01, 0);
    entry.value.data = bytes.toString('base64');
    await fs.writeFile(file, JSON.stringify(flipped));
    const tampered = await failure(store.get('conn-d-token'));
    expect(tampered.code).toBe('configuration_error');
    expect(tampered.message).toContain(file);
    expect(tampered.message).toContain('conn-d-token');
    expect(tampered.message).toMatch(/altered/);
    // The other entry is still readable.
    expect(await store.get('conn-e-token')).toBeDefined();

    // Swap the two ciphertexts: the name is authenticated data, so both fail.
    const swapped = JSON.parse(original) as { secrets: Record<string, { value: unknown } | undefined> };
    const d = swapped.secrets['conn-d-token'];
    const e = swapped.secrets['conn-e-token'];
    if (!d || !e) throw new Error('entries missing');
    [d.value, e.value] = [e.value, d.value];
    await fs.writeFile(file, JSON.stringify(swapped));
    await expect(store.get('conn-d-token')).rejects.toMatchObject({ code: 'configuration_error' });
    await expect(store.get('conn-e-token')).rejects.toMatchObject({ code: 'configuration_error' });

    await fs.writeFile(file, '{ not json');
    const garbage = await failure(store.get('conn-d-token'));
    expect(garbage.message).toContain(file);
    expect(garbage.message).toMatch(/not valid JSON/);
  });

  it('reports a wrong key clearly, naming the file and the setting but never the key', async () => {
    const file = newFile();
    const right = key();
    await new LocalFileSecretStore({ file, key: right }).set('conn-f-token', value('f'));
    const wrong = key();
    const store = new LocalFileSecretStore({ file, key: wrong });
    const error = await failure(store.get('conn-f-token'));
    expect(error.code).toBe('configuration_error');
    expect(error.message).toContain(file);
    expect(error.message).toContain('BROKER_LOCAL_SECRET_KEY');
    for (const k of [right, wrong]) {
      expect(error.message).not.toContain(k.toString('hex'));
      expect(error.message).not.toContain(k.toString('base64'));
    }
    expect(error.remedy).toBeDefined();
    await expect(store.check()).rejects.toMatchObject({ code: 'configuration_error' });
    // Writing with the wrong key must not clobber the file either.
    await expect(store.set('conn-g-token', 'x')).rejects.toMatchObject({ code: 'configuration_error' });
    expect((await new LocalFileSecretStore({ file, key: right }).get('conn-f-token'))?.name).toBe(
      'conn-f-token',
    );

    expect(() => new LocalFileSecretStore({ file, key: randomBytes(16) })).toThrow(BrokerError);
  });

  it('serializes concurrent writes within the process: all of them land', async () => {
    const file = newFile();
    const store = new LocalFileSecretStore({ file, key: key() });
    const values = Array.from({ length: 40 }, (_, i) => [`conn-c${i}-token`, value(`c${i}`)] as const);
    await Promise.all(values.map(([name, v]) => store.set(name, v)));
    // Repeated writes to one name as well: the last one queued wins.
    await Promise.all([1, 2, 3, 4, 5].map((n) => store.set('conn-same-cache', `v${n}`)));

    const fresh = new LocalFileSecretStore({ file, key: (store as unknown as { key: Buffer }).key });
    for (const [name, v] of values) expect((await fresh.get(name))?.value).toBe(v);
    expect((await fresh.get('conn-same-cache'))?.value).toBe('v5');
  });

  it('deletes idempotently', async () => {
    const store = new LocalFileSecretStore({ file: newFile(), key: key() });
    await expect(store.delete('conn-never-token')).resolves.toBeUndefined();
    await store.set('conn-h-token', value('h'));
    await store.delete('conn-h-token');
    expect(await store.get('conn-h-token')).toBeUndefined();
    await expect(store.delete('conn-h-token')).resolves.toBeUndefined();
    // Set after delete works (no soft-delete here).
    await store.set('conn-h-token', 'again');
    expect((await store.get('conn-h-token'))?.value).toBe('again');
  });

  it('validates names, sizes and tags like Key Vault', async () => {
    const store = new LocalFileSecretStore({ file: newFile(), key: key() });
    for (const name of ['', 'has_underscore', 'dots.not.allowed', 'a'.repeat(128), 'space here']) {
      await expect(store.set(name, 'x')).rejects.toMatchObject({ code: 'internal_error' });
      await expect(store.get(name)).rejects.toMatchObject({ code: 'internal_error' });
      await expect(store.delete(name)).rejects.toMatchObject({ code: 'internal_error' });
    }
    await store.set('a'.repeat(127), 'x');
    await store.set('max-size', 'x'.repeat(25_600));
    const big = await failure(store.set('too-big', 'y'.repeat(25_601)));
    expect(big.message).not.toContain('yyyy');
    const tags = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`t${i}`, 'v']));
    await expect(store.set('tags', 'x', { tags })).rejects.toMatchObject({ code: 'internal_error' });
    await expect(store.set('tags', 'x', { tags: { t: 'v'.repeat(257) } })).rejects.toMatchObject({
      code: 'internal_error',
    });
  });

  it('check() proves the location is writable before any secret exists', async () => {
    const file = newFile();
    await expect(new LocalFileSecretStore({ file, key: key() }).check()).resolves.toBeUndefined();
    const blocker = join(root, `blocker-${++counter}`);
    await fs.writeFile(blocker, 'a file, not a directory');
    await expect(
      new LocalFileSecretStore({ file: join(blocker, 'secrets.json'), key: key() }).check(),
    ).rejects.toMatchObject({
      code: 'configuration_error',
    });
  });
});

describe('createSecretStore', () => {
  const credential: TokenCredential = { getToken: () => Promise.resolve(null) };
  const base = {
    localSecretFile: join(tmpdir(), 'unused.json'),
    keyVaultUrls: [],
    keyVaultPrivateUrls: [],
  } as unknown as BrokerConfig;

  it('uses Key Vault when KEY_VAULT_URL is set, the local file otherwise', () => {
    expect(
      createSecretStore(
        {
          ...base,
          keyVaultUrls: ['https://contoso.vault.azure.net'],
          localSecretKey: undefined,
        },
        credential,
      ).kind,
    ).toBe('key-vault');
    expect(
      createSecretStore({ ...base, keyVaultUrls: [], localSecretKey: randomBytes(32) }, credential).kind,
    ).toBe('local-file');
    expect(() =>
      createSecretStore({ ...base, keyVaultUrls: [], localSecretKey: undefined }, credential),
    ).toThrow(BrokerError);
  });
});
