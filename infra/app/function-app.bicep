// Flex Consumption plan and Function App (Linux, node 22). App settings and App Service
// Authentication are applied by function-app-settings.bicep once the App Registration exists, because
// the App Registration's redirect URIs need this app's default host name (new apps get hashed,
// regional host names, so the name is never built by hand).
param name string
param planName string
param location string
param tags object = {}
param identityId string
param storageBlobEndpoint string
param deploymentContainerName string
@minValue(40)
@maxValue(1000)
@description('Flex Consumption scale-out limit: "The lowest maximum instance count value is 40, and the highest supported maximum instance count value is 1,000" (Azure Functions docs, Flex Consumption).')
param maximumInstanceCount int = 100

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      // No ftpsState: Flex Consumption does not support it and newer regions reject it.
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

// No basic (user name and password) publishing credentials: FTP and the SCM (Kudu) site accept only
// Microsoft Entra tokens. azd publishes to Flex Consumption's /api/publish with the deployer's token
// (Azure/azure-dev, azapi DeployFunctionAppUsingZipFileFlexConsumption), never with these.
resource ftpBasicPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
