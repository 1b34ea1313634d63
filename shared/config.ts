import * as z from 'zod';
import { parseNcrontab } from './schedule/ncrontab';
import { isLoopbackHost } from './net/loopback';
import {
  CLOUDS,
  cloudFor,
  cloudOfAuthority,
  loginHostOf,
  type CloudEndpoints,
  type CloudName,
} from './clouds';

/**
 * Every setting of the README's "Settings" table, read once and validated. This is the only module that reads
 * `process.env`; everything else receives a `BrokerConfig`.
 */

export type ClientCredentialKind = 'managed-identity' | 'certificate' | 'secret';

export type StorageSettings =
  | { kind: 'connection-string'; connectionString: string }
  | { kind: 'identity'; tableServiceUrl: string; managedIdentityClientId: string | undefined };

export interface BrokerConfig {
  tenantId: string;
  clientId: string;
  clientCredential:
    { kind: 'managed-identity' } | { kind: 'secret'; secret: string } | { kind: 'certificate'; pem: string };
  managedIdentityClientId: string | undefined;
  cloud: CloudEndpoints;
  /** Tenant ids (GUIDs) whose accounts may authorize; empty = the configured tenant, resolved from its metadata. */
  allowedTenants: string[];
  /** e.g. `https://broker.contoso.com` (no trailing slash). */
  publicBaseUrl: string;
  /** `{publicBaseUrl}/api/callback`: what the App Registration must list as a web redirect URI. */
  redirectUri: string;
  /** Every vault, when KEY_VAULT_URL lists several (comma-separated) to spread secret writes. */
  keyVaultUrls: string[];
  /**
   * Vaults for token caches and passwords (KEY_VAULT_PRIVATE_URL), apart from the published tokens
   * in keyVaultUrls that consumers may read; empty: everything in keyVaultUrls.
   */
  keyVaultPrivateUrls: string[];
  /** Key of the local encrypted secret file (32 bytes), when Key Vault is not used. */
  localSecretKey: Buffer | undefined;
  localSecretFile: string;
  storage: StorageSettings;
  /** Prefix of the broker's table names, so several brokers (or test runs) can share an account. */
  tablePrefix: string;
  authSessionTtlSeconds: number;
  /** INVITATION_TTL_HOURS, in ms: how long an invitation link for a mailbox owner stays valid. */
  invitationTtlMs: number;
  refresh: {
    schedule: string;
    /** REFRESH_MARGIN_MINUTES, in ms (every duration is ms inside the broker). */
    marginMs: number;
    /** REFRESH_KEEPALIVE_DAYS, in ms. */
    keepaliveMs: number;
    concurrency: number;
    /** How long one timer run may keep starting refreshes; the rest wait for the next run. */
    budgetSeconds: number;
    /** A refresh rewrites the stored token cache when it is at least this old (0: always). */
    cacheWriteHours: number;
  };
  notify: { webhookUrl: string | undefined; webhookSecret: string | undefined; degradedAfterMs: number };
  /** How long Test connection may wait for a mailbox server before it answers `timeout`. */
  probeTimeoutSeconds: number;
  localAdmin: boolean;
  /** App Service Authentication is on: only then are its identity headers trusted. */
  platformAuthEnabled: boolean;
  sandbox: boolean;
  proxy: { httpsProxy: string | undefined; noProxy: string[] };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

function isLoopback(url: URL): boolean {
  return isLoopbackHost(url.hostname);
}

const emptyToUndefined = (value: unknown) =>
  typeof value === 'string' && value.trim() === ''
    ? undefined
    : typeof value === 'string'
      ? value.trim()
      : value;

const optionalString = z.preprocess(emptyToUndefined, z.string().optional());

function httpsUrl(what: string, options: { allowHttpLoopback?: boolean } = {}) {
  return z.preprocess(
    emptyToUndefined,
    z
      .string()
      .optional()
      .superRefine((value, ctx) => {
        if (value === undefined) return;
        let url: URL;
        try {
          url = new URL(value);
        } catch {
          ctx.addIssue({ code: 'custom', message: `expected ${what} as an absolute URL` });
          return;
        }
        const httpAllowed = options.allowHttpLoopback === true && url.protocol === 'http:' && isLoopback(url);
        if (url.protocol !== 'https:' && !httpAllowed) {
          ctx.addIssue({ code: 'custom', message: `expected ${what} as an https:// URL` });
        }
        if (url.search || url.hash || url.username || url.password) {
          ctx.addIssue({
            code: 'custom',
            message: `expected ${what} without query, fragment or credentials`,
          });
        }
      })
      .transform((value) => (value === undefined ? undefined : value.replace(/\/+$/, ''))),
  );
}

/** A comma-separated list of Key Vault URLs (several vaults spread the secret writes). */
function vaultUrlList() {
  return z.preprocess(
    emptyToUndefined,
    z
      .string()
      .optional()
      .transform((value, ctx) => {
        if (value === undefined) return [];
        const urls = value
          .split(',')
          .map((part) => part.trim())
          .filter(Boolean);
        const parsed = urls.map((url) =>
          httpsUrl('each vault URL, e.g. https://contoso-broker.vault.azure.net').safeParse(url),
        );
        for (const result of parsed) {
          if (!result.success)
            for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', message: issue.message });
        }
        return parsed.flatMap((result) => (result.success && result.data ? [result.data] : []));
      }),
  );
}

function integer(defaultValue: number, min: number, max: number) {
  return z.preprocess(
    emptyToUndefined,
    z.coerce
      .number({ message: `expected a whole number from ${min} to ${max}` })
      .int(`expected a whole number from ${min} to ${max}`)
      .min(min, `expected a whole number from ${min} to ${max}`)
      .max(max, `expected a whole number from ${min} to ${max}`)
      .default(defaultValue),
  );
}

function boolean(defaultValue: boolean) {
  return z.preprocess(
    emptyToUndefined,
    z
      .enum(['true', 'false', 'True', 'False', 'TRUE', 'FALSE', '1', '0'], {
        message: 'expected true or false',
      })
      .optional()
      .transform((value) =>
        value === undefined ? defaultValue : ['true', '1'].includes(value.toLowerCase()),
      ),
  );
}

const schema = z.object({
  ENTRA_TENANT_ID: z.preprocess(
    emptyToUndefined,
    z
      .string({ message: 'required: the tenant id (GUID), a verified domain, or "organizations"' })
      .refine((v) => GUID.test(v) || DOMAIN.test(v) || v === 'organizations', {
        message: 'expected a tenant GUID, a domain such as contoso.onmicrosoft.com, or "organizations"',
      }),
  ),
  ENTRA_CLIENT_ID: z.preprocess(
    emptyToUndefined,
    z
      .string({ message: "required: the App Registration's application (client) id" })
      .regex(GUID, 'expected a GUID (the application (client) id)'),
  ),
  ENTRA_CLIENT_CREDENTIAL: z.preprocess(
    emptyToUndefined,
    z
      .enum(['managed-identity', 'certificate', 'secret'], {
        message: 'expected managed-identity, certificate or secret',
      })
      .optional(),
  ),
  MANAGED_IDENTITY_CLIENT_ID: z.preprocess(
    emptyToUndefined,
    z.string().regex(GUID, 'expected the client id (GUID) of the user-assigned managed identity').optional(),
  ),
  ENTRA_CLIENT_SECRET: optionalString,
  ENTRA_CLIENT_CERTIFICATE: optionalString,
  ENTRA_AUTHORITY_HOST: httpsUrl('the authority host, e.g. https://login.microsoftonline.com'),
  ENTRA_CLOUD: z.preprocess(
    emptyToUndefined,
    z.enum(CLOUDS, { message: `expected one of ${CLOUDS.join(', ')}` }).optional(),
  ),
  ALLOWED_TENANTS: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .optional()
      .transform((v) =>
        v === undefined
          ? []
          : v
              .split(/[,\s]+/)
              .filter(Boolean)
              .map((t) => t.toLowerCase()),
      )
      .refine((list) => list.every((t) => GUID.test(t)), {
        message: 'expected a comma-separated list of tenant GUIDs',
      }),
  ),
  PUBLIC_BASE_URL: httpsUrl('the public base URL, e.g. https://broker.contoso.com', {
    allowHttpLoopback: true,
  }),
  WEBSITE_HOSTNAME: optionalString,
  KEY_VAULT_URL: vaultUrlList(),
  KEY_VAULT_PRIVATE_URL: vaultUrlList(),
  BROKER_LOCAL_SECRET_KEY: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .optional()
      .transform((v) =>
        v === undefined ? undefined : Buffer.from(v, /^[0-9a-f]{64}$/i.test(v) ? 'hex' : 'base64'),
      )
      .refine((key) => key === undefined || key.length === 32, {
        message: 'expected 32 bytes as 64 hex characters or base64',
      }),
  ),
  BROKER_LOCAL_SECRET_FILE: optionalString,
  AzureWebJobsStorage: optionalString,
  AzureWebJobsStorage__tableServiceUri: httpsUrl('the table service URI'),
  AzureWebJobsStorage__accountName: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .regex(/^[a-z0-9]{3,24}$/, 'expected a storage account name')
      .optional(),
  ),
  AzureWebJobsStorage__clientId: optionalString,
  BROKER_TABLE_PREFIX: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9]{0,19}$/, 'expected up to 20 letters and digits, starting with a letter')
      .default(''),
  ),
  AUTH_SESSION_TTL_SECONDS: integer(600, 60, 3600),
  INVITATION_TTL_HOURS: integer(72, 1, 720),
  REFRESH_SCHEDULE: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .default('0 */10 * * * *')
      .superRefine((value, ctx) => {
        try {
          parseNcrontab(value);
        } catch (error) {
          const detail = error instanceof Error ? error.message : 'invalid';
          ctx.addIssue({
            code: 'custom',
            message: `expected an NCRONTAB expression such as "0 */10 * * * *" (${detail})`,
          });
        }
      }),
  ),
  REFRESH_MARGIN_MINUTES: integer(15, 1, 55),
  REFRESH_KEEPALIVE_DAYS: integer(7, 1, 80),
  REFRESH_CONCURRENCY: integer(8, 1, 64),
  REFRESH_BUDGET_SECONDS: integer(540, 10, 1800),
  // A rotated-out refresh token stays valid for its own 90 days, so the cache need not be rewritten
  // on every refresh; a week at most keeps the stored one far from that end. 0: every refresh.
  REFRESH_CACHE_WRITE_HOURS: integer(24, 0, 168),
  NOTIFY_DEGRADED_AFTER_MINUTES: integer(60, 1, 10080),
  PROBE_TIMEOUT_SECONDS: integer(15, 1, 120),
  NOTIFY_WEBHOOK_URL: httpsUrl('the webhook URL', { allowHttpLoopback: true }),
  NOTIFY_WEBHOOK_SECRET: optionalString,
  BROKER_LOCAL_ADMIN: boolean(false),
  BROKER_SANDBOX: boolean(false),
  WEBSITE_AUTH_ENABLED: boolean(false),
  WEBSITE_INSTANCE_ID: optionalString,
  WEBSITE_SITE_NAME: optionalString,
  WEBSITE_SKU: optionalString,
  WEBSITE_OWNER_NAME: optionalString,
  CONTAINER_NAME: optionalString,
  HTTPS_PROXY: optionalString,
  https_proxy: optionalString,
  NO_PROXY: optionalString,
  no_proxy: optionalString,
});

type RawSettings = z.infer<typeof schema>;

/**
 * The rules that span settings, one after another: long, but one flat list of independent rules
 * reads better than a split one. Returns every problem, not the first.
 */
function crossChecks(raw: RawSettings, runningInAzure: boolean): string[] {
  const problems: string[] = [];
  const credential = raw.ENTRA_CLIENT_CREDENTIAL ?? (runningInAzure ? 'managed-identity' : 'secret');
  if (credential === 'managed-identity' && !raw.MANAGED_IDENTITY_CLIENT_ID) {
    problems.push(
      'MANAGED_IDENTITY_CLIENT_ID: required with ENTRA_CLIENT_CREDENTIAL=managed-identity (the client id of the user-assigned identity)',
    );
  }
  if (credential === 'secret' && !raw.ENTRA_CLIENT_SECRET) {
    problems.push(
      'ENTRA_CLIENT_SECRET: required with ENTRA_CLIENT_CREDENTIAL=secret (use a Key Vault reference in Azure)',
    );
  }
  if (credential === 'certificate') {
    const pem = raw.ENTRA_CLIENT_CERTIFICATE ?? '';
    if (!/-----BEGIN CERTIFICATE-----/.test(pem) || !/-----BEGIN (RSA )?PRIVATE KEY-----/.test(pem)) {
      problems.push(
        'ENTRA_CLIENT_CERTIFICATE: required with ENTRA_CLIENT_CREDENTIAL=certificate: a PEM with the certificate and its private key',
      );
    }
  }
  if (raw.ENTRA_TENANT_ID === 'organizations' && raw.ALLOWED_TENANTS.length === 0) {
    problems.push(
      'ALLOWED_TENANTS: required with ENTRA_TENANT_ID=organizations (the tenant GUIDs allowed to authorize)',
    );
  }
  if (raw.KEY_VAULT_URL.length === 0) {
    if (runningInAzure) {
      problems.push(
        'KEY_VAULT_URL: required in Azure (the local encrypted file store is for development only)',
      );
    } else if (!raw.BROKER_LOCAL_SECRET_KEY) {
      problems.push(
        'BROKER_LOCAL_SECRET_KEY: required without KEY_VAULT_URL (32 bytes, hex or base64; `npm start` generates one)',
      );
    }
  }
  if (raw.KEY_VAULT_PRIVATE_URL.length > 0 && raw.KEY_VAULT_URL.length === 0) {
    problems.push('KEY_VAULT_PRIVATE_URL: needs KEY_VAULT_URL (the vaults of the published tokens) too');
  }
  if (raw.KEY_VAULT_PRIVATE_URL.some((url) => raw.KEY_VAULT_URL.includes(url))) {
    problems.push(
      'KEY_VAULT_PRIVATE_URL: must name other vaults than KEY_VAULT_URL (consumers may read those)',
    );
  }
  if (raw.BROKER_LOCAL_ADMIN && runningInAzure) {
    problems.push(
      'BROKER_LOCAL_ADMIN: must not be true in Azure (admins are checked through App Service Authentication)',
    );
  }
  const authorityCloud = raw.ENTRA_AUTHORITY_HOST ? cloudOfAuthority(raw.ENTRA_AUTHORITY_HOST) : undefined;
  if (raw.ENTRA_CLOUD && authorityCloud && loginHostOf(raw.ENTRA_CLOUD) !== loginHostOf(authorityCloud)) {
    problems.push(
      `ENTRA_CLOUD: ${raw.ENTRA_CLOUD} does not sign in at ${raw.ENTRA_AUTHORITY_HOST} (expected https://${loginHostOf(raw.ENTRA_CLOUD)})`,
    );
  }
  if (raw.NOTIFY_WEBHOOK_URL && !raw.NOTIFY_WEBHOOK_SECRET) {
    problems.push('NOTIFY_WEBHOOK_SECRET: required with NOTIFY_WEBHOOK_URL (the HMAC-SHA256 signing key)');
  }
  if (!raw.PUBLIC_BASE_URL && !raw.WEBSITE_HOSTNAME && runningInAzure) {
    problems.push('PUBLIC_BASE_URL: required when the platform does not provide WEBSITE_HOSTNAME');
  }
  return problems;
}

function defaultAuthority(cloud: CloudName | undefined): string {
  return `https://${loginHostOf(cloud ?? 'global')}`;
}

function storageSettings(raw: RawSettings, runningInAzure: boolean): StorageSettings | string {
  if (raw.AzureWebJobsStorage)
    return { kind: 'connection-string', connectionString: raw.AzureWebJobsStorage };
  const tableServiceUrl =
    raw.AzureWebJobsStorage__tableServiceUri ??
    (raw.AzureWebJobsStorage__accountName
      ? `https://${raw.AzureWebJobsStorage__accountName}.table.core.windows.net`
      : undefined);
  if (tableServiceUrl) {
    return { kind: 'identity', tableServiceUrl, managedIdentityClientId: raw.AzureWebJobsStorage__clientId };
  }
  if (runningInAzure) {
    return 'AzureWebJobsStorage: required in Azure (a connection string, or AzureWebJobsStorage__accountName for identity-based access)';
  }
  return { kind: 'connection-string', connectionString: 'UseDevelopmentStorage=true' };
}

/**
 * Whether the app runs on App Service / Azure Functions, from any variable the platform sets. Not
 * WEBSITE_INSTANCE_ID alone: the Functions host itself recognizes Linux and Flex Consumption by its
 * absence (and CONTAINER_NAME). WEBSITE_SITE_NAME, WEBSITE_SKU and WEBSITE_OWNER_NAME are set on
 * every plan. CONTAINER_NAME counts only beside WEBSITE_HOSTNAME: Docker and dev containers set it
 * on workstations too, and Core Tools sets WEBSITE_HOSTNAME for `func start`, so neither alone means
 * Azure. Taking a workstation for Azure fails closed (local admin refused), never open.
 */
function onAzurePlatform(raw: RawSettings): boolean {
  const set = (value: string | undefined) => value !== undefined && value !== '';
  return (
    [raw.WEBSITE_INSTANCE_ID, raw.WEBSITE_SITE_NAME, raw.WEBSITE_SKU, raw.WEBSITE_OWNER_NAME].some(set) ||
    (set(raw.CONTAINER_NAME) && set(raw.WEBSITE_HOSTNAME))
  );
}

/**
 * Reads and validates the settings. Throws ConfigError listing every problem, each naming the
 * setting and what is expected; the caller prints it as one line and stops. Most of its length is
 * the one object literal of the typed configuration, field by field.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): BrokerConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  const raw = parsed.data;
  const runningInAzure = onAzurePlatform(raw);
  const problems = crossChecks(raw, runningInAzure);
  const storage = storageSettings(raw, runningInAzure);
  if (typeof storage === 'string') problems.push(storage);
  if (problems.length > 0 || typeof storage === 'string') throw new ConfigError(problems);

  const credentialKind: ClientCredentialKind =
    raw.ENTRA_CLIENT_CREDENTIAL ?? (runningInAzure ? 'managed-identity' : 'secret');
  const publicBaseUrl =
    raw.PUBLIC_BASE_URL ??
    (raw.WEBSITE_HOSTNAME ? `https://${raw.WEBSITE_HOSTNAME}` : 'http://localhost:7071');
  const noProxy = (raw.NO_PROXY ?? raw.no_proxy ?? '')
    .split(',')
    .map((entry) => entry.trim().toLowerCase())
    .filter(Boolean);

  return {
    tenantId: raw.ENTRA_TENANT_ID.toLowerCase(),
    clientId: raw.ENTRA_CLIENT_ID.toLowerCase(),
    clientCredential:
      credentialKind === 'secret'
        ? { kind: 'secret', secret: raw.ENTRA_CLIENT_SECRET ?? '' }
        : credentialKind === 'certificate'
          ? { kind: 'certificate', pem: raw.ENTRA_CLIENT_CERTIFICATE ?? '' }
          : { kind: 'managed-identity' },
    managedIdentityClientId: raw.MANAGED_IDENTITY_CLIENT_ID,
    cloud: cloudFor(raw.ENTRA_AUTHORITY_HOST ?? defaultAuthority(raw.ENTRA_CLOUD), raw.ENTRA_CLOUD),
    allowedTenants: raw.ALLOWED_TENANTS,
    publicBaseUrl,
    redirectUri: `${publicBaseUrl}/api/callback`,
    keyVaultUrls: raw.KEY_VAULT_URL,
    keyVaultPrivateUrls: raw.KEY_VAULT_PRIVATE_URL,
    localSecretKey: raw.BROKER_LOCAL_SECRET_KEY,
    localSecretFile: raw.BROKER_LOCAL_SECRET_FILE ?? '.broker-local/secrets.json',
    storage,
    tablePrefix: raw.BROKER_TABLE_PREFIX,
    authSessionTtlSeconds: raw.AUTH_SESSION_TTL_SECONDS,
    invitationTtlMs: raw.INVITATION_TTL_HOURS * 3_600_000,
    refresh: {
      schedule: raw.REFRESH_SCHEDULE,
      marginMs: raw.REFRESH_MARGIN_MINUTES * 60_000,
      keepaliveMs: raw.REFRESH_KEEPALIVE_DAYS * 86_400_000,
      concurrency: raw.REFRESH_CONCURRENCY,
      budgetSeconds: raw.REFRESH_BUDGET_SECONDS,
      cacheWriteHours: raw.REFRESH_CACHE_WRITE_HOURS,
    },
    notify: {
      webhookUrl: raw.NOTIFY_WEBHOOK_URL,
      webhookSecret: raw.NOTIFY_WEBHOOK_SECRET,
      degradedAfterMs: raw.NOTIFY_DEGRADED_AFTER_MINUTES * 60_000,
    },
    probeTimeoutSeconds: raw.PROBE_TIMEOUT_SECONDS,
    localAdmin: raw.BROKER_LOCAL_ADMIN,
    platformAuthEnabled: raw.WEBSITE_AUTH_ENABLED,
    sandbox: raw.BROKER_SANDBOX,
    proxy: { httpsProxy: raw.HTTPS_PROXY ?? raw.https_proxy, noProxy },
  };
}
