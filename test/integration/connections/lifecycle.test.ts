import { secretNames } from '../../../shared/secrets/secret-store';
import { api, authorizeConnection, startHarness, USERS, type Harness } from '../../support/harness';

/**
 * What an admin does to a connection over its life: edit it (never re-targeting a grant), reset
 * it, disable and enable it, read its audit trail.
 */
let harness: Harness;
const NAME = 'support-in';

beforeAll(async () => {
  harness = await startHarness();
  expect(await authorizeConnection(harness, NAME)).toBe(200);
}, 60_000);

afterAll(() => harness.close());

async function state() {
  const connection = await harness.broker.registry.get(NAME);
  const cache = await harness.broker.secrets.get(secretNames.cache(NAME));
  const token = await harness.broker.secrets.get(secretNames.token(NAME));
  return { etag: connection?.etag, status: connection?.status, cache: cache?.version, token: token?.version };
}

describe('regression: an edit re-targeted a grant', () => {
  it.each([
    ['mailbox', { mailbox: USERS.agent.username, account: USERS.support.username, profile: 'ews' }],
    ['account', { mailbox: USERS.support.username, account: USERS.agent.username, profile: 'ews' }],
    ['profile', { mailbox: USERS.support.username, profile: 'graph-mail' }],
    [
      'ewsUrl',
      {
        mailbox: USERS.support.username,
        profile: 'ews',
        ewsUrl: 'https://mail.contoso.test/EWS/Exchange.asmx',
      },
    ],
  ])(
    'refuses a change of %s on an authorized connection with 409, and changes nothing',
    async (_field, body) => {
      const before = await state();
      const { status, json } = await api(harness.baseUrl, 'PUT', `/api/connections/${NAME}`, body);
      expect(status).toBe(409);
      expect(json).toMatchObject({ code: 'connection_authorized' });
      expect(String(json.remedy)).toContain('the console asks whether to reset when you save');
      expect(String(json.remedy)).toContain('; API: send the change with `?reset=true`)');
      expect(await state()).toEqual(before);
      const token = await api(harness.baseUrl, 'GET', `/api/connections/${NAME}/token`);
      expect(token.json.mailbox).toBe(USERS.support.username);
    },
  );

  it('lets the description change freely, keeping the tokens', async () => {
    const before = await state();
    const { status, json } = await api(harness.baseUrl, 'PUT', `/api/connections/${NAME}`, {
      mailbox: USERS.support.username,
      profile: 'ews',
      description: 'Support inbox for the help desk',
    });
    expect(status).toBe(200);
    expect(json).toMatchObject({ status: 'authorized', description: 'Support inbox for the help desk' });
    const after = await state();
    expect([after.cache, after.token]).toEqual([before.cache, before.token]);
  });

  it('refuses a malformed reset flag', async () => {
    const { status } = await api(harness.baseUrl, 'PUT', `/api/connections/${NAME}?reset=yes`, {
      mailbox: USERS.agent.username,
      profile: 'ews',
    });
    expect(status).toBe(400);
  });
});

describe('disable and enable', () => {
  it('a disabled connection is neither served nor refreshed; enabled, it is both again', async () => {
    const disabled = await api(harness.baseUrl, 'POST', `/api/connections/${NAME}/disable`);
    expect(disabled.status).toBe(200);
    expect(disabled.json).toMatchObject({ status: 'disabled' });
    const token = await api(harness.baseUrl, 'GET', `/api/connections/${NAME}/token`);
    expect(token.status).toBe(409);
    expect(token.json).toMatchObject({ code: 'connection_disabled' });
    const refreshesBefore = harness.entra.stats.requests['token:refresh_token'] ?? 0;
    await harness.broker.refresher.refreshDue();
    const refresh = await api(harness.baseUrl, 'POST', `/api/connections/${NAME}/refresh`);
    expect(refresh.json).toMatchObject({ result: 'skipped' });
    expect(harness.entra.stats.requests['token:refresh_token'] ?? 0).toBe(refreshesBefore);

    const enabled = await api(harness.baseUrl, 'POST', `/api/connections/${NAME}/enable`);
    expect(enabled.json).toMatchObject({ status: 'authorized' });
    expect((await api(harness.baseUrl, 'GET', `/api/connections/${NAME}/token`)).status).toBe(200);
    expect((await api(harness.baseUrl, 'GET', `/api/connections/${NAME}/disable`)).status).toBe(405);
    expect((await api(harness.baseUrl, 'POST', '/api/connections/nobody/disable')).status).toBe(404);
  });
});

describe('reset and the audit trail', () => {
  it('?reset=true deletes the secrets and starts again as new, with an audit event', async () => {
    const { status, json } = await api(harness.baseUrl, 'PUT', `/api/connections/${NAME}?reset=true`, {
      mailbox: USERS.support.username,
      profile: 'graph-mail',
    });
    expect(status).toBe(200);
    expect(json).toMatchObject({
      status: 'new',
      profile: 'graph-mail',
      tokenExpiresOn: null,
      authorizedAt: null,
    });
    expect(await harness.broker.secrets.get(secretNames.cache(NAME))).toBeUndefined();
    expect(await harness.broker.secrets.get(secretNames.token(NAME))).toBeUndefined();
    const token = await api(harness.baseUrl, 'GET', `/api/connections/${NAME}/token`);
    expect(token.json).toMatchObject({ code: 'connection_not_authorized' });
    // Authorized again for the new profile, it works.
    expect(await authorizeConnection(harness, NAME)).toBe(200);
    expect((await harness.broker.registry.get(NAME))?.status).toBe('authorized');
  });

  it('lists the events newest first', async () => {
    const { status, json } = await api(harness.baseUrl, 'GET', `/api/connections/${NAME}/events?limit=20`);
    expect(status).toBe(200);
    const types = (json.events as { type: string; at: string }[]).map((event) => event.type);
    expect(types[0]).toBe('connection.authorized');
    expect(types).toEqual(
      expect.arrayContaining(['connection.reset', 'connection.disabled', 'connection.enabled']),
    );
    expect(types.indexOf('connection.reset')).toBeLessThan(types.indexOf('connection.enabled'));
    expect(types.indexOf('connection.enabled')).toBeLessThan(types.indexOf('connection.disabled'));
    for (const limit of ['0', '201', 'x']) {
      expect(
        (await api(harness.baseUrl, 'GET', `/api/connections/${NAME}/events?limit=${limit}`)).status,
      ).toBe(400);
    }
  });
});
