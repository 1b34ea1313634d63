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
  /** Entra's authorize endpoint host, for the callback page and admin-consent links. */
  authorityUrl(tenant?: string): string;
}

interface AuthorityMetadata {
  json: string;
  issuer: string;
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
  const metadataByTenant = new Map<string, Promise<AuthorityMetadata>>();
  const authorityHost = config.cloud.authorityHost;
  const host = new URL(authorityHost).host;

  const authorityUrl = (tenant = config.tenantId) => `${authorityHost}/${tenant}`;

  function loadMetadata(tenant: string): Promise<AuthorityMetadata> {
    let pending = metadataByTenant.get(tenant);
    if (!pending) {
      pending = (async () => {
        const url = `${authorityUrl(tenant)}/v2.0/.well-known/openid-configuration`;
        let response;
        try {
          response = await outbound.fetch(url);
        } catch (error) {
          throw new BrokerError(
            'upstream_unavailable',
            `Entra ID could not be reached at ${authorityHost}.`,
            {
              cause: error,
            },
          );
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
        const parsed = JSON.parse(text) as { issuer?: unknown };
        if (typeof parsed.issuer !== 'string') {
          throw new BrokerError('upstream_unavailable', 'Entra ID metadata has no issuer.');
        }
        return { json: text, issuer: parsed.issuer };
      })();
      // A failed fetch is not remembered: the next operation tries again.
      pending.catch(() => metadataByTenant.delete(tenant));
      metadataByTenant.set(tenant, pending);
    }
    return pending;
  }

  const cloudDiscoveryMetadata = JSON.stringify({
    tenant_discovery_endpoint: `${authorityHost}/${config.tenantId}/v2.0/.well-known/openid-configuration`,
    'api-version': '1.1',
    metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
  });

  const credentialOptions = buildClientCredential(config, managedIdentity);

  return {
    authorityUrl,
    async resolvedTenantId() {
      if (config.tenantId === 'organizations') return undefined;
      const { issuer } = await loadMetadata(config.tenantId);
      const match = /\/([0-9a-f-]{36})\/v2\.0\/?$/i.exec(issuer);
      return match?.[1]?.toLowerCase();
    },
    async create(cache, authorityTenant = config.tenantId) {
      const metadata = await loadMetadata(authorityTenant);
      const configuration: Configuration = {
        auth: {
          clientId: config.clientId,
          authority: authorityUrl(authorityTenant),
          knownAuthorities: [host],
          cloudDiscoveryMetadata,
          authorityMetadata: metadata.json,
          ...credentialOptions,
        },
        cache: { cachePlugin: cache },
        system: {
          networkClient: outbound.msalNetworkModule,
          loggerOptions: {
            piiLoggingEnabled: false,
            logLevel: LogLevel.Warning,
            loggerCallback: (level, message, containsPii) => {
              if (containsPii) return;
              if (level <= LogLevel.Error) logger.warn('msal.error', { message });
            },
          },
        },
      };
      return new ConfidentialClientApplication(configuration);
    },
  };
}

function buildClientCredential(
  config: BrokerConfig,
  managedIdentity: TokenCredential | undefined,
): Pick<Configuration['auth'], 'clientSecret' | 'clientAssertion' | 'clientCertificate'> {
  const credential = config.clientCredential;
  switch (credential.kind) {
    case 'secret':
      return { clientSecret: credential.secret };
    case 'certificate': {
      const certificatePem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(
        credential.pem,
      )?.[0];
      const privateKey = /-----BEGIN (RSA )?PRIVATE KEY-----[\s\S]+?-----END (RSA )?PRIVATE KEY-----/.exec(
        credential.pem,
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
    case 'managed-identity': {
      if (!managedIdentity) {
        throw new BrokerError('configuration_error', 'The managed identity credential is not available.');
      }
      // Federated identity credential: the user-assigned identity's token for the token-exchange
      // audience is the client assertion, so no secret exists anywhere.
      const scope = `${config.cloud.tokenExchangeAudience}/.default`;
      return {
        clientAssertion: async () => {
          const token = await managedIdentity.getToken(scope);
          if (!token)
            throw new BrokerError('upstream_unavailable', 'The managed identity returned no token.');
          return token.token;
        },
      };
    }
  }
}
