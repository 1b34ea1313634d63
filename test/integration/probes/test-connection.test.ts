import { createServer as createTlsServer } from 'node:tls';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';
import { createBearerValidator } from '../../../sandbox/bearer';
import { startEwsStandIn, type EwsStandIn } from '../../../sandbox/ews';
import { secretNames } from '../../../shared/secrets/secret-store';
import { testPki } from '../../support/pki';
import { USER_AGENT, USER_AGENT_PATTERN } from '../../../shared/net/user-agent';
import { allowListSnippet } from '../../../shared/probes/remedies';
import {
  api,
  authorizeConnection,
  expectNoSecrets,
  startHarness,
  testConnection,
  USERS,
  type Harness,
} from '../../support/harness';

/**
 * Test connection end to end: the real broker (local host, real MSAL, Azurite) proves each
 * connection's token against the EWS and Graph stand-ins, reached as outlook.office365.com and
 * graph.microsoft.com through the CONNECT proxy (HTTPS_PROXY + NODE_EXTRA_CA_CERTS). Every
 * diagnosis comes from the stand-in's real answer, driven through the real ews-javascript-api.
 */
let harness: Harness;
let bodies: string[];

beforeAll(async () => {
  harness = await startHarness({ mailboxes: {}, env: { PROBE_TIMEOUT_SECONDS: '2' } });
  bodies = [];
  for (const [name, user, definition] of [
    ['ews-own', USERS.support, { mailbox: USERS.support.username, profile: 'ews' }],
    [
      'ews-shared',
      USERS.agent,
      { mailbox: 'shared@contoso.test', account: USERS.agent.username, profile: 'ews-shared' },
    ],
    [
      'ews-nodelegate',
      USERS.support,
      { mailbox: 'shared@contoso.test', account: USERS.support.username, profile: 'ews-shared' },
    ],
    [
      'ews-nomailbox',
      USERS.support,
      { mailbox: 'nobody@contoso.test', account: USERS.support.username, profile: 'ews-shared' },
    ],
    ['graph-own', USERS.support, { mailbox: USERS.support.username, profile: 'graph-mail' }],
    [
      'graph-shared',
      USERS.agent,
      { mailbox: 'shared@contoso.test', account: USERS.agent.username, profile: 'graph-mail-shared' },
    ],
    [
      'graph-nodelegate',
      USERS.support,
      { mailbox: 'shared@contoso.test', account: USERS.support.username, profile: 'graph-mail' },
    ],
    [
      'graph-nomailbox',
      USERS.support,
      { mailbox: 'nobody@contoso.test', account: USERS.support.username, profile: 'graph-mail' },
    ],
  ] as const) {
    expect(await authorizeConnection(harness, name, user, definition)).toBe(200);
  }
}, 60_000);

afterAll(async () => {
  try {
    expectNoSecrets(harness.secretsSeen, [...harness.logs, ...bodies]);
  } finally {
    await harness.close();
  }
});

afterEach(() => {
  harness.services?.ews.setAccessPolicy();
  harness.mailboxClockSkew.ms = 0;
});

const test = (name: string) => testConnection(harness, name, bodies);

/** What a test must never change: the registry row and both secrets. */
async function snapshot(name: string) {
  const connection = await harness.broker.registry.get(name);
  const cache = await harness.broker.secrets.get(secretNames.cache(name));
  const token = await harness.broker.secrets.get(secretNames.token(name));
  // A test keeps its verdict in the row (lastTest) and changes nothing else of it.
  const { etag: _etag, updatedAt: _updatedAt, lastTest: _lastTest, ...row } = connection ?? ({} as never);
  return { row, cache: cache?.version, token: token?.version };
}

describe('EWS (ews-javascript-api against the EWS stand-in)', () => {
  it('binds the Inbox of the own mailbox through the proxy, as outlook.office365.com', async () => {
    const tunnelsBefore = harness.services!.router.tunnels.length;
    const { status, json } = await test('ews-own');
    expect(status).toBe(200);
    expect(json).toMatchObject({
      ok: true,
      protocol: 'ews',
      mailbox: USERS.support.username,
      details: {
        folder: 'Inbox',
        totalCount: 12,
        unreadCount: 3,
        url: 'https://outlook.office365.com/EWS/Exchange.asmx',
      },
    });
    expect((json.details as Record<string, unknown>).serverVersion).toMatch(/^15\.\d+\.\d+\.\d+$/);
    expect(typeof json.durationMs).toBe('number');
    expect(harness.services!.router.tunnels.slice(tunnelsBefore)).toContainEqual({
      target: 'outlook.office365.com:443',
      routed: true,
    });
    const request = harness.services!.ews.requests.at(-1);
    expect(request?.anchorMailbox).toBe(USERS.support.username);
  });

  it('opens a shared mailbox by naming it in the FolderId, as the delegate with Full Access', async () => {
    const { json } = await test('ews-shared');
    expect(json).toMatchObject({ ok: true, details: { folder: 'Inbox', totalCount: 7, unreadCount: 2 } });
    expect(harness.services!.ews.requests.at(-1)?.anchorMailbox).toBe('shared@contoso.test');
  });

  it('says Add-MailboxPermission when the delegate lacks Full Access (ErrorAccessDenied)', async () => {
    const { status, json } = await test('ews-nodelegate');
    expect(status).toBe(200);
    expect(json).toMatchObject({ ok: false, protocol: 'ews', code: 'mailbox_access_denied' });
    expect(json.detail).toContain('ErrorAccessDenied');
    expect(json.remedy).toContain(
      'Add-MailboxPermission -Identity shared@contoso.test -User support@contoso.test -AccessRights FullAccess',
    );
  });

  it('says the mailbox does not exist (ErrorNonExistentMailbox)', async () => {
    const { json } = await test('ews-nomailbox');
    expect(json).toMatchObject({ ok: false, code: 'mailbox_not_found' });
    expect(json.detail).toContain('ErrorNonExistentMailbox');
    expect(json.remedy).toContain('Get-Mailbox nobody@contoso.test');
  });

  it('diagnoses ews_blocked from X-EWS-Policy-Reason (EwsAllowedAppIDs), with the read-append-write line', async () => {
    const before = await snapshot('ews-own');
    const appId = harness.env.ENTRA_CLIENT_ID!;
    const otherApp = '11111111-2222-3333-4444-555555555555';
    harness.services!.ews.setAccessPolicy({ organizationEwsEnabled: true, allowedAppIds: [otherApp] });
    const { status, json } = await test('ews-own');
    expect(status).toBe(200);
    expect(json).toMatchObject({
      ok: false,
      protocol: 'ews',
      code: 'ews_blocked',
      mailbox: USERS.support.username,
    });
    expect(json.detail).toBe(
      'Exchange answered HTTP 403, X-EWS-Policy-Reason: "EWS is blocked by policy for this user or tenant".',
    );
    expect(harness.services!.ews.requests.at(-1)).toMatchObject({ status: 403 });
    const remedy = String(json.remedy);
    expect(remedy).toContain(`App ID ${appId}`);
    expect(remedy).toContain(
      'Get-OrganizationConfig -RetrieveEwsOperationAccessPolicy | Format-List EwsAllowedAppIDs',
    );
    expect(remedy).toContain(allowListSnippet(appId));
    expect(remedy).not.toContain('@{Add="' + appId);
    expect(remedy).toContain(`EwsAllowList @{Add="${USER_AGENT_PATTERN}"}`);
    expect(remedy).toContain('up to 24 hours');
    expect(remedy).toContain('1 April 2027');
    // Regression: the remedy said Add the Graph connection "defines ews-own-graph" though the
    // mailbox has its Graph connection (graph-own, authorized above): it names that one.
    expect(remedy).toContain(
      'graph-own, the Microsoft Graph connection of the same mailbox, exists: move this consumer to it.',
    );
    expect(remedy).not.toContain('Add the Graph connection');
    expect(typeof json.testedAt).toBe('string');
    // Kept in the row for every admin and the Graph readiness view.
    expect((await api(harness.baseUrl, 'GET', '/api/connections/ews-own')).json.lastTest).toEqual({
      ok: false,
      code: 'ews_blocked',
      protocol: 'ews',
      testedAt: json.testedAt,
    });
    // A test only reads: the failure changed neither the connection nor its tokens.
    expect(await snapshot('ews-own')).toEqual(before);

    // What the snippet leaves behind (the other app kept, this one appended) lets the same token in.
    harness.services!.ews.setAccessPolicy({ allowedAppIds: [otherApp, appId] });
    expect((await test('ews-own')).json).toMatchObject({ ok: true });
  });

  it('sends one deliberate User-Agent, so an EwsAllowList entry lets the broker through', async () => {
    expect((await test('ews-own')).json).toMatchObject({ ok: true });
    expect(harness.services!.ews.requests.at(-1)?.headers['user-agent']).toBe(USER_AGENT);
    harness.services!.ews.setAccessPolicy({
      applicationAccessPolicy: 'EnforceAllowList',
      allowList: ['OWA/*'],
    });
    const blocked = (await test('ews-own')).json;
    expect(blocked).toMatchObject({ ok: false, code: 'ews_blocked' });
    expect(String(blocked.remedy)).toContain(USER_AGENT);
    harness.services!.ews.setAccessPolicy({ allowList: ['OWA/*', USER_AGENT_PATTERN] });
    expect((await test('ews-own')).json).toMatchObject({ ok: true });
    harness.services!.ews.setAccessPolicy({
      applicationAccessPolicy: 'EnforceBlockList',
      blockList: ['ews-oauth-*'],
    });
    expect((await test('ews-own')).json).toMatchObject({ ok: false, code: 'ews_blocked' });
  });

  it.each([
    ['the organization', { organizationEwsEnabled: false }],
    ['the mailbox', { mailboxEwsEnabled: { [USERS.support.username.toUpperCase()]: false } }],
    // An organization-wide $false also blocks a mailbox set to $true.
    [
      'the organization over the mailbox',
      { organizationEwsEnabled: false, mailboxEwsEnabled: { [USERS.support.username]: true } },
    ],
  ])(
    'diagnoses ews_disabled when %s has EwsEnabled off, and never calls it an allow-list problem',
    async (_what, policy) => {
      // The app is on the allow list: only EwsEnabled refuses it.
      harness.services!.ews.setAccessPolicy({ allowedAppIds: [harness.env.ENTRA_CLIENT_ID!], ...policy });
      const { json } = await test('ews-own');
      expect(json).toMatchObject({ ok: false, code: 'ews_disabled' });
      expect(json.detail).toBe(
        'Exchange answered HTTP 403, X-EWS-Policy-Reason: "EWS is disabled for this user or tenant".',
      );
      const remedy = String(json.remedy);
      expect(remedy).toContain(`Get-CASMailbox -Identity ${USERS.support.username} | Format-List EwsEnabled`);
      expect(remedy).toContain('Get-OrganizationConfig | Format-List EwsEnabled');
      expect(remedy).toMatch(/no allow-list change helps while EWS is disabled/);
      expect(remedy).toContain('1 April 2027');
    },
  );

  it('claims neither diagnosis for a 403 without X-EWS-Policy-Reason, and says what Exchange answered', async () => {
    const bare = await startBareForbidden();
    try {
      harness.services!.router.route('outlook.office365.com:443', bare.port);
      const { json } = await test('ews-own');
      expect(json).toMatchObject({ ok: false, protocol: 'ews', code: 'ews_forbidden' });
      expect(json.detail).toBe(
        `Exchange answered HTTP 403 (no X-EWS-Policy-Reason; request-id: ${bare.requestId}).`,
      );
      expect(String(json.remedy)).not.toMatch(/EwsAllowedAppIDs|EwsEnabled/);
    } finally {
      harness.services!.router.route('outlook.office365.com:443', harness.services!.ews.port);
      await bare.close();
    }
  });

  it('says the token expired when Exchange clock says so (401 with x-ms-diagnostics)', async () => {
    harness.mailboxClockSkew.ms = 3 * 60 * 60 * 1000;
    const { json } = await test('ews-own');
    expect(json).toMatchObject({ ok: false, code: 'token_expired' });
    expect(json.detail).toMatch(/expired/i);
  });

  it('says which permission is missing (403 with x-ms-diagnostics 2000008), not ews_blocked', async () => {
    expect(await authorizeConnection(harness, 'ews-scope')).toBe(200);
    // A real, signed Exchange token that carries another permission than EWS.AccessAsUser.All.
    const clientId = harness.env.ENTRA_CLIENT_ID!;
    const refreshToken = harness.entra.mintRefreshToken({
      username: USERS.support.username,
      clientId,
      scopes: ['https://outlook.office365.com/EAS.AccessAsUser.All', 'offline_access'],
    });
    const tenant = harness.entra.tenants.primary.tenantId;
    const response = await fetch(`${harness.entra.url}/${tenant}/oauth2/v2.0/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        client_id: clientId,
        client_secret: harness.env.ENTRA_CLIENT_SECRET!,
        refresh_token: refreshToken,
      }),
    });
    const { access_token: token } = (await response.json()) as { access_token: string };
    harness.secretsSeen.add(token);
    await harness.broker.secrets.set(secretNames.token('ews-scope'), token, {
      expiresOn: new Date(Date.now() + 3600_000),
      tags: { mailbox: USERS.support.username },
    });
    harness.broker.tokenReader.forget('ews-scope');
    const { json } = await test('ews-scope');
    expect(json).toMatchObject({ ok: false, code: 'token_wrong_scope' });
    expect(json.detail).toMatch(/scope/);
    expect(json.remedy).toContain(harness.env.ENTRA_CLIENT_ID!);
  });

  it('says throttled with the back-off Exchange asked for (ErrorServerBusy, HTTP 429)', async () => {
    harness.services!.ews.throttleNext(1, 'server_busy');
    const busy = await test('ews-own');
    expect(busy.json).toMatchObject({ ok: false, code: 'throttled' });
    expect(busy.json.retryAfterSeconds).toBeGreaterThan(0);
    harness.services!.ews.throttleNext(1, 'http_429', 7);
    expect((await test('ews-own')).json).toMatchObject({
      ok: false,
      code: 'throttled',
      retryAfterSeconds: 7,
    });
  });

  it('uses an on-premises ewsUrl: its host is the audience, and a server that expects another says so', async () => {
    const pki = testPki();
    const onPremises: EwsStandIn = await startEwsStandIn({
      pki,
      validator: createBearerValidator({ jwksUrl: `${harness.entra.url}/common/discovery/v2.0/keys` }),
      mailboxes: [{ smtp: USERS.support.username, displayName: 'Support', inbox: { total: 30, unread: 9 } }],
      audiences: ['https://mail.contoso.test'],
    });
    try {
      harness.services!.router.route('mail.contoso.test:443', onPremises.port);
      const definition = {
        mailbox: USERS.support.username,
        profile: 'ews',
        ewsUrl: 'https://mail.contoso.test/EWS/Exchange.asmx',
      };
      expect(await authorizeConnection(harness, 'ews-onprem', USERS.support, definition)).toBe(200);
      const { json } = await test('ews-onprem');
      expect(json).toMatchObject({
        ok: true,
        details: { totalCount: 30, url: 'https://mail.contoso.test/EWS/Exchange.asmx' },
      });
      // The Exchange Online stand-in expects https://outlook.office365.com: wrong audience.
      harness.services!.router.route('mail.contoso.test:443', harness.services!.ews.port);
      const wrong = await test('ews-onprem');
      expect(wrong.json).toMatchObject({ ok: false, code: 'token_wrong_audience' });
      expect(wrong.json.remedy).toContain('https://mail.contoso.test');
    } finally {
      await onPremises.close();
    }
  });
});

describe('Graph (the Graph stand-in)', () => {
  it('reads the own Inbox with /me through the proxy', async () => {
    const { json } = await test('graph-own');
    expect(json).toMatchObject({
      ok: true,
      protocol: 'graph',
      details: { folder: 'Inbox', totalCount: 12, unreadCount: 3 },
    });
    expect(harness.services!.graph.requests.at(-1)?.path).toBe('/v1.0/me/mailFolders/inbox');
    expect(harness.services!.router.tunnels).toContainEqual({
      target: 'graph.microsoft.com:443',
      routed: true,
    });
  });

  it('opens a shared mailbox with graph-mail-shared (Mail.ReadWrite.Shared) as the delegate', async () => {
    const { json } = await test('graph-shared');
    expect(json).toMatchObject({ ok: true, protocol: 'graph', details: { folder: 'Inbox', totalCount: 7 } });
    expect(harness.services!.graph.requests.at(-1)?.path).toBe(
      '/v1.0/users/shared%40contoso.test/mailFolders/inbox',
    );
  });

  it('addresses another mailbox as /users/{mailbox}: graph-mail reads only the own one', async () => {
    const { json } = await test('graph-nodelegate');
    expect(json).toMatchObject({ ok: false, code: 'mailbox_access_denied' });
    expect(json.detail).toContain('ErrorAccessDenied');
    expect(harness.services!.graph.requests.at(-1)?.path).toBe(
      '/v1.0/users/shared%40contoso.test/mailFolders/inbox',
    );
  });

  it('classifies ErrorInvalidUser, expiry and 429', async () => {
    const missing = await test('graph-nomailbox');
    expect(missing.json).toMatchObject({ ok: false, code: 'mailbox_not_found' });
    expect(missing.json.detail).toContain('ErrorInvalidUser');
    harness.mailboxClockSkew.ms = 3 * 60 * 60 * 1000;
    expect((await test('graph-own')).json).toMatchObject({ ok: false, code: 'token_expired' });
    harness.mailboxClockSkew.ms = 0;
    harness.services!.graph.throttleNext(1, 11);
    expect((await test('graph-own')).json).toMatchObject({
      ok: false,
      code: 'throttled',
      retryAfterSeconds: 11,
    });
  });
});

/** A certificate no trusted CA issued, for outlook.office365.com. */
function untrustedCertificate(): { cert: string; key: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + 3600_000);
  const subject = [{ name: 'commonName', value: 'outlook.office365.com' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKey };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

describe('network failures are results with a remedy, never a 5xx', () => {
  it('names a TLS failure (a certificate the broker does not trust)', async () => {
    const server = createTlsServer(untrustedCertificate(), (socket) => socket.end());
    const port = await listen(server);
    try {
      harness.services!.router.route('outlook.office365.com:443', port);
      const { status, json } = await test('ews-own');
      expect(status).toBe(200);
      expect(json).toMatchObject({ ok: false, code: 'tls_failed' });
      expect(json.remedy).toContain('NODE_EXTRA_CA_CERTS');
    } finally {
      harness.services!.router.route('outlook.office365.com:443', harness.services!.ews.port);
      server.close();
    }
  });

  it('stops at its own timeout when the server accepts and never answers', async () => {
    const held: Socket[] = [];
    const server = createNetServer((socket) => held.push(socket));
    const port = await listen(server);
    try {
      harness.services!.router.route('graph.microsoft.com:443', port);
      const { json } = await test('graph-own');
      expect(json).toMatchObject({ ok: false, code: 'timeout' });
      expect(json.durationMs).toBeGreaterThanOrEqual(1900);
      expect(json.durationMs).toBeLessThan(3100 + 1000);
    } finally {
      harness.services!.router.route('graph.microsoft.com:443', harness.services!.graph.port);
      for (const socket of held) socket.destroy();
      server.close();
    }
  });

  it('says the proxy refused the tunnel (no route)', async () => {
    harness.services!.router.route('graph.microsoft.com:443', 1);
    try {
      const { json } = await test('graph-own');
      expect(json).toMatchObject({ ok: false, code: 'connect_failed' });
      expect(json.detail).toContain('HTTP 502');
      expect(json.remedy).toContain('HTTPS_PROXY');
    } finally {
      harness.services!.router.route('graph.microsoft.com:443', harness.services!.graph.port);
    }
  });
});

describe('the route', () => {
  it('answers 4xx problem+json for what is wrong with the request, and 405 for other methods', async () => {
    await api(harness.baseUrl, 'PUT', '/api/connections/fresh', {
      mailbox: 'sales@contoso.test',
      profile: 'ews',
    });
    expect((await test('fresh')).json).toMatchObject({ status: 409, code: 'connection_not_authorized' });
    expect((await test('nobody')).json).toMatchObject({ status: 404, code: 'connection_not_found' });
    expect((await test('Bad_Name')).json).toMatchObject({ status: 400, code: 'invalid_connection_name' });
    const get = await api(harness.baseUrl, 'GET', '/api/connections/ews-own/test');
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });

  it('answers not_supported for a custom connection', async () => {
    await api(harness.baseUrl, 'PUT', '/api/connections/custom-one', {
      mailbox: USERS.support.username,
      profile: 'custom',
      scopes: ['https://graph.microsoft.com/User.Read'],
    });
    const { status, json } = await test('custom-one');
    expect(status).toBe(200);
    expect(json).toMatchObject({ ok: false, protocol: null, code: 'not_supported' });
  });

  it('is for admins only', async () => {
    const outsider = harness.secondBroker({ BROKER_LOCAL_ADMIN: 'false' });
    const { startLocalHost } = await import('../../../scripts/host');
    const { freePort } = await import('../../support/harness');
    const port = await freePort();
    const host = await startLocalHost({ broker: outsider, port, hostname: '127.0.0.1' });
    try {
      const response = await api(`http://127.0.0.1:${port}`, 'POST', '/api/connections/ews-own/test');
      expect([401, 403]).toContain(response.status);
    } finally {
      await host.close();
    }
  });
});

/** An HTTPS server that answers every request as a 403 that names no EWS access control. */
async function startBareForbidden(): Promise<{
  port: number;
  requestId: string;
  close: () => Promise<void>;
}> {
  const requestId = '5e8f0a1c-2b3d-4e5f-8a9b-0c1d2e3f4a5b';
  const pki = testPki();
  const server = createHttpsServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, (req, res) => {
    req.resume();
    res.writeHead(403, { 'request-id': requestId, 'content-length': '0' });
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    requestId,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
