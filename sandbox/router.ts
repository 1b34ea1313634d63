/**
 * A forward proxy (HTTP CONNECT, RFC 9110 §9.3.6) that tunnels Microsoft 365 host names to the
 * local stand-ins. The broker reaches it through HTTPS_PROXY exactly as an enterprise deployment
 * reaches its TLS-inspecting proxy, so the sandbox and the tests run the production code paths:
 * real host names (outlook.office365.com:993, graph.microsoft.com:443, ...), SNI and certificate
 * checks against NODE_EXTRA_CA_CERTS. It records every tunnel so a test can prove nothing went
 * around it, and refuses targets it has no route for (502), as a locked-down proxy would.
 * A plain-HTTP target (Azurite's http:// table endpoint) comes as an absolute-form request
 * (`GET http://host:port/path`, RFC 9112 §3.2.2) and is forwarded to its route the same way.
 */
import {
  createServer,
  request as forward,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
} from 'node:http';
import { connect, type Socket } from 'node:net';
import { listenOnLoopback } from './listen';

export interface RouterOptions {
  /** `host:port` (lower-case) → local port on 127.0.0.1. */
  routes: Record<string, number>;
  /** Default 0 (ephemeral); always bound to 127.0.0.1. */
  port?: number;
}

export interface Tunnel {
  /** `host:port` the client asked for. */
  target: string;
  routed: boolean;
  /** The method of an absolute-form (plain-HTTP) request; absent for CONNECT. */
  method?: string;
}

export interface Router {
  /** `http://127.0.0.1:PORT`: the value of HTTPS_PROXY. */
  url: string;
  port: number;
  /**
   * Every CONNECT and every absolute-form HTTP request seen, in order. Other requests to the proxy
   * itself (origin-form) are refused with 405 and recorded too.
   */
  tunnels: Tunnel[];
  /** Adds or replaces a route, closing the tunnels open to the old one. */
  route(target: string, localPort: number): void;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['proxy-authorization', 'proxy-connection', 'connection', 'keep-alive']);

/** Without hop-by-hop and proxy headers; the Host header (the name asked for) goes on. */
function endToEnd(incoming: IncomingMessage['headers']): OutgoingHttpHeaders {
  return Object.fromEntries(Object.entries(incoming).filter(([name]) => !HOP_BY_HOP.has(name)));
}

function refuse(socket: Socket, status: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
}

export async function startRouter(options: RouterOptions): Promise<Router> {
  const routes = new Map(
    Object.entries(options.routes).map(([target, port]) => [target.toLowerCase(), port]),
  );
  const tunnels: Tunnel[] = [];
  const open = new Set<Socket>();
  const openByTarget = new Map<string, Set<Socket>>();

  const server: Server = createServer((request, response) => {
    const absolute = /^http:\/\//i.test(request.url ?? '') ? new URL(request.url ?? '') : undefined;
    const method = request.method ?? 'GET';
    if (!absolute) {
      // Not a proxy request (origin-form, addressed to the proxy itself).
      tunnels.push({ target: request.headers.host ?? '', routed: false });
      response.writeHead(405, { Allow: 'CONNECT', 'Content-Length': '0' }).end();
      return;
    }
    const target = `${absolute.hostname}:${absolute.port || '80'}`.toLowerCase();
    const localPort = routes.get(target);
    tunnels.push({ target, routed: localPort !== undefined, method });
    if (localPort === undefined) {
      response.writeHead(502, { 'Content-Length': '0', Connection: 'close' }).end();
      return;
    }
    const upstream = forward(
      {
        host: '127.0.0.1',
        port: localPort,
        method,
        path: `${absolute.pathname}${absolute.search}`,
        headers: endToEnd(request.headers),
        agent: false,
      },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEnd(answer.headers));
        answer.pipe(response);
      },
    );
    upstream.on('error', () => {
      if (response.headersSent) response.destroy();
      else response.writeHead(502, { 'Content-Length': '0' }).end();
    });
    request.pipe(upstream);
  });

  server.on('connect', (request: IncomingMessage, client: Socket, head: Buffer) => {
    const target = (request.url ?? '').toLowerCase();
    const localPort = routes.get(target);
    tunnels.push({ target, routed: localPort !== undefined });
    open.add(client);
    const sockets = openByTarget.get(target) ?? new Set<Socket>();
    openByTarget.set(target, sockets.add(client));
    client.on('close', () => {
      open.delete(client);
      sockets.delete(client);
    });
    client.on('error', () => client.destroy());
    if (localPort === undefined) {
      refuse(client, '502 Bad Gateway');
      return;
    }
    let established = false;
    const upstream = connect(localPort, '127.0.0.1', () => {
      established = true;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    open.add(upstream);
    upstream.on('close', () => {
      open.delete(upstream);
      if (established) client.destroy();
    });
    upstream.on('error', () => {
      if (!established) refuse(client, '502 Bad Gateway');
    });
    client.on('close', () => upstream.destroy());
  });

  const port = await listenOnLoopback(server, options.port);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    tunnels,
    route(target, localPort) {
      routes.set(target.toLowerCase(), localPort);
      // Kept-alive tunnels still lead to the old place: close them, as a reconfigured proxy would.
      for (const socket of openByTarget.get(target.toLowerCase()) ?? []) socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
