// Token consumers that read a published token straight from Key Vault: "Key Vault Secrets User" on
// ONE secret, conn-{connection}-token, for each (connection, consumer) pair the operator lists. Never a
// role on a whole vault: a vault-wide role would read every mailbox's token, whatever the connection's
// `readers` say. A role is scoped to a secret only once the secret exists, so an entry is added after
// the connection is authorized (or with `az role assignment create`, README "Deploy to Azure").
// Apart from rbac.bicep so that an entry for a secret that does not exist yet fails only this module,
// never the Function App, which waits for rbac.bicep.
@description('Published-token vault names, in KEY_VAULT_URL order.')
param keyVaultNames array

@description('[{ connection: \'support-in\', principalId: \'<object id>\', keyVaultIndex: 0 }]: keyVaultIndex (default 0) is the vault, in KEY_VAULT_URL order, that holds the connection\'s token when keyVaultCount > 1.')
param tokenReaders array = []

// Azure built-in role definition id (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles),
// named beside its GUID; test/unit/infra/resources.test.ts checks it against its own copy.
var roleDefinitionIds = {
  'Key Vault Secrets User': '4633458b-17de-408a-b874-0445c86b69e6'
}

resource vaults 'Microsoft.KeyVault/vaults@2023-07-01' existing = [
  for name in keyVaultNames: {
    name: name
  }
]

resource tokenSecrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = [
  for reader in tokenReaders: {
    parent: vaults[reader.?keyVaultIndex ?? 0]
    name: 'conn-${reader.connection}-token'
  }
]

// Reads the current value of that one secret (secrets/getSecret/action), nothing else in the vault.
resource tokenReaderSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (reader, i) in tokenReaders: {
    name: guid(tokenSecrets[i].id, reader.principalId, roleDefinitionIds['Key Vault Secrets User'])
    scope: tokenSecrets[i]
    properties: {
      principalId: reader.principalId
      roleDefinitionId: subscriptionResourceId(
        'Microsoft.Authorization/roleDefinitions',
        roleDefinitionIds['Key Vault Secrets User']
      )
    }
  }
]
