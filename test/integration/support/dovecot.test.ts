/**
 * The Dovecot stand-in for Exchange Online's IMAP, POP3 and SMTP AUTH, driven with plain sockets and
 * real tokens of the Entra emulator. The exact server replies asserted here are what the broker's
 * mail probes must classify.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createBearerValidator } from '../../../sandbox/bearer';
import { startEntraEmulator, type EntraEmulator } from '../../../sandbox/entra';
import { startMailServers, type MailServers } from '../../support/dovecot';
import { testPki } from '../../support/pki';

const ALICE = 'Alice@contoso.test';
const BOB = 'bob@contoso.test';
const SHARED = 'shared@contoso.test';
const PRIVATE = 'private@contoso.test';
const OUTLOOK = 'https://outlook.office.com';
const MAIL_SCOPES = [
  `${OUTLOOK}/IMAP.AccessAsUser.All`,
  `${OUTLOOK}/POP.AccessAsUser.All`,
  `${OUTLOOK}/SMTP.Send`,
];
/** What Dovecot's XOAUTH2 sends before a failure (the client answers with an empty line). */
const XOAUTH2_ERROR = '+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=';

let entra: EntraEmulator;
let mail: MailServers;
let app: { clientId: string; clientSecret: string };
const tokens = { mail: '', bob: '', graph: '', popOnly: '', expired: '', app: '' };

async function tokenRequest(form: Record<string, string>): Promise<string> {
  const url = `${entra.url}/${entra.tenants.primary.tenantId}/oauth2/v2.0/token`;
  const body = new URLSearchParams({ client_id: app.clientId, client_secret: app.clientSecret, ...form });
  const response = await fetch(url, { method: 'POST', body });
  const json = (await response.json()) as { access_token?: string };
  if (!json.access_token) throw new Error(`no token: ${JSON.stringify(json)}`);
  return json.access_token;
}

function delegated(username: string, scopes: string[]): Promise<string> {
  const all = [...scopes, 'offline_access'];
  const refreshToken = entra.mintRefreshToken({ username, clientId: app.clientId, scopes: all });
  return tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken, scope: all.join(' ') });
}

beforeAll(async () => {
  const pki = testPki();
  entra = await startEntraEmulator({ pki });
  const tenantId = entra.tenants.primary.tenantId;
  entra.addUser({ username: ALICE, password: 'Alice-Pass-1', tenantId });
  entra.addUser({ username: BOB, password: 'Bob-Pass-1', tenantId });
  const registered = entra.registerApp({
    clientSecret: 'stand-in-secret-0123456789',
    redirectUris: ['http://localhost/api/callback'],
    tenantId,
    roles: ['IMAP.AccessAsApp', 'POP.AccessAsApp'],
  });
  app = { clientId: registered.clientId, clientSecret: 'stand-in-secret-0123456789' };
  tokens.mail = await delegated(ALICE, MAIL_SCOPES);
  tokens.bob = await delegated(BOB, MAIL_SCOPES);
  tokens.graph = await delegated(ALICE, ['https://graph.microsoft.com/Mail.Read']);
  tokens.popOnly = await delegated(ALICE, [`${OUTLOOK}/POP.AccessAsUser.All`]);
  entra.faults.accessTokenLifetimeSeconds = -600;
  tokens.expired = await delegated(ALICE, MAIL_SCOPES);
  entra.faults.accessTokenLifetimeSeconds = 3600;
  tokens.app = await tokenRequest({
    grant_type: 'client_credentials',
    scope: 'https://outlook.office365.com/.default',
  });

  mail = await startMailServers({
    pki,
    validator: createBearerValidator({ jwksUrl: `${entra.url}/common/discovery/v2.0/keys` }),
    users: [
      { username: ALICE, messages: 3 },
      { username: BOB, messages: 1 },
      { username: SHARED, messages: 2 },
      { username: PRIVATE, messages: 1 },
    ],
    appOnlyMailboxes: [SHARED],
  });
});

afterAll(async () => {
  await mail.close();
  await entra.close();
});

/** A line-oriented view of a socket (replaceable after STARTTLS). */
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
  async send(line: string | undefined, last: (reply: string) => boolean): Promise<string[]> {
    if (line !== undefined) this.socket.write(`${line}\r\n`);
    const replies: string[] = [];
    for (;;) {
      const reply = await this.next();
      replies.push(reply);
      if (last(reply)) return replies;
    }
  }
}

function tlsSocket(port: number, servername: string, socket?: Socket): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({ ...(socket ? { socket } : { host: '127.0.0.1', port }), servername }, () => {
      resolve(secure);
    });
    secure.once('error', reject);
  });
}

const xoauth2 = (user: string, token: string) =>
  Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');

/** AUTHENTICATE XOAUTH2 and, when it succeeds, SELECT INBOX: every reply line after the greeting. */
async function imap(user: string, token: string): Promise<string[]> {
  const c = new Lines(await tlsSocket(mail.imapPort, 'outlook.office365.com'));
  try {
    expect(await c.next()).toMatch(/^\* OK /);
    const done = (tag: string) => (reply: string) => reply.startsWith(`${tag} `) || reply.startsWith('+ ');
    const replies = await c.send(`a1 AUTHENTICATE XOAUTH2 ${xoauth2(user, token)}`, done('a1'));
    if (replies.at(-1)?.startsWith('+ ')) return [...replies, ...(await c.send('', done('a1')))];
    return [...replies, ...(await c.send('a2 SELECT INBOX', done('a2')))];
  } finally {
    c.socket.destroy();
  }
}

async function pop3(user: string, token: string): Promise<string[]> {
  const c = new Lines(await tlsSocket(mail.pop3Port, 'outlook.office365.com'));
  const one = () => true;
  try {
    expect(await c.next()).toMatch(/^\+OK /);
    const auth = await c.send(`AUTH XOAUTH2 ${xoauth2(user, token)}`, one);
    if (auth[0]?.startsWith('+ ')) return [...auth, ...(await c.send('', one))];
    return [...auth, ...(await c.send('STAT', one)), ...(await c.send('QUIT', one))];
  } finally {
    c.socket.destroy();
  }
}

/**
 * EHLO, STARTTLS, EHLO, AUTH XOAUTH2, QUIT: the replies from AUTH on. The response goes on a line of
 * its own after `334 ` unless `initialResponse` (Dovecot's submission takes at most ~1 KB on the AUTH line).
 */
async function smtp(user: string, token: string, initialResponse = false): Promise<string[]> {
  const plain = await new Promise<Socket>((resolve, reject) => {
    const socket = netConnect(mail.submissionPort, '127.0.0.1', () => {
      resolve(socket);
    });
    socket.once('error', reject);
  });
  const c = new Lines(plain);
  const final = (reply: string) => reply.charAt(3) === ' ';
  try {
    expect((await c.send(undefined, final)).at(-1)).toMatch(/^220 /);
    await c.send('EHLO broker.test', final);
    expect(await c.send('STARTTLS', final)).toEqual(['220 2.0.0 Begin TLS negotiation now.']);
    c.attach(await tlsSocket(mail.submissionPort, 'smtp.office365.com', plain));
    expect((await c.send('EHLO broker.test', final)).join('\n')).toContain('250-AUTH XOAUTH2 OAUTHBEARER');
    const response = xoauth2(user, token);
    const auth = initialResponse
      ? await c.send(`AUTH XOAUTH2 ${response}`, final)
      : [...(await c.send('AUTH XOAUTH2', final)), ...(await c.send(response, final))];
    const replies = auth.at(-1)?.startsWith('334 ey') ? [...auth, ...(await c.send('', final))] : auth;
    return [...replies, ...(await c.send('QUIT', final))];
  } finally {
    c.socket.destroy();
  }
}

const lastCheck = () => mail.checks.at(-1);
const IMAP_REFUSED = [XOAUTH2_ERROR, 'a1 NO [AUTHENTICATIONFAILED] Authentication failed.'];
const POP3_REFUSED = [XOAUTH2_ERROR, '-ERR [AUTH] Authentication failed.'];
const SMTP_REFUSED = [
  '334 ',
  XOAUTH2_ERROR.replace('+', '334'),
  '535 5.7.8 Authentication failed.',
  '221 2.0.0 Bye',
];

describe('Dovecot stand-in for Exchange Online IMAP / POP3 / SMTP AUTH', () => {
  it('IMAP: a delegated token of the user logs in; SELECT INBOX shows the seeded messages', async () => {
    const replies = await imap(ALICE.toLowerCase(), tokens.mail);
    expect(replies[0]).toMatch(/^a1 OK \[CAPABILITY IMAP4rev1 .*\] Logged in$/);
    expect(replies).toContain('* 3 EXISTS');
    expect(replies.at(-1)).toMatch(/^a2 OK \[READ-WRITE\] Select completed/);
    expect(lastCheck()).toEqual({ service: 'imap', user: ALICE.toLowerCase(), ok: true });
  });

  it.each([
    ['a Graph token', 'graph', ALICE, 'audience'],
    ['a token without IMAP.AccessAsUser.All', 'popOnly', ALICE, 'scope'],
    ['an expired token', 'expired', ALICE, 'expired'],
    ["another user's token", 'bob', ALICE, 'user_mismatch'],
    ['an app-only token for a mailbox not granted', 'app', PRIVATE, 'mailbox_permission'],
  ] as const)('IMAP refuses %s', async (_name, token, user, reason) => {
    expect(await imap(user, tokens[token])).toEqual(IMAP_REFUSED);
    expect(lastCheck()).toEqual({ service: 'imap', user, ok: false, reason });
  });

  it('IMAP: an app-only token opens a granted mailbox', async () => {
    const replies = await imap(SHARED, tokens.app);
    expect(replies[0]).toMatch(/^a1 OK .* Logged in$/);
    expect(replies).toContain('* 2 EXISTS');
    expect(lastCheck()).toEqual({ service: 'imap', user: SHARED, ok: true });
  });

  it('POP3: AUTH XOAUTH2 then STAT; refusals', async () => {
    const replies = await pop3(ALICE, tokens.mail);
    expect(replies.slice(0, 2)).toEqual(['+OK Logged in.', expect.stringMatching(/^\+OK 3 \d+$/)]);
    expect(replies[2]).toBe('+OK Logging out.');
    expect((await pop3(SHARED, tokens.app))[1]).toMatch(/^\+OK 2 \d+$/);
    expect(await pop3(ALICE, tokens.graph)).toEqual(POP3_REFUSED);
    expect(lastCheck()).toEqual({ service: 'pop3', user: ALICE, ok: false, reason: 'audience' });
  });

  it('SMTP submission: STARTTLS, AUTH XOAUTH2 235, QUIT; refusals 535', async () => {
    expect(await smtp(ALICE, tokens.mail)).toEqual(['334 ', '235 2.7.0 Logged in.', '221 2.0.0 Bye']);
    expect(lastCheck()).toEqual({ service: 'submission', user: ALICE, ok: true });
    // Exchange takes a token on the AUTH line; Dovecot's submission-login limits it to ~1 KB.
    expect(await smtp(ALICE, tokens.mail, true)).toEqual(['500 5.5.2 Line too long', '221 2.0.0 Bye']);
    expect(await smtp(ALICE, tokens.expired)).toEqual(SMTP_REFUSED);
    expect(lastCheck()).toMatchObject({ ok: false, reason: 'expired' });
    // An app token without SMTP.SendAsApp (this one has IMAP/POP.AccessAsApp) is refused.
    expect(await smtp(SHARED, tokens.app)).toEqual(SMTP_REFUSED);
    expect(lastCheck()).toMatchObject({ ok: false, reason: 'scope' });
  });

  it('a protocol disabled for the mailbox refuses the login; the others still work', async () => {
    mail.setProtocolEnabled(ALICE, 'imap', false);
    mail.setProtocolEnabled(ALICE, 'submission', false);
    try {
      expect(await imap(ALICE, tokens.mail)).toEqual(IMAP_REFUSED);
      expect(lastCheck()).toEqual({ service: 'imap', user: ALICE, ok: false, reason: 'protocol_disabled' });
      expect(await smtp(ALICE, tokens.mail)).toEqual(SMTP_REFUSED);
      expect(lastCheck()).toMatchObject({ service: 'submission', reason: 'protocol_disabled' });
      expect((await pop3(ALICE, tokens.mail))[0]).toBe('+OK Logged in.');
    } finally {
      mail.setProtocolEnabled(ALICE, 'imap', true);
      mail.setProtocolEnabled(ALICE, 'submission', true);
    }
    expect((await imap(ALICE, tokens.mail))[0]).toMatch(/Logged in$/);
  });

  it("the challenge before a refusal is Dovecot's fixed error JSON", () => {
    const json: unknown = JSON.parse(Buffer.from(XOAUTH2_ERROR.slice(2), 'base64').toString());
    expect(json).toEqual({ status: '401', schemes: 'bearer', scope: 'mail' });
  });

  it('records checks without tokens', () => {
    const recorded = JSON.stringify(mail.checks);
    for (const token of Object.values(tokens)) expect(recorded).not.toContain(token.split('.')[2]);
  });
});
