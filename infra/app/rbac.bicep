// The role assignments of the broker's managed identity and of the deploying user. Names are
// guid(scope.id, principalId, roleDefinitionId), so a redeployment finds the same assignment instead
// of failing on a duplicate. main.bicep creates the Function App after this module, so the identity
// holds its storage roles before the app's host or its Flex deployment first uses them. Token
// consumers get their roles, per published token, in token-readers.bicep.
param storageAccountName string
@description('Vaults of the published tokens (conn-{name}-token).')
param keyVaultNames array
@description('Vaults of the token caches (refresh tokens) and passwords: the broker (and the deployer) only.')
param privateKeyVaultNames array = []
param appInsightsName string

@description('principalId of the Function App\'s user-assigned managed identity.')
param appPrincipalId string

@description('The deploying user (azd AZURE_PRINCIPAL_ID); empty: no assignments for it.')
param deployerPrincipalId string = ''

@allowed(['User', 'ServicePrincipal', 'Group'])
param deployerPrincipalType string = 'User'

// Azure built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles),
// each named beside its GUID; test/unit/infra/resources.test.ts checks them against its own copy.
var roleDefinitionIds = {
  'Key Vault Secrets Officer': 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  'Storage Blob Data Owner': 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  'Storage Queue Data Contributor': '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  'Storage Table Data Contributor': '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  'Monitoring Metrics Publisher': '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vaults 'Microsoft.KeyVault/vaults@2023-07-01' existing = [
  for name in keyVaultNames: {
    name: name
  }
]

resource privateVaults 'Microsoft.KeyVault/vaults@2023-07-01' existing = [
  for name in privateKeyVaultNames: {
    name: name
  }
]

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// ---- The app's managed identity ------------------------------------------------------------------

// Writes, reads and deletes the published tokens (conn-{name}-token; purging them is refused while
// these vaults have purge protection); reads the Key Vault reference of NOTIFY_WEBHOOK_SECRET.
resource appKeyVaultSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (name, i) in keyVaultNames: {
    name: guid(vaults[i].id, appPrincipalId, roleDefinitionIds['Key Vault Secrets Officer'])
    scope: vaults[i]
    properties: {
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId(
        'Microsoft.Authorization/roleDefinitions',
        roleDefinitionIds['Key Vault Secrets Officer']
      )
    }
  }
]

// Functions host: AzureWebJobsStorage blobs (timer schedule monitor, singleton locks, host keys) and
// the Flex Consumption deployment container.
resource appStorageBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, roleDefinitionIds['Storage Blob Data Owner'])
  scope: storage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId(
      'Microsoft.Authorization/roleDefinitions',
      roleDefinitionIds['Storage Blob Data Owner']
    )
  }
}

// Functions host queues (identity-based AzureWebJobsStorage).
resource appStorageQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, roleDefinitionIds['Storage Queue Data Contributor'])
  scope: storage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId(
      'Microsoft.Authorization/roleDefinitions',
      roleDefinitionIds['Storage Queue Data Contributor']
    )
  }
}

// The broker's tables: connection registry (with each connection's lease), authorization sessions, audit events.
resource appStorageTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, roleDefinitionIds['Storage Table Data Contributor'])
  scope: storage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId(
      'Microsoft.Authorization/roleDefinitions',
      roleDefinitionIds['Storage Table Data Contributor']
    )
  }
}

// Application Insights ingestion with Entra auth (DisableLocalAuth).
resource appMonitoringMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appPrincipalId, roleDefinitionIds['Monitoring Metrics Publisher'])
  scope: appInsights
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId(
      'Microsoft.Authorization/roleDefinitions',
      roleDefinitionIds['Monitoring Metrics Publisher']
    )
  }
}

// Writes, reads, deletes and purges the token caches and passwords. These vaults have no purge
// protection, so a deleted connection's refresh tokens are purged at once: Key Vault Secrets Officer
// grants the data actions Microsoft.KeyVault/vaults/secrets/* (built-in roles, Security), which
// include secrets/purge/action.
resource appPrivateKeyVaultSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (name, i) in privateKeyVaultNames: {
    name: guid(privateVaults[i].id, appPrincipalId, roleDefinitionIds['Key Vault Secrets Officer'])
    scope: privateVaults[i]
    properties: {
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId(
        'Microsoft.Authorization/roleDefinitions',
        roleDefinitionIds['Key Vault Secrets Officer']
      )
    }
  }
]

// ---- The deploying user -----------------------------------------------------------------------------
// azd itself needs no data-plane role (provisioning is control plane; Flex deployment goes through
// the app's publish endpoint, which writes the package with the app's identity). These let the
// deployer run the broker locally against the deployed vault and tables, read published tokens and
// set the webhook secret.

resource deployerKeyVaultSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (name, i) in (empty(deployerPrincipalId) ? [] : keyVaultNames): {
    name: guid(vaults[i].id, deployerPrincipalId, roleDefinitionIds['Key Vault Secrets Officer'])
    scope: vaults[i]
    properties: {
      principalId: deployerPrincipalId
      principalType: deployerPrincipalType
      roleDefinitionId: subscriptionResourceId(
        'Microsoft.Authorization/roleDefinitions',
        roleDefinitionIds['Key Vault Secrets Officer']
      )
    }
  }
]

resource deployerStorageTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(storage.id, deployerPrincipalId, roleDefinitionIds['Storage Table Data Contributor'])
  scope: storage
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId(
      'Microsoft.Authorization/roleDefinitions',
      roleDefinitionIds['Storage Table Data Contributor']
    )
  }
}

resource deployerStorageBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(storage.id, deployerPrincipalId, roleDefinitionIds['Storage Blob Data Owner'])
  scope: storage
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId(
      'Microsoft.Authorization/roleDefinitions',
      roleDefinitionIds['Storage Blob Data Owner']
    )
  }
}
