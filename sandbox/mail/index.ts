/**
 * Exchange Online's mail protocols for the sandbox and the tests, in Node (no Dovecot, no root):
 * IMAP on implicit TLS (outlook.office365.com:993), POP3 on implicit TLS (:995) and SMTP
 * submission with STARTTLS (smtp.office365.com:587), each on a loopback port the sandbox's CONNECT
 * proxy routes those names to. They speak what a client needs to prove a token (SASL XOAUTH2, then
 * EXAMINE INBOX, STAT, or nothing for SMTP) and decide logins as Exchange does (./authority.ts).
 * SMTP never accepts mail.
 */
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer } from 'node:tls';
import type { BearerValidator } from '../bearer';
import { listenOnLoopback } from '../listen';
import { createMailAuthority, type MailCheck, type MailMailbox, type MailProtocol } from './authority';
import { imapSession } from './imap';
import { ClientLines } from './lines';
import { popSession } from './pop';
import { smtpSession } from './smtp';

export type { MailCheck, MailMailbox, MailProtocol, MailRefusal } from './authority';

export interface MailStandInOptions {
  pki: { serverCertPem: string; serverKeyPem: string };
  validator: BearerValidator;
  mailboxes: MailMailbox[];
  /** Mailboxes app-only tokens may open (granted to the app's service principal); default all. */
  appMailboxes?: string[];
}

export interface MailStandIn {
  /** Loopback ports: IMAP and POP3 implicit TLS, SMTP plain with STARTTLS. */
  imapPort: number;
  popPort: number;
  smtpPort: number;
  /** Every XOAUTH2 attempt decided: protocol, `user=`, verdict and reason (never the token). */
  checks: MailCheck[];
  /** `Set-CASMailbox -ImapEnabled / -PopEnabled / -SmtpClientAuthenticationDisabled` for one mailbox. */
  setProtocolEnabled(mailbox: string, protocol: MailProtocol, on: boolean): void;
  close(): Promise<void>;
}

/** The name the greetings and SMTP replies carry, where Exchange puts its front-end server's. */
const SERVER_NAME = 'SANDBOX01.outlook.office365.com';
/** A client silent this long is dropped (Exchange's IMAP/POP idle limits are longer; nothing here idles). */
const IDLE_MS = 60_000;

export async function startMailStandIn(options: MailStandInOptions): Promise<MailStandIn> {
  const authority = createMailAuthority(options);
  const certificate = { cert: options.pki.serverCertPem, key: options.pki.serverKeyPem };
  const tls = createSecureContext(certificate);
  const sockets = new Set<Socket>();

  const serve = (session: (lines: ClientLines) => Promise<void>) => (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setTimeout(IDLE_MS, () => socket.destroy());
    const lines = new ClientLines(socket);
    session(lines).then(
      () => lines.socket.end(),
      () => lines.socket.destroy(),
    );
  };

  const servers: Server[] = [
    createTlsServer(
      certificate,
      serve((lines) => imapSession(lines, authority, SERVER_NAME)),
    ),
    createTlsServer(
      certificate,
      serve((lines) => popSession(lines, authority, SERVER_NAME)),
    ),
    createNetServer(serve((lines) => smtpSession(lines, authority, SERVER_NAME, tls))),
  ];
  for (const server of servers) server.on('tlsClientError', (_error, socket: Socket) => socket.destroy());
  const [imapPort = 0, popPort = 0, smtpPort = 0] = await Promise.all(
    servers.map((server) => listenOnLoopback(server)),
  );

  return {
    imapPort,
    popPort,
    smtpPort,
    checks: authority.checks,
    setProtocolEnabled: (mailbox, protocol, on) => {
      authority.setProtocolEnabled(mailbox, protocol, on);
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => {
                resolve();
              });
            }),
        ),
      );
    },
  };
}
