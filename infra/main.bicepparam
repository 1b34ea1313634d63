// The one parameter file of infra/main.bicep, for both deployment paths of the README:
//   azd (`azd up`, `azd provision`): azd reads infra/main.bicepparam whenever it exists, in preference
//     to main.parameters.json, and compiles it with the azd environment's values as environment
//     variables (Azure/azure-dev cli/azd/pkg/infra/provisioning/bicep/bicep_provider.go, Initialize
//     and compileBicep). Before compiling it asks for AZURE_SUBSCRIPTION_ID and AZURE_LOCATION if
//     they are unset, offering every region, not only `location`'s @allowed ones: set AZURE_LOCATION
//     first (README). It adds AZURE_PRINCIPAL_ID (the signed-in account); AZURE_PRINCIPAL_TYPE is not
//     set for you.
//   az (`az deployment sub create -f infra/main.bicep -p infra/main.bicepparam`): the same variables
//     from the shell.
// Every parameter of main.bicep has a variable here; an unset one takes main.bicep's default, written
// again as the fallback (test/unit/infra/parameters.test.ts holds the two equal). Arrays are JSON.
using 'main.bicep'

param environmentName = readEnvironmentVariable('AZURE_ENV_NAME')
param location = readEnvironmentVariable('AZURE_LOCATION')
param principalId = readEnvironmentVariable('AZURE_PRINCIPAL_ID', '')
param principalType = readEnvironmentVariable('AZURE_PRINCIPAL_TYPE', 'User')
param profiles = json(readEnvironmentVariable('BROKER_PROFILES', '["ews","ews-shared","imap","pop","smtp","graph-mail","graph-mail-shared"]'))
param enableAppOnly = bool(readEnvironmentVariable('BROKER_ENABLE_APP_ONLY', 'false'))
param grantAdminConsent = bool(readEnvironmentVariable('BROKER_GRANT_ADMIN_CONSENT', 'false'))
param signInAudience = readEnvironmentVariable('ENTRA_SIGN_IN_AUDIENCE', 'AzureADMyOrg')
param allowedTenants = json(readEnvironmentVariable('BROKER_ALLOWED_TENANTS', '[]'))
param keyVaultCount = int(readEnvironmentVariable('KEY_VAULT_COUNT', '1'))
param keyVaultNameSalt = readEnvironmentVariable('KEY_VAULT_NAME_SALT', '')
param keyVaultCreateMode = readEnvironmentVariable('KEY_VAULT_CREATE_MODE', 'default')
param tokenReaders = json(readEnvironmentVariable('BROKER_TOKEN_READERS', '[]'))
param brokerAdminPrincipalIds = json(readEnvironmentVariable('BROKER_ADMIN_PRINCIPAL_IDS', '[]'))
param mailboxSignInPrincipalIds = json(readEnvironmentVariable('BROKER_MAILBOX_SIGN_IN_PRINCIPAL_IDS', '[]'))
param entraCloud = readEnvironmentVariable('ENTRA_CLOUD', '')
param refreshSchedule = readEnvironmentVariable('REFRESH_SCHEDULE', '0 */10 * * * *')
param notifyWebhookUrl = readEnvironmentVariable('NOTIFY_WEBHOOK_URL', '')
param notifyWebhookSecretName = readEnvironmentVariable('NOTIFY_WEBHOOK_SECRET_NAME', 'notify-webhook-secret')
param notifyWebhookSecret = readEnvironmentVariable('NOTIFY_WEBHOOK_SECRET', '')
param publicBaseUrl = readEnvironmentVariable('PUBLIC_BASE_URL', '')
param appDisplayName = readEnvironmentVariable('BROKER_APP_DISPLAY_NAME', '')
param serviceManagementReference = readEnvironmentVariable('BROKER_SERVICE_MANAGEMENT_REFERENCE', '')
param maximumInstanceCount = int(readEnvironmentVariable('BROKER_MAXIMUM_INSTANCE_COUNT', '100'))
param instanceMemoryMB = int(readEnvironmentVariable('BROKER_INSTANCE_MEMORY_MB', '2048'))
