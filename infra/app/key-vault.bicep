// The broker's secret store: one vault, or several (KEY_VAULT_URL lists them; connections are spread
// by rendezvous hashing). RBAC only, soft delete (it cannot be turned off). main.bicep deploys two sets:
// the published tokens with purge protection (a deleted token stays recoverable for the retention
// period), and the private vaults of the token caches (refresh tokens) and passwords WITHOUT it, so
// the broker can purge a deleted connection's refresh tokens at once: a delete is final, and a refresh
// token can always be had again by authorizing again.
param names array
param location string
param tags object = {}
param softDeleteRetentionInDays int = 90

@description('Purge protection: once on, a vault keeps it for good, and no one can purge a deleted secret or vault before the retention period ends. Off: the property is left out, as Azure Verified Modules do (the service refuses `false`); a vault that already has it keeps it.')
param enablePurgeProtection bool = true

@allowed(['default', 'recover'])
@description('recover: re-create vaults whose names are soft-deleted (after `azd down`), with their secrets, instead of creating new ones.')
param createMode string = 'default'

@description('Name of the NOTIFY_WEBHOOK_SECRET secret in the first vault (deployed into the private vaults only).')
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
      enablePurgeProtection: enablePurgeProtection ? true : null
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
