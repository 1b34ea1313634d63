import {
  DefaultAzureCredential,
  ManagedIdentityCredential,
  type TokenCredential,
  type TokenCredentialOptions,
} from '@azure/identity';
import type { BrokerConfig } from './config';
import { bypassesProxy } from './net/outbound';

type AdditionalPolicy = NonNullable<TokenCredentialOptions['additionalPolicies']>[number];
type ProxySettings = NonNullable<TokenCredentialOptions['proxyOptions']>;

/** What an Azure SDK client (Key Vault, Tables, identity) takes to follow `config.proxy`. */
export interface AzureSdkProxyOptions {
  proxyOptions?: ProxySettings;
  additionalPolicies: AdditionalPolicy[];
}

/**
 * HTTPS_PROXY and NO_PROXY for an Azure SDK pipeline, from the broker's configuration rather than
 * from `process.env`. Left alone, the SDK's proxy policy takes HTTPS_PROXY (or HTTP_PROXY,
 * ALL_PROXY) from `process.env` when the client is built, and NO_PROXY from `process.env` once
 * per process, matching only exact host names and `.domain` suffixes (no ports, no `*`, and
 * `contoso.com` does not cover its subdomains). Here `proxyOptions` names the configured proxy, and
 * a per-call policy (which runs after the SDK's proxy policy) drops the proxy agent again for a host
 * that NO_PROXY covers as the broker's own client reads it (`bypassesProxy`), or when no proxy is
 * configured, so both halves of the broker agree on every host.
 */
export function azureSdkProxy(proxy: BrokerConfig['proxy']): AzureSdkProxyOptions {
  const url = proxy.httpsProxy ? new URL(proxy.httpsProxy) : undefined;
  const proxyOptions: ProxySettings | undefined = url && {
    host: `${url.protocol}//${url.hostname}`,
    port: Number(url.port) || (url.protocol === 'https:' ? 443 : 80),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
  };
  const policy: AdditionalPolicy['policy'] = {
    name: 'brokerNoProxy',
    sendRequest(request, next) {
      const target = new URL(request.url);
      const port = Number(target.port) || (target.protocol === 'https:' ? 443 : 80);
      if (!proxyOptions || bypassesProxy(target.hostname, port, proxy.noProxy)) request.agent = undefined;
      return next(request);
    },
  };
  return {
    ...(proxyOptions ? { proxyOptions } : {}),
    additionalPolicies: [{ policy, position: 'perCall' }],
  };
}

/**
 * The broker's own Azure identity, for Key Vault, Table storage and (with
 * ENTRA_CLIENT_CREDENTIAL=managed-identity) the federated client assertion.
 *
 * - With MANAGED_IDENTITY_CLIENT_ID: that user-assigned managed identity, and nothing else. In
 *   App Service / Functions the SDK finds the platform's token endpoint itself (IDENTITY_ENDPOINT
 *   and IDENTITY_HEADER), which is also how a test points it at an emulated endpoint. A user-assigned
 *   identity is named explicitly because an app can carry several, and because no fallback to
 *   other credentials (environment, CLI) should ever run in Azure. Its proxy settings stay the
 *   SDK's own, from `process.env`: its token client drops additional policies, so `azureSdkProxy`
 *   could give it the proxy but not NO_PROXY. The endpoint is on the host (127.0.0.1 in App
 *   Service), so behind a proxy NO_PROXY must name that host exactly as IDENTITY_ENDPOINT does.
 * - Without it: DefaultAzureCredential, i.e. a developer's `az login` / `azd auth login` / VS Code
 *   sign-in when running locally against a real vault or storage account, through the configured proxy.
 */
export function createAzureCredential(
  config: Pick<BrokerConfig, 'managedIdentityClientId' | 'proxy'>,
): TokenCredential {
  if (config.managedIdentityClientId) {
    return new ManagedIdentityCredential({ clientId: config.managedIdentityClientId });
  }
  return new DefaultAzureCredential(azureSdkProxy(config.proxy));
}
