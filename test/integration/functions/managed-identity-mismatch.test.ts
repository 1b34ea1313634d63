import { api, Browser, startHarness, type Harness } from '../../support/harness';
import { signIn } from '../../../sandbox/entra/sign-in-driver';

/** A federated credential whose subject is not the identity: Entra refuses with AADSTS70021. */
describe('secretless app credential with the wrong federated subject', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({
      clientCredential: 'managed-identity',
      federatedSubject: '00000000-0000-0000-0000-000000000001',
    });
  });
  afterAll(async () => {
    await harness.close();
  });

  it('ends the authorization with configuration_error AADSTS70021 and stores nothing', async () => {
    await api(harness.baseUrl, 'PUT', '/api/connections/mi-wrong', {
      mailbox: 'support@contoso.test',
      profile: 'ews',
    });
    const browser = new Browser();
    const start = await browser.get(`${harness.baseUrl}/api/connections/mi-wrong/authorize`);
    const callbackUrl = await signIn(start.headers.get('location') ?? '', {
      username: 'support@contoso.test',
      password: 'Support-Pass-1',
      consent: 'accept',
    });
    const callback = await browser.get(callbackUrl);
    const page = await callback.text();
    expect(callback.status).toBe(500);
    expect(page).toContain('configuration_error');
    expect(page).toContain('AADSTS70021');
    expect((await harness.broker.registry.get('mi-wrong'))?.status).toBe('new');
  });
});
