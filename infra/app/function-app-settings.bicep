// App settings and App Service Authentication of the broker's Function App, applied once the App
// Registration exists (they need its client id).
//
// App settings = every setting shared/config.ts needs in Azure that has no default, or whose default
// must differ there. Everything else keeps the app's defaults (README "Settings"). Flex Consumption
// rules: no FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION (functionAppConfig.runtime says
// it), no WEBSITE_RUN_FROM_PACKAGE, no WEBSITE_CONTENT* (no content share).
// test/unit/infra/app-settings.test.ts parses the `*AppSettings` blocks below and runs loadConfig on them.
param functionAppName string
param identityClientId string
param entraClientId string

@allowed(['AzureADMyOrg', 'AzureADMultipleOrgs'])
param signInAudience string
param allowedTenants array = []
param keyVaultUris array
@description('Vaults of the token caches and passwords, apart from the published tokens consumers read.')
param privateKeyVaultUris array
param storageAccountName string
param storageTableEndpoint string
param appInsightsConnectionString string
param refreshSchedule string
param notifyWebhookUrl string = ''
param notifyWebhookSecretUri string
param publicBaseUrl string = ''

@description('ENTRA_CLOUD, only where the sign-in host does not tell the cloud: usgov-dod (DoD signs in at GCC High\'s host).')
@allowed(['', 'usgov-dod'])
param entraCloud string = ''

var multiTenant = signInAudience == 'AzureADMultipleOrgs'
var loginEndpoint = environment().authentication.loginEndpoint // e.g. https://login.microsoftonline.com/

// ---- app settings ------------------------------------------------------------------------------
var baseAppSettings = {
  // Functions host: identity-based AzureWebJobsStorage (shared keys are off) and App Insights ingestion
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // The broker (shared/config.ts)
  ENTRA_TENANT_ID: multiTenant ? 'organizations' : tenant().tenantId
  ENTRA_CLIENT_ID: entraClientId
  ENTRA_CLIENT_CREDENTIAL: 'managed-identity'
  ENTRA_AUTHORITY_HOST: loginEndpoint
  MANAGED_IDENTITY_CLIENT_ID: identityClientId
  KEY_VAULT_URL: join(keyVaultUris, ',')
  KEY_VAULT_PRIVATE_URL: join(privateKeyVaultUris, ',')
  AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
  REFRESH_SCHEDULE: refreshSchedule
  // App Service Authentication's client credential: the managed identity's federated assertion
  OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: identityClientId
}

var allowedTenantsAppSettings = multiTenant
  ? {
      ALLOWED_TENANTS: join(union([tenant().tenantId], allowedTenants), ',')
    }
  : {}

var notifyAppSettings = empty(notifyWebhookUrl)
  ? {}
  : {
      NOTIFY_WEBHOOK_URL: notifyWebhookUrl
      NOTIFY_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${notifyWebhookSecretUri})'
    }

var publicBaseUrlAppSettings = empty(publicBaseUrl)
  ? {}
  : {
      PUBLIC_BASE_URL: publicBaseUrl
    }
var entraCloudAppSettings = empty(entraCloud)
  ? {}
  : {
      ENTRA_CLOUD: entraCloud
    }
// ---- end of app settings -----------------------------------------------------------------------

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: union(baseAppSettings, allowedTenantsAppSettings, notifyAppSettings, publicBaseUrlAppSettings, entraCloudAppSettings)
}

// App Service Authentication: identifies admins (Broker.Admin) and token readers for the app, which
// decides per route; unauthenticated requests pass through. The platform then sets
// WEBSITE_AUTH_ENABLED, the only condition under which the broker trusts X-MS-CLIENT-PRINCIPAL.
// Secretless: clientSecretSettingName OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID makes the platform use
// the managed identity named by that app setting as a federated credential of the App Registration.
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'authsettingsV2'
  dependsOn: [appSettings]
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: entraClientId
          clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'
          openIdIssuer: '${loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${entraClientId}'
            entraClientId
          ]
        }
      }
    }
    login: {
      // The broker reads only the identity App Service Authentication passes on; keeping the
      // signed-in users' tokens in a store would only be one more copy of secrets to protect.
      tokenStore: {
        enabled: false
      }
    }
  }
}
