import { request as httpRequest } from 'node:http';
import { startLocalHost, type LocalHost } from '../../../scripts/host';
import { secretNames } from '../../../shared/secrets/secret-store';
import { authorizeConnection, freePort, startHarness, USERS, type Harness } from '../../support/harness';

/**
 * Every route × every kind of caller, through the local host: who gets in, and that a refused
 * request changes nothing (registry etag and secret versions compared before and after).
 * "Azure" callers go to a broker with App Service Authentication on, whose identity header they
 * carry as the platform would set it.
 */
const READER = 'aaaaaaaa-1111-2222-3333-444444444444';
const STRANGER = 'bbbbbbbb-1111-2222-3333-444444444444';
const NAME = 'support-in';

type Caller =
  | 'anonymous'
  | 'forged principal, authentication off'
  | 'signed-in user without a role'
  | 'token reader listed'
  | 'token reader not listed'
  | 'admin'
  | 'local with BROKER_LOCAL_ADMIN'
  | 'local without BROKER_LOCAL_ADMIN'
  | 'foreign Host'
  | 'cross-site Origin';

type Kind = 'public' | 'admin' | 'token' | 'callback';
interface Route {
  method: string;
  path: string;
  kind: Kind;
  body?: unknown;
  /** What a caller allowed in gets (the request reaches the handler). */
  allowed: number;
}

const ROUTES: Route[] = [
  { method: 'GET', path: '/api/health', kind: 'public', allowed: 200 },
  { method: 'GET', path: '/api/connections', kind: 'admin', allowed: 200 },
  { method: 'GET', path: `/api/connections/${NAME}`, kind: 'admin', allowed: 200 },
  {
    method: 'PUT',
    path: `/api/connections/${NAME}`,
    kind: 'admin',
    body: { mailbox: USERS.support.username, profile: 'ews', readers: [READER] },
    allowed: 200,
  },
  { method: 'DELETE', path: '/api/connections/nobody-here', kind: 'admin', allowed: 404 },
  { method: 'GET', path: `/api/connections/${NAME}/authorize`, kind: 'admin', allowed: 302 },
  { method: 'POST', path: `/api/connections/${NAME}/authorize`, kind: 'admin', allowed: 400 },
  { method: 'POST', path: `/api/connections/${NAME}/refresh`, kind: 'admin', allowed: 200 },
  { method: 'POST', path: `/api/connections/${NAME}/test`, kind: 'admin', allowed: 200 },
  {
    method: 'PUT',
    path: `/api/connections/${NAME}/password`,
    kind: 'admin',
    body: { password: 'x' },
    allowed: 400,
  },
  { method: 'POST', path: '/api/connections/nobody-here/disable', kind: 'admin', allowed: 404 },
  { method: 'POST', path: '/api/connections/nobody-here/enable', kind: 'admin', allowed: 404 },
  { method: 'GET', path: `/api/connections/${NAME}/events`, kind: 'admin', allowed: 200 },
  { method: 'GET', path: '/api/console', kind: 'admin', allowed: 200 },
  // The console's script holds no data: anyone may load it (the page that uses it is the admin's).
  { method: 'GET', path: '/api/console.js', kind: 'public', allowed: 200 },
  { method: 'POST', path: '/api/connections/nobody-here/graph', kind: 'admin', allowed: 404 },
  { method: 'GET', path: '/api/graph-readiness', kind: 'admin', allowed: 200 },
  { method: 'GET', path: `/api/connections/${NAME}/token`, kind: 'token', allowed: 200 },
  { method: 'GET', path: '/api/callback?state=unknown', kind: 'callback', allowed: 400 },
  { method: 'POST', path: `/api/connections/${NAME}/invitations`, kind: 'admin', allowed: 201 },
  { method: 'DELETE', path: `/api/connections/${NAME}/invitations`, kind: 'admin', allowed: 204 },
  // The invitation link needs no role: its page is the same for all; a forged one is refused alike (410).
  { method: 'GET', path: '/api/invitation', kind: 'public', allowed: 200 },
  {
    method: 'POST',
    path: '/api/invitation/details',
    kind: 'public',
    body: { token: 'A'.repeat(43) },
    allowed: 410,
  },
  // The Sign in form posts a form; anything else is refused before any lookup.
  { method: 'POST', path: '/api/invitation', kind: 'public', body: { token: 'A'.repeat(43) }, allowed: 415 },
];

const ROLE_OF: Partial<Record<Caller, string[]>> = {
  'signed-in user without a role': [],
  'token reader listed': ['Broker.TokenReader'],
  'token reader not listed': ['Broker.TokenReader'],
  admin: ['Broker.Admin'],
};

function expected(caller: Caller, route: Route): number {
  if (caller === 'foreign Host') return 421;
  // Regression: a GET …/authorize from another site started a sign-in; it changes state like a POST.
  const changes = route.method !== 'GET' || route.path.endsWith('/authorize');
  if (caller === 'cross-site Origin') return changes ? 403 : route.allowed;
  if (route.kind === 'public' || route.kind === 'callback') return route.allowed;
  const admin = caller === 'admin' || caller === 'local with BROKER_LOCAL_ADMIN';
  if (admin) return route.allowed;
  const anonymous = [
    'anonymous',
    'forged principal, authentication off',
    'local without BROKER_LOCAL_ADMIN',
  ].includes(caller);
  // Signed out in Azure, the console sends the admin to sign in (App Service Authentication).
  if (caller === 'anonymous' && route.path === '/api/console') return 302;
  if (anonymous) return 401;
  if (route.kind === 'token' && caller === 'token reader listed') return route.allowed;
  return 403;
}

function principal(roles: string[], oid: string): string {
  return Buffer.from(
    JSON.stringify({
      auth_typ: 'aad',
      name_typ: 'name',
      role_typ: 'roles',
      claims: [
        { typ: 'name', val: 'caller' },
        { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: oid },
        ...roles.map((val) => ({ typ: 'roles', val })),
      ],
    }),
  ).toString('base64');
}

let harness: Harness;
let azure: LocalHost;
let localNoAdmin: LocalHost;

beforeAll(async () => {
  harness = await startHarness({ mailboxes: {} });
  expect(
    await authorizeConnection(harness, NAME, USERS.support, {
      mailbox: USERS.support.username,
      profile: 'ews',
      readers: [READER],
    }),
  ).toBe(200);
  azure = await startLocalHost({
    broker: harness.secondBroker({ WEBSITE_AUTH_ENABLED: 'true', BROKER_LOCAL_ADMIN: 'false' }),
    port: await freePort(),
  });
  localNoAdmin = await startLocalHost({
    broker: harness.secondBroker({ BROKER_LOCAL_ADMIN: 'false' }),
    port: await freePort(),
  });
}, 60_000);

afterAll(async () => {
  await azure.close();
  await localNoAdmin.close();
  await harness.close();
});

function send(caller: Caller, route: Route) {
  const headers: Record<string, string> = {};
  let base = harness.baseUrl;
  const roles = ROLE_OF[caller];
  if (roles) {
    base = azure.url;
    headers['X-MS-CLIENT-PRINCIPAL'] = principal(
      roles,
      caller === 'token reader not listed' ? STRANGER : READER,
    );
  } else if (caller === 'anonymous') base = azure.url;
  else if (caller === 'forged principal, authentication off') {
    base = localNoAdmin.url;
    headers['X-MS-CLIENT-PRINCIPAL'] = principal(['Broker.Admin'], READER);
  } else if (caller === 'local without BROKER_LOCAL_ADMIN') base = localNoAdmin.url;
  else if (caller === 'foreign Host') headers.Host = `broker.attacker.example:${new URL(base).port}`;
  else if (caller === 'cross-site Origin') {
    headers.Origin = 'https://attacker.example';
    headers['Sec-Fetch-Site'] = 'cross-site';
  }
  return raw(base, route.method, route.path, route.body, headers);
}

/**
 * A request exactly as given: node:http, because fetch may not set Host and follows redirects.
 */
function raw(
  base: string,
  method: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  const url = new URL(path, base);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      {
        host: '127.0.0.1',
        port: url.port,
        method,
        path: url.pathname + url.search,
        headers: {
          Host: url.host,
          ...(payload
            ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(payload)) }
            : {}),
          ...headers,
        },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, text });
        });
      },
    );
    request.on('error', reject);
    request.end(payload);
  });
}

async function snapshot() {
  const connection = await harness.broker.registry.get(NAME);
  const secrets = await Promise.all(
    [secretNames.cache(NAME), secretNames.token(NAME), secretNames.password(NAME)].map((name) =>
      harness.broker.secrets.get(name),
    ),
  );
  return { etag: connection?.etag, versions: secrets.map((secret) => secret?.version) };
}

const CALLERS: Caller[] = [
  'anonymous',
  'forged principal, authentication off',
  'signed-in user without a role',
  'token reader listed',
  'token reader not listed',
  'admin',
  'local with BROKER_LOCAL_ADMIN',
  'local without BROKER_LOCAL_ADMIN',
  'foreign Host',
  'cross-site Origin',
];

describe.each(CALLERS)('%s', (caller) => {
  it.each(ROUTES.map((route) => [`${route.method} ${route.path}`, route] as const))(
    '%s',
    async (_label, route) => {
      const before = await snapshot();
      const response = await send(caller, route);
      const want = expected(caller, route);
      expect({ status: response.status }).toEqual({ status: want });
      if (want >= 400) expect(await snapshot()).toEqual(before);
    },
  );
});

it('regression: the local host trusted any Host — a rebound name cannot list connections or read tokens', async () => {
  for (const path of ['/api/connections', `/api/connections/${NAME}/token`]) {
    const response = await raw(harness.baseUrl, 'GET', path, undefined, {
      Host: `rebound.example:${new URL(harness.baseUrl).port}`,
    });
    expect(response.status).toBe(421);
    expect(response.text).not.toContain('access_token');
  }
});

it('regression: small inputs caused 500s — a malformed escape or Host header is a 400', async () => {
  expect((await raw(harness.baseUrl, 'GET', '/api/connections/%zz', undefined, {})).status).toBe(400);
  expect((await raw(harness.baseUrl, 'GET', '/api/connections/%E9/token', undefined, {})).status).toBe(400);
  expect(
    (await raw(harness.baseUrl, 'GET', '/api/health', undefined, { Host: 'local host:1:2' })).status,
  ).toBe(400);
});
