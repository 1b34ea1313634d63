// Second declaration of the broker's App Registration (same uniqueName, same properties) adding
// identifierUris = api://{appId}, which needs the appId the first declaration produced.
extension microsoftGraphV1

param uniqueName string
param displayName string
param signInAudience string
param serviceManagementReference string
param web object
param api object
param appRoles array
param requiredResourceAccess array
param appId string

resource app 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: signInAudience
  serviceManagementReference: empty(serviceManagementReference) ? null : serviceManagementReference
  web: web
  api: api
  appRoles: appRoles
  requiredResourceAccess: requiredResourceAccess
  identifierUris: ['api://${appId}']
}

output identifierUri string = app.identifierUris[0]
