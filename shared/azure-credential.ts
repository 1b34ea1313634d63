import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import type { BrokerConfig } from './config';

/**
 * The broker's own Azure identity, for Key Vault, Table storage and (with
 * ENTRA_CLIENT_CREDENTIAL=managed-identity) the federated client assertion.
 *
 * - With MANAGED_IDENTITY_CLIENT_ID: that user-assigned managed identity, and nothing else. In
 *   App Service / Functions the SDK finds the platform's token endpoint itself (IDENTITY_ENDPOINT
 *   and IDENTITY_HEADER), which is also how a test points it at an emulated endpoint. A user-assigned
 *   identity is named explicitly because an app can carry several, and because no fallback to
 *   other credentials (environment, CLI) should ever run in Azure.
 * - Without it: DefaultAzureCredential, i.e. a developer's `az login` / `azd auth login` / VS Code
 *   sign-in when running locally against a real vault or storage account.
 */
export function createAzureCredential(
  config: Pick<BrokerConfig, 'managedIdentityClientId'>,
): TokenCredential {
  if (config.managedIdentityClientId) {
    return new ManagedIdentityCredential({ clientId: config.managedIdentityClientId });
  }
  return new DefaultAzureCredential();
}
