import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { azuriteConnectionString, DEFAULT_AZURITE_PORTS } from '../../sandbox/azurite';
import {
  mergeSettings,
  readLocalSettings,
  sandboxSettings,
  wantsSandbox,
} from '../../scripts/local-settings';
import { loadConfig, type BrokerConfig } from '../../shared/config';

/**
 * local.settings.sample.json is what the README tells users to copy to local.settings.json: it
 * lists every setting shared/config.ts reads, with the code's defaults, and copied as it is it
 * leaves `npm start` a working sandbox (a placeholder ENTRA_CLIENT_ID once turned the sandbox off
 * and then failed validation).
 */
const root = join(__dirname, '..', '..');
const sample = readLocalSettings(join(root, 'local.settings.sample.json'));

/** Read by the Functions host, not by the broker. */
const HOST_SETTINGS = ['FUNCTIONS_WORKER_RUNTIME'];
/**
 * Values the sample sets on purpose although the code's default differs: none. BROKER_LOCAL_ADMIN
 * stays empty (`npm start` turns it on for the sandbox only): `func azure functionapp publish
 * --publish-local-settings` uploads this file, and a true there made anonymous callers admin.
 */
const LOCAL_VALUES: Record<string, string> = {};

/** What `npm start` does with the copied sample, up to the host reading it (scripts/start.ts). */
function asNpmStartRuns(values: Record<string, string>): Record<string, string | undefined> {
  const env = mergeSettings(values, {});
  if (!env.AzureWebJobsStorage || env.AzureWebJobsStorage === 'UseDevelopmentStorage=true') {
    env.AzureWebJobsStorage = azuriteConnectionString(DEFAULT_AZURITE_PORTS);
  }
  if (!env.KEY_VAULT_URL && !env.BROKER_LOCAL_SECRET_KEY) {
    env.BROKER_LOCAL_SECRET_KEY = randomBytes(32).toString('base64');
  }
  if (wantsSandbox(env)) {
    Object.assign(
      env,
      sandboxSettings(env, {
        port: 7071,
        authorityHost: 'https://127.0.0.1:7443',
        tenantId: randomUUID(),
        clientId: randomUUID(),
        clientSecret: randomBytes(24).toString('base64url'),
        caCertFile: join(root, '.broker-local', 'sandbox-pki', 'ca.pem'),
        proxyUrl: 'http://127.0.0.1:7444',
      }),
    );
  }
  return env;
}

/** The settings loadConfig reads: every property it asks of the environment, plus any direct process.env read. */
function settingsConfigReads(): string[] {
  const read = new Set<string>();
  const env = new Proxy(asNpmStartRuns(sample), {
    get(target, key, receiver) {
      if (typeof key === 'string') read.add(key);
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
  loadConfig(env);
  const source = readFileSync(join(root, 'shared', 'config.ts'), 'utf8');
  for (const match of source.matchAll(/process\.env(?:\.(\w+)|\[['"](\w+)['"]\])/g)) {
    read.add(match[1] ?? match[2] ?? '');
  }
  return [...read].sort();
}

describe('local.settings.sample.json', () => {
  it('lists every setting shared/config.ts reads, and nothing else', () => {
    const reads = settingsConfigReads();
    expect(reads.length).toBeGreaterThan(30);
    const listed = Object.keys(sample).filter((name) => !HOST_SETTINGS.includes(name));
    expect(listed.sort()).toEqual(reads);
  });

  it('gives each setting the value the code defaults to (empty: the code decides)', () => {
    // A registered app and a local key: the least the code needs outside the sandbox.
    const env = {
      ENTRA_TENANT_ID: randomUUID(),
      ENTRA_CLIENT_ID: randomUUID(),
      ENTRA_CLIENT_SECRET: 'local-secret',
      BROKER_LOCAL_SECRET_KEY: randomBytes(32).toString('base64'),
    };
    const defaults = loadConfig(env);
    const differing = Object.entries(sample)
      .filter(([name, value]) => value !== '' && !HOST_SETTINGS.includes(name))
      .filter(([name, value]) => {
        const withValue: BrokerConfig = loadConfig({ ...env, [name]: value });
        return JSON.stringify(withValue) !== JSON.stringify(defaults);
      })
      .map(([name, value]) => [name, value]);
    expect(Object.fromEntries(differing)).toEqual(LOCAL_VALUES);
  });

  it('copied as the README says, runs `npm start` as the sandbox and passes validation', () => {
    expect(wantsSandbox(mergeSettings(sample, {}))).toBe(true);
    const env = asNpmStartRuns(sample);
    const config = loadConfig(env);
    expect(config.sandbox).toBe(true);
    expect(config.localAdmin).toBe(true);
    expect(config.clientId).toBe(env.ENTRA_CLIENT_ID);
    expect(config.cloud.authorityHost).toBe('https://127.0.0.1:7443');
    expect(config.redirectUri).toBe('http://localhost:7071/api/callback');
    // The local encrypted store with the key `npm start` generates, not Key Vault.
    expect(config.keyVaultUrls).toEqual([]);
    expect(config.localSecretKey).toHaveLength(32);
    expect(config.localSecretFile).toBe('.broker-local/secrets.json');
    expect(config.proxy).toEqual({
      httpsProxy: 'http://127.0.0.1:7444',
      noProxy: ['localhost', '127.0.0.1', '::1'],
    });
  });

  it('counts an empty value as unset, as shared/config.ts does', () => {
    expect(
      mergeSettings({ ENTRA_CLIENT_ID: '', PUBLIC_BASE_URL: ' ', REFRESH_CONCURRENCY: '8' }, {}),
    ).toEqual({
      REFRESH_CONCURRENCY: '8',
    });
    // The environment wins over local.settings.json, an empty variable included.
    expect(mergeSettings({ ENTRA_CLIENT_ID: randomUUID() }, { ENTRA_CLIENT_ID: '' })).toEqual({});
  });
});
