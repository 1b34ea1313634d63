import { refreshTokensTimer } from '../../../functions/refresh-tokens';
import { startLocalHost, type LocalHost } from '../../../scripts/host';
import { api, Browser, freePort, startHarness, TestClock, USERS, type Harness } from '../../support/harness';

/** What the public and a signed-out admin see in Azure, and the housekeeping the timer does. */
const clock = new TestClock();
let harness: Harness;
let azure: LocalHost;
let broker: Harness['broker'];

beforeAll(async () => {
  harness = await startHarness({ clock });
  broker = harness.secondBroker({ WEBSITE_AUTH_ENABLED: 'true', BROKER_LOCAL_ADMIN: 'false' });
  azure = await startLocalHost({ broker, port: await freePort() });
}, 60_000);

afterAll(async () => {
  await azure.close();
  await harness.close();
});

const ADMIN = Buffer.from(
  JSON.stringify({ auth_typ: 'aad', role_typ: 'roles', claims: [{ typ: 'roles', val: 'Broker.Admin' }] }),
).toString('base64');

it('tells the public only ok or failing, and an admin which check', async () => {
  const anonymous = await api(azure.url, 'GET', '/api/health');
  expect(anonymous.status).toBe(200);
  expect(anonymous.json).toEqual({ status: 'ok' });
  const admin = await api(azure.url, 'GET', '/api/health', undefined, { 'X-MS-CLIENT-PRINCIPAL': ADMIN });
  expect(admin.json).toMatchObject({ status: 'ok', checks: { storage: 'ok', secrets: 'ok', entra: 'ok' } });
});

it('checks the stores at most once per 20 s however often it is asked', async () => {
  const check = jest.spyOn(broker.registry, 'check');
  try {
    clock.advance(0);
    await Promise.all(Array.from({ length: 10 }, () => api(azure.url, 'GET', '/api/health')));
    expect(check.mock.calls.length).toBeLessThanOrEqual(1);
  } finally {
    check.mockRestore();
  }
});

it('sends a signed-out admin opening the console to sign in, and back', async () => {
  const response = await new Browser().get(`${azure.url}/api/console`);
  expect(response.status).toBe(302);
  expect(response.headers.get('location')).toBe('/.auth/login/aad?post_login_redirect_uri=%2Fapi%2Fconsole');
});

it('purges sign-ins that were started and never finished (with their PKCE verifiers) on the timer', async () => {
  await api(harness.baseUrl, 'PUT', '/api/connections/abandoned', {
    mailbox: USERS.support.username,
    profile: 'ews',
  });
  const start = await new Browser().get(`${harness.baseUrl}/api/connections/abandoned/authorize`);
  const state = new URL(start.headers.get('location') ?? '').searchParams.get('state') ?? '';
  expect(await harness.broker.sessions.peek(state)).toBeDefined();
  clock.advance(11 * 60 * 1000);
  await refreshTokensTimer.run(harness.broker);
  expect(await harness.broker.sessions.peek(state)).toBeUndefined();
});
