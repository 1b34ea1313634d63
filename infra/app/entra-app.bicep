// The broker's App Registration, with the Microsoft Graph Bicep extension (bicepconfig.json).
// Secretless: the app's user-assigned managed identity is its only credential, as a federated
// identity credential; no passwordCredentials, no certificates.
// Note: Microsoft Graph Bicep deploys in the Azure public cloud only.
extension microsoftGraphV1

param uniqueName string
param displayName string

@allowed(['AzureADMyOrg', 'AzureADMultipleOrgs'])
param signInAudience string = 'AzureADMyOrg'

@description('The Function App\'s default host name (properties.defaultHostName).')
param defaultHostName string

@description('Optional custom public base URL (no trailing slash); its callback is registered too.')
param publicBaseUrl string = ''

@allowed(['ews', 'ews-shared', 'imap', 'pop', 'smtp', 'graph-mail', 'graph-mail-shared'])
param profiles array

param enableAppOnly bool = false
param grantAdminConsent bool = false

@description('principalId (object id) of the user-assigned managed identity trusted as the app\'s credential.')
param identityPrincipalId string

@description('Users or groups to assign Broker.Admin.')
param brokerAdminPrincipalIds array = []

@description('Users or groups to assign Broker.MailboxSignIn: the accounts that sign in to authorize a mailbox (the service principal requires an assignment).')
param mailboxSignInPrincipalIds array = []

param serviceManagementReference string = ''

@description('Name of the cloud (environment().name); picks the token-exchange audience.')
param cloudEnvironment string = environment().name

// ---------------------------------------------------------------------------------------------
// Every permission id the App Registration may request, with its name. Sources (see the report in
// test/unit/infra/permissions.test.ts, which checks this table against its own copy):
//   Office 365 Exchange Online: EWS.AccessAsUser.All and full_access_as_app as published in
//     "Authenticate an EWS application by using OAuth" (manifest snippet); IMAP/POP/SMTP ids as
//     exposed by the Exchange Online service principal (oauth2PermissionScopes / appRoles).
//   Microsoft Graph: the Microsoft Graph permissions reference.
// Exchange Online has no `.Shared` variant of EWS.AccessAsUser.All: ews-shared uses the same scope
// with X-AnchorMailbox, and mailbox permissions decide what the account may open.
// ---------------------------------------------------------------------------------------------
var permissionIds = {
  exchangeOnline: {
    resourceAppId: '00000002-0000-0ff1-ce00-000000000000' // Office 365 Exchange Online
    scopes: {
      'EWS.AccessAsUser.All': '3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5'
      'IMAP.AccessAsUser.All': '195adc35-e27b-454b-a7ed-1ecdffa1c09f'
      'POP.AccessAsUser.All': 'fb698133-92fa-453e-a9ed-688e10f2e5ac'
      'SMTP.Send': '76faac2a-0f20-42f1-928a-50de5b9dbe52'
    }
    roles: {
      full_access_as_app: 'dc890d15-9560-4a4c-9b7f-a736ec74ec40'
      'IMAP.AccessAsApp': '5e5addcd-3e8d-4e90-baf5-964efab2b20a'
      'POP.AccessAsApp': 'cb842b43-da6e-4506-86fe-bb12199c656d'
    }
  }
  microsoftGraph: {
    resourceAppId: '00000003-0000-0000-c000-000000000000' // Microsoft Graph
    scopes: {
      'User.Read': 'e1fe6dd8-ba31-4d61-89e7-88639da4683d'
      offline_access: '7427e0e9-2fba-42fe-b0c0-848c9e6a8182'
      openid: '37f7f235-527c-4136-accd-4a02d197296e'
      profile: '14dad69e-099b-42c9-810b-d002981feec1'
      'Mail.ReadWrite': '024d486e-b451-40bb-833d-3e66d98c5c73'
      'Mail.Send': 'e383f46e-2787-4529-855e-0e479a3ffac0'
      'Mail.ReadWrite.Shared': '5df07973-7d5d-46ed-9847-1271055cbd51'
      'Mail.Send.Shared': 'a367ab51-6b49-43bf-a716-a1fb06d2a174'
    }
    roles: {
      'Mail.ReadWrite': 'e2a3a72e-5f79-4c64-b1b1-878b674786c9' // application permission (app-only)
      'Mail.Send': 'b633e1c5-b582-4048-a93e-9f11b44c7e96' // application permission (app-only)
    }
  }
}

// What each profile asks for (shared/connections/profiles.ts): delegated scopes per resource, and the
// application permissions its app-only (client_credentials) grant uses, per resource.
var profilePermissions = {
  ews: { exchangeOnline: ['EWS.AccessAsUser.All'], microsoftGraph: [], exchangeOnlineRoles: ['full_access_as_app'], microsoftGraphRoles: [] }
  'ews-shared': { exchangeOnline: ['EWS.AccessAsUser.All'], microsoftGraph: [], exchangeOnlineRoles: ['full_access_as_app'], microsoftGraphRoles: [] }
  imap: { exchangeOnline: ['IMAP.AccessAsUser.All'], microsoftGraph: [], exchangeOnlineRoles: ['IMAP.AccessAsApp'], microsoftGraphRoles: [] }
  pop: { exchangeOnline: ['POP.AccessAsUser.All'], microsoftGraph: [], exchangeOnlineRoles: ['POP.AccessAsApp'], microsoftGraphRoles: [] }
  smtp: { exchangeOnline: ['SMTP.Send'], microsoftGraph: [], exchangeOnlineRoles: ['SMTP.SendAsApp'], microsoftGraphRoles: [] }
  'graph-mail': { exchangeOnline: [], microsoftGraph: ['Mail.ReadWrite', 'Mail.Send'], exchangeOnlineRoles: [], microsoftGraphRoles: ['Mail.ReadWrite', 'Mail.Send'] }
  'graph-mail-shared': { exchangeOnline: [], microsoftGraph: ['Mail.ReadWrite.Shared', 'Mail.Send.Shared'], exchangeOnlineRoles: [], microsoftGraphRoles: [] }
}
// Sign-in (MSAL adds openid profile offline_access to every request) and the console's user profile.
var signInScopes = ['User.Read', 'offline_access', 'openid', 'profile']

// Application permissions of Office 365 Exchange Online whose ids no Microsoft page publishes
// (SMTP.SendAsApp: "Authenticate an IMAP, POP or SMTP connection using OAuth" names it, lists no id).
// Their ids are read by name from the tenant's own Exchange Online service principal at deployment,
// never guessed.
var exchangeRolesResolvedByName = ['SMTP.SendAsApp']

var exchangeScopeNames = union(flatten(map(profiles, p => profilePermissions[p].exchangeOnline)), [])
var exchangeRoleNamesWanted = enableAppOnly ? union(flatten(map(profiles, p => profilePermissions[p].exchangeOnlineRoles)), []) : []
var exchangeRoleNames = filter(exchangeRoleNamesWanted, name => !contains(exchangeRolesResolvedByName, name))
var exchangeRoleNamesByName = filter(exchangeRoleNamesWanted, name => contains(exchangeRolesResolvedByName, name))
var graphRoleNames = enableAppOnly ? union(flatten(map(profiles, p => profilePermissions[p].microsoftGraphRoles)), []) : []
var graphScopeNames = union(signInScopes, flatten(map(profiles, p => profilePermissions[p].microsoftGraph)))

var exchangeResourceAccess = concat(
  map(exchangeScopeNames, name => { id: permissionIds.exchangeOnline.scopes[name], type: 'Scope' }),
  map(exchangeRoleNames, name => { id: permissionIds.exchangeOnline.roles[name], type: 'Role' }),
  map(exchangeRoleNamesByName, name => { id: filter(exchangeOnlineSp!.appRoles, role => role.value == name)[0].id, type: 'Role' })
)
var exchangeRequested = !empty(exchangeScopeNames) || !empty(exchangeRoleNamesWanted)
var graphResourceAccess = concat(
  map(graphScopeNames, name => { id: permissionIds.microsoftGraph.scopes[name], type: 'Scope' }),
  map(graphRoleNames, name => { id: permissionIds.microsoftGraph.roles[name], type: 'Role' })
)

var requiredResourceAccess = concat(
  !exchangeRequested
    ? []
    : [{ resourceAppId: permissionIds.exchangeOnline.resourceAppId, resourceAccess: exchangeResourceAccess }],
  [{ resourceAppId: permissionIds.microsoftGraph.resourceAppId, resourceAccess: graphResourceAccess }]
)

// App roles. Broker.Admin and Broker.TokenReader are the ones the broker checks (shared/http/caller.ts);
// Broker.MailboxSignIn only lets Entra issue tokens to an account that authorizes a mailbox, because
// the service principal requires an assignment (appRoleAssignmentRequired). Ids generated once; never
// change them.
var brokerAdminRoleId = '473aa1e5-465d-4e62-9601-e9b7e40755f8'
var brokerTokenReaderRoleId = '5255b7fd-2a8c-4df3-9c7a-698bc5280a46'
var brokerMailboxSignInRoleId = '4c36e3aa-d54c-4aa6-bba7-71ab67f0e075'
var appRoles = [
  {
    id: brokerAdminRoleId
    value: 'Broker.Admin'
    displayName: 'Broker administrator'
    description: 'Define, authorize, refresh and delete mailbox connections in the broker console and API.'
    allowedMemberTypes: ['User', 'Application']
    isEnabled: true
  }
  {
    id: brokerTokenReaderRoleId
    value: 'Broker.TokenReader'
    displayName: 'Broker token reader'
    description: 'Read published access tokens from GET /api/connections/{name}/token.'
    allowedMemberTypes: ['User', 'Application']
    isEnabled: true
  }
  {
    id: brokerMailboxSignInRoleId
    value: 'Broker.MailboxSignIn'
    displayName: 'Mailbox sign-in'
    description: 'Sign in to authorize a mailbox connection. Grants nothing in the broker itself.'
    allowedMemberTypes: ['User']
    isEnabled: true
  }
]

// The broker's own callback (loadConfig: `${PUBLIC_BASE_URL ?? https://WEBSITE_HOSTNAME}/api/callback`)
// and App Service Authentication's.
var callbackUri = 'https://${defaultHostName}/api/callback'
var redirectUris = concat(
  [callbackUri, 'https://${defaultHostName}/.auth/login/aad/callback'],
  empty(publicBaseUrl) ? [] : ['${publicBaseUrl}/api/callback', '${publicBaseUrl}/.auth/login/aad/callback']
)
var web = {
  redirectUris: redirectUris
  implicitGrantSettings: {
    enableIdTokenIssuance: true // App Service Authentication signs in with the hybrid flow
    enableAccessTokenIssuance: false
  }
}
var api = { requestedAccessTokenVersion: 2 }

// Federated identity credential audience per cloud (must match the app's tokenExchangeAudience).
var tokenExchangeAudiences = {
  AzureCloud: 'api://AzureADTokenExchange'
  AzureUSGovernment: 'api://AzureADTokenExchangeUSGov'
  AzureChinaCloud: 'api://AzureADTokenExchangeChina'
}
var loginEndpoint = environment().authentication.loginEndpoint // ends with '/'
var tenantId = tenant().tenantId

resource app 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: signInAudience
  serviceManagementReference: empty(serviceManagementReference) ? null : serviceManagementReference
  web: web
  api: api
  appRoles: appRoles
  requiredResourceAccess: requiredResourceAccess

  resource managedIdentityCredential 'federatedIdentityCredentials@v1.0' = {
    name: '${app.uniqueName}/function-app-managed-identity'
    description: 'The broker Function App\'s user-assigned managed identity is this app\'s client credential.'
    issuer: '${loginEndpoint}${tenantId}/v2.0'
    subject: identityPrincipalId
    audiences: [tokenExchangeAudiences[cloudEnvironment]]
  }
}

// identifierUris may only name the app's own appId after it exists: a second declaration of the same
// uniqueName (the Graph extension upserts by uniqueName), in its own deployment, adds api://{appId},
// which App Service Authentication accepts as an audience. It repeats every property so the upsert
// can never drop one.
module identifierUri 'entra-app-identifier-uri.bicep' = {
  name: '${deployment().name}-identifierUri'
  params: {
    uniqueName: app.uniqueName
    displayName: displayName
    signInAudience: signInAudience
    serviceManagementReference: serviceManagementReference
    web: web
    api: api
    appRoles: appRoles
    requiredResourceAccess: requiredResourceAccess
    appId: app.appId
  }
}

// Only assigned users, groups and applications get tokens for the app (Enterprise applications →
// Properties → "Assignment required?"): admins (Broker.Admin), consumers (Broker.TokenReader) and the
// accounts that authorize mailboxes (Broker.MailboxSignIn). Everyone else is refused at sign-in.
resource servicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: app.appId
  appRoleAssignmentRequired: true
}

// ---- App role assignments and admin consent -----------------------------------------------------
// Not declared as Microsoft.Graph/appRoleAssignedTo or oauth2PermissionGrants resources: Graph Bicep
// cannot re-create an app role assignment that exists ("EntitlementGrant entry already exists",
// msgraph-bicep-types issue 161), so a provision that failed after making some could never be retried,
// and an assignment added later could never be deployed. This deployment lists what it wants as
// outputs; scripts/assign-app-roles.ts (azure.yaml postprovision) reads what exists through Microsoft
// Graph and makes only what is missing, every time.

// Read for admin consent, and for the ids of the application permissions resolved by name.
resource exchangeOnlineSp 'Microsoft.Graph/servicePrincipals@v1.0' existing = if ((grantAdminConsent && exchangeRequested) || !empty(exchangeRoleNamesByName)) {
  appId: permissionIds.exchangeOnline.resourceAppId
}

resource microsoftGraphSp 'Microsoft.Graph/servicePrincipals@v1.0' existing = if (grantAdminConsent) {
  appId: permissionIds.microsoftGraph.resourceAppId
}

// The broker's own app roles, for the listed users and groups.
var wantedUserRoleAssignments = concat(
  map(brokerAdminPrincipalIds, principalId => { principalId: principalId, resourceId: servicePrincipal.id, appRoleId: brokerAdminRoleId }),
  map(mailboxSignInPrincipalIds, principalId => { principalId: principalId, resourceId: servicePrincipal.id, appRoleId: brokerMailboxSignInRoleId })
)

// With admin consent: the application permissions (app-only) the App Registration requests.
var wantedApplicationPermissionAssignments = grantAdminConsent
  ? concat(
      map(exchangeRoleNames, name => { principalId: servicePrincipal.id, resourceId: exchangeOnlineSp!.id, appRoleId: permissionIds.exchangeOnline.roles[name] }),
      map(exchangeRoleNamesByName, name => { principalId: servicePrincipal.id, resourceId: exchangeOnlineSp!.id, appRoleId: filter(exchangeOnlineSp!.appRoles, role => role.value == name)[0].id }),
      map(graphRoleNames, name => { principalId: servicePrincipal.id, resourceId: microsoftGraphSp!.id, appRoleId: permissionIds.microsoftGraph.roles[name] })
    )
  : []

// With admin consent: the delegated scopes, tenant-wide (consentType AllPrincipals).
var wantedPermissionGrants = grantAdminConsent
  ? concat(
      empty(exchangeScopeNames) ? [] : [{ clientId: servicePrincipal.id, resourceId: exchangeOnlineSp!.id, scope: join(exchangeScopeNames, ' ') }],
      [{ clientId: servicePrincipal.id, resourceId: microsoftGraphSp!.id, scope: join(graphScopeNames, ' ') }]
    )
  : []

output appId string = app.appId
output objectId string = app.id
output servicePrincipalId string = servicePrincipal.id
output redirectUri string = empty(publicBaseUrl) ? callbackUri : '${publicBaseUrl}/api/callback'
output identifierUri string = identifierUri.outputs.identifierUri
output adminConsentUrl string = '${loginEndpoint}${tenantId}/adminconsent?client_id=${app.appId}&redirect_uri=${uriComponent(empty(publicBaseUrl) ? callbackUri : '${publicBaseUrl}/api/callback')}'
@description('[{ principalId, resourceId, appRoleId }]: every app role assignment this deployment wants (scripts/assign-app-roles.ts makes the missing ones).')
output appRoleAssignments array = concat(wantedUserRoleAssignments, wantedApplicationPermissionAssignments)
@description('[{ clientId, resourceId, scope }]: the tenant-wide delegated grants this deployment wants (AllPrincipals).')
output permissionGrants array = wantedPermissionGrants
