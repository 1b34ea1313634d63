/**
 * A real Dovecot 2.3 on loopback as the stand-in for Exchange Online's mail protocols: IMAP and POP3
 * on implicit-TLS ports (as outlook.office365.com:993/995) and the submission service with STARTTLS
 * (as smtp.office365.com:587). SASL XOAUTH2 / OAUTHBEARER succeed only with an Entra access token
 * that Exchange Online would take for that protocol and mailbox:
 *
 * - delegated: `aud` https://outlook.office.com and `scp` IMAP.AccessAsUser.All / POP.AccessAsUser.All /
 *   SMTP.Send; the SASL user must be the token's user (upn / preferred_username, case-insensitively);
 * - app-only: `aud` https://outlook.office365.com and `roles` IMAP.AccessAsApp / POP.AccessAsApp /
 *   SMTP.SendAsApp; the SASL user is the mailbox, which must be in `appOnlyMailboxes` (as
 *   `Add-MailboxPermission` or an RBAC-for-Applications role assignment grants);
 * - the mailbox exists and has the protocol enabled (`Set-CASMailbox -ImapEnabled/-PopEnabled`,
 *   `SmtpClientAuthenticationDisabled`): see `setProtocolEnabled`.
 *
 * Wiring (found in Dovecot 2.3.19's sources and by trying it):
 * - passdb `oauth2` with `introspection_mode = post` asks a node:http server here. `introspection_url`
 *   gets no variable expansion (a `%` in it even crashes the auth process), so the request carries
 *   only the token; `send_auth_headers = yes` adds X-Dovecot-Auth-Service (imap, pop3, submission)
 *   and X-Dovecot-Auth-Local / -Remote (ip:port).
 * - the SASL user reaches the same server through Dovecot's auth policy check, which runs before
 *   the passdb (`auth_policy_check_before_auth`) and is told the requested user and the connection's
 *   addresses; the introspection request is matched to it by the client's address and port.
 * - the server answers `{"active":true,"username":<user>}` or `{"active":false}`; Dovecot compares the
 *   username with the SASL user (both lowercased by `username_format = %Lu`).
 * - anvil's auth-penalty socket is a stub here that always answers "no penalty": otherwise each
 *   failure from 127.0.0.1 delays every later login from it by 2, 4, 8 ... 15 s.
 * - Dovecot's submission service connects to its relay right after AUTH (and answers 421 when it
 *   cannot), so a stub SMTP relay here accepts the connection; it delivers nothing.
 *
 * Where it may differ from Exchange Online (clients must cope with both):
 * - a refused XOAUTH2 first gets a `+ <base64 {"status":"401","schemes":"bearer","scope":"mail"}>`
 *   (SMTP `334 <same>`) challenge, which the client answers with an empty line, then the failure;
 *   a client must also take a NO / -ERR / 535 that comes at once;
 * - SMTP: Dovecot's submission-login takes at most ~1 KB of parameters on the AUTH line, so a
 *   token as initial response (`AUTH XOAUTH2 <base64>`) gets `500 5.5.2 Line too long`; send
 *   `AUTH XOAUTH2`, then the response after `334 ` (Exchange Online takes either form);
 * - Dovecot counts connections from the local address (127.0.0.1 to 127.0.0.1) as secured: the
 *   submission port offers and takes AUTH before STARTTLS, where Exchange requires STARTTLS.
 * - greetings and texts are Dovecot's (`* OK ... Dovecot (Debian) ready.`, `NO [AUTHENTICATIONFAILED]
 *   Authentication failed.`), not Exchange's (`NO AUTHENTICATE failed.`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import type { BearerRequirements, BearerValidator } from '../../sandbox/bearer';
import { freePort } from './harness';

export type MailService = 'imap' | 'pop3' | 'submission';

export interface MailUser {
  username: string;
  /** Messages seeded into INBOX (SELECT INBOX / STAT report them). */
  messages: number;
  /** Protocols enabled for the mailbox (default true each). */
  imap?: boolean;
  pop?: boolean;
  smtp?: boolean;
}

export interface MailServersOptions {
  pki: { serverCertPem: string; serverKeyPem: string };
  validator: BearerValidator;
  users: MailUser[];
  /** Mailboxes app-only tokens may open (the service principal's mailbox permissions). */
  appOnlyMailboxes?: string[];
}

/**
 * One token check. `reason` is a `BearerFailure` of sandbox/bearer.ts ('malformed', 'bad_signature',
 * 'expired', 'not_yet_valid', 'audience', 'scope') or 'user_mismatch' (delegated token of another
 * user), 'unknown_mailbox', 'mailbox_permission' (app-only token, mailbox not granted),
 * 'protocol_disabled', 'validator_error' (Dovecot then answers a temporary failure) or
 * 'unknown_connection' (no policy request matched; a bug here).
 */
export interface MailCheck {
  service: MailService;
  /** The SASL user as the client sent it. */
  user: string;
  ok: boolean;
  reason?: string;
}

export interface MailServers {
  /** All on 127.0.0.1; IMAP and POP3 implicit TLS, submission STARTTLS. */
  imapPort: number;
  pop3Port: number;
  submissionPort: number;
  /** Each token check the stand-in made: service, user, result (never the token). */
  checks: MailCheck[];
  setProtocolEnabled(username: string, service: MailService, on: boolean): void;
  close(): Promise<void>;
}

export const DOVECOT_PACKAGES = 'dovecot-core dovecot-imapd dovecot-pop3d dovecot-submissiond';
const NOT_INSTALLED = `Dovecot is not installed: run \`apt-get install -y ${DOVECOT_PACKAGES}\` (as root)`;

const DELEGATED_AUDIENCE = 'https://outlook.office.com';
const APP_AUDIENCE = 'https://outlook.office365.com';
const DELEGATED_SCOPE: Record<MailService, string> = {
  imap: 'IMAP.AccessAsUser.All',
  pop3: 'POP.AccessAsUser.All',
  submission: 'SMTP.Send',
};
const APP_ROLE: Record<MailService, string | undefined> = {
  imap: 'IMAP.AccessAsApp',
  pop3: 'POP.AccessAsApp',
  submission: 'SMTP.SendAsApp',
};
const SERVICES: readonly MailService[] = ['imap', 'pop3', 'submission'];

interface Account {
  name: string;
  uid: number;
  gid: number;
}

function findDovecot(): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  const binary = dirs
    .map((dir) => join(dir, 'dovecot'))
    .find((path) => path.startsWith('/') && existsSync(path));
  if (!binary) throw new Error(NOT_INSTALLED);
  // Debian's layout: each protocol's processes come with their own package.
  if (existsSync('/usr/lib/dovecot')) {
    const missing = SERVICES.filter((name) => !existsSync(join('/usr/lib/dovecot', name)));
    if (missing.length > 0) throw new Error(`${NOT_INSTALLED} (missing: ${missing.join(', ')})`);
  }
  return binary;
}

function lookup(file: '/etc/passwd' | '/etc/group', field: 0 | 2, value: string): string[] | undefined {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .find((entry) => entry[field] === value);
}

function account(name: string): Account {
  const entry = lookup('/etc/passwd', 0, name);
  if (!entry) throw new Error(`${NOT_INSTALLED} (no system user '${name}')`);
  return { name, uid: Number(entry[2]), gid: Number(entry[3]) };
}

function chownTree(path: string, owner: Account): void {
  chownSync(path, owner.uid, owner.gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) chownTree(child, owner);
    else chownSync(child, owner.uid, owner.gid);
  }
}

function seedMaildir(root: string, user: MailUser): void {
  const dir = join(root, user.username.toLowerCase());
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(dir, sub), { recursive: true });
  for (let i = 1; i <= user.messages; i++) {
    const date = new Date(Date.UTC(2025, 0, 1, 8, i));
    const message = [
      'From: Seed <seed@contoso.test>',
      `To: <${user.username}>`,
      `Subject: Seeded message ${i}`,
      `Date: ${date.toUTCString()}`,
      `Message-ID: <seed-${i}.${user.username}>`,
      '',
      `Message ${i} of ${user.messages}.`,
      '',
    ].join('\r\n');
    writeFileSync(join(dir, 'cur', `${date.getTime() / 1000}.M${i}P1.stand-in:2,`), message);
  }
}

/** Calls `onLine` for each line a socket sends (CRLF or LF). */
function onLines(socket: Socket, onLine: (line: string) => void): void {
  let buffer = '';
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
      onLine(buffer.slice(0, end).replace(/\r$/, ''));
      buffer = buffer.slice(end + 1);
    }
  });
  socket.on('error', () => undefined);
}

function listen(server: NetServer, target: number | string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    if (typeof target === 'number') server.listen(target, '127.0.0.1', resolve);
    else server.listen(target, resolve);
  });
}

function portOf(server: NetServer): number {
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

/** A server that ends its sockets on close (Dovecot keeps connections open). */
function trackedServer(onSocket: (socket: Socket) => void): { server: NetServer; close(): Promise<void> } {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    onSocket(socket);
  });
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

function relayStub() {
  return trackedServer((socket) => {
    socket.write('220 relay.stand-in ESMTP\r\n');
    onLines(socket, (line) => {
      const verb = line.split(' ')[0]?.toUpperCase() ?? '';
      if (verb === 'EHLO' || verb === 'HELO') socket.write('250-relay.stand-in\r\n250 8BITMIME\r\n');
      else if (verb === 'QUIT') socket.end('221 2.0.0 Bye\r\n');
      else if (verb === 'RSET' || verb === 'NOOP') socket.write('250 2.0.0 OK\r\n');
      else socket.write('554 5.7.1 The stand-in relay delivers no mail\r\n');
    });
  });
}

function anvilPenaltyStub() {
  return trackedServer((socket) => {
    onLines(socket, (line) => {
      if (line.startsWith('PENALTY-GET\t')) socket.write('0 0\n');
    });
  });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function header(req: IncomingMessage, name: string): string {
  const value = req.headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? '';
}

/** Unverified peek at the payload: app-only tokens carry `roles` and no `scp`. */
function isAppOnly(token: string): boolean {
  try {
    const payload = JSON.parse(
      Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'),
    ) as Record<string, unknown>;
    return payload.idtyp === 'app' || (payload.scp === undefined && Array.isArray(payload.roles));
  } catch {
    return false;
  }
}

function dovecotConfig(p: {
  dir: string;
  root: boolean;
  internal: Account;
  internalGroup: string;
  login: Account;
  mail: Account;
  ports: { imap: number; pop3: number; submission: number };
  authPort: number;
  relayPort: number;
}): string {
  // As non-root, no chroot (the login processes and anvil are chrooted by default).
  const chroot = p.root ? '' : '  chroot =\n';
  return `# Written by test/support/dovecot.ts
instance_name = stand-in-${randomBytes(4).toString('hex')}
base_dir = ${p.dir}/run
state_dir = ${p.dir}/state
log_path = ${p.dir}/dovecot.log
protocols = imap pop3 submission
listen = 127.0.0.1
hostname = localhost
default_internal_user = ${p.internal.name}
default_internal_group = ${p.internalGroup}
default_login_user = ${p.login.name}
first_valid_uid = ${p.mail.uid}
last_valid_uid = ${p.mail.uid}
first_valid_gid = ${p.mail.gid}
mail_location = maildir:${p.dir}/mail/%u

ssl = required
ssl_cert = <${p.dir}/tls/server.crt
ssl_key = <${p.dir}/tls/server.key
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = xoauth2 oauthbearer
auth_username_format = %Lu
auth_failure_delay = 0
auth_verbose = yes
auth_policy_server_url = http://127.0.0.1:${p.authPort}/policy
auth_policy_hash_nonce = ${randomBytes(16).toString('hex')}
auth_policy_request_attributes = login=%{orig_user} protocol=%s rip=%{rip} rport=%{rport} lip=%{lip} lport=%{lport}
auth_policy_check_before_auth = yes
auth_policy_check_after_auth = no
auth_policy_report_after_auth = no
auth_policy_reject_on_fail = yes

passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${p.dir}/oauth2.conf
}
userdb {
  driver = static
  args = uid=${p.mail.uid} gid=${p.mail.gid} home=${p.dir}/mail/%u allow_all_users=yes
}

submission_relay_host = 127.0.0.1
submission_relay_port = ${p.relayPort}
submission_relay_ssl = no

service imap-login {
${chroot}  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = ${p.ports.imap}
    ssl = yes
  }
}
service pop3-login {
${chroot}  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = ${p.ports.pop3}
    ssl = yes
  }
}
service submission-login {
${chroot}  inet_listener submission {
    port = ${p.ports.submission}
  }
}
service anvil {
${chroot}  # The auth process connects to a stub at this path instead (see the file's comment).
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
`;
}

function oauth2Config(authPort: number): string {
  return `introspection_mode = post
introspection_url = http://127.0.0.1:${authPort}/introspect
force_introspection = yes
send_auth_headers = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
`;
}

function waitForPort(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (exited(child)) return;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      resolve();
    }),
  );
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exit;
  clearTimeout(timer);
}

export async function startMailServers(options: MailServersOptions): Promise<MailServers> {
  const binary = findDovecot();
  const root = process.getuid?.() === 0;
  const me = userInfo();
  const self: Account = { name: me.username, uid: me.uid, gid: me.gid };
  const internal = root ? account('dovecot') : self;
  const internalGroup = root ? 'dovecot' : (lookup('/etc/group', 2, String(me.gid))?.[0] ?? me.username);
  const login = root ? account('dovenull') : self;
  const mail = root ? account('nobody') : self;

  const mailboxes = new Map<string, Record<MailService, boolean>>();
  for (const user of options.users) {
    if (!/^[A-Za-z0-9._@-]+$/.test(user.username))
      throw new Error(`unusable mailbox name '${user.username}'`);
    mailboxes.set(user.username.toLowerCase(), {
      imap: user.imap ?? true,
      pop3: user.pop ?? true,
      submission: user.smtp ?? true,
    });
  }
  const appOnly = new Set((options.appOnlyMailboxes ?? []).map((mailbox) => mailbox.toLowerCase()));
  const checks: MailCheck[] = [];
  /** The SASL user of each connection being authenticated, from the policy request. */
  const pending = new Map<string, string>();

  async function decide(
    service: MailService,
    user: string | undefined,
    token: string,
  ): Promise<{ ok: true } | { ok: false; reason: string }> {
    const appToken = isAppOnly(token);
    const role = APP_ROLE[service];
    const requirements: BearerRequirements = appToken
      ? { audiences: [APP_AUDIENCE], scopes: [], roles: role ? [role] : [] }
      : { audiences: [DELEGATED_AUDIENCE], scopes: [DELEGATED_SCOPE[service]], roles: [] };
    const result = await options.validator.check(`Bearer ${token}`, requirements);
    if (!result.ok) return { ok: false, reason: result.reason };
    if (user === undefined) return { ok: false, reason: 'unknown_connection' };
    if (!appToken) {
      const { upn, preferred_username: preferred } = result.claims;
      const tokenUser = typeof upn === 'string' ? upn : typeof preferred === 'string' ? preferred : '';
      if (tokenUser.toLowerCase() !== user.toLowerCase()) return { ok: false, reason: 'user_mismatch' };
    }
    const mailbox = mailboxes.get(user.toLowerCase());
    if (!mailbox) return { ok: false, reason: 'unknown_mailbox' };
    if (appToken && !appOnly.has(user.toLowerCase())) return { ok: false, reason: 'mailbox_permission' };
    if (!mailbox[service]) return { ok: false, reason: 'protocol_disabled' };
    return { ok: true };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    if (req.method === 'POST' && req.url?.startsWith('/policy?command=allow')) {
      const attrs = JSON.parse(body) as Record<string, string | undefined>;
      if (pending.size > 1000) pending.clear();
      pending.set(
        `${attrs.rip ?? ''}:${attrs.rport ?? ''}>${attrs.lip ?? ''}:${attrs.lport ?? ''}`,
        attrs.login ?? '',
      );
      sendJson(res, 200, { status: 0, msg: '' });
      return;
    }
    const service = header(req, 'x-dovecot-auth-service');
    if (req.method !== 'POST' || req.url !== '/introspect' || !SERVICES.includes(service as MailService)) {
      sendJson(res, 404, { error: 'not_found' });
      return;
    }
    const key = `${header(req, 'x-dovecot-auth-remote')}>${header(req, 'x-dovecot-auth-local')}`;
    const user = pending.get(key);
    pending.delete(key);
    const token = new URLSearchParams(body).get('token') ?? '';
    let verdict: Awaited<ReturnType<typeof decide>>;
    try {
      verdict = await decide(service as MailService, user, token);
    } catch {
      verdict = { ok: false, reason: 'validator_error' };
    }
    checks.push({ service: service as MailService, user: user ?? '', ...verdict });
    if (verdict.ok) sendJson(res, 200, { active: true, username: user });
    else if (verdict.reason === 'validator_error') sendJson(res, 500, { error: 'server_error' });
    else sendJson(res, 200, { active: false });
  }

  const auth = createHttpServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
    });
  });
  const relay = relayStub();
  const anvil = anvilPenaltyStub();
  let child: ChildProcess | undefined;

  const dir = mkdtempSync(join(tmpdir(), 'dovecot-stand-in-'));
  const cleanup = async () => {
    if (child) await stopProcess(child);
    auth.closeAllConnections();
    await Promise.all([
      new Promise<void>((resolve) =>
        auth.close(() => {
          resolve();
        }),
      ),
      relay.close(),
      anvil.close(),
    ]);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    // Traversable by the unprivileged login, auth and mail processes.
    chmodSync(dir, 0o755);
    for (const sub of ['run', 'state', 'tls', 'mail']) mkdirSync(join(dir, sub), { mode: 0o755 });
    writeFileSync(join(dir, 'tls', 'server.crt'), options.pki.serverCertPem, { mode: 0o600 });
    writeFileSync(join(dir, 'tls', 'server.key'), options.pki.serverKeyPem, { mode: 0o600 });
    for (const user of options.users) {
      seedMaildir(join(dir, 'mail'), user);
      if (root) chownTree(join(dir, 'mail', user.username.toLowerCase()), mail);
    }

    await listen(auth, 0);
    await listen(relay.server, 0);
    // Made before Dovecot starts: the master leaves an existing file at a disabled listener's path.
    const penaltySocket = join(dir, 'run', 'anvil-auth-penalty');
    await listen(anvil.server, penaltySocket);
    chmodSync(penaltySocket, 0o666);
    writeFileSync(join(dir, 'oauth2.conf'), oauth2Config(portOf(auth)));

    for (let attempt = 1; ; attempt++) {
      const ports = { imap: await freePort(), pop3: await freePort(), submission: await freePort() };
      if (new Set(Object.values(ports)).size < 3) continue;
      const conf = join(dir, 'dovecot.conf');
      writeFileSync(
        conf,
        dovecotConfig({
          dir,
          root,
          internal,
          internalGroup,
          login,
          mail,
          ports,
          authPort: portOf(auth),
          relayPort: portOf(relay.server),
        }),
      );
      const started = spawn(binary, ['-F', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
      child = started;
      let output = '';
      started.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      started.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      started.on('error', (error) => (output += String(error)));
      const deadline = Date.now() + 15_000;
      const waiting = new Set(Object.values(ports));
      while (waiting.size > 0 && !exited(started) && Date.now() < deadline) {
        for (const port of [...waiting]) if (await waitForPort(port)) waiting.delete(port);
        if (waiting.size > 0) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      if (waiting.size === 0) return makeServers(ports);
      await stopProcess(started);
      const log = existsSync(join(dir, 'dovecot.log')) ? readFileSync(join(dir, 'dovecot.log'), 'utf8') : '';
      if (attempt < 3 && /Address already in use/.test(output + log)) continue;
      throw new Error(
        `Dovecot did not start (exit ${String(started.exitCode ?? started.signalCode)}):\n${output}${log.slice(-4000)}`,
      );
    }
  } catch (error) {
    await cleanup();
    throw error;
  }

  function makeServers(ports: { imap: number; pop3: number; submission: number }): MailServers {
    return {
      imapPort: ports.imap,
      pop3Port: ports.pop3,
      submissionPort: ports.submission,
      checks,
      setProtocolEnabled(username, service, on) {
        const mailbox = mailboxes.get(username.toLowerCase());
        if (!mailbox) throw new Error(`no mailbox '${username}'`);
        mailbox[service] = on;
      },
      close: cleanup,
    };
  }
}
