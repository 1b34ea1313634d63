/**
 * The Graph stand-in (sandbox/graph.ts) with real tokens from the Entra emulator: the broker's
 * Inbox probe paths, Graph's authorization rules for mail, and its error bodies and headers.
 */
import { createBearerValidator } from '../../../sandbox/bearer';
import { startGraphStandIn, type GraphStandIn } from '../../../sandbox/graph';
import { startEntraEmulator, type EntraEmulator } from '../../../sandbox/entra';
import { testPki } from '../../support/pki';

const SECRET = 'graph-stand-in-secret';
const ALICE = 'alice@contoso.test';
const BOB = 'bob@contoso.test';
const CAROL = 'carol@contoso.test';
const INBOX = '/v1.0/me/mailFolders/inbox';
const WWW_AUTHENTICATE =
  'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"';

let entra: EntraEmulator;
let graph: GraphStandIn;
let clientId: string;
let daemonId: string;
let clockOffset = 0;

beforeAll(async () => {
  const pki = testPki();
  entra = await startEntraEmulator({ pki });
  for (const username of [ALICE, BOB, CAROL]) entra.addUser({ username, password: 'Pw-1' });
  clientId = entra.registerApp({ clientSecret: SECRET, redirectUris: ['http://localhost/cb'] }).clientId;
  daemonId = entra.registerApp({
    clientSecret: SECRET,
    redirectUris: [],
    roles: ['Mail.ReadWrite'],
  }).clientId;
  graph = await startGraphStandIn({
    pki,
    validator: createBearerValidator({
      jwksUrl: `${entra.url}/common/discovery/v2.0/keys`,
      now: () => Date.now() + clockOffset,
    }),
    mailboxes: [
      { userPrincipalName: ALICE, displayName: 'Alice', inbox: { total: 42, unread: 7 } },
      { userPrincipalName: BOB, displayName: 'Bob', inbox: { total: 3, unread: 1 }, fullAccess: [ALICE] },
      {
        id: 'c0ffee00-0000-4000-8000-000000000001',
        userPrincipalName: CAROL,
        displayName: 'Carol',
        inbox: { total: 0, unread: 0 },
      },
    ],
  });
});

afterAll(async () => {
  await graph.close();
  await entra.close();
});

afterEach(() => {
  clockOffset = 0;
});

async function token(form: Record<string, string>): Promise<string> {
  const response = await fetch(`${entra.url}/${entra.tenants.primary.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  const body = (await response.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`token endpoint answered ${response.status}`);
  return body.access_token;
}

/** A delegated access token for `username`, redeemed from a minted refresh token. */
const delegated = (scopes: string[], username = ALICE) =>
  token({
    grant_type: 'refresh_token',
    client_id: clientId,
    client_secret: SECRET,
    refresh_token: entra.mintRefreshToken({ username, clientId, scopes: [...scopes, 'offline_access'] }),
  });

const appOnly = () =>
  token({
    grant_type: 'client_credentials',
    client_id: daemonId,
    client_secret: SECRET,
    scope: 'https://graph.microsoft.com/.default',
  });

interface GraphBody {
  error?: { code: string; message: string; innerError: Record<string, string> };
  [property: string]: unknown;
}

async function get(path: string, accessToken?: string, init: RequestInit = {}) {
  const headers = new Headers(init.headers);
  if (accessToken !== undefined) headers.set('authorization', `Bearer ${accessToken}`);
  const response = await fetch(`${graph.url}${path}`, { ...init, headers });
  return { status: response.status, headers: response.headers, body: (await response.json()) as GraphBody };
}

/** Graph's answers: [status, error code, message]. */
const E = {
  empty: [401, 'InvalidAuthenticationToken', 'Access token is empty.'],
  malformed: [401, 'InvalidAuthenticationToken', /^IDX14100: JWT is not well formed/],
  expired: [401, 'InvalidAuthenticationToken', 'Lifetime validation failed, the token is expired.'],
  audience: [401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.'],
  signature: [401, 'InvalidAuthenticationToken', 'Signature is invalid.'],
  denied: [403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.'],
  meAppOnly: [400, 'BadRequest', '/me request is only valid with delegated authentication flow.'],
  badId: [400, 'ErrorInvalidIdMalformed', 'Id is malformed.'],
  segment: [400, 'BadRequest', "Resource not found for the segment 'mailBoxes'."],
  method: [405, 'ErrorInvalidRequest', 'The OData request is not supported.'],
  throttled: [429, 'ApplicationThrottled', 'Application is over its MailboxConcurrency limit.'],
} as const;

function expectError(
  result: Awaited<ReturnType<typeof get>>,
  [status, code, message]: readonly [number, string, string | RegExp],
): void {
  expect({ status: result.status, code: result.body.error?.code }).toEqual({ status, code });
  expect(result.body.error?.message).toMatch(message);
  expect(result.headers.get('content-type')).toBe('application/json');
  expect(result.body.error?.innerError).toEqual({
    date: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/),
    'request-id': result.headers.get('request-id'),
    'client-request-id': result.headers.get('client-request-id'),
  });
  if (status === 401) expect(result.headers.get('www-authenticate')).toBe(WWW_AUTHENTICATE);
}

describe('Graph stand-in', () => {
  it("reads the signed-in user's Inbox as Graph answers it", async () => {
    const accessToken = await delegated(['Mail.Read']);
    const result = await get(INBOX, accessToken, { headers: { 'client-request-id': 'probe-1' } });
    expect(result.status).toBe(200);
    expect(result.headers.get('content-type')).toBe(
      'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8',
    );
    expect(result.headers.get('request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.headers.get('client-request-id')).toBe('probe-1');
    expect(result.body).toEqual({
      '@odata.context': expect.stringMatching(
        /^https:\/\/graph\.microsoft\.com\/v1\.0\/\$metadata#users\('[0-9a-f-]{36}'\)\/mailFolders\/\$entity$/,
      ),
      id: expect.stringMatching(/^AAMk/),
      displayName: 'Inbox',
      parentFolderId: expect.stringMatching(/^AAMk/),
      childFolderCount: 0,
      unreadItemCount: 7,
      totalItemCount: 42,
      sizeInBytes: expect.any(Number),
      isHidden: false,
    });
    // Well-known name case-insensitively, OData key syntax, by id, and $select.
    const selected = await get(
      `/v1.0/users/${ALICE}/mailFolders('Inbox')?$select=unreadItemCount,totalItemCount`,
      accessToken,
    );
    expect(selected.body).toEqual({
      '@odata.context': `https://graph.microsoft.com/v1.0/$metadata#users('alice%40contoso.test')/mailFolders(unreadItemCount,totalItemCount)/$entity`,
      id: result.body.id,
      unreadItemCount: 7,
      totalItemCount: 42,
    });
    expect((await get(`/v1.0/me/MailFolders/${String(result.body.id)}`, accessToken)).status).toBe(200);
    expect(graph.requests).toContainEqual({ path: INBOX, status: 200 });
  });

  it("reads another user's Inbox only with a .Shared scope and the owner's delegation", async () => {
    const shared = await delegated(['Mail.Read.Shared']);
    const bob = await get(`/v1.0/users/${BOB}/mailFolders/inbox`, shared);
    expect(bob.status).toBe(200);
    expect(bob.body).toMatchObject({ totalItemCount: 3, unreadItemCount: 1 });
    expectError(await get(`/v1.0/users/${CAROL}/mailFolders/inbox`, shared), E.denied);
    expectError(await get(`/v1.0/users/${BOB}/mailFolders/inbox`, await delegated(['Mail.Read'])), E.denied);
  });

  it('serves app-only tokens on /users/{id | upn} and refuses /me', async () => {
    const accessToken = await appOnly();
    const byUpn = await get(`/v1.0/users/${CAROL}/mailFolders/inbox`, accessToken);
    expect(byUpn.status).toBe(200);
    const byId = await get('/v1.0/users/c0ffee00-0000-4000-8000-000000000001/mailFolders/inbox', accessToken);
    expect(byId.body.id).toBe(byUpn.body.id);
    expectError(await get(INBOX, accessToken), E.meAppOnly);
  });

  it('answers an unknown user, folder, path or method with Graph codes', async () => {
    const accessToken = await appOnly();
    const nobody = 'nobody@contoso.test';
    const unknownUser = [404, 'ErrorInvalidUser', `The requested user '${nobody}' is invalid.`] as const;
    expectError(await get(`/v1.0/users/${nobody}/mailFolders/inbox`, accessToken), unknownUser);
    expectError(await get(`/v1.0/users/${BOB}/mailFolders/nope`, accessToken), E.badId);
    expectError(await get('/v1.0/me/mailBoxes/inbox'), E.segment);
    expectError(await get(INBOX, await delegated(['Mail.Read']), { method: 'DELETE' }), E.method);
  });

  it('rejects missing, malformed, expired, foreign-audience, forged and under-scoped tokens', async () => {
    expectError(await get(INBOX), E.empty);
    expectError(await get(INBOX, 'not-a-jwt'), E.malformed);
    const valid = await delegated(['Mail.Read']);
    clockOffset = 2 * 60 * 60 * 1000;
    const expired = await get(INBOX, valid);
    expectError(expired, E.expired);
    expect(JSON.stringify(expired.body)).not.toContain(valid.split('.')[1]);
    clockOffset = 0;
    const exchange = await delegated(['https://outlook.office365.com/EWS.AccessAsUser.All']);
    expectError(await get(INBOX, exchange), E.audience);
    const forged = `${valid.split('.').slice(0, 2).join('.')}.${exchange.split('.')[2] ?? ''}`;
    expectError(await get(INBOX, forged), E.signature);
    expectError(await get(INBOX, await delegated(['Mail.Send'])), E.denied);
    expect((await get(INBOX, valid)).status).toBe(200);
  });

  it('throttles the next requests with 429 and Retry-After', async () => {
    const accessToken = await delegated(['Mail.ReadBasic']);
    graph.throttleNext(2, 7);
    for (let i = 0; i < 2; i++) {
      const throttled = await get(INBOX, accessToken);
      expectError(throttled, E.throttled);
      expect(throttled.headers.get('retry-after')).toBe('7');
    }
    expect((await get(INBOX, accessToken)).status).toBe(200);
    expect(graph.requests.slice(-3).map((r) => r.status)).toEqual([429, 429, 200]);
  });
});
