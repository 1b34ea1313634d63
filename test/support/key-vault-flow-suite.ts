import { signIn } from '../../sandbox/entra/sign-in-driver';
import { secretNames } from '../../shared/secrets/secret-store';
import { api, Browser, expectNoSecrets, startHarness, USERS, type Harness } from './harness';

async function authorize(harness: Harness, name: string) {
  const browser = new Browser();
  const start = await browser.get(`${harness.baseUrl}/api/connections/${name}/authorize`);
  const callbackUrl = await signIn(start.headers.get('location') ?? '', {
    ...USERS.support,
    consent: 'accept',
  });
  harness.secretsSeen.add(callbackUrl.searchParams.get('code') ?? '');
  const callback = await browser.get(callbackUrl);
  return { status: callback.status, page: await callback.text() };
}

/**
 * The same flow with secrets in the Key Vault emulator, reached with the real SecretClient and a
 * token from the (emulated) App Service managed-identity endpoint, as in Azure. One vault setup
 * per test file: msal-node remembers the managed-identity endpoint for the life of the module.
 */
export function keyVaultFlowSuite(label: string, vaultOptions: { purgeProtection: boolean }): void {
  describe(`authorization with Key Vault (${label})`, () => {
    let harness: Harness;
    const bodies: string[] = [];
    beforeAll(async () => {
      harness = await startHarness({ keyVault: vaultOptions });
    });
    afterAll(async () => {
      expectNoSecrets(harness.secretsSeen, [...harness.logs, ...bodies]);
      await harness.close();
    });

    it('writes the cache and the published token to the vault', async () => {
      await api(harness.baseUrl, 'PUT', '/api/connections/support-in', {
        mailbox: 'support@contoso.test',
        profile: 'ews',
      });
      const { status, page } = await authorize(harness, 'support-in');
      bodies.push(page);
      expect(status).toBe(200);
      const vault = harness.keyVault!;
      const cache = vault.secrets.current('conn-support-in-cache');
      const token = vault.secrets.current('conn-support-in-token');
      expect(cache?.contentType).toBe('application/json');
      expect(token?.expires).toBeGreaterThan(Date.now() / 1000);
      expect(token?.tags).toMatchObject({ mailbox: 'support@contoso.test' });
      harness.secretsSeen.add(String(cache?.value));
      harness.secretsSeen.add(String(token?.value));
      const health = await api(harness.baseUrl, 'GET', '/api/health');
      expect(health.json).toMatchObject({ status: 'ok', secretStore: 'key-vault' });
    });

    it('deletes a connection with its secrets, then defines and authorizes it again', async () => {
      const deleted = await api(harness.baseUrl, 'DELETE', '/api/connections/support-in');
      expect(deleted.text).toBe('');
      expect(deleted.status).toBe(204);
      expect(await harness.broker.secrets.get(secretNames.cache('support-in'))).toBeUndefined();
      expect(await harness.broker.secrets.get(secretNames.token('support-in'))).toBeUndefined();
      expect((await api(harness.baseUrl, 'GET', '/api/connections/support-in')).status).toBe(404);

      const conflictsBefore = harness.keyVault!.stats.conflicts;
      const put = await api(harness.baseUrl, 'PUT', '/api/connections/support-in', {
        mailbox: 'support@contoso.test',
        profile: 'ews',
      });
      expect(put.status).toBe(201);
      const { status, page } = await authorize(harness, 'support-in');
      bodies.push(page);
      expect(status).toBe(200);
      const stored = await harness.broker.secrets.get(secretNames.cache('support-in'));
      expect(stored).toBeDefined();
      harness.secretsSeen.add(String(stored?.value));
      // With purge protection the name stays soft-deleted: the 409 conflict path (recover, then write) is taken.
      if (vaultOptions.purgeProtection) {
        expect(harness.keyVault!.stats.conflicts).toBeGreaterThan(conflictsBefore);
        // Re-created, it starts clean: the recovered versions (old refresh tokens) are disabled.
        const versions = harness.keyVault!.secrets.versions(secretNames.cache('support-in'));
        expect(versions.length).toBeGreaterThan(1);
        expect(versions.filter((version) => version.enabled)).toHaveLength(1);
      }
      const token = await api(harness.baseUrl, 'GET', '/api/connections/support-in/token');
      expect(token.status).toBe(200);
    });

    it('while the vault is down: serves the token held in memory, answers 503 (not 500) when it holds none, changes nothing', async () => {
      const before = await harness.broker.registry.get('support-in');
      harness.keyVault!.faults.failNext(50, { status: 503, operation: 'any' });
      try {
        const warm = await api(harness.baseUrl, 'GET', '/api/connections/support-in/token');
        expect(warm.status).toBe(200);
        harness.broker.tokenReader.forget('support-in');
        const token = await api(harness.baseUrl, 'GET', '/api/connections/support-in/token');
        bodies.push(token.text);
        expect(token.status).toBe(503);
        expect(token.json.code).toBe('upstream_unavailable');
      } finally {
        harness.keyVault!.faults.clear();
      }
      expect((await harness.broker.registry.get('support-in'))?.etag).toBe(before?.etag);
    }, 60_000);
  });
}
