import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';

/** Longer lines end the connection: an XOAUTH2 response with an Entra token is a few KB. */
const MAX_LINE = 64 * 1024;

/**
 * The server side of a CRLF line protocol (IMAP, POP3, SMTP) over a socket that SMTP can upgrade
 * to TLS with STARTTLS. `next()` resolves with each line the client sent, or undefined once the
 * connection is gone.
 */
export class ClientLines {
  private buffer = '';
  private readonly queue: string[] = [];
  private waiter: (() => void) | undefined;
  private closed = false;

  constructor(public socket: Socket) {
    this.attach(socket);
  }

  private readonly onData = (chunk: Buffer) => {
    this.buffer += chunk.toString('latin1');
    for (let end = this.buffer.indexOf('\n'); end >= 0; end = this.buffer.indexOf('\n')) {
      this.queue.push(this.buffer.slice(0, end).replace(/\r$/, ''));
      this.buffer = this.buffer.slice(end + 1);
    }
    if (this.buffer.length > MAX_LINE) this.socket.destroy();
    this.wake();
  };

  private readonly onClose = () => {
    this.closed = true;
    this.wake();
  };

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('end', this.onClose);
    socket.on('error', () => socket.destroy());
  }

  async next(): Promise<string | undefined> {
    while (this.queue.length === 0) {
      if (this.closed) return undefined;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
    return this.queue.shift();
  }

  write(...lines: string[]): void {
    if (!this.socket.destroyed) this.socket.write(lines.map((line) => `${line}\r\n`).join(''));
  }

  /** Writes the last lines and closes the connection. */
  end(...lines: string[]): void {
    this.write(...lines);
    this.socket.end();
  }

  /** STARTTLS (RFC 3207): the same connection, now TLS; false when the handshake failed. */
  async startTls(context: SecureContext): Promise<boolean> {
    const plain = this.socket;
    plain.off('data', this.onData).off('close', this.onClose).off('end', this.onClose);
    // Anything the client pipelined after STARTTLS was sent in clear: RFC 3207 §4.2 says discard it.
    this.buffer = '';
    this.queue.length = 0;
    const secure = new TLSSocket(plain, { isServer: true, secureContext: context });
    const ok = await new Promise<boolean>((resolve) => {
      secure.once('secure', () => {
        resolve(true);
      });
      secure.once('error', () => {
        resolve(false);
      });
      secure.once('close', () => {
        resolve(false);
      });
    });
    this.attach(secure);
    if (!ok) this.onClose();
    return ok;
  }
}

/** A POP3 or SMTP command line: its verb as sent and in capitals, and its non-empty arguments. */
export function commandOf(line: string): { word: string; command: string; args: string[] } {
  const [word = '', ...rest] = line.split(' ');
  return { word, command: word.toUpperCase(), args: rest.filter(Boolean) };
}
