// ews-oauth-broker: everything `azd up` creates.
//
//   resource group
//   ├── user-assigned managed identity (the app's only credential: Azure resources + federated credential)
//   ├── Log Analytics + Application Insights (local auth off)
//   ├── storage account (shared key off) + Flex Consumption deployment container
//   ├── Key Vaults (RBAC, soft delete): published tokens (purge protection) and, apart, the token
//   │   caches and passwords (no purge protection: the broker purges a deleted connection's secrets)
//   ├── role assignments of the app identity and the deployer (rbac.bicep)
//   ├── Flex Consumption plan + Function App (node 22, HTTPS only, TLS 1.2, no basic publishing auth)
//   ├── per-secret Key Vault Secrets User for listed token consumers (token-readers.bicep)
//   └── app settings + App Service Authentication (after the App Registration exists)
//   Microsoft Entra (Microsoft Graph Bicep extension, entra-app.bicep)
//   ├── App Registration (redirect URIs from the Function App's real host name, app roles, permissions)
//   ├── service principal (assignment required)
//   └── federated identity credential: the managed identity is the app's client credential (no secret)
//   App role assignments and admin consent are not Bicep resources: the deployment outputs what it
//   wants (BROKER_APP_ROLE_ASSIGNMENTS, BROKER_PERMISSION_GRANTS) and azure.yaml's postprovision hook
//   (scripts/assign-app-roles.ts) makes what is missing through Microsoft Graph.
//
// Order matters and has no cycle: the role assignments first (the Function App's host and its Flex
// deployment use its identity's storage roles from the start), then the Function App (its default
// host name is needed for the redirect URIs), then the App Registration (it needs that host name and
// the identity), then the app settings and authsettingsV2 (they need the App Registration's client id).
//
// Parameters: infra/main.bicepparam, the one parameter file, read by azd and `az deployment` alike
// (readEnvironmentVariable); every parameter has an environment variable there.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; feeds every resource name through a short hash.')
param environmentName string

@minLength(1)
@description('Region of every resource: one that offers Flex Consumption (the Functions quickstart\'s list; `az functionapp list-flexconsumption-locations` shows today\'s). azd reads main.bicepparam and then prompts for AZURE_LOCATION without this filter: set AZURE_LOCATION first (README).')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'eastus2euap'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the deploying user (azd sets AZURE_PRINCIPAL_ID). Gets data access for debugging and Broker.Admin (a User or Group). Empty: none.')
param principalId string = ''

@allowed(['User', 'ServicePrincipal', 'Group'])
@description('Kind of principalId.')
param principalType string = 'User'

@description('Connection profiles the App Registration requests permissions for.')
@allowed(['ews', 'ews-shared', 'imap', 'pop', 'smtp', 'graph-mail', 'graph-mail-shared'])
param profiles array = ['ews', 'ews-shared', 'imap', 'pop', 'smtp', 'graph-mail', 'graph-mail-shared']

@description('Also request the application permissions of the chosen profiles (Exchange Online full_access_as_app, IMAP.AccessAsApp, POP.AccessAsApp; Graph Mail.ReadWrite, Mail.Send), for client_credentials (app-only) connections. Off by default: an app-only grant without an Exchange scope reads every mailbox in the tenant.')
param enableAppOnly bool = false

@description('Grant tenant-wide admin consent for the requested permissions in this deployment (the deploying identity needs a role that may grant consent, e.g. Privileged Role Administrator). Otherwise use the ADMIN_CONSENT_URL output.')
param grantAdminConsent bool = false

@allowed(['AzureADMyOrg', 'AzureADMultipleOrgs'])
@description('AzureADMyOrg: only this tenant\'s mailboxes. AzureADMultipleOrgs: also the tenants in allowedTenants (the app then runs with ENTRA_TENANT_ID=organizations).')
param signInAudience string = 'AzureADMyOrg'

@description('With AzureADMultipleOrgs: tenant GUIDs besides this one whose accounts may authorize (ALLOWED_TENANTS).')
param allowedTenants array = []

@minValue(1)
@maxValue(5)
@description('Number of Key Vaults; the broker spreads connections over them (KEY_VAULT_URL lists all). One vault sustains about 70,000 connections.')
param keyVaultCount int = 1

@maxLength(32)
@description('Salts the Key Vault names. A soft-deleted vault keeps its name for the retention period (90 days) after `azd down` unless it is purged, and the published-token vaults cannot be (purge protection); azure.yaml\'s postdown hook sets a new salt (KEY_VAULT_NAME_SALT) so the next `azd up` creates fresh vaults. Empty: the original names.')
param keyVaultNameSalt string = ''

@allowed(['default', 'recover'])
@description('recover: bring back the soft-deleted vaults of this environment (same names, so the salt of their deployment) with their secrets, instead of creating new ones. Both sets must still be soft-deleted (not purged).')
param keyVaultCreateMode string = 'default'

@description('Consumers that read a connection\'s published token from Key Vault, per connection: [{ connection: \'support-in\', principalId: \'<object id>\' }] (optional keyVaultIndex with keyVaultCount > 1). Each gets Key Vault Secrets User on the secret conn-{connection}-token only, which must exist (the connection authorized). No consumer gets a role on a vault.')
param tokenReaders array = []

@description('Users or groups (object ids) to assign the Broker.Admin app role, besides the deploying user.')
param brokerAdminPrincipalIds array = []

@description('Users or groups (object ids) to assign Broker.MailboxSignIn: the accounts that sign in to authorize a mailbox. The service principal requires an assignment, so no one else can.')
param mailboxSignInPrincipalIds array = []

@description('US Government DoD tenants: usgov-dod (its Exchange and Graph hosts differ from GCC High, which signs in at the same host). Empty elsewhere: the cloud follows the deployment\'s environment().')
@allowed(['', 'usgov-dod'])
param entraCloud string = ''

@description('NCRONTAB schedule of the refreshTokens timer (REFRESH_SCHEDULE, six fields, UTC).')
param refreshSchedule string = '0 */10 * * * *'

@description('Optional webhook for status changes (NOTIFY_WEBHOOK_URL). Its signing key lives in Key Vault as notifyWebhookSecretName.')
param notifyWebhookUrl string = ''

@description('Name of the Key Vault secret (in the first private vault, which consumers cannot read) holding NOTIFY_WEBHOOK_SECRET.')
param notifyWebhookSecretName string = 'notify-webhook-secret'

@secure()
@description('Optional: the webhook signing key, written to Key Vault by this deployment. Leave empty to set the secret yourself (az keyvault secret set).')
param notifyWebhookSecret string = ''

@description('Optional public base URL (custom domain, no trailing slash). Empty: the Function App\'s default host name.')
param publicBaseUrl string = ''

@description('Display name of the App Registration. Empty: "ews-oauth-broker (<environment>)".')
param appDisplayName string = ''

@description('Optional serviceManagementReference, required by some tenants\' app management policies.')
param serviceManagementReference string = ''

@minValue(40)
@maxValue(1000)
@description('Flex Consumption scale-out limit per app: from 40 to 1,000 (Azure Functions docs, Flex Consumption).')
param maximumInstanceCount int = 100

@allowed([512, 2048, 4096])
@description('Flex Consumption instance memory (MB).')
param instanceMemoryMB int = 2048

var abbrs = {
  resourceGroup: 'rg-'
  identity: 'id-'
  logAnalytics: 'log-'
  appInsights: 'appi-'
  storage: 'st'
  keyVault: 'kv'
  plan: 'plan-'
  functionApp: 'func-'
}
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = '${abbrs.functionApp}broker-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
// Vault names outlive `azd down` by the soft-delete retention (the published-token vaults cannot be
// purged), so they take a salt the postdown hook renews; without one they keep the first release's names.
var vaultToken = empty(keyVaultNameSalt) ? resourceToken : toLower(uniqueString(subscription().id, environmentName, location, keyVaultNameSalt))
var keyVaultNames = [for i in range(0, keyVaultCount): '${abbrs.keyVault}${vaultToken}${i == 0 ? '' : string(i)}']
// Token caches (refresh tokens) and passwords live apart from the published tokens: no consumer ever
// gets a role on them, and without purge protection a deleted connection's refresh tokens are purged.
var privateKeyVaultNames = [for i in range(0, keyVaultCount): '${abbrs.keyVault}p${vaultToken}${i == 0 ? '' : string(i)}']

resource rg 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: '${abbrs.resourceGroup}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.identity}broker-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.logAnalytics}${resourceToken}'
    appInsightsName: '${abbrs.appInsights}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storage}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
  }
}

module keyVault 'app/key-vault.bicep' = {
  name: 'keyVault'
  scope: rg
  params: {
    names: keyVaultNames
    createMode: keyVaultCreateMode
    location: location
    tags: tags
    // The published-token vaults hold no webhook key: consumers may read these vaults.
    notifyWebhookSecretName: notifyWebhookSecretName
  }
}

module privateKeyVault 'app/key-vault.bicep' = {
  name: 'privateKeyVault'
  scope: rg
  params: {
    names: privateKeyVaultNames
    createMode: keyVaultCreateMode
    // A delete is final: the broker purges a deleted connection's refresh tokens, which purge
    // protection would keep recoverable for the retention period. Soft delete stays.
    enablePurgeProtection: false
    location: location
    tags: tags
    // The webhook signing key lives here, out of every consumer's reach: a consumer that could read
    // it could forge a signed connection.deleted.
    notifyWebhookSecretName: notifyWebhookSecretName
    notifyWebhookSecret: notifyWebhookSecret
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbacAssignments'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    keyVaultNames: keyVault.outputs.names
    privateKeyVaultNames: privateKeyVault.outputs.names
    appInsightsName: monitoring.outputs.appInsightsName
    appPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

// After the role assignments: the host (AzureWebJobsStorage) and the Flex deployment container
// (Storage Blob Data Owner) use the identity's roles from the first start.
module functionApp 'app/function-app.bicep' = {
  name: 'functionApp'
  scope: rg
  dependsOn: [rbac]
  params: {
    name: functionAppName
    planName: '${abbrs.plan}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

module entraApp 'app/entra-app.bicep' = {
  name: 'entraApp'
  scope: rg
  params: {
    uniqueName: 'ews-oauth-broker-${resourceToken}'
    displayName: empty(appDisplayName) ? 'ews-oauth-broker (${environmentName})' : appDisplayName
    signInAudience: signInAudience
    defaultHostName: functionApp.outputs.defaultHostName
    publicBaseUrl: publicBaseUrl
    profiles: profiles
    enableAppOnly: enableAppOnly
    grantAdminConsent: grantAdminConsent
    identityPrincipalId: identity.outputs.principalId
    brokerAdminPrincipalIds: union(empty(principalId) || principalType == 'ServicePrincipal' ? [] : [principalId], brokerAdminPrincipalIds)
    mailboxSignInPrincipalIds: mailboxSignInPrincipalIds
    serviceManagementReference: serviceManagementReference
  }
}

module appSettings 'app/function-app-settings.bicep' = {
  name: 'functionAppSettings'
  scope: rg
  params: {
    functionAppName: functionApp.outputs.name
    identityClientId: identity.outputs.clientId
    entraClientId: entraApp.outputs.appId
    signInAudience: signInAudience
    allowedTenants: allowedTenants
    keyVaultUris: keyVault.outputs.vaultUris
    privateKeyVaultUris: privateKeyVault.outputs.vaultUris
    storageAccountName: storage.outputs.name
    storageTableEndpoint: storage.outputs.tableEndpoint
    appInsightsConnectionString: monitoring.outputs.connectionString
    refreshSchedule: refreshSchedule
    notifyWebhookUrl: notifyWebhookUrl
    notifyWebhookSecretUri: '${privateKeyVault.outputs.vaultUris[0]}secrets/${notifyWebhookSecretName}'
    publicBaseUrl: publicBaseUrl
    entraCloud: entraCloud
  }
}

module tokenReaderRoles 'app/token-readers.bicep' = {
  name: 'tokenReaderAssignments'
  scope: rg
  params: {
    keyVaultNames: keyVault.outputs.names
    tokenReaders: tokenReaders
  }
}

var baseUrl = empty(publicBaseUrl) ? 'https://${functionApp.outputs.defaultHostName}' : publicBaseUrl

// azd writes these into .azure/<env>/.env.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = 'https://${functionApp.outputs.defaultHostName}'
output BROKER_BASE_URL string = baseUrl
output BROKER_CONSOLE_URL string = '${baseUrl}/api/console'
output REDIRECT_URI string = entraApp.outputs.redirectUri
output ADMIN_CONSENT_URL string = entraApp.outputs.adminConsentUrl
output ENTRA_CLIENT_ID string = entraApp.outputs.appId
output ENTRA_TENANT_ID string = tenant().tenantId
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output KEY_VAULT_URL string = join(keyVault.outputs.vaultUris, ',')
output KEY_VAULT_PRIVATE_URL string = join(privateKeyVault.outputs.vaultUris, ',')
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.connectionString
// Read by scripts/assign-app-roles.ts (azure.yaml postprovision): azd writes arrays as JSON.
output ENTRA_SERVICE_PRINCIPAL_ID string = entraApp.outputs.servicePrincipalId
output BROKER_APP_ROLE_ASSIGNMENTS array = entraApp.outputs.appRoleAssignments
output BROKER_PERMISSION_GRANTS array = entraApp.outputs.permissionGrants
