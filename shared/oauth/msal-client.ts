import { X509Certificate } from 'node:crypto';
import {
  ConfidentialClientApplication,
  LogLevel,
  type Configuration,
  type ICachePlugin,
  type TokenCacheContext,
} from '@azure/msal-node';
import type { TokenCredential } from '@azure/identity';
import type { BrokerConfig } from '../config';
import { BrokerError } from '../errors';
import type { Outbound } from '../net/outbound';
import type { Logger } from '../logging';
import { memoizeUntilFailure } from '../promises';

/**
 * A token cache held in memory for one operation. The broker decides when (and whether) it is
 * written to the secret store, instead of letting MSAL write as a side effect: a callback must
 * check tenant and account before anything is stored, and a refresh must write the cache before
 * it publishes the access token.
 */
export class OperationCache implements ICachePlugin {
  private serialized: string | undefined;
  private changed = false;

  constructor(initial?: string) {
    this.serialized = initial;
  }

  beforeCacheAccess(context: TokenCacheContext): Promise<void> {
    if (this.serialized !== undefined) context.tokenCache.deserialize(this.serialized);
    return Promise.resolve();
  }

  afterCacheAccess(context: TokenCacheContext): Promise<void> {
    if (context.cacheHasChanged) {
      this.serialized = context.tokenCache.serialize();
      this.changed = true;
    }
    return Promise.resolve();
  }

  /** The serialized cache after the operation; secret (holds the refresh token). */
  get contents(): string | undefined {
    return this.serialized;
  }

  get hasChanged(): boolean {
    return this.changed;
  }
}

export interface MsalClientFactory {
  /** A client bound to one operation's cache (MSAL's distributed-cache pattern: one per operation). */
  create(cache: OperationCache, authorityTenant?: string): Promise<ConfidentialClientApplication>;
  /** The tenant id (GUID) the configured authority resolves to; undefined for `organizations`. */
  resolvedTenantId(): Promise<string | undefined>;
  /** The authority MSAL talks to, `{authority host}/{tenant}`. */
  authorityUrl(tenant?: string): string;
  /**
   * Where a browser goes to sign in, `{origin}/{tenant}`: the origin of the tenant's
   * `authorization_endpoint` (as MSAL's authorize URL has it), for admin-consent links and the
   * pages that redirect to Entra. Entra's is the authority host; the sandbox's sign-in pages are
   * on plain-HTTP localhost, so a browser opens them without a certificate warning.
   */
  signInUrl(tenant?: string): Promise<string>;
}

interface AuthorityMetadata {
  json: string;
  issuer: string;
  /** Origin of `authorization_endpoint`. */
  signInOrigin: string;
}

/** The `auth` fields that carry the app's credential: exactly one of them is set. */
type ClientCredential = Pick<Configuration['auth'], 'clientSecret' | 'clientAssertion' | 'clientCertificate'>;

/** What every client of one factory shares; only the authority and the cache differ per client. */
interface MsalApp {
  clientId: string;
  /** The authority's host, the one known authority. */
  host: string;
  cloudDiscoveryMetadata: string;
  credential: ClientCredential;
  outbound: Outbound;
  logger: Logger;
}

/**
 * Builds MSAL clients with the app's credential and MSAL's network traffic on the broker's
 * outbound dispatcher. Authority and cloud-discovery metadata are fetched once per process and
 * handed to every client: without them each per-operation client would fetch them again, and
 * MSAL's instance discovery would call the public cloud even for a sovereign or test authority.
 */
export function createMsalClientFactory(
  config: BrokerConfig,
  outbound: Outbound,
  logger: Logger,
  managedIdentity: TokenCredential | undefined,
): MsalClientFactory {
  const authorityHost = config.cloud.authorityHost;
  const authorityUrl = (tenant = config.tenantId) => `${authorityHost}/${tenant}`;
  const loadMetadata = memoizeUntilFailure((tenant: string) =>
    fetchAuthorityMetadata(outbound, authorityHost, tenant),
  );
  const host = new URL(authorityHost).host;
  const app: MsalApp = {
    clientId: config.clientId,
    host,
    cloudDiscoveryMetadata: cloudDiscoveryMetadata(authorityHost, host, config.tenantId),
    credential: buildClientCredential(config, managedIdentity),
    outbound,
    logger,
  };

  return {
    authorityUrl,
    async signInUrl(tenant = config.tenantId) {
      return `${(await loadMetadata(tenant)).signInOrigin}/${tenant}`;
    },
    async resolvedTenantId() {
      if (config.tenantId === 'organizations') return undefined;
      const { issuer } = await loadMetadata(config.tenantId);
      return tenantIdOfIssuer(issuer);
    },
    async create(cache, authorityTenant = config.tenantId) {
      const metadata = await loadMetadata(authorityTenant);
      return new ConfidentialClientApplication(
        clientConfiguration(app, authorityUrl(authorityTenant), metadata.json, cache),
      );
    },
  };
}

/**
 * `load` once per tenant, shared by concurrent callers. A failed load is not remembered: the next
 * operation tries again.
 */

/** The tenant's OpenID configuration; a tenant Entra does not know is a configuration error. */
async function fetchAuthorityMetadata(
  outbound: Outbound,
  authorityHost: string,
  tenant: string,
): Promise<AuthorityMetadata> {
  const url = `${authorityHost}/${tenant}/v2.0/.well-known/openid-configuration`;
  let response;
  try {
    response = await outbound.fetch(url);
  } catch (error) {
    throw new BrokerError('upstream_unavailable', `Entra ID could not be reached at ${authorityHost}.`, {
      cause: error,
    });
  }
  const text = await response.text();
  if (!response.ok) {
    const aadsts = /AADSTS(\d+)/.exec(text)?.[1];
    const tenantMissing = aadsts === '90002';
    throw new BrokerError(
      tenantMissing ? 'configuration_error' : 'upstream_unavailable',
      tenantMissing
        ? `Entra ID does not know the tenant "${tenant}" (AADSTS90002). Check ENTRA_TENANT_ID.`
        : `Entra ID metadata answered HTTP ${response.status}.`,
      { aadsts: aadsts ? Number(aadsts) : undefined },
    );
  }
  const parsed = JSON.parse(text) as { issuer?: unknown; authorization_endpoint?: unknown };
  if (typeof parsed.issuer !== 'string') {
    throw new BrokerError('upstream_unavailable', 'Entra ID metadata has no issuer.');
  }
  let signInOrigin = authorityHost;
  try {
    if (typeof parsed.authorization_endpoint === 'string')
      signInOrigin = new URL(parsed.authorization_endpoint).origin;
  } catch {
    // MSAL refuses such metadata anyway; the admin-consent link keeps the authority host.
  }
  return { json: text, issuer: parsed.issuer, signInOrigin };
}

/**
 * MSAL's instance discovery answered locally: the authority's host is its own (and only) alias,
 * so no client ever asks the public cloud about it.
 */
function cloudDiscoveryMetadata(authorityHost: string, host: string, tenantId: string): string {
  return JSON.stringify({
    tenant_discovery_endpoint: `${authorityHost}/${tenantId}/v2.0/.well-known/openid-configuration`,
    'api-version': '1.1',
    metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
  });
}

/** The tenant id (GUID, lower case) in an issuer like `https://login…/{tenant}/v2.0`. */
export function tenantIdOfIssuer(issuer: string): string | undefined {
  const match = /\/([0-9a-f-]{36})\/v2\.0\/?$/i.exec(issuer);
  return match?.[1]?.toLowerCase();
}

/** One client's configuration: the app's shared parts, this client's authority and cache. */
function clientConfiguration(
  app: MsalApp,
  authority: string,
  authorityMetadata: string,
  cache: OperationCache,
): Configuration {
  return {
    auth: {
      clientId: app.clientId,
      authority,
      knownAuthorities: [app.host],
      cloudDiscoveryMetadata: app.cloudDiscoveryMetadata,
      authorityMetadata,
      ...app.credential,
    },
    cache: { cachePlugin: cache },
    system: {
      networkClient: app.outbound.msalNetworkModule,
      loggerOptions: {
        piiLoggingEnabled: false,
        logLevel: LogLevel.Warning,
        loggerCallback: (level, message, containsPii) => {
          if (containsPii) return;
          if (level <= LogLevel.Error) app.logger.warn('msal.error', { message });
        },
      },
    },
  };
}

function buildClientCredential(
  config: BrokerConfig,
  managedIdentity: TokenCredential | undefined,
): ClientCredential {
  const credential = config.clientCredential;
  switch (credential.kind) {
    case 'secret':
      return { clientSecret: credential.secret };
    case 'certificate':
      return certificateCredential(credential.pem);
    case 'managed-identity':
      return managedIdentityAssertion(config, managedIdentity);
  }
}

/** A PEM holding the certificate and its private key (PKCS#8 or PKCS#1). */
function certificateCredential(pem: string): ClientCredential {
  const certificatePem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  const privateKey = /-----BEGIN (RSA )?PRIVATE KEY-----[\s\S]+?-----END (RSA )?PRIVATE KEY-----/.exec(
    pem,
  )?.[0];
  if (!certificatePem || !privateKey) {
    throw new BrokerError(
      'configuration_error',
      'ENTRA_CLIENT_CERTIFICATE must hold a certificate and its key.',
    );
  }
  const certificate = new X509Certificate(certificatePem);
  return {
    clientCertificate: {
      thumbprintSha256: certificate.fingerprint256.replace(/:/g, '').toLowerCase(),
      privateKey,
      x5c: certificatePem,
    },
  };
}

/**
 * Federated identity credential: the user-assigned identity's token for the token-exchange
 * audience is the client assertion, so no secret exists anywhere.
 */
function managedIdentityAssertion(
  config: BrokerConfig,
  managedIdentity: TokenCredential | undefined,
): ClientCredential {
  if (!managedIdentity) {
    throw new BrokerError('configuration_error', 'The managed identity credential is not available.');
  }
  const scope = `${config.cloud.tokenExchangeAudience}/.default`;
  return {
    clientAssertion: async () => {
      const token = await managedIdentity.getToken(scope);
      if (!token) throw new BrokerError('upstream_unavailable', 'The managed identity returned no token.');
      return token.token;
    },
  };
}
