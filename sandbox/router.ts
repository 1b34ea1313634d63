/**
 * A forward proxy (HTTP CONNECT, RFC 9110 §9.3.6) that tunnels Microsoft 365 host names to the
 * local stand-ins. The broker reaches it through HTTPS_PROXY exactly as an enterprise deployment
 * reaches its TLS-inspecting proxy, so the sandbox and the tests run the production code paths:
 * real host names (outlook.office365.com:993, graph.microsoft.com:443, ...), SNI and certificate
 * checks against NODE_EXTRA_CA_CERTS. It records every tunnel so a test can prove nothing went
 * around it, and refuses targets it has no route for (502), as a locked-down proxy would.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
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
}

export interface Router {
  /** `http://127.0.0.1:PORT`: the value of HTTPS_PROXY. */
  url: string;
  port: number;
  /** Every CONNECT seen, in order. Plain (non-CONNECT) proxy requests are refused and recorded too. */
  tunnels: Tunnel[];
  /** Adds or replaces a route, closing the tunnels open to the old one. */
  route(target: string, localPort: number): void;
  close(): Promise<void>;
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
    // Only tunnels: the broker never sends plain HTTP through the proxy.
    tunnels.push({ target: request.headers.host ?? '', routed: false });
    response.writeHead(405, { Allow: 'CONNECT', 'Content-Length': '0' }).end();
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
        server.close(() => {
          resolve();
        });
      }),
  };
}
