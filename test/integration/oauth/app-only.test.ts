import { createBearerValidator } from '../../../sandbox/bearer';
import { startEwsStandIn } from '../../../sandbox/ews';
import { secretNames } from '../../../shared/secrets/secret-store';
import { testPki } from '../../support/pki';
import {
  api,
  Browser,
  expectNoSecrets,
  startHarness,
  testConnection,
  TEST_MAILBOXES,
  type Harness,
} from '../../support/harness';

/**
 * The app-only grant (client_credentials) end to end: Authorize acquires without a browser, the
 * refresh re-acquires, no refresh token exists, and Test connection uses the token as Exchange
 * requires: EWS with ExchangeImpersonation and X-AnchorMailbox, IMAP/POP with `user=` the mailbox
 * (Dovecot allows the app on that mailbox only), Graph as /users/{mailbox}.
 */
let harness: Harness;
const bodies: string[] = [];
const MAILBOX = TEST_MAILBOXES[0]!.smtp;

beforeAll(async () => {
  harness = await startHarness({
    mailboxes: { dovecot: true },
    appRoles: [
      'full_access_as_app',
      'IMAP.AccessAsApp',
      'POP.AccessAsApp',
      'SMTP.SendAsApp',
      'Mail.ReadWrite',
    ],
  });
  for (const profile of ['ews', 'imap', 'pop', 'smtp', 'graph-mail']) {
    const defined = await api(harness.baseUrl, 'PUT', `/api/connections/app-${profile}`, {
      mailbox: MAILBOX,
      profile,
      grant: 'client_credentials',
    });
    expect(defined.status).toBe(201);
  }
}, 60_000);

afterAll(async () => {
  try {
    expectNoSecrets(harness.secretsSeen, [...harness.logs, ...bodies]);
  } finally {
    await harness.close();
  }
});

async function authorize(name: string) {
  const response = await api(harness.baseUrl, 'POST', `/api/connections/${name}/authorize`);
  bodies.push(response.text);
  return response;
}

it('Authorize acquires and publishes an app-only token without a browser; no refresh token is kept', async () => {
  const before = harness.entra.stats.requests['token:client_credentials'] ?? 0;
  const { status, json } = await authorize('app-ews');
  expect(status).toBe(200);
  expect(json).toMatchObject({
    signedInAs: `app ${harness.env.ENTRA_CLIENT_ID!}`,
    connection: { status: 'authorized', grant: 'client_credentials' },
  });
  expect(harness.entra.stats.requests['token:client_credentials']).toBe(before + 1);
  expect(await harness.broker.secrets.get(secretNames.cache('app-ews'))).toBeUndefined();
  const token = await api(harness.baseUrl, 'GET', '/api/connections/app-ews/token');
  harness.secretsSeen.add(String(token.json.access_token));
  const claims = JSON.parse(
    Buffer.from(String(token.json.access_token).split('.')[1]!, 'base64url').toString('utf8'),
  ) as { aud: string; roles: string[] };
  expect(claims.aud).toBe('https://outlook.office365.com');
  expect(claims.roles).toContain('full_access_as_app');
  expect(token.json.scope).toBe('https://outlook.office365.com/.default');
});

it('a refresh re-acquires from the app credential', async () => {
  const before = harness.entra.stats.requests['token:client_credentials'] ?? 0;
  const { status, json } = await api(harness.baseUrl, 'POST', '/api/connections/app-ews/refresh');
  bodies.push(JSON.stringify(json));
  expect(status).toBe(200);
  expect(json).toMatchObject({ result: 'refreshed' });
  expect(harness.entra.stats.requests['token:client_credentials']).toBe(before + 1);
  expect(await harness.broker.secrets.get(secretNames.cache('app-ews'))).toBeUndefined();
});

it('Test connection impersonates the mailbox over EWS', async () => {
  const { json } = await testConnection(harness, 'app-ews', bodies);
  expect(json).toMatchObject({ ok: true, protocol: 'ews', details: { folder: 'Inbox', totalCount: 12 } });
  const request = harness.services!.ews.requests.at(-1);
  expect(request).toMatchObject({ impersonated: MAILBOX, anchorMailbox: MAILBOX });
});

it('ews-shared app-only impersonates the shared mailbox and names it in the FolderId', async () => {
  await api(harness.baseUrl, 'PUT', '/api/connections/app-shared', {
    mailbox: 'shared@contoso.test',
    profile: 'ews-shared',
    grant: 'client_credentials',
  });
  expect((await authorize('app-shared')).status).toBe(200);
  const { json } = await testConnection(harness, 'app-shared', bodies);
  expect(json).toMatchObject({ ok: true, details: { totalCount: 7 } });
  expect(harness.services!.ews.requests.at(-1)).toMatchObject({ impersonated: 'shared@contoso.test' });
});

it('says impersonation_denied when Exchange does not let the app act as the mailbox', async () => {
  const strict = await startEwsStandIn({
    pki: testPki(),
    validator: createBearerValidator({ jwksUrl: `${harness.entra.url}/common/discovery/v2.0/keys` }),
    mailboxes: [{ smtp: MAILBOX, displayName: 'Support', inbox: { total: 1, unread: 0 } }],
    impersonationAppIds: ['00000000-0000-0000-0000-000000000001'],
  });
  try {
    harness.services!.router.route('outlook.office365.com:443', strict.port);
    const { json } = await testConnection(harness, 'app-ews', bodies);
    expect(json).toMatchObject({ ok: false, code: 'impersonation_denied' });
    expect(json.detail).toContain('ErrorImpersonateUserDenied');
    expect(json.remedy).toContain(harness.env.ENTRA_CLIENT_ID!);
  } finally {
    harness.services!.router.route('outlook.office365.com:443', harness.services!.ews.port);
    await strict.close();
  }
});

it.each([
  ['app-imap', 'imap', 'imap'],
  ['app-pop', 'pop', 'pop3'],
])(
  '%s: XOAUTH2 with user= the mailbox and an app token (IMAP.AccessAsApp / POP.AccessAsApp)',
  async (name, protocol, service) => {
    expect((await authorize(name)).status).toBe(200);
    const { json } = await testConnection(harness, name, bodies);
    expect(json).toMatchObject({ ok: true, protocol, details: { totalCount: 12 } });
    expect(harness.mail!.checks.at(-1)).toMatchObject({ service, user: MAILBOX, ok: true });
  },
);

it('app-smtp: SMTP AUTH XOAUTH2 with user= the mailbox and an app token (SMTP.SendAsApp), no mail sent', async () => {
  expect((await authorize('app-smtp')).status).toBe(200);
  const published = await harness.broker.secrets.get(secretNames.token('app-smtp'));
  const claims = JSON.parse(Buffer.from(published!.value.split('.')[1]!, 'base64url').toString()) as {
    aud: string;
    roles: string[];
  };
  expect(claims).toMatchObject({
    aud: 'https://outlook.office365.com',
    roles: expect.arrayContaining(['SMTP.SendAsApp']),
  });
  const { json } = await testConnection(harness, 'app-smtp', bodies);
  expect(json).toMatchObject({ ok: true, protocol: 'smtp', details: { authenticated: true } });
  expect(harness.mail!.checks.at(-1)).toMatchObject({ service: 'submission', user: MAILBOX, ok: true });
});

it('Graph app-only reads /users/{mailbox}', async () => {
  expect((await authorize('app-graph-mail')).status).toBe(200);
  const { json } = await testConnection(harness, 'app-graph-mail', bodies);
  expect(json).toMatchObject({ ok: true, protocol: 'graph', details: { totalCount: 12 } });
  expect(harness.services!.graph.requests.at(-1)?.path).toBe(
    `/v1.0/users/${encodeURIComponent(MAILBOX)}/mailFolders/inbox`,
  );
});

it('GET authorize in a browser does the same and shows the result page', async () => {
  const response = await new Browser().get(`${harness.baseUrl}/api/connections/app-ews/authorize`);
  const page = await response.text();
  expect(response.status).toBe(200);
  expect(page).toContain('Authorized');
});

it('refuses the browser flow for app-only, and the server-side one for a sign-in connection', async () => {
  await api(harness.baseUrl, 'PUT', '/api/connections/delegated', { mailbox: MAILBOX, profile: 'ews' });
  const post = await authorize('delegated');
  expect(post.status).toBe(400);
  expect(post.json).toMatchObject({ code: 'invalid_request' });
  expect((await harness.broker.registry.get('delegated'))?.status).toBe('new');
});

it('refuses what Exchange has no application permission for, and device_code', async () => {
  for (const body of [
    { mailbox: MAILBOX, profile: 'graph-mail-shared', grant: 'client_credentials' },
    { mailbox: MAILBOX, profile: 'imap', grant: 'device_code' },
  ]) {
    const response = await api(harness.baseUrl, 'PUT', '/api/connections/refused', body);
    expect(response.status).toBe(400);
    expect(response.json).toMatchObject({ code: 'invalid_connection' });
  }
  expect(await harness.broker.registry.get('refused')).toBeUndefined();
});
