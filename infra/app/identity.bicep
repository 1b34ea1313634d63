// The app's user-assigned managed identity: storage, Key Vault, Application Insights ingestion,
// Key Vault references, the Flex deployment container, and (as a federated identity credential of
// the App Registration) the client credential towards Entra ID. No secret exists anywhere.
param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
