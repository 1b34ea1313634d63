/**
 * The sandbox's IMAP, POP3 and SMTP stand-in (sandbox/mail/), as `npm start` serves it: reached as
 * outlook.office365.com:993/995 and smtp.office365.com:587 through the sandbox's CONNECT proxy, and
 * driven by the broker's real probes (Test connection, and the probes alone with tokens Exchange
 * must refuse), then with plain sockets for the protocol forms the probes do not use.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { startMailStandIn } from '../../../sandbox/mail';
import { createBearerValidator } from '../../../sandbox/bearer';
import { xoauth2 } from '../../../shared/oauth/token-reader';
import { probeImap, probePop, probeSmtp } from '../../../shared/probes/mail';
import type { ProbeTarget } from '../../../shared/probes/probe';
import { testPki } from '../../support/pki';
import {
  api,
  authorizeConnection,
  expectNoSecrets,
  startHarness,
  testConnection,
  TEST_MAILBOXES,
  USERS,
  type Harness,
} from '../../support/harness';

const SUPPORT = USERS.support.username;
const AGENT = USERS.agent.username;
const SHARED = 'shared@contoso.test';
const OUTLOOK = 'https://outlook.office.com';
const MAIL_SCOPES = [
  `${OUTLOOK}/IMAP.AccessAsUser.All`,
  `${OUTLOOK}/POP.AccessAsUser.All`,
  `${OUTLOOK}/SMTP.Send`,
];
const inboxOf = (smtp: string) => TEST_MAILBOXES.find((mailbox) => mailbox.smtp === smtp)!.inbox;

let harness: Harness;
const bodies: string[] = [];
const tokens = { mail: '', graph: '', ews: '', popOnly: '' };

async function tokenRequest(form: Record<string, string>): Promise<string> {
  const url = `${harness.entra.localUrl}/${harness.env.ENTRA_TENANT_ID}/oauth2/v2.0/token`;
  const body = new URLSearchParams({
    client_id: harness.env.ENTRA_CLIENT_ID ?? '',
    client_secret: harness.env.ENTRA_CLIENT_SECRET ?? '',
    ...form,
  });
  const json = (await (await fetch(url, { method: 'POST', body })).json()) as { access_token?: string };
  if (!json.access_token) throw new Error(`no token: ${JSON.stringify(json)}`);
  harness.secretsSeen.add(json.access_token);
  return json.access_token;
}

function delegated(username: string, scopes: string[]): Promise<string> {
  const all = [...scopes, 'offline_access'];
  const refreshToken = harness.entra.mintRefreshToken({
    username,
    clientId: harness.env.ENTRA_CLIENT_ID ?? '',
    scopes: all,
  });
  return tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken, scope: all.join(' ') });
}

beforeAll(async () => {
  harness = await startHarness({
    mailboxes: {},
    appRoles: ['IMAP.AccessAsApp', 'POP.AccessAsApp', 'SMTP.SendAsApp'],
    env: { PROBE_TIMEOUT_SECONDS: '5' },
  });
  const defined: [string, { username: string; password: string }, Record<string, string>][] = [
    ['graph-own', USERS.support, { mailbox: SUPPORT, profile: 'graph-mail' }],
    ['shared-imap', USERS.agent, { mailbox: SHARED, account: AGENT, profile: 'imap' }],
    ['nodelegate-imap', USERS.support, { mailbox: SHARED, account: SUPPORT, profile: 'imap' }],
  ];
  for (const profile of ['imap', 'pop', 'smtp']) {
    defined.push([`mail-${profile}`, USERS.support, { mailbox: SUPPORT, profile }]);
  }
  for (const [name, user, definition] of defined) {
    expect(await authorizeConnection(harness, name, user, definition)).toBe(200);
  }
  for (const profile of ['imap', 'pop', 'smtp']) {
    const name = `app-${profile}`;
    const body = { mailbox: SUPPORT, profile, grant: 'client_credentials' };
    expect((await api(harness.baseUrl, 'PUT', `/api/connections/${name}`, body)).status).toBe(201);
    expect((await api(harness.baseUrl, 'POST', `/api/connections/${name}/authorize`)).status).toBe(200);
  }
  tokens.mail = await delegated(SUPPORT, MAIL_SCOPES);
  tokens.graph = await delegated(SUPPORT, ['https://graph.microsoft.com/Mail.Read']);
  tokens.ews = await delegated(SUPPORT, ['https://outlook.office365.com/EWS.AccessAsUser.All']);
  tokens.popOnly = await delegated(SUPPORT, [`${OUTLOOK}/POP.AccessAsUser.All`]);
}, 90_000);

afterAll(async () => {
  try {
    expectNoSecrets(harness.secretsSeen, [...harness.logs, ...bodies]);
  } finally {
    await harness.close();
  }
});

afterEach(() => {
  harness.mailboxClockSkew.ms = 0;
  for (const protocol of ['imap', 'pop', 'smtp'] as const) {
    harness.services!.mail.setProtocolEnabled(SUPPORT, protocol, true);
  }
});

const test = async (name: string) => (await testConnection(harness, name, bodies)).json;
const lastCheck = () => harness.services!.mail.checks.at(-1);

describe('Test connection against the sandbox (through its CONNECT proxy)', () => {
  it('IMAP: EXAMINE INBOX shows the same Inbox count Graph reports for the mailbox', async () => {
    const tunnelsBefore = harness.services!.router.tunnels.length;
    const result = await test('mail-imap');
    expect(result).toMatchObject({
      ok: true,
      protocol: 'imap',
      mailbox: SUPPORT,
      details: { folder: 'INBOX', totalCount: inboxOf(SUPPORT).total, host: 'outlook.office365.com:993' },
    });
    expect(harness.services!.router.tunnels.slice(tunnelsBefore)).toEqual([
      { target: 'outlook.office365.com:993', routed: true },
    ]);
    expect(lastCheck()).toEqual({ protocol: 'imap', user: SUPPORT, ok: true });
    const graph = await test('graph-own');
    expect(graph).toMatchObject({ ok: true, details: { totalCount: inboxOf(SUPPORT).total } });
  });

  it('POP: STAT counts the Inbox', async () => {
    expect(await test('mail-pop')).toMatchObject({
      ok: true,
      protocol: 'pop',
      details: { folder: 'INBOX', totalCount: inboxOf(SUPPORT).total, host: 'outlook.office365.com:995' },
    });
    expect(lastCheck()).toEqual({ protocol: 'pop', user: SUPPORT, ok: true });
  });

  it('SMTP: STARTTLS, AUTH XOAUTH2 235, QUIT', async () => {
    const tunnelsBefore = harness.services!.router.tunnels.length;
    expect(await test('mail-smtp')).toMatchObject({
      ok: true,
      protocol: 'smtp',
      details: { authenticated: true, host: 'smtp.office365.com:587' },
    });
    expect(harness.services!.router.tunnels.slice(tunnelsBefore)).toEqual([
      { target: 'smtp.office365.com:587', routed: true },
    ]);
    expect(lastCheck()).toEqual({ protocol: 'smtp', user: SUPPORT, ok: true });
  });

  it('a delegate with Full Access opens the shared mailbox and sees its Inbox', async () => {
    expect(await test('shared-imap')).toMatchObject({
      ok: true,
      mailbox: SHARED,
      details: { totalCount: inboxOf(SHARED).total },
    });
    expect(lastCheck()).toEqual({ protocol: 'imap', user: SHARED, ok: true });
  });

  it('someone without Full Access is refused the shared mailbox, with the grant to give', async () => {
    const result = await test('nodelegate-imap');
    expect(result).toMatchObject({ ok: false, protocol: 'imap', code: 'mail_auth_failed' });
    expect(result.detail).toBe('IMAP refused XOAUTH2: "NO AUTHENTICATE failed.".');
    expect(result.remedy).toContain(`issued for ${SHARED} (or a delegate with Full Access)`);
    expect(lastCheck()).toEqual({ protocol: 'imap', user: SHARED, ok: false, reason: 'not_delegate' });
  });

  it.each([
    ['mail-imap', 'imap', 'IMAP refused XOAUTH2: "NO AUTHENTICATE failed.".'],
    [
      'mail-pop',
      'pop',
      'POP3 refused XOAUTH2: "-ERR Authentication failure: unknown user name or bad password.".',
    ],
    [
      'mail-smtp',
      'smtp',
      'SMTP refused XOAUTH2: "535 5.7.3 Authentication unsuccessful [SANDBOX01.outlook.office365.com]".',
    ],
  ] as const)(
    '%s: a token the server finds expired is refused with Exchange’s text',
    async (name, protocol, detail) => {
      harness.mailboxClockSkew.ms = 3 * 60 * 60 * 1000;
      expect(await test(name)).toMatchObject({ ok: false, protocol, code: 'mail_auth_failed', detail });
      expect(lastCheck()).toEqual({ protocol, user: SUPPORT, ok: false, reason: 'expired' });
    },
  );

  it.each([
    ['mail-imap', 'imap', 'Set-CASMailbox support@contoso.test -ImapEnabled $true', 'AUTHENTICATE failed.'],
    ['mail-pop', 'pop', 'Set-CASMailbox support@contoso.test -PopEnabled $true', 'Authentication failure'],
    [
      'mail-smtp',
      'smtp',
      'Set-CASMailbox support@contoso.test -SmtpClientAuthenticationDisabled $false',
      '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.',
    ],
  ] as const)(
    '%s: the protocol turned off for the mailbox is refused, with the switch to flip',
    async (name, protocol, command, said) => {
      harness.services!.mail.setProtocolEnabled(SUPPORT, protocol, false);
      const result = await test(name);
      expect(result).toMatchObject({ ok: false, protocol, code: 'mail_auth_failed' });
      expect(result.detail).toContain(said);
      expect(result.remedy).toContain(command);
      expect(lastCheck()).toMatchObject({ protocol, ok: false, reason: 'protocol_disabled' });
    },
  );

  it.each(['imap', 'pop', 'smtp'])(
    'app-only %s: the app’s role and a mailbox granted to it',
    async (protocol) => {
      const result = await test(`app-${protocol}`);
      expect(result).toMatchObject({ ok: true, protocol });
      if (protocol !== 'smtp') expect(result.details).toMatchObject({ totalCount: inboxOf(SUPPORT).total });
      expect(lastCheck()).toEqual({ protocol, user: SUPPORT, ok: true });
    },
  );
});

/** A probe as Test connection runs it, with a token of the test's choosing. */
function probe(protocol: 'imap' | 'pop' | 'smtp', user: string, token: string) {
  const run = { imap: probeImap, pop: probePop, smtp: probeSmtp }[protocol];
  const target: ProbeTarget = {
    connection: {
      name: 'direct',
      mailbox: user,
      account: user,
      profile: protocol,
      grant: 'authorization_code',
      ewsUrl: undefined,
    },
    accessToken: token,
    xoauth2: xoauth2(user, token),
    cloud: harness.broker.config.cloud,
    outbound: harness.broker.outbound,
    signal: AbortSignal.timeout(5000),
    timeoutSeconds: 5,
  };
  return run(target);
}

describe("the broker's probes with tokens Exchange refuses", () => {
  it.each([
    ['a Graph token (wrong audience)', 'graph', 'audience'],
    ['an EWS token (Exchange’s audience, no IMAP scope)', 'ews', 'scope'],
    ['a token with POP.AccessAsUser.All only', 'popOnly', 'scope'],
  ] as const)('IMAP refuses %s', async (_name, token, reason) => {
    await expect(probe('imap', SUPPORT, tokens[token])).rejects.toMatchObject({
      code: 'mail_auth_failed',
      message: 'IMAP refused XOAUTH2: "NO AUTHENTICATE failed.".',
    });
    expect(lastCheck()).toEqual({ protocol: 'imap', user: SUPPORT, ok: false, reason });
  });

  it.each(['pop', 'smtp'] as const)(
    '%s refuses a Graph token and one without its scope',
    async (protocol) => {
      await expect(probe(protocol, SUPPORT, tokens.graph)).rejects.toMatchObject({
        code: 'mail_auth_failed',
      });
      expect(lastCheck()).toMatchObject({ protocol, ok: false, reason: 'audience' });
      await expect(probe(protocol, SUPPORT, tokens.ews)).rejects.toMatchObject({ code: 'mail_auth_failed' });
      expect(lastCheck()).toMatchObject({ protocol, ok: false, reason: 'scope' });
    },
  );

  it.each(['imap', 'pop', 'smtp'] as const)(
    "%s refuses a user's token for another user's mailbox",
    async (protocol) => {
      await expect(probe(protocol, AGENT, tokens.mail)).rejects.toMatchObject({ code: 'mail_auth_failed' });
      expect(lastCheck()).toEqual({ protocol, user: AGENT, ok: false, reason: 'not_delegate' });
      await expect(probe(protocol, 'nobody@contoso.test', tokens.mail)).rejects.toMatchObject({
        code: 'mail_auth_failed',
      });
      expect(lastCheck()).toMatchObject({ reason: 'unknown_mailbox' });
    },
  );

  it('the same token opens the own mailbox (the refusals above are about the token, not the path)', async () => {
    await expect(probe('imap', SUPPORT, tokens.mail)).resolves.toMatchObject({ totalCount: 12 });
    await expect(probe('pop', SUPPORT, tokens.mail)).resolves.toMatchObject({ totalCount: 12 });
    await expect(probe('smtp', SUPPORT, tokens.mail)).resolves.toMatchObject({ authenticated: true });
  });

  it('an app-only token is refused a mailbox not granted to the app', async () => {
    const other = await startMailStandIn({
      pki: testPki(),
      validator: createBearerValidator({ jwksUrl: `${harness.entra.localUrl}/common/discovery/v2.0/keys` }),
      mailboxes: TEST_MAILBOXES,
      appMailboxes: [SHARED],
    });
    const appToken = await tokenRequest({
      grant_type: 'client_credentials',
      scope: 'https://outlook.office365.com/.default',
    });
    const router = harness.services!.router;
    try {
      router.route('outlook.office365.com:993', other.imapPort);
      await expect(probe('imap', SUPPORT, appToken)).rejects.toMatchObject({ code: 'mail_auth_failed' });
      expect(other.checks.at(-1)).toEqual({
        protocol: 'imap',
        user: SUPPORT,
        ok: false,
        reason: 'app_not_granted',
      });
      await expect(probe('imap', SHARED, appToken)).resolves.toMatchObject({
        totalCount: inboxOf(SHARED).total,
      });
    } finally {
      router.route('outlook.office365.com:993', harness.services!.mail.imapPort);
      await other.close();
    }
  });
});

/** A line view of a client socket (replaceable after STARTTLS). */
class Lines {
  private buffer = '';
  private readonly queue: string[] = [];
  private waiter: (() => void) | undefined;
  constructor(public socket: Socket) {
    this.attach(socket);
  }
  private readonly onData = (chunk: Buffer) => {
    this.buffer += chunk.toString('latin1');
    for (let end = this.buffer.indexOf('\r\n'); end >= 0; end = this.buffer.indexOf('\r\n')) {
      this.queue.push(this.buffer.slice(0, end));
      this.buffer = this.buffer.slice(end + 2);
    }
    this.waiter?.();
  };
  attach(socket: Socket): void {
    this.socket.off('data', this.onData);
    this.socket = socket;
    socket.on('data', this.onData);
  }
  async next(): Promise<string> {
    while (this.queue.length === 0) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`no reply (so far: ${this.buffer})`));
        }, 5000);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.queue.shift() ?? '';
  }
  /** Sends a line (unless undefined) and reads replies up to the one `last` accepts. */
  async send(line: string | undefined, last: (reply: string) => boolean = () => true): Promise<string[]> {
    if (line !== undefined) this.socket.write(`${line}\r\n`);
    const replies: string[] = [];
    for (;;) {
      const reply = await this.next();
      replies.push(reply);
      if (last(reply)) return replies;
    }
  }
}

function tlsTo(port: number, servername: string, socket?: Socket): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({ ...(socket ? { socket } : { host: '127.0.0.1', port }), servername }, () => {
      resolve(secure);
    });
    secure.once('error', reject);
  });
}

describe('protocol forms the probes do not use', () => {
  const tagged = (tag: string) => (reply: string) => reply.startsWith(`${tag} `);

  it('IMAP: CAPABILITY before login, AUTHENTICATE XOAUTH2 with a continuation, SELECT, LOGOUT', async () => {
    const c = new Lines(await tlsTo(harness.services!.mail.imapPort, 'outlook.office365.com'));
    try {
      expect(await c.next()).toMatch(/^\* OK The Microsoft Exchange IMAP4 service is ready\. \[/);
      expect(await c.send('C01 CAPABILITY', tagged('C01'))).toEqual([
        expect.stringMatching(/^\* CAPABILITY IMAP4 IMAP4rev1 .*AUTH=XOAUTH2 SASL-IR/),
        'C01 OK CAPABILITY completed.',
      ]);
      expect(await c.send('A00 SELECT INBOX', tagged('A00'))).toEqual([
        'A00 BAD Command received in Invalid state.',
      ]);
      expect(await c.send('A01 AUTHENTICATE XOAUTH2')).toEqual(['+ ']);
      expect(await c.send(xoauth2(SUPPORT, tokens.mail), tagged('A01'))).toEqual([
        'A01 OK AUTHENTICATE completed.',
      ]);
      const selected = await c.send('A02 SELECT "INBOX"', tagged('A02'));
      expect(selected).toContain('* 12 EXISTS');
      expect(selected).toContain('* OK [UNSEEN 10] Is the first unseen message');
      expect(selected.at(-1)).toBe('A02 OK [READ-WRITE] SELECT completed.');
      expect(await c.send('A03 LOGOUT', tagged('A03'))).toEqual([
        '* BYE Microsoft Exchange Server IMAP4 server signing off.',
        'A03 OK LOGOUT completed.',
      ]);
    } finally {
      c.socket.destroy();
    }
  });

  it('IMAP: LOGIN (Basic authentication) is refused', async () => {
    const c = new Lines(await tlsTo(harness.services!.mail.imapPort, 'outlook.office365.com'));
    try {
      await c.next();
      expect(await c.send(`A1 LOGIN ${SUPPORT} ${USERS.support.password}`)).toEqual(['A1 NO LOGIN failed.']);
    } finally {
      c.socket.destroy();
    }
  });

  it('POP: CAPA offers SASL XOAUTH2; the response on the AUTH line is refused, on its own line taken', async () => {
    const c = new Lines(await tlsTo(harness.services!.mail.popPort, 'outlook.office365.com'));
    try {
      expect(await c.next()).toMatch(/^\+OK The Microsoft Exchange POP3 service is ready\. \[/);
      expect(await c.send('CAPA', (reply) => reply === '.')).toContain('SASL PLAIN XOAUTH2');
      expect(await c.send(`AUTH XOAUTH2 ${xoauth2(SUPPORT, tokens.mail)}`)).toEqual([
        '-ERR Authentication failure: unknown user name or bad password.',
      ]);
      expect(await c.send('AUTH XOAUTH2')).toEqual(['+']);
      expect(await c.send(xoauth2(SUPPORT, tokens.mail))).toEqual(['+OK User successfully authenticated.']);
      expect(await c.send('STAT')).toEqual([`+OK 12 ${12 * 8192}`]);
      expect(await c.send('QUIT')).toEqual(['+OK Microsoft Exchange Server POP3 server signing off.']);
    } finally {
      c.socket.destroy();
    }
  });

  it('SMTP: no AUTH before STARTTLS, AUTH with the response on the AUTH line, and never any mail', async () => {
    const plain = await new Promise<Socket>((resolve, reject) => {
      const socket = netConnect(harness.services!.mail.smtpPort, '127.0.0.1', () => {
        resolve(socket);
      });
      socket.once('error', reject);
    });
    const c = new Lines(plain);
    const final = (reply: string) => reply.charAt(3) === ' ';
    try {
      expect(await c.next()).toMatch(
        /^220 SANDBOX01\.outlook\.office365\.com Microsoft ESMTP MAIL Service ready/,
      );
      const hello = await c.send('EHLO broker.test', final);
      expect(hello).toContain('250-STARTTLS');
      expect(hello.join('\n')).not.toContain('AUTH');
      expect(await c.send(`AUTH XOAUTH2 ${xoauth2(SUPPORT, tokens.mail)}`)).toEqual([
        '504 5.7.4 Unrecognized authentication type',
      ]);
      expect(await c.send('MAIL FROM:<support@contoso.test>')).toEqual([
        '530 5.7.57 Client not authenticated to send mail. [SANDBOX01.outlook.office365.com]',
      ]);
      expect(await c.send('STARTTLS')).toEqual(['220 2.0.0 SMTP server ready']);
      c.attach(await tlsTo(0, 'smtp.office365.com', plain));
      expect(await c.send('EHLO broker.test', final)).toContain('250-AUTH LOGIN XOAUTH2');
      expect(await c.send(`AUTH XOAUTH2 ${xoauth2(SUPPORT, tokens.mail)}`)).toEqual([
        '235 2.7.0 Authentication successful',
      ]);
      expect(await c.send('MAIL FROM:<support@contoso.test>')).toEqual([
        expect.stringMatching(/^554 5\.7\.0 /),
      ]);
      expect(await c.send('DATA')).toEqual([expect.stringMatching(/^554 5\.7\.0 /)]);
      expect(await c.send('QUIT')).toEqual(['221 2.0.0 Service closing transmission channel']);
    } finally {
      c.socket.destroy();
    }
  });

  it('records checks without tokens', () => {
    const recorded = JSON.stringify(harness.services!.mail.checks);
    for (const token of Object.values(tokens)) expect(recorded).not.toContain(token.split('.')[2]);
  });
});
