import { signIn } from '../../../sandbox/entra/sign-in-driver';
import { secretNames } from '../../../shared/secrets/secret-store';
import { api, authorizeConnection, Browser, startHarness, USERS, type Harness } from '../../support/harness';

/**
 * Regression: a delete did not stick — a refresh (or a sign-in) in flight across it wrote its
 * secrets back, recovering the soft-deleted ones: a live refresh token with no connection.
 */
let harness: Harness;

beforeAll(async () => {
  harness = await startHarness({ keyVault: { purgeProtection: true } });
}, 60_000);

afterAll(() => harness.close());

afterEach(() => {
  harness.entra.faults.latencyMs = 0;
});

async function secretsOf(name: string) {
  return Promise.all(
    [secretNames.cache(name), secretNames.token(name), secretNames.password(name)].map((secret) =>
      harness.broker.secrets.get(secret),
    ),
  );
}

it('a refresh in flight finishes first; the delete then removes everything, for good', async () => {
  expect(await authorizeConnection(harness, 'refreshing')).toBe(200);
  harness.entra.faults.latencyMs = 1200;
  const refresh = harness.broker.refresher.refresh('refreshing', { actor: 'timer', force: true });
  await new Promise((done) => setTimeout(done, 200));
  const deleted = await api(harness.baseUrl, 'DELETE', '/api/connections/refreshing');
  expect(deleted.status).toBe(204);
  await refresh;
  expect(await secretsOf('refreshing')).toEqual([undefined, undefined, undefined]);
  expect((await api(harness.baseUrl, 'GET', '/api/connections/refreshing')).status).toBe(404);
});

it('a sign-in finishing after the delete writes nothing', async () => {
  await api(harness.baseUrl, 'PUT', '/api/connections/signing-in', {
    mailbox: USERS.support.username,
    profile: 'ews',
  });
  const browser = new Browser();
  const start = await browser.get(`${harness.baseUrl}/api/connections/signing-in/authorize`);
  const callbackUrl = await signIn(start.headers.get('location') ?? '', {
    ...USERS.support,
    consent: 'accept',
  });
  harness.entra.faults.latencyMs = 1200;
  const callback = browser.get(callbackUrl);
  await new Promise((done) => setTimeout(done, 200));
  expect((await api(harness.baseUrl, 'DELETE', '/api/connections/signing-in')).status).toBe(204);
  const page = await (await callback).text();
  expect(page).toContain('connection_not_found');
  expect(await secretsOf('signing-in')).toEqual([undefined, undefined, undefined]);
  expect(await harness.broker.registry.get('signing-in')).toBeUndefined();
});
