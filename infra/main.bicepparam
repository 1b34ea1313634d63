// Parameters for a deployment without azd (README "Path 2"): `az deployment sub create -f
// infra/main.bicep -p infra/main.bicepparam`. Values come from the same environment variables azd
// uses (infra/main.parameters.json), so both paths deploy the same thing; unset ones take the defaults.
using 'main.bicep'

param environmentName = readEnvironmentVariable('AZURE_ENV_NAME')
param location = readEnvironmentVariable('AZURE_LOCATION')
param principalId = readEnvironmentVariable('AZURE_PRINCIPAL_ID', '')
param principalType = readEnvironmentVariable('AZURE_PRINCIPAL_TYPE', 'User')
param profiles = ['ews', 'ews-shared', 'imap', 'pop', 'smtp', 'graph-mail', 'graph-mail-shared']
param signInAudience = readEnvironmentVariable('ENTRA_SIGN_IN_AUDIENCE', 'AzureADMyOrg')
param enableAppOnly = bool(readEnvironmentVariable('BROKER_ENABLE_APP_ONLY', 'false'))
param grantAdminConsent = bool(readEnvironmentVariable('BROKER_GRANT_ADMIN_CONSENT', 'false'))
param assignAppRoles = bool(readEnvironmentVariable('BROKER_ASSIGN_APP_ROLES', 'true'))
param refreshSchedule = readEnvironmentVariable('REFRESH_SCHEDULE', '0 */10 * * * *')
param notifyWebhookUrl = readEnvironmentVariable('NOTIFY_WEBHOOK_URL', '')
param keyVaultNameSalt = readEnvironmentVariable('KEY_VAULT_NAME_SALT', '')
param keyVaultCreateMode = readEnvironmentVariable('KEY_VAULT_CREATE_MODE', 'default')
