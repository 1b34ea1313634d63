/**
 * Drives a broker on this machine the way a person and a script do: a browser that keeps cookies
 * (and POSTs Entra's form_post), the JSON admin API, a free loopback port, and a table prefix of
 * its own. The tests and the benchmarks both use these; nothing here imports test/.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';

/**
 * A loopback port free now, for a server that must know its address before it listens (the
 * redirect URI is registered first). Chosen below Linux's ephemeral range (32768–60999): a port
 * from `listen(0)` is in that range, and between our check and the real listen any outgoing
 * connection on the machine may be given it as its source port (EADDRINUSE in CI).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canListen(port)) return port;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => {
      resolve(false);
    });
    server.listen(port, '127.0.0.1', () => {
      server.close(() => {
        resolve(true);
      });
    });
  });
}

/**
 * A table-name prefix of its own for a test file or test (letters and digits, starts with a letter,
 * 11 characters: leaves 52 for the table name), so tests sharing the run's Azurite never see each other's rows.
 */
export function uniqueTablePrefix(label = 't'): string {
  const head = label.replace(/[^A-Za-z0-9]/g, '').slice(0, 3) || 't';
  const safeHead = /^[A-Za-z]/.test(head) ? head : `t${head}`.slice(0, 3);
  return `${safeHead}${randomBytes(6).toString('hex')}`.slice(0, 11);
}

export class Browser {
  private readonly cookies = new Map<string, string>();

  get(url: string | URL): Promise<Response> {
    return this.send(new URL(url), {});
  }

  /**
   * What a browser does with Entra's response_mode=form_post page: POSTs its fields, from Entra's
   * origin (a cross-site request), to the callback.
   */
  postForm(url: string | URL, fields: URLSearchParams, fromOrigin: string): Promise<Response> {
    return this.send(new URL(url), {
      method: 'POST',
      body: fields.toString(),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: fromOrigin,
        'sec-fetch-site': 'cross-site',
      },
    });
  }

  /** What a browser sends for a form on one of the broker's own pages: a same-origin POST. */
  submitForm(url: string | URL, fields: URLSearchParams = new URLSearchParams()): Promise<Response> {
    const target = new URL(url);
    return this.send(target, {
      method: 'POST',
      body: fields.toString(),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: target.origin,
        'sec-fetch-site': 'same-origin',
      },
    });
  }

  private async send(
    target: URL,
    init: { method?: string; body?: string; headers?: Record<string, string> },
  ) {
    const cookieHeader = [...this.cookies.entries()].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(target, {
      ...init,
      redirect: 'manual',
      headers: {
        ...init.headers,
        ...(cookieHeader && target.hostname === 'localhost' ? { cookie: cookieHeader } : {}),
      },
    });
    for (const setCookie of response.headers.getSetCookie()) {
      const [pair] = setCookie.split(';');
      const index = pair?.indexOf('=') ?? -1;
      if (pair && index > 0) {
        const name = pair.slice(0, index);
        const value = pair.slice(index + 1);
        if (value === '' || /max-age=0/i.test(setCookie)) this.cookies.delete(name);
        else this.cookies.set(name, value);
      }
    }
    return response;
  }

  forget(): void {
    this.cookies.clear();
  }
}

/** JSON API calls as an admin would make them. */
export async function api(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; json: Record<string, unknown>; text: string }> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    json = {};
  }
  return { status: response.status, headers: response.headers, json, text };
}
