import { secretNames } from '../../../shared/secrets/secret-store';
import { api, authorizeConnection, startHarness, type Harness } from '../../support/harness';

/**
 * ENTRA_CLIENT_CREDENTIAL=managed-identity: no secret exists. MSAL's client assertion is the
 * user-assigned identity's token for api://AzureADTokenExchange (real ManagedIdentityCredential
 * against the emulated App Service endpoint), which the Entra emulator verifies against the app's
 * federated identity credential (signature, iss, sub = the identity's principal id, aud).
 */
describe('secretless app credential (managed identity as federated credential)', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({ clientCredential: 'managed-identity' });
  });
  afterAll(async () => {
    await harness.close();
  });

  it('authorizes and refreshes with no client secret anywhere', async () => {
    expect(harness.broker.config.clientCredential.kind).toBe('managed-identity');
    expect(harness.env.ENTRA_CLIENT_SECRET).toBeUndefined();
    const miTokensBefore = harness.entra.stats.managedIdentityTokens;
    expect(await authorizeConnection(harness, 'mi-flow')).toBe(200);
    expect(harness.entra.stats.managedIdentityTokens).toBeGreaterThan(miTokensBefore);
    expect(await harness.broker.secrets.get(secretNames.cache('mi-flow'))).toBeDefined();
    const refresh = await api(harness.baseUrl, 'POST', '/api/connections/mi-flow/refresh');
    expect(refresh.status).toBe(200);
    expect(refresh.json).toMatchObject({ result: 'refreshed' });
  });
});
