/**
 * KeyVaultSecretStore and the real SecretClient (@azure/keyvault-secrets) against the Key Vault
 * emulator: what the SDK sends and how the store reacts to what the vault answers.
 */
import { randomBytes } from 'node:crypto';
import { AzureLogger, setLogLevel, getLogLevel, type AzureLogLevel } from '@azure/logger';
import { BrokerError } from '../../../shared/errors';
import { createLogger } from '../../../shared/logging';
import {
  KeyVaultSecretStore,
  createSecretClient,
  type KeyVaultTuning,
} from '../../../shared/secrets/key-vault-store';
import { secretNames } from '../../../shared/secrets/secret-store';
import {
  startKeyVaultEmulator,
  type KeyVaultEmulator,
  type KeyVaultEmulatorOptions,
} from '../../../sandbox/keyvault';
import { testPki } from '../../support/pki';
import { testTokenSource, type TestTokenSource } from './token-source';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const AUTHORITY = `https://127.0.0.1:4443/${TENANT}`;

/** Short waits everywhere: the defaults (2 s polls, 0.8 s back-off) are for the real service. */
const FAST: KeyVaultTuning = {
  pollIntervalMs: 10,
  retryDelayInMs: 20,
  maxRetryDelayInMs: 80,
  maxRetries: 4,
  maxRetryAfterSeconds: 2,
  operationTimeoutMs: 10_000,
};

// ---- log capture: every log line of the run, checked at the end for secret values ------------------

const captured: string[] = [];
const secretValues = new Set<string>();
const secret = (label: string) => {
  const value = `${label}-${randomBytes(16).toString('hex')}`;
  secretValues.add(value);
  return value;
};
const logger = createLogger((_level, line) => captured.push(line));
let previousLevel: AzureLogLevel | undefined;
const originalAzureLog = AzureLogger.log.bind(AzureLogger);
const consoleSpies: jest.SpyInstance[] = [];

beforeAll(() => {
  previousLevel = getLogLevel();
  setLogLevel('verbose');
  AzureLogger.log = (...args: unknown[]) => {
    captured.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
  };
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    consoleSpies.push(
      jest.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        captured.push(args.map(String).join(' '));
      }),
    );
  }
});

afterAll(() => {
  AzureLogger.log = originalAzureLog;
  setLogLevel(previousLevel);
  for (const spy of consoleSpies) spy.mockRestore();
});

// ---- helpers ---------------------------------------------------------------------------------------

const emulators: KeyVaultEmulator[] = [];
afterAll(async () => {
  await Promise.all(emulators.map((e) => e.close()));
});

async function setup(
  options: Partial<Omit<KeyVaultEmulatorOptions, 'pki' | 'authority' | 'verifyToken'>> = {},
  tokens: TestTokenSource = testTokenSource(),
  tuning: KeyVaultTuning = FAST,
) {
  const emulator = await startKeyVaultEmulator({
    pki: testPki(),
    authority: AUTHORITY,
    // Accepts the source's own token; a source built with another `token` is therefore rejected.
    verifyToken: tokens.verifyToken,
    deleteDelayMs: 30,
    recoverDelayMs: 30,
    ...options,
  });
  emulators.push(emulator);
  const store = new KeyVaultSecretStore({
    vaultUrl: emulator.url,
    credential: tokens.credential,
    logger,
    ...tuning,
  });
  const client = createSecretClient(emulator.url, tokens.credential, tuning);
  return { emulator, store, client, tokens };
}

async function brokerError(promise: Promise<unknown>): Promise<BrokerError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BrokerError) return error;
    throw error;
  }
  throw new Error('expected a BrokerError');
}

// ---- tests -----------------------------------------------------------------------------------------

describe('KeyVaultSecretStore against the Key Vault emulator', () => {
  it('goes through the bearer challenge: an unauthenticated first request, then a token for vault.azure.net', async () => {
    const { emulator, store, tokens } = await setup();
    expect(await store.get('conn-alpha-token')).toBeUndefined();

    const [first, second] = emulator.stats.log;
    expect(first).toMatchObject({
      method: 'GET',
      status: 401,
      authenticated: false,
      apiVersion: '2025-07-01',
    });
    expect(second).toMatchObject({ method: 'GET', status: 404, authenticated: true, operation: 'get' });
    expect(tokens.requests[0]).toEqual({ scopes: ['https://vault.azure.net/.default'], tenantId: TENANT });

    // Later requests reuse the token: no second challenge.
    await store.get('conn-alpha-cache');
    expect(emulator.stats.unauthorized).toBe(1);
  });

  it('writes and reads a value with content type, expiry and tags; every write is a new version', async () => {
    const { emulator, store, client } = await setup();
    const name = secretNames.cache('sales');
    const expiresOn = new Date(Math.floor(Date.now() / 1000) * 1000 + 3_600_000);
    const v1 = secret('cache-v1');
    const written = await store.set(name, v1, {
      contentType: 'application/json',
      expiresOn,
      tags: { connection: 'sales', kind: 'msal-cache' },
    });
    expect(written).toMatchObject({
      name,
      value: v1,
      contentType: 'application/json',
      expiresOn,
      tags: { connection: 'sales', kind: 'msal-cache' },
    });
    expect(written.version).toMatch(/^[0-9a-f]{32}$/);
    expect(written.updatedOn).toBeInstanceOf(Date);

    const read = await store.get(name);
    expect(read).toEqual(written);

    const v2 = secret('cache-v2');
    const second = await store.set(name, v2, { contentType: 'application/json' });
    expect(second.version).not.toBe(written.version);
    expect((await store.get(name))?.value).toBe(v2);

    // The SDK sees both versions, and can still read the first one.
    const versions: string[] = [];
    for await (const properties of client.listPropertiesOfSecretVersions(name))
      versions.push(properties.version ?? '');
    expect(versions.sort()).toEqual([written.version, second.version].sort());
    const old = await client.getSecret(name, { version: written.version });
    expect(old.value).toBe(v1);
    expect(old.properties.recoveryLevel).toBe('Recoverable+Purgeable');
    expect(old.properties.recoverableDays).toBe(90);
    expect(emulator.secrets.versions(name).map((v) => v.expires)).toEqual([
      Math.floor(expiresOn.getTime() / 1000),
      undefined,
    ]);
  });

  it('answers undefined for a missing secret and treats deleting one as done', async () => {
    const { store, emulator } = await setup();
    expect(await store.get('conn-nobody-token')).toBeUndefined();
    await expect(store.delete('conn-nobody-token')).resolves.toBeUndefined();
    expect(emulator.stats.byStatus[404]).toBeGreaterThanOrEqual(2);
  });

  it('deletes (waiting for the eventually consistent deletion), purges, and lets the name be reused', async () => {
    const { store, emulator } = await setup({ deleteDelayMs: 60 });
    const name = secretNames.token('reuse');
    const before = secret('token-before');
    await store.set(name, before);
    await store.delete(name);

    // The poller had to wait: GET /deletedsecrets answered 404 until the deletion completed.
    const getDeleted = emulator.stats.log.filter((r) => r.operation === 'getDeleted');
    expect(getDeleted.some((r) => r.status === 404)).toBe(true);
    expect(getDeleted.at(-1)?.status).toBe(200);
    expect(emulator.stats.log.some((r) => r.operation === 'purge' && r.status === 204)).toBe(true);
    expect(await store.get(name)).toBeUndefined();
    expect(emulator.secrets.state(name)).toBeUndefined();
    expect(emulator.secrets.containsValue(before)).toBe(false);

    const after = secret('token-after');
    await store.set(name, after);
    expect((await store.get(name))?.value).toBe(after);
    expect(emulator.stats.recoveries).toBe(0);
    expect(emulator.stats.conflicts).toBe(0);
  });

  it('with purge protection: delete leaves a recoverable secret, and set recovers it (409 path) then writes', async () => {
    const { store, emulator, client } = await setup({ purgeProtection: true });
    const name = secretNames.cache('protected');
    const before = secret('protected-before');
    await store.set(name, before);
    await store.delete(name);

    expect(emulator.stats.log.some((r) => r.operation === 'purge' && r.status === 403)).toBe(true);
    expect(emulator.secrets.state(name)).toBe('deleted');
    expect(
      captured.some((line) => line.includes('secret_store.purge_not_allowed') && line.includes(name)),
    ).toBe(true);
    expect(await store.get(name)).toBeUndefined();

    const after = secret('protected-after');
    const written = await store.set(name, after, { contentType: 'application/json' });
    expect(written.value).toBe(after);

    // The 409 ObjectIsDeletedButRecoverable came back, the store recovered, waited, wrote again.
    expect(emulator.stats.conflicts).toBe(1);
    expect(emulator.stats.recoveries).toBe(1);
    const sets = emulator.stats.log
      .filter((r) => r.operation === 'set' && r.authenticated)
      .map((r) => r.status);
    expect(sets).toEqual([200, 409, 200]);
    expect((await store.get(name))?.value).toBe(after);
    // The recovered history stays in the vault (purge protection keeps it until retention ends).
    const versions: string[] = [];
    for await (const properties of client.listPropertiesOfSecretVersions(name))
      versions.push(properties.version ?? '');
    expect(versions).toHaveLength(2);
    expect(written.contentType).toBe('application/json');
  });

  it('with purge protection, concurrent writes to a soft-deleted name both land', async () => {
    const { store, emulator } = await setup({ purgeProtection: true, recoverDelayMs: 50 });
    const name = secretNames.token('race');
    await store.set(name, secret('race-0'));
    await store.delete(name);
    const a = secret('race-a');
    const b = secret('race-b');
    const [wa, wb] = await Promise.all([store.set(name, a), store.set(name, b)]);
    expect(wa.version).not.toBe(wb.version);
    expect([a, b]).toContain((await store.get(name))?.value);
    expect(emulator.secrets.versions(name)).toHaveLength(3);
  });

  it('retries a 429 after the Retry-After the vault gave, then succeeds', async () => {
    const { store, emulator } = await setup();
    const name = secretNames.token('throttled');
    const value = secret('throttled');
    await store.set(name, value);
    emulator.faults.failNext(1, { status: 429, retryAfterSeconds: 1, operation: 'get', name });
    const started = Date.now();
    expect((await store.get(name))?.value).toBe(value);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(emulator.stats.throttled).toBe(1);
    expect(emulator.stats.faultsInjected).toBe(1);
  });

  it('does not wait out a long Retry-After: fails at once with upstream_unavailable and the vault’s retryAfterSeconds', async () => {
    const { store, emulator } = await setup();
    emulator.faults.failNext(1, { status: 429, retryAfterSeconds: 120, operation: 'set' });
    const started = Date.now();
    const error = await brokerError(store.set(secretNames.token('patient'), secret('patient')));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error.code).toBe('upstream_unavailable');
    expect(error.retryAfterSeconds).toBe(120);
    expect(emulator.stats.throttled).toBe(1);
  });

  it('ends a persistent 503 as upstream_unavailable after the bounded retries', async () => {
    const { store, emulator } = await setup();
    emulator.faults.failNext(100, { status: 503, operation: 'get' });
    const error = await brokerError(store.get(secretNames.cache('down')));
    expect(error.code).toBe('upstream_unavailable');
    expect(error.status).toBe(503);
    expect(error.message).toContain('HTTP 503');
    // One attempt plus maxRetries (4) retries.
    expect(emulator.stats.byStatus[503]).toBe(5);
  });

  it('ends persistent throttling (short Retry-After) as upstream_unavailable carrying retryAfterSeconds', async () => {
    const { store, emulator } = await setup();
    emulator.faults.failNext(100, { status: 429, retryAfterSeconds: 0, operation: 'any' });
    const error = await brokerError(store.check());
    expect(error.code).toBe('upstream_unavailable');
    expect(error.retryAfterSeconds).toBe(0);
    expect(emulator.stats.throttled).toBe(5);
  });

  it('maps the vault’s own throttling limits (300 writes / 10 s, scaled down here) to upstream_unavailable', async () => {
    const { store, emulator } = await setup({ limits: { writesPer10s: 3, othersPer10s: 1000 } });
    for (let i = 0; i < 3; i++) await store.set(secretNames.token(`burst${i}`), secret('burst'));
    const error = await brokerError(store.set(secretNames.token('burst3'), secret('burst')));
    expect(error.code).toBe('upstream_unavailable');
    expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(9);
    expect(error.retryAfterSeconds).toBeLessThanOrEqual(10);
    expect(emulator.stats.throttled).toBe(1);
    expect(emulator.stats.faultsInjected).toBe(0);
    // Reads have their own budget and still work.
    expect(await store.get(secretNames.token('burst0'))).toBeDefined();
  });

  it('ends dropped connections as upstream_unavailable', async () => {
    const { store, emulator } = await setup();
    emulator.faults.resetNext(100, { operation: 'get' });
    const error = await brokerError(store.get(secretNames.cache('reset')));
    expect(error.code).toBe('upstream_unavailable');
    expect(error.message).toContain('could not be reached');
  });

  it('bounds a call in time: a vault that does not answer ends as upstream_unavailable', async () => {
    const { emulator, tokens } = await setup();
    const store = new KeyVaultSecretStore({
      vaultUrl: emulator.url,
      credential: tokens.credential,
      ...FAST,
      operationTimeoutMs: 150,
    });
    emulator.faults.latencyMs = 1_000;
    const started = Date.now();
    const error = await brokerError(store.get(secretNames.cache('slow')));
    expect(Date.now() - started).toBeLessThan(900);
    expect(error.code).toBe('upstream_unavailable');
    expect(error.message).toMatch(/did not complete the read/);
    emulator.faults.clear();
  });

  it('fails when the vault rejects the token (after one challenge round), and check() reports it', async () => {
    const bad = testTokenSource({ token: 'not-a-token-the-vault-accepts' });
    const { store, emulator } = await setup({}, bad);
    const error = await brokerError(store.get(secretNames.cache('denied')));
    expect(error.code).toBe('configuration_error');
    expect(error.message).toContain('HTTP 401');
    expect(error.remedy).toMatch(/Key Vault Secrets Officer/);
    expect(emulator.stats.unauthorized).toBe(2);
    expect(emulator.stats.byOperation.get).toBe(0);
    await expect(store.check()).rejects.toMatchObject({ code: 'configuration_error' });
  });

  it('check() passes against a reachable vault', async () => {
    const { store, emulator } = await setup();
    await expect(store.check()).resolves.toBeUndefined();
    expect(emulator.stats.log.at(-1)).toMatchObject({
      operation: 'get',
      status: 404,
      name: 'broker-health-probe',
    });
  });

  it('rejects names Key Vault would reject, before sending anything', async () => {
    const { store, emulator } = await setup();
    expect(emulator.stats.requests).toBe(0);
    await expect(store.set('conn_bad_name', secret('x'))).rejects.toMatchObject({ code: 'internal_error' });
    await expect(store.set('conn-big', 'x'.repeat(25_601))).rejects.toMatchObject({ code: 'internal_error' });
    expect(emulator.stats.requests).toBe(0);
  });

  it('never logged a secret value or a token', () => {
    expect(captured.length).toBeGreaterThan(0);
    const all = captured.join('\n');
    // The SDK's own logging was on (verbose) for the whole file.
    expect(all).toMatch(/Request: |Response status code/);
    for (const value of secretValues) expect(all).not.toContain(value);
    expect(all).not.toMatch(/kv-test-[0-9a-f]{24}/);
  });
});
