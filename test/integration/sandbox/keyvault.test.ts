/**
 * The Key Vault emulator itself: the wire protocol as the real SecretClient and a raw HTTPS client
 * see it (challenge, error bodies, validation, paging, soft delete, purge protection, throttling,
 * faults).
 */
import { SecretClient } from '@azure/keyvault-secrets';
import { BrokerError } from '../../../shared/errors';
import {
  startKeyVaultEmulator,
  type KeyVaultEmulator,
  type KeyVaultEmulatorOptions,
} from '../../../sandbox/keyvault';
import { testPki } from '../../support/pki';
import { testTokenSource } from '../secrets/token-source';

const TENANT = '0b5c2c4a-2f8e-4a6e-9d55-3f2f3c1d9e10';
const AUTHORITY = `https://127.0.0.1:4443/${TENANT}`;
const API = 'api-version=2025-07-01';

const emulators: KeyVaultEmulator[] = [];
afterAll(async () => {
  await Promise.all(emulators.map((e) => e.close()));
});

async function setup(
  options: Partial<Omit<KeyVaultEmulatorOptions, 'pki' | 'authority' | 'verifyToken'>> = {},
) {
  const tokens = testTokenSource();
  const emulator = await startKeyVaultEmulator({
    pki: testPki(),
    authority: AUTHORITY,
    verifyToken: tokens.verifyToken,
    ...options,
  });
  emulators.push(emulator);
  // The plain SDK client, without the broker's tuning; no retries so that every answer is visible.
  const client = new SecretClient(emulator.url, tokens.credential, {
    disableChallengeResourceVerification: true,
    retryOptions: { maxRetries: 0 },
  });
  const raw = (path: string, init: RequestInit & { token?: string | false } = {}) => {
    const { token, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (token !== false) headers.set('authorization', `Bearer ${token ?? tokens.token}`);
    if (rest.body !== undefined) headers.set('content-type', 'application/json');
    return fetch(`${emulator.url}${path}`, { ...rest, headers });
  };
  return { emulator, client, raw, tokens };
}

interface ErrorLike {
  statusCode?: number;
  code?: string;
  message: string;
  details?: { error?: { innerError?: { code?: string } } };
}
async function restError(promise: Promise<unknown>): Promise<ErrorLike> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BrokerError) throw error;
    return error as ErrorLike;
  }
  throw new Error('expected the request to fail');
}

describe('Key Vault emulator', () => {
  it('challenges a request without a token like the service, with its headers', async () => {
    const { raw } = await setup();
    const response = await raw(`/secrets/anything?${API}`, { token: false });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(
      `Bearer authorization="${AUTHORITY}", resource="https://vault.azure.net"`,
    );
    expect(response.headers.get('x-ms-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers.get('x-ms-keyvault-service-version')).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await response.json()).toEqual({
      error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' },
    });

    const invalid = await raw(`/secrets/anything?${API}`, { token: 'forged' });
    expect(invalid.status).toBe(401);
    expect(invalid.headers.get('www-authenticate')).toContain('resource="https://vault.azure.net"');
    expect(((await invalid.json()) as { error: { message: string } }).error.message).toMatch(/^AKV10022: /);
  });

  it('requires a known api-version', async () => {
    const { raw } = await setup();
    const missing = await raw('/secrets/x');
    expect(missing.status).toBe(400);
    const unknown = await raw('/secrets/x?api-version=1999-01-01');
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ error: { code: 'BadParameter' } });
    for (const version of ['7.4', '7.5', '7.6', '2025-07-01']) {
      expect((await raw(`/secrets/x?api-version=${version}`)).status).toBe(404);
    }
  });

  it('stores versions and answers SecretBundles the SDK parses', async () => {
    const { client, emulator, raw } = await setup();
    const expiresOn = new Date(Math.floor(Date.now() / 1000) * 1000 + 60_000);
    const first = await client.setSecret('Conn-Mixed-Token', 'one', {
      contentType: 'text/plain',
      expiresOn,
      tags: { a: '1' },
    });
    expect(first.properties.id).toMatch(
      new RegExp(`^${emulator.url}/secrets/Conn-Mixed-Token/[0-9a-f]{32}$`),
    );
    expect(first.properties).toMatchObject({
      name: 'Conn-Mixed-Token',
      enabled: true,
      contentType: 'text/plain',
      expiresOn,
      tags: { a: '1' },
      recoveryLevel: 'Recoverable+Purgeable',
      recoverableDays: 90,
    });
    expect(first.properties.createdOn).toBeInstanceOf(Date);
    await client.setSecret('Conn-Mixed-Token', 'two');

    // Names are case-insensitive; the name keeps the casing it was created with.
    const latest = await client.getSecret('conn-mixed-token');
    expect(latest.value).toBe('two');
    expect(latest.name).toBe('Conn-Mixed-Token');
    expect(
      (await client.getSecret('conn-mixed-token', { version: first.properties.version ?? '' })).value,
    ).toBe('one');

    const body = (await (await raw(`/secrets/conn-mixed-token/?${API}`)).json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['attributes', 'id', 'value']);
    expect(body.attributes).toEqual({
      enabled: true,
      created: expect.any(Number),
      updated: expect.any(Number),
      recoveryLevel: 'Recoverable+Purgeable',
      recoverableDays: 90,
    });

    // PATCH: tags and enabled; a disabled secret cannot be read.
    await client.updateSecretProperties('Conn-Mixed-Token', latest.properties.version ?? '', {
      tags: { b: '2' },
      enabled: false,
    });
    const disabled = await restError(client.getSecret('Conn-Mixed-Token'));
    expect(disabled.statusCode).toBe(403);
    expect(disabled.details?.error?.innerError?.code).toBe('SecretDisabled');
    expect(emulator.secrets.current('conn-mixed-token')?.tags).toEqual({ b: '2' });
  });

  it('validates names, value size, content type and tags like the service', async () => {
    const { client, emulator } = await setup();
    const bad = await restError(client.setSecret('bad_name', 'x'));
    expect(bad).toMatchObject({
      statusCode: 400,
      code: 'BadParameter',
      message: 'The request URI contains an invalid name: bad_name',
    });
    expect((await restError(client.setSecret('a'.repeat(128), 'x'))).statusCode).toBe(400);
    await client.setSecret('a'.repeat(127), 'x');

    await client.setSecret('big', 'x'.repeat(25_600));
    const big = await restError(client.setSecret('big', 'x'.repeat(25_601)));
    expect(big).toMatchObject({ statusCode: 400, code: 'BadParameter' });
    expect(big.message).toContain('25600');

    const tooManyTags = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`t${i}`, 'v']));
    expect((await restError(client.setSecret('tags', 'x', { tags: tooManyTags }))).statusCode).toBe(400);
    expect(
      (await restError(client.setSecret('tags', 'x', { tags: { t: 'v'.repeat(257) } }))).statusCode,
    ).toBe(400);
    expect(
      (await restError(client.setSecret('tags', 'x', { tags: { ['k'.repeat(513)]: 'v' } }))).statusCode,
    ).toBe(400);
    expect(
      (await restError(client.setSecret('tags', 'x', { contentType: 'c'.repeat(256) }))).statusCode,
    ).toBe(400);
    await client.setSecret('tags', 'x', {
      tags: Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`t${i}`, 'v'.repeat(256)])),
    });
    expect(emulator.secrets.names().sort()).toEqual(['a'.repeat(127), 'big', 'tags'].sort());

    const missing = await restError(client.getSecret('nothing-here'));
    expect(missing).toMatchObject({ statusCode: 404, code: 'SecretNotFound' });
    expect(missing.message).toMatch(
      /^A secret with \(name\/id\) nothing-here was not found in this key vault\./,
    );
  });

  it('pages lists with nextLink and never lists values', async () => {
    const { client, raw } = await setup();
    for (let i = 0; i < 5; i++) await client.setSecret(`page-${i}`, `value-${i}`);
    for (let i = 0; i < 3; i++) await client.setSecret('page-0', `again-${i}`);

    const sizes: number[] = [];
    const names: string[] = [];
    for await (const page of client.listPropertiesOfSecrets().byPage({ maxPageSize: 2 })) {
      sizes.push(page.length);
      names.push(...page.map((p) => p.name));
    }
    expect(sizes).toEqual([2, 2, 1]);
    expect(names).toEqual(['page-0', 'page-1', 'page-2', 'page-3', 'page-4']);

    const versions: string[] = [];
    for await (const page of client.listPropertiesOfSecretVersions('page-0').byPage({ maxPageSize: 3 })) {
      versions.push(...page.map((p) => p.version ?? ''));
    }
    expect(new Set(versions).size).toBe(4);

    const first = (await (await raw(`/secrets?${API}&maxresults=2`)).json()) as {
      value: Record<string, unknown>[];
      nextLink: string | null;
    };
    expect(first.value.every((item) => !('value' in item))).toBe(true);
    expect(first.nextLink).toMatch(/\/secrets\?api-version=2025-07-01&\$skiptoken=[\w-]+&maxresults=2$/);
    expect((await raw(`/secrets?${API}&maxresults=26`)).status).toBe(400);
  });

  it('soft-deletes with eventual consistency, lists, recovers and purges like the service', async () => {
    // The deletion completes after deleteDelayMs: long enough that the read below comes first even on
    // a loaded 2-core machine (80 ms was not, under the full suite).
    const { client, emulator, raw } = await setup({ deleteDelayMs: 1000, recoverDelayMs: 80 });
    await client.setSecret('soft', 'v1');

    const poller = await client.beginDeleteSecret('soft', { intervalInMs: 10 });
    // Deleted, but the deletion has not completed yet.
    expect((await raw(`/secrets/soft?${API}`)).status).toBe(404);
    const early = await raw(`/deletedsecrets/soft?${API}`);
    expect(early.status).toBe(404);
    expect(await early.json()).toEqual({
      error: { code: 'SecretNotFound', message: 'Deleted Secret not found: soft' },
    });
    const deleted = await poller.pollUntilDone();
    expect(deleted.recoveryId).toBe(`${emulator.url}/deletedsecrets/soft`);
    expect(deleted.deletedOn).toBeInstanceOf(Date);
    expect(deleted.scheduledPurgeDate?.getTime()).toBeGreaterThan(Date.now() + 89 * 86_400_000);

    const conflict = await restError(client.setSecret('soft', 'v2'));
    expect(conflict).toMatchObject({
      statusCode: 409,
      code: 'Conflict',
      message:
        'Secret soft is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.',
    });
    expect(conflict.details?.error?.innerError?.code).toBe('ObjectIsDeletedButRecoverable');

    const listed: string[] = [];
    for await (const item of client.listDeletedSecrets()) listed.push(item.name);
    expect(listed).toEqual(['soft']);

    const recover = await client.beginRecoverDeletedSecret('soft', { intervalInMs: 10 });
    expect((await raw(`/secrets/soft?${API}`)).status).toBe(404); // still recovering
    await recover.pollUntilDone();
    expect((await client.getSecret('soft')).value).toBe('v1');
    const getDuringRecovery = emulator.stats.log.filter((r) => r.operation === 'get' && r.status === 404);
    expect(getDuringRecovery.length).toBeGreaterThanOrEqual(2);

    await (await client.beginDeleteSecret('soft', { intervalInMs: 10 })).pollUntilDone();
    await client.purgeDeletedSecret('soft');
    expect(emulator.secrets.state('soft')).toBeUndefined();
    await client.setSecret('soft', 'fresh');
    expect(emulator.secrets.versions('soft')).toHaveLength(1);
  });

  it('refuses purge under purge protection with the service’s 403', async () => {
    const { client, emulator } = await setup({ purgeProtection: true });
    const created = await client.setSecret('kept', 'v');
    expect(created.properties.recoveryLevel).toBe('Recoverable');
    await (await client.beginDeleteSecret('kept', { intervalInMs: 10 })).pollUntilDone();
    const refused = await restError(client.purgeDeletedSecret('kept'));
    expect(refused).toMatchObject({ statusCode: 403, code: 'Forbidden' });
    expect(refused.message).toMatch(
      /^Operation "purge" is not allowed because purge protection is enabled for this vault\./,
    );
    expect(emulator.secrets.state('kept')).toBe('deleted');
  });

  it('purges on its own when the retention period is over', async () => {
    let clock = Date.now();
    const { client, emulator } = await setup({ now: () => clock, retentionDays: 7, purgeProtection: true });
    await client.setSecret('aging', 'v');
    await (await client.beginDeleteSecret('aging', { intervalInMs: 10 })).pollUntilDone();
    clock += 7 * 86_400_000 + 1;
    expect(emulator.secrets.state('aging')).toBeUndefined();
    await client.setSecret('aging', 'new');
  });

  it('throttles per 10 s window: secret writes and other transactions separately; 429s are not counted', async () => {
    let clock = 1_700_000_000_000;
    const { client, raw, emulator } = await setup({
      now: () => clock,
      limits: { writesPer10s: 2, othersPer10s: 3 },
    });
    await client.setSecret('w', '1');
    clock += 4_000;
    await client.setSecret('w', '2');
    const throttled = await raw(`/secrets/w?${API}`, { method: 'PUT', body: JSON.stringify({ value: '3' }) });
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('6');
    expect(await throttled.json()).toMatchObject({
      error: {
        code: 'Throttled',
        message: expect.stringMatching(
          /^Request was not processed because too many requests were received\. Reason: /,
        ),
      },
    });
    // Reads have their own budget.
    for (let i = 0; i < 3; i++) expect((await client.getSecret('w')).value).toBe('2');
    expect((await restError(client.getSecret('w'))).statusCode).toBe(429);

    clock += 6_001;
    await client.setSecret('w', '3');
    expect(emulator.stats.throttled).toBe(2);
    expect(emulator.stats.writes).toBe(4);
  });

  it('injects faults by operation and name, adds latency, and counts', async () => {
    const { client, emulator } = await setup({ limits: false });
    await client.setSecret('f-one', '1');
    await client.setSecret('f-two', '2');
    emulator.faults.failNext(1, { status: 500, operation: 'get', name: /two$/ });
    expect((await client.getSecret('f-one')).value).toBe('1');
    const failed = await restError(client.getSecret('f-two'));
    expect(failed).toMatchObject({ statusCode: 500, code: 'InternalServerError' });
    expect((await client.getSecret('f-two')).value).toBe('2');

    emulator.faults.failNext(1, { status: 503, retryAfterSeconds: 7, operation: 'set' });
    const unavailable = await restError(client.setSecret('f-one', 'x'));
    expect(unavailable.statusCode).toBe(503);

    emulator.faults.latencyMs = 120;
    const started = Date.now();
    await client.getSecret('f-one');
    expect(Date.now() - started).toBeGreaterThanOrEqual(110);
    emulator.faults.clear();

    expect(emulator.stats.faultsInjected).toBe(2);
    expect(emulator.stats.byOperation.set).toBe(3);
    expect(emulator.stats.byStatus[503]).toBe(1);
    emulator.stats.reset();
    expect(emulator.stats.requests).toBe(0);
    expect(emulator.stats.log).toEqual([]);
  });
});
