// The broker's secret store: one vault, or several (KEY_VAULT_URL lists them; connections are spread
// by rendezvous hashing). RBAC only, soft delete with purge protection: a deleted connection's
// secrets stay recoverable for the retention period, and the broker recovers a name it reuses.
param names array
param location string
param tags object = {}
param softDeleteRetentionInDays int = 90

@allowed(['default', 'recover'])
@description('recover: re-create vaults whose names are soft-deleted (purge protection keeps them for the retention period after `azd down`).')
param createMode string = 'default'

@description('Name of the NOTIFY_WEBHOOK_SECRET secret in the first vault.')
param notifyWebhookSecretName string

@secure()
@description('Optional value for that secret; empty: the operator sets it.')
param notifyWebhookSecret string = ''

resource vaults 'Microsoft.KeyVault/vaults@2023-07-01' = [
  for name in names: {
    name: name
    location: location
    tags: tags
    properties: {
      tenantId: tenant().tenantId
      createMode: createMode
      sku: { family: 'A', name: 'standard' }
      enableRbacAuthorization: true
      enableSoftDelete: true
      softDeleteRetentionInDays: softDeleteRetentionInDays
      enablePurgeProtection: true
      publicNetworkAccess: 'Enabled'
      networkAcls: {
        defaultAction: 'Allow'
        bypass: 'AzureServices'
      }
    }
  }
]

resource webhookSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(notifyWebhookSecret)) {
  parent: vaults[0]
  name: notifyWebhookSecretName
  properties: {
    value: notifyWebhookSecret
    contentType: 'text/plain'
  }
}

output names array = [for (name, i) in names: vaults[i].name]
output vaultUris array = [for (name, i) in names: vaults[i].properties.vaultUri]
