import {
  api,
  authorizeConnection,
  expectNoSecrets,
  startHarness,
  testConnection,
  USERS,
  type Harness,
} from '../../support/harness';

/**
 * IMAP, POP3 and SMTP Test connection against a real Dovecot whose oauth2 passdb validates the
 * Entra emulator's tokens, reached as outlook.office365.com:993/995 and smtp.office365.com:587
 * through the CONNECT proxy: real SASL XOAUTH2 exchanges, including refused ones.
 */
let harness: Harness;
const bodies: string[] = [];

beforeAll(async () => {
  harness = await startHarness({ mailboxes: { dovecot: true } });
  for (const profile of ['imap', 'pop', 'smtp']) {
    expect(
      await authorizeConnection(harness, `mail-${profile}`, USERS.support, {
        mailbox: USERS.support.username,
        profile,
      }),
    ).toBe(200);
  }
}, 60_000);

afterAll(async () => {
  try {
    expectNoSecrets(harness.secretsSeen, [...harness.logs, ...bodies]);
  } finally {
    await harness.close();
  }
});

afterEach(() => {
  harness.mailboxClockSkew.ms = 0;
  for (const service of ['imap', 'pop3', 'submission'] as const) {
    harness.mail!.setProtocolEnabled(USERS.support.username, service, true);
  }
});

const test = async (name: string) => (await testConnection(harness, name, bodies)).json;

it('IMAP: XOAUTH2 with the token route’s string, then EXAMINE INBOX', async () => {
  const result = await test('mail-imap');
  expect(result).toMatchObject({
    ok: true,
    protocol: 'imap',
    mailbox: USERS.support.username,
    details: { folder: 'INBOX', totalCount: 12, host: 'outlook.office365.com:993' },
  });
  expect(harness.mail!.checks.at(-1)).toMatchObject({
    service: 'imap',
    user: USERS.support.username,
    ok: true,
  });
  expect(harness.services!.router.tunnels).toContainEqual({
    target: 'outlook.office365.com:993',
    routed: true,
  });
  // The probe authenticates with exactly what consumers get from the token route.
  const token = await api(harness.baseUrl, 'GET', '/api/connections/mail-imap/token');
  const decoded = Buffer.from(String(token.json.xoauth2), 'base64').toString('utf8');
  expect(decoded).toBe(
    `user=${USERS.support.username}\u0001auth=Bearer ${String(token.json.access_token)}\u0001\u0001`,
  );
});

it('POP3: AUTH XOAUTH2, then STAT', async () => {
  expect(await test('mail-pop')).toMatchObject({
    ok: true,
    protocol: 'pop',
    details: { totalCount: 12, host: 'outlook.office365.com:995' },
  });
  expect(harness.mail!.checks.at(-1)).toMatchObject({ service: 'pop3', ok: true });
});

it('SMTP: STARTTLS, AUTH XOAUTH2, QUIT — no mail is sent', async () => {
  expect(await test('mail-smtp')).toMatchObject({
    ok: true,
    protocol: 'smtp',
    details: { authenticated: true, host: 'smtp.office365.com:587' },
  });
  expect(harness.mail!.checks.at(-1)).toMatchObject({ service: 'submission', ok: true });
  expect(harness.services!.router.tunnels).toContainEqual({ target: 'smtp.office365.com:587', routed: true });
});

it.each([
  ['mail-imap', 'imap', 'imap', 'Set-CASMailbox support@contoso.test -ImapEnabled $true'],
  ['mail-pop', 'pop3', 'pop', 'Set-CASMailbox support@contoso.test -PopEnabled $true'],
  [
    'mail-smtp',
    'submission',
    'smtp',
    'Set-CASMailbox support@contoso.test -SmtpClientAuthenticationDisabled $false',
  ],
] as const)(
  '%s: a protocol disabled for the mailbox is refused XOAUTH2, with the switch to flip',
  async (name, service, protocol, command) => {
    harness.mail!.setProtocolEnabled(USERS.support.username, service, false);
    const before = await harness.broker.registry.get(name);
    const result = await test(name);
    expect(result).toMatchObject({ ok: false, protocol, code: 'mail_auth_failed' });
    expect(result.detail).toMatch(/refused XOAUTH2/);
    expect(result.remedy).toContain(command);
    expect(harness.mail!.checks.at(-1)).toMatchObject({ ok: false, reason: 'protocol_disabled' });
    // The test keeps only its verdict in the row: the connection's state is as it was.
    const after = await harness.broker.registry.get(name);
    expect(after?.lastTest).toMatchObject({ ok: false, code: result.code });
    expect({ ...after, etag: '', updatedAt: '', lastTest: undefined }).toEqual({
      ...before,
      etag: '',
      updatedAt: '',
      lastTest: undefined,
    });
  },
);

it('a token the server finds expired is refused too, and the test says so plainly', async () => {
  harness.mailboxClockSkew.ms = 3 * 60 * 60 * 1000;
  const result = await test('mail-imap');
  expect(result).toMatchObject({ ok: false, code: 'mail_auth_failed' });
  expect(harness.mail!.checks.at(-1)).toMatchObject({ ok: false, reason: 'expired' });
});
