import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { secretNames } from '../../shared/secrets/secret-store';
import { createBroker, type Broker, type BrokerOverrides } from '../../shared/broker';
import { loadConfig } from '../../shared/config';
import { createLogger } from '../../shared/logging';
import { startEntraEmulator, type EntraEmulator } from '../../sandbox/entra';
import { startKeyVaultEmulator, type KeyVaultEmulator } from '../../sandbox/keyvault';
import { startLocalHost, type LocalHost } from '../../scripts/host';
import { createBearerValidator } from '../../sandbox/bearer';
import { startSandboxServices, type DemoMailbox, type SandboxServices } from '../../sandbox/services';
import { DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME } from '../../sandbox/azurite';
import { startMailServers, type MailServers } from './dovecot';
import { testPki } from './pki';
import { uniqueTablePrefix } from './storage';
import { api, Browser, freePort } from '../../sandbox/drive';
import { BrokerError } from '../../shared/errors';

export { api, Browser, freePort };

export const USERS = {
  support: { username: 'support@contoso.test', password: 'Support-Pass-1' },
  agent: { username: 'agent@contoso.test', password: 'Agent-Pass-1' },
  outsider: { username: 'eve@fabrikam.test', password: 'Eve-Pass-1' },
} as const;

export interface HarnessOptions {
  /** Store secrets in the Key Vault emulator (through the managed-identity endpoint) instead of the local file. */
  keyVault?: boolean | { purgeProtection?: boolean; deleteDelayMs?: number };
  /** Authority `organizations` with this allow list (the primary tenant when true). */
  multiTenant?: boolean;
  env?: Record<string, string>;
  /**
   * The app's client credential: a secret (default), or `managed-identity` — a user-assigned
   * identity (the emulated App Service endpoint) registered as a federated credential of the app.
   * `federatedSubject` overrides the registered subject (to test a mismatch).
   */
  clientCredential?: 'secret' | 'managed-identity';
  federatedSubject?: string;
  /** A clock shared by the broker and the emulators (ms since epoch); default the real one. */
  clock?: TestClock;
  brokerOverrides?: BrokerOverrides;
  /** Application permissions granted to the app (the `roles` of its client-credentials tokens). */
  appRoles?: string[];
  /**
   * The mailbox side: EWS, Graph and IMAP/POP/SMTP stand-ins (with `dovecot`, a real Dovecot in
   * place of the sandbox's mail stand-in) behind a CONNECT proxy for the Microsoft host names; the broker reaches them through
   * HTTPS_PROXY and NODE_EXTRA_CA_CERTS, as in production behind a TLS-inspecting proxy.
   */
  mailboxes?: { dovecot?: boolean };
  /**
   * Every dependency only through the proxy (needs `mailboxes`): Entra ID, the vault (with
   * `keyVault`) and Table storage are addressed by these host names, which nothing but the router
   * resolves, and it routes them to the emulators and Azurite. `tables` must start with
   * `devstoreaccount1.` (Azurite takes the account from a dotted host's first label). NO_PROXY is
   * `127.0.0.1`, the managed-identity endpoint's host, unless `env` says otherwise.
   */
  viaProxy?: { entra: string; vault: string; tables: string };
  /**
   * The sign-in pages on plain-HTTP localhost, as `npm start`'s sandbox serves them, so a browser
   * test opens them with certificate checks on (`entra.browserUrl`); else they are HTTPS like the rest.
   */
  browserSignIn?: boolean;
}

/** The harness's mailboxes: its users' own, and a shared one the agent may open. */
export const TEST_MAILBOXES: DemoMailbox[] = [
  { smtp: 'support@contoso.test', displayName: 'Support', inbox: { total: 12, unread: 3 } },
  { smtp: 'agent@contoso.test', displayName: 'Agent', inbox: { total: 4, unread: 4 } },
  {
    smtp: 'shared@contoso.test',
    displayName: 'Shared inbox',
    inbox: { total: 7, unread: 2 },
    fullAccess: ['agent@contoso.test'],
  },
];

/** A controllable clock: tests move time instead of waiting for it. */
export class TestClock {
  constructor(public ms = Date.now()) {}
  readonly now = (): number => this.ms;
  readonly date = (): Date => new Date(this.ms);
  advance(milliseconds: number): void {
    this.ms += milliseconds;
  }
}

export interface Harness {
  entra: EntraEmulator;
  services: SandboxServices | undefined;
  mail: MailServers | undefined;
  /** How far the mailbox servers' clock runs ahead of the broker's (ms): a token the broker trusts can look expired to them. */
  mailboxClockSkew: { ms: number };
  keyVault: KeyVaultEmulator | undefined;
  broker: Broker;
  host: LocalHost;
  baseUrl: string;
  /** Every log line the broker wrote. */
  logs: string[];
  /** Every value that must never appear in a log line, error body or page. */
  secretsSeen: Set<string>;
  /** The settings the broker was built from. */
  env: Record<string, string>;
  /** Another broker over the same stores (a second instance), with some settings changed. */
  secondBroker(overrides?: Record<string, string>, extra?: BrokerOverrides): Broker;
  close(): Promise<void>;
}

/**
 * The broker as users run it (local host, real SDKs, Azurite), wired to the Entra emulator and,
 * optionally, the Key Vault emulator. Each harness gets its own tables.
 */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const pki = testPki();
  const names = options.viaProxy;
  if (names && !options.mailboxes)
    throw new Error('viaProxy needs the mailboxes (their router is the proxy)');
  const entra = await startEntraEmulator({
    pki,
    ...(options.clock ? { now: options.clock.now } : {}),
    ...(names ? { publicHost: names.entra } : {}),
    ...(options.browserSignIn ? { browserPort: 0 } : {}),
  });
  const tenant = entra.tenants.primary;
  entra.addUser({ ...USERS.support, tenantId: tenant.tenantId });
  entra.addUser({ ...USERS.agent, tenantId: tenant.tenantId });
  entra.addUser({ ...USERS.outsider, tenantId: entra.tenants.other.tenantId });

  const port = await freePort();
  const baseUrl = `http://localhost:${port}`;
  const clientSecret = randomBytes(24).toString('base64url');
  const useManagedIdentity = options.clientCredential === 'managed-identity' || Boolean(options.keyVault);
  const identity = useManagedIdentity ? entra.addManagedIdentity() : undefined;
  const federated = options.clientCredential === 'managed-identity' && identity;
  const app = entra.registerApp({
    ...(federated
      ? {
          federatedCredentials: [
            {
              issuer: `${entra.url}/${tenant.tenantId}/v2.0`,
              subject: options.federatedSubject ?? identity.principalId,
              audience: 'api://AzureADTokenExchange',
            },
          ],
        }
      : { clientSecret }),
    redirectUris: [`${baseUrl}/api/callback`],
    tenantId: tenant.tenantId,
    multiTenant: options.multiTenant === true,
    ...(options.appRoles ? { roles: options.appRoles } : {}),
  });

  const testStorage = process.env.TEST_STORAGE_CONNECTION_STRING;
  if (!testStorage) throw new Error('TEST_STORAGE_CONNECTION_STRING is not set: run through npm test');
  const tablePort = Number(/TableEndpoint=https?:\/\/[^:/;]+:(\d+)/i.exec(testStorage)?.[1]);
  if (names && !tablePort) throw new Error(`viaProxy: no TableEndpoint port in ${testStorage}`);
  const storage = names
    ? `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT_NAME};AccountKey=${DEV_ACCOUNT_KEY};` +
      `TableEndpoint=http://${names.tables}:${tablePort};`
    : testStorage;
  const env: Record<string, string> = {
    ENTRA_TENANT_ID: options.multiTenant ? 'organizations' : tenant.tenantId,
    ENTRA_CLIENT_ID: app.clientId,
    ...(federated
      ? { ENTRA_CLIENT_CREDENTIAL: 'managed-identity' }
      : { ENTRA_CLIENT_CREDENTIAL: 'secret', ENTRA_CLIENT_SECRET: clientSecret }),
    ENTRA_AUTHORITY_HOST: entra.url,
    PUBLIC_BASE_URL: baseUrl,
    AzureWebJobsStorage: storage,
    BROKER_TABLE_PREFIX: uniqueTablePrefix(),
    BROKER_LOCAL_ADMIN: 'true',
    ...(options.multiTenant ? { ALLOWED_TENANTS: tenant.tenantId } : {}),
  };

  if (identity) {
    // @azure/identity reads the App Service managed-identity endpoint from these variables itself.
    process.env.IDENTITY_ENDPOINT = identity.endpoint;
    process.env.IDENTITY_HEADER = identity.identityHeader;
    env.MANAGED_IDENTITY_CLIENT_ID = identity.clientId;
  }
  let keyVault: KeyVaultEmulator | undefined;
  if (options.keyVault) {
    keyVault = await startKeyVaultEmulator({
      pki,
      ...(options.clock ? { now: options.clock.now } : {}),
      ...(typeof options.keyVault === 'object' ? options.keyVault : {}),
      authority: `${entra.url}/${tenant.tenantId}`,
      verifyToken: (bearer) => entra.verifyAccessToken(bearer, 'https://vault.azure.net').valid,
    });
    env.KEY_VAULT_URL = names ? `https://${names.vault}` : keyVault.url;
  } else {
    env.BROKER_LOCAL_SECRET_KEY = randomBytes(32).toString('base64');
    env.BROKER_LOCAL_SECRET_FILE = join(mkdtempSync(join(tmpdir(), 'broker-secrets-')), 'secrets.json');
  }
  let services: SandboxServices | undefined;
  let mail: MailServers | undefined;
  const mailboxClockSkew = { ms: 0 };
  if (options.mailboxes) {
    const clock = options.clock?.now ?? Date.now;
    const now = () => clock() + mailboxClockSkew.ms;
    services = await startSandboxServices({
      pki,
      authorityHost: entra.localUrl,
      mailboxes: TEST_MAILBOXES,
      now,
    });
    if (options.mailboxes.dovecot) {
      mail = await startMailServers({
        pki,
        validator: createBearerValidator({
          jwksUrl: `${entra.localUrl}/common/discovery/v2.0/keys`,
          now,
        }),
        users: TEST_MAILBOXES.map((mailbox) => ({ username: mailbox.smtp, messages: mailbox.inbox.total })),
        // As `Add-MailboxPermission` for the app's service principal would grant (app-only IMAP/POP).
        appOnlyMailboxes: options.appRoles ? [TEST_MAILBOXES[0]!.smtp] : [],
      });
      services.router.route('outlook.office365.com:993', mail.imapPort);
      services.router.route('outlook.office365.com:995', mail.pop3Port);
      services.router.route('smtp.office365.com:587', mail.submissionPort);
    }
    if (names) {
      const portOf = (url: string) => Number(new URL(url).port);
      services.router.route(`${names.entra}:443`, portOf(entra.localUrl));
      services.router.route(`${names.tables}:${tablePort}`, tablePort);
      if (keyVault) services.router.route(`${names.vault}:443`, portOf(keyVault.url));
    }
    env.HTTPS_PROXY = services.router.url;
    env.NO_PROXY = names ? '127.0.0.1' : 'localhost,127.0.0.1,::1';
  }
  Object.assign(env, options.env);

  const logs: string[] = [];
  const logger = createLogger((_level, line) => logs.push(line));
  const brokerOptions: BrokerOverrides = {
    logger,
    ...(options.clock ? { now: options.clock.date } : {}),
    ...options.brokerOverrides,
  };
  const broker = createBroker(loadConfig(env), brokerOptions);
  const host = await startLocalHost({ broker, port, hostname: '127.0.0.1' });
  const secretsSeen = new Set<string>([clientSecret]);

  return {
    entra,
    services,
    mail,
    mailboxClockSkew,
    keyVault,
    broker,
    host,
    baseUrl,
    logs,
    secretsSeen,
    env,
    secondBroker: (overrides = {}, extra = {}) =>
      createBroker(loadConfig({ ...env, ...overrides }), { ...brokerOptions, ...extra }),
    async close() {
      await host.close();
      await mail?.close();
      await services?.close();
      await keyVault?.close();
      await entra.close();
      if (identity) {
        delete process.env.IDENTITY_ENDPOINT;
        delete process.env.IDENTITY_HEADER;
      }
    },
  };
}

/** A browser's cookie jar and redirect handling, for driving the browser routes over HTTP. */

/**
 * `POST /connections/{name}/test` as an admin; keeps the body for the secret scan, and adds the
 * token the probe used to the values that must never appear in it.
 */
export async function testConnection(harness: Harness, name: string, bodies: string[]) {
  const response = await api(harness.baseUrl, 'POST', `/api/connections/${name}/test`);
  bodies.push(response.text);
  const token = await harness.broker.secrets.get(secretNames.token(name)).catch(() => undefined);
  if (token) harness.secretsSeen.add(token.value);
  return response;
}

/** Fails when any secret value appears in any of the given texts. */
export function expectNoSecrets(secrets: Iterable<string>, texts: string[]): void {
  const haystack = texts.join('\n');
  for (const secret of secrets) {
    if (secret.length >= 8 && haystack.includes(secret)) {
      throw new Error(
        `a secret value (${secret.slice(0, 4)}…, ${secret.length} chars) leaked into logs or bodies`,
      );
    }
  }
}

/** Defines a connection (if needed) and authorizes it through the sign-in pages; returns the callback status. */
export async function authorizeConnection(
  harness: Harness,
  name: string,
  user: { username: string; password: string } = USERS.support,
  definition: Record<string, unknown> = { mailbox: user.username, profile: 'ews' },
  /** Runs after the sign-in at Entra and before the browser returns to the callback. */
  beforeCallback?: () => Promise<void>,
): Promise<number> {
  const { signIn } = await import('../../sandbox/entra/sign-in-driver');
  const existing = await harness.broker.registry.get(name);
  if (!existing) await api(harness.baseUrl, 'PUT', `/api/connections/${name}`, definition);
  const browser = new Browser();
  const start = await browser.get(`${harness.baseUrl}/api/connections/${name}/authorize`);
  // The test's browser reaches the sign-in pages directly, also when the broker knows Entra by a
  // name only the proxy resolves (`viaProxy`).
  const location = start.headers.get('location') ?? '';
  const { url, localUrl } = harness.entra;
  const signInUrl = location.startsWith(`${url}/`) ? `${localUrl}${location.slice(url.length)}` : location;
  const callbackUrl = await signIn(signInUrl, { ...user, consent: 'accept' });
  harness.secretsSeen.add(callbackUrl.searchParams.get('code') ?? '');
  await beforeCallback?.();
  // The broker asks for response_mode=form_post: the driver hands back the form's fields as a
  // query, and the browser POSTs them, as Entra's auto-submitting page makes a browser do.
  expect(new URL(signInUrl).searchParams.get('response_mode')).toBe('form_post');
  const callback = await browser.postForm(
    `${callbackUrl.origin}${callbackUrl.pathname}`,
    callbackUrl.searchParams,
    new URL(harness.entra.browserUrl).origin,
  );
  await callback.text();
  return callback.status;
}

/** 'served' when the promise resolves, else the broker error code it rejects with. */
export async function servedOr(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'served';
  } catch (error) {
    return error instanceof BrokerError ? error.code : String(error);
  }
}

/** The refresh token inside a connection's stored cache. */
export async function storedRefreshToken(harness: Harness, name: string): Promise<string | undefined> {
  const cache = await harness.broker.secrets.get(`conn-${name}-cache`);
  if (!cache) return undefined;
  const parsed = JSON.parse(cache.value) as { RefreshToken?: Record<string, { secret: string }> };
  const token = Object.values(parsed.RefreshToken ?? {})[0]?.secret;
  if (token) harness.secretsSeen.add(token);
  return token;
}
