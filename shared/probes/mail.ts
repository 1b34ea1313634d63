/**
 * IMAP, POP3 and SMTP probes: SASL XOAUTH2 with exactly the string the token route hands out,
 * then one read-only step (EXAMINE INBOX, STAT) or none (SMTP: QUIT right after AUTH, no mail is
 * ever sent). The client sequences follow Microsoft's "Authenticate an IMAP, POP or SMTP
 * connection using OAuth": IMAP with an initial response, POP and SMTP with a continuation.
 * The few commands needed are written here rather than pulled in as three client libraries, so
 * each server reply can be classified exactly and nothing is loaded until a test runs.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import type { MailEndpoint } from '../clouds';
import { classifyNetworkError } from './network';
import type { ProbeTarget } from './probe';
import { ProbeFailure, type ProbeDetails } from './result';

const MAX_LINE = 64 * 1024;

/** A CRLF line reader/writer over a socket that can be upgraded to TLS (STARTTLS). */
class LineSession {
  private buffer = '';
  private lines: string[] = [];
  private waiting: { resolve: (line: string) => void; reject: (error: unknown) => void } | undefined;
  private failure: unknown;

  constructor(
    private socket: Socket,
    private readonly signal: AbortSignal,
  ) {
    this.attach(socket);
    signal.addEventListener(
      'abort',
      () => {
        this.fail(signal.reason);
      },
      { once: true },
    );
  }

  private attach(socket: Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let index: number;
      while ((index = this.buffer.indexOf('\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, index).replace(/\r$/, ''));
        this.buffer = this.buffer.slice(index + 1);
      }
      if (this.buffer.length > MAX_LINE)
        this.fail(new ProbeFailure('upstream_error', 'The server sent an over-long line.'));
      this.deliver();
    });
    socket.on('error', (error) => {
      this.fail(error);
    });
    socket.on('close', () => {
      this.fail(new ProbeFailure('connect_failed', 'The server closed the connection.'));
    });
  }

  private fail(error: unknown): void {
    this.failure ??= error;
    this.deliver();
    this.socket.destroy();
  }

  private deliver(): void {
    if (!this.waiting) return;
    const line = this.lines.shift();
    const waiting = this.waiting;
    if (line !== undefined) {
      this.waiting = undefined;
      waiting.resolve(line);
    } else if (this.failure !== undefined) {
      this.waiting = undefined;
      waiting.reject(this.failure);
    }
  }

  readLine(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.deliver();
    });
  }

  write(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** STARTTLS: the same socket, now under TLS, with the certificate checked for `host`. */
  async upgrade(host: string): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data').removeAllListeners('close').removeAllListeners('error');
    this.socket = await secure(plain, host, this.signal);
    this.attach(this.socket);
  }

  close(): void {
    this.socket.removeAllListeners('close');
    this.socket.end();
    this.socket.destroy();
  }
}

function secure(socket: Socket, host: string, signal: AbortSignal): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({ socket, servername: host });
    const onAbort = () => tls.destroy(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    tls.once('secureConnect', () => {
      tls.off('error', reject);
      resolve(tls);
    });
    tls.once('error', reject);
  });
}

/** Server text shown to admins: one bounded line, never anything token-shaped. */
function plain(text: string): string {
  return text.replace(/[A-Za-z0-9+/=_-]{40,}/g, '[…]').slice(0, 200);
}

/** The JSON error some servers send as a SASL challenge after a refused XOAUTH2 response. */
function challengeStatus(base64: string): string | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(base64, 'base64').toString('utf8')) as { status?: unknown };
    return typeof parsed.status === 'string' ? parsed.status : undefined;
  } catch {
    return undefined;
  }
}

function refused(protocol: string, reply: string, challenge: string | undefined): ProbeFailure {
  const status = challenge ? ` (SASL error status ${challenge})` : '';
  return new ProbeFailure('mail_auth_failed', `${protocol} refused XOAUTH2: "${plain(reply)}"${status}.`);
}

async function open(target: ProbeTarget, endpoint: MailEndpoint, implicitTls: boolean): Promise<LineSession> {
  const socket = await target.outbound.connect(endpoint.host, endpoint.port, target.signal);
  return new LineSession(
    implicitTls ? await secure(socket, endpoint.host, target.signal) : socket,
    target.signal,
  );
}

/** Runs a mail probe; anything below the protocol (socket, TLS, DNS, proxy, time) is classified here. */
async function withSession(
  target: ProbeTarget,
  endpoint: MailEndpoint,
  implicitTls: boolean,
  talk: (session: LineSession) => Promise<ProbeDetails>,
): Promise<ProbeDetails> {
  let session: LineSession | undefined;
  try {
    session = await open(target, endpoint, implicitTls);
    return { ...(await talk(session)), host: `${endpoint.host}:${endpoint.port}` };
  } catch (error) {
    if (error instanceof ProbeFailure && !target.signal.aborted) throw error;
    throw classifyNetworkError(target.signal.aborted ? target.signal.reason : error, {
      ...endpoint,
      timeoutSeconds: target.timeoutSeconds,
    });
  } finally {
    session?.close();
  }
}

async function imapTagged(
  session: LineSession,
  tag: string,
  onUntagged: (line: string) => void = () => undefined,
) {
  for (;;) {
    const line = await session.readLine();
    if (line.startsWith(`${tag} `)) return line.slice(tag.length + 1);
    onUntagged(line);
  }
}

export function probeImap(target: ProbeTarget): Promise<ProbeDetails> {
  return withSession(target, target.cloud.imap, true, async (session) => {
    const greeting = await session.readLine();
    if (!/^\* (OK|PREAUTH)\b/i.test(greeting))
      throw new ProbeFailure('upstream_error', `IMAP greeting: "${plain(greeting)}"`);
    session.write(`A1 AUTHENTICATE XOAUTH2 ${target.xoauth2}`);
    let challenge: string | undefined;
    const auth = await imapTagged(session, 'A1', (line) => {
      if (line.startsWith('+')) {
        challenge = challengeStatus(line.slice(1).trim()) ?? 'unknown';
        session.write('');
      }
    });
    if (!/^OK\b/i.test(auth)) throw refused('IMAP', auth, challenge);
    let exists: number | undefined;
    session.write('A2 EXAMINE INBOX');
    const examined = await imapTagged(session, 'A2', (line) => {
      const count = /^\* (\d+) EXISTS/i.exec(line)?.[1];
      if (count !== undefined) exists = Number(count);
    });
    if (!/^OK\b/i.test(examined) || exists === undefined) {
      throw new ProbeFailure('mailbox_access_denied', `IMAP could not open INBOX: "${plain(examined)}"`);
    }
    session.write('A3 LOGOUT');
    return { folder: 'INBOX', totalCount: exists };
  });
}

export function probePop(target: ProbeTarget): Promise<ProbeDetails> {
  return withSession(target, target.cloud.pop, true, async (session) => {
    const greeting = await session.readLine();
    if (!greeting.startsWith('+OK'))
      throw new ProbeFailure('upstream_error', `POP3 greeting: "${plain(greeting)}"`);
    session.write('AUTH XOAUTH2');
    const ready = await session.readLine();
    if (!ready.startsWith('+')) throw refused('POP3', ready, undefined);
    session.write(target.xoauth2);
    let reply = await session.readLine();
    let challenge: string | undefined;
    if (reply.startsWith('+ ') || reply === '+') {
      challenge = challengeStatus(reply.slice(1).trim()) ?? 'unknown';
      session.write('');
      reply = await session.readLine();
    }
    if (!reply.startsWith('+OK')) throw refused('POP3', reply, challenge);
    session.write('STAT');
    const stat = await session.readLine();
    const match = /^\+OK (\d+) (\d+)/.exec(stat);
    if (!match) throw new ProbeFailure('mailbox_access_denied', `POP3 STAT failed: "${plain(stat)}"`);
    session.write('QUIT');
    return { folder: 'INBOX', totalCount: Number(match[1]), sizeBytes: Number(match[2]) };
  });
}

async function smtpReply(session: LineSession): Promise<{ code: number; text: string; lines: string[] }> {
  const lines: string[] = [];
  for (;;) {
    const line = await session.readLine();
    lines.push(line);
    if (!/^\d{3}-/.test(line)) return { code: Number(line.slice(0, 3)) || 0, text: line, lines };
  }
}

export function probeSmtp(target: ProbeTarget): Promise<ProbeDetails> {
  return withSession(target, target.cloud.smtp, false, async (session) => {
    const greeting = await smtpReply(session);
    if (greeting.code !== 220)
      throw new ProbeFailure('upstream_error', `SMTP greeting: "${plain(greeting.text)}"`);
    session.write('EHLO ews-oauth-broker');
    const hello = await smtpReply(session);
    if (!hello.lines.some((line) => /^250[- ]STARTTLS\b/i.test(line))) {
      throw new ProbeFailure('tls_failed', 'The SMTP server does not offer STARTTLS.');
    }
    session.write('STARTTLS');
    const ready = await smtpReply(session);
    if (ready.code !== 220) throw new ProbeFailure('tls_failed', `STARTTLS refused: "${plain(ready.text)}"`);
    await session.upgrade(target.cloud.smtp.host);
    session.write('EHLO ews-oauth-broker');
    await smtpReply(session);
    session.write('AUTH XOAUTH2');
    const proceed = await smtpReply(session);
    if (proceed.code !== 334) throw refused('SMTP', proceed.text, undefined);
    session.write(target.xoauth2);
    let reply = await smtpReply(session);
    let challenge: string | undefined;
    if (reply.code === 334) {
      challenge = challengeStatus(reply.text.slice(4).trim()) ?? 'unknown';
      session.write('');
      reply = await smtpReply(session);
    }
    if (reply.code !== 235) throw refused('SMTP', reply.text, challenge);
    session.write('QUIT');
    return { authenticated: true };
  });
}
