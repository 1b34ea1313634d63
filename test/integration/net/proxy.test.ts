import { createServer, type Server } from 'node:https';
import { listenOnLoopback } from '../../../sandbox/listen';
import type { Tunnel } from '../../../sandbox/router';
import { verifySignature } from '../../../shared/notify/webhook-notifier';
import { createTableClient } from '../../../shared/storage/tables';
import {
  api,
  authorizeConnection,
  expectNoSecrets,
  startHarness,
  testConnection,
  USERS,
  type Harness,
} from '../../support/harness';
import { testPki } from '../../support/pki';

/**
 * The broker behind an enterprise's TLS-inspecting forward proxy: every service it calls (Entra ID
 * through MSAL, Key Vault and Table storage through the Azure SDK, EWS, Graph, IMAP/POP/SMTP, the
 * status webhook) is addressed by a name that only the proxy (the router) resolves, and trusted
 * through NODE_EXTRA_CA_CERTS. NO_PROXY names only 127.0.0.1, the managed-identity endpoint's host,
 * and nothing else the broker calls is addressed by it. So a call that went around the proxy would
 * fail DNS: a whole life cycle that succeeds, with every name in the proxy's log, proves that
 * nothing did.
 */
const ENTRA = 'login.microsoftonline.com';
const VAULT = 'contoso-broker.vault.azure.net';
const TABLES = 'devstoreaccount1.table.core.windows.net';
const HOOKS = 'hooks.contoso.test';
const SECRET = 'proxy-test-webhook-signing-secret';
const PROFILES = ['ews', 'graph-mail', 'imap', 'pop', 'smtp'] as const;

let harness: Harness;
let receiver: Server;
const received: { body: string; signature: string }[] = [];
const bodies: string[] = [];
const tunnels = (): Tunnel[] => harness.services!.router.tunnels;
/** `host:port` of the Table endpoint the broker was given. */
const tablesTarget = () => /TableEndpoint=http:\/\/([^;/]+)/.exec(harness.env.AzureWebJobsStorage ?? '')?.[1];

beforeAll(async () => {
  const pki = testPki();
  receiver = createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, (request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const signature = request.headers['x-broker-signature'];
      received.push({
        body: Buffer.concat(chunks).toString('utf8'),
        signature: typeof signature === 'string' ? signature : '',
      });
      response.writeHead(204).end();
    });
  });
  const receiverPort = await listenOnLoopback(receiver);
  harness = await startHarness({
    mailboxes: { dovecot: true },
    keyVault: true,
    viaProxy: { entra: ENTRA, vault: VAULT, tables: TABLES },
    env: { NOTIFY_WEBHOOK_URL: `https://${HOOKS}/hooks/broker`, NOTIFY_WEBHOOK_SECRET: SECRET },
    brokerOverrides: { keyVault: { pollIntervalMs: 50 } },
  });
  harness.services!.router.route(`${HOOKS}:443`, receiverPort);
}, 60_000);

afterAll(async () => {
  try {
    expectNoSecrets(harness.secretsSeen, [...harness.logs, ...bodies]);
  } finally {
    await harness.close();
    await new Promise((resolve) => receiver.close(resolve));
  }
});

it('addresses nothing but the managed-identity endpoint by a loopback address', async () => {
  const { config } = harness.broker;
  expect(config.proxy).toEqual({ httpsProxy: harness.services!.router.url, noProxy: ['127.0.0.1'] });
  const addressed = JSON.stringify([config.cloud, config.keyVaultUrls, config.storage, config.notify]);
  expect(addressed).not.toMatch(/127\.0\.0\.1|localhost|\[::1\]/);
  // What Entra advertises (endpoints the broker then calls) names the proxied host only.
  const tenant = harness.entra.tenants.primary.tenantId;
  const metadata = await fetch(`${harness.entra.localUrl}/${tenant}/v2.0/.well-known/openid-configuration`);
  const text = await metadata.text();
  expect(text).toContain(`https://${ENTRA}/${tenant}/oauth2/v2.0/token`);
  expect(text).not.toMatch(/127\.0\.0\.1/);
});

it('runs a whole life cycle through the proxy only', async () => {
  // Define and authorize (Table storage, Entra metadata and token endpoint, Key Vault).
  for (const profile of PROFILES) {
    expect(
      await authorizeConnection(harness, profile, USERS.support, {
        mailbox: USERS.support.username,
        profile,
      }),
    ).toBe(200);
  }
  expect((await api(harness.baseUrl, 'GET', '/api/health')).json).toMatchObject({
    status: 'ok',
    secretStore: 'key-vault',
  });

  // Read the token, refresh it (MSAL's network client, then Key Vault).
  const token = await api(harness.baseUrl, 'GET', '/api/connections/ews/token');
  expect(token.status).toBe(200);
  expect(token.json.access_token).toEqual(expect.any(String));
  const refreshed = await api(harness.baseUrl, 'POST', '/api/connections/ews/refresh');
  bodies.push(refreshed.text);
  expect(refreshed.status).toBe(200);

  // Test connection: EWS, Graph, IMAP, POP and SMTP through the proxy.
  for (const profile of PROFILES) {
    const { json } = await testConnection(harness, profile, bodies);
    expect({ profile, ok: json.ok, code: json.code }).toEqual({ profile, ok: true, code: undefined });
  }

  // A status change: Entra refuses the refresh, and the webhook hears of it.
  harness.entra.faults.revokeConsent(USERS.support.username);
  const refused = await api(harness.baseUrl, 'POST', '/api/connections/ews/refresh');
  bodies.push(refused.text);
  expect(refused.json).toMatchObject({ code: 'reauthorization_required' });
  expect((await harness.broker.registry.get('ews'))?.status).toBe('reauthorization_required');
  await harness.broker.notifier.drain();
  const event = received.find((r) => r.body.includes('connection.reauthorization_required'));
  expect(event && verifySignature(event.body, event.signature, SECRET)).toBe(true);
  expect(JSON.parse(event?.body ?? '{}')).toMatchObject({ connection: 'ews', aadsts: 65001 });

  // Delete (Table storage, Key Vault delete and purge).
  expect((await api(harness.baseUrl, 'DELETE', '/api/connections/ews')).status).toBe(204);
  expect(harness.keyVault!.secrets.state('conn-ews-token')).not.toBe('active');

  // Every service was reached through the proxy, and the proxy was asked for nothing it does not route.
  const seen = tunnels();
  expect(seen.filter((tunnel) => !tunnel.routed)).toEqual([]);
  for (const target of [
    `${ENTRA}:443`,
    `${VAULT}:443`,
    'outlook.office365.com:443',
    'outlook.office365.com:993',
    'outlook.office365.com:995',
    'smtp.office365.com:587',
    'graph.microsoft.com:443',
    `${HOOKS}:443`,
  ]) {
    expect(seen).toContainEqual({ target, routed: true });
  }
  // Plain-HTTP Azurite: absolute-form requests (no CONNECT), reads, writes and deletes.
  const storage = new Set(seen.filter((t) => t.target === tablesTarget()).map((t) => t.method));
  expect([...storage].sort()).toEqual(expect.arrayContaining(['DELETE', 'GET', 'POST']));
});

it('honours NO_PROXY: a host it names is called directly, so here its name cannot be resolved', async () => {
  expect(
    await authorizeConnection(harness, 'graph-direct', USERS.agent, {
      mailbox: USERS.agent.username,
      profile: 'graph-mail',
    }),
  ).toBe(200);
  const direct = harness.secondBroker({ NO_PROXY: '127.0.0.1,graph.microsoft.com' });
  const before = tunnels().length;
  const result = await direct.tester.test('graph-direct', 'proxy-test');
  expect(result).toMatchObject({ ok: false, code: 'dns_failed' });
  expect(tunnels().slice(before)).not.toContainEqual(
    expect.objectContaining({ target: 'graph.microsoft.com:443' }),
  );
  // The same connection through the proxy works.
  expect(await harness.broker.tester.test('graph-direct', 'proxy-test')).toMatchObject({ ok: true });
});

it('gives the Table client config.proxy over what the Azure SDK reads from process.env', async () => {
  const { storage, proxy, tablePrefix } = harness.broker.config;
  const table = `${tablePrefix}proxyprobe`;
  // The SDK alone would tunnel this host (its NO_PROXY matches exact names only); the broker reads
  // `core.windows.net` as covering subdomains, as curl does, and goes direct: DNS fails.
  const noProxy = ['core.windows.net'];
  const bypassing = createTableClient(storage, table, undefined, { maxRetries: 0 }, { ...proxy, noProxy });
  const before = tunnels().length;
  await expect(bypassing.createTable()).rejects.toMatchObject({ code: 'ENOTFOUND' });
  expect(tunnels().length).toBe(before);
  // Without HTTPS_PROXY in process.env, the client follows config.proxy alone.
  const saved = process.env.HTTPS_PROXY;
  delete process.env.HTTPS_PROXY;
  try {
    const proxied = createTableClient(storage, table, undefined, { maxRetries: 0 }, proxy);
    await proxied.createTable();
    await proxied.deleteTable();
  } finally {
    if (saved !== undefined) process.env.HTTPS_PROXY = saved;
  }
  expect(tunnels().slice(before)).toContainEqual({ target: tablesTarget(), routed: true, method: 'POST' });
});
