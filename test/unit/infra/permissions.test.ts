/**
 * The App Registration's permission table (infra/app/entra-app.bicep `permissionIds`) against
 * Microsoft's published permission ids, and against the scopes the broker actually requests.
 */
import { cloudFor } from '../../../shared/clouds';
import { appOnlyScopes, delegatedScopes } from '../../../shared/connections/profiles';

/** Scopes MSAL adds to every user request; the App Registration must hold them too. */
const OIDC_SCOPES = ['openid', 'profile', 'offline_access'];
import type { Profile } from '../../../shared/connections/connection';
import {
  Expression,
  GUID,
  isObject,
  objectLiterals,
  parseBicepLiteral,
  readBicep,
  varExpression,
  type BicepNode,
} from './bicep-text';

const EXCHANGE_ONLINE = '00000002-0000-0ff1-ce00-000000000000';
const MICROSOFT_GRAPH = '00000003-0000-0000-c000-000000000000';

interface PublishedPermission {
  resourceAppId: string;
  name: string;
  type: 'Scope' | 'Role';
  id: string;
  source: string;
}

/**
 * Microsoft's ids, kept here independently of the Bicep. Sources:
 * - EWS: "Authenticate an EWS application by using OAuth" (learn.microsoft.com/exchange/client-developer/
 *   exchange-web-services/how-to-authenticate-an-ews-application-by-using-oauth), manifest snippet:
 *   3b5f3d61-… Scope (EWS.AccessAsUser.All), dc890d15-… Role (full_access_as_app).
 * - Exchange IMAP/POP/SMTP: the Office 365 Exchange Online service principal's oauth2PermissionScopes
 *   and appRoles (the same in every tenant; Microsoft's IMAP/POP/SMTP OAuth article names the
 *   permissions but lists no ids), cross-checked in two independent published dumps of that service
 *   principal.
 * - Microsoft Graph: the Microsoft Graph permissions reference (learn.microsoft.com/graph/permissions-reference).
 */
const PUBLISHED: PublishedPermission[] = [
  {
    resourceAppId: EXCHANGE_ONLINE,
    name: 'EWS.AccessAsUser.All',
    type: 'Scope',
    id: '3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5',
    source: 'EWS OAuth article',
  },
  {
    resourceAppId: EXCHANGE_ONLINE,
    name: 'full_access_as_app',
    type: 'Role',
    id: 'dc890d15-9560-4a4c-9b7f-a736ec74ec40',
    source: 'EWS OAuth article',
  },
  {
    resourceAppId: EXCHANGE_ONLINE,
    name: 'IMAP.AccessAsUser.All',
    type: 'Scope',
    id: '195adc35-e27b-454b-a7ed-1ecdffa1c09f',
    source: 'Exchange Online SP',
  },
  {
    resourceAppId: EXCHANGE_ONLINE,
    name: 'POP.AccessAsUser.All',
    type: 'Scope',
    id: 'fb698133-92fa-453e-a9ed-688e10f2e5ac',
    source: 'Exchange Online SP',
  },
  {
    resourceAppId: EXCHANGE_ONLINE,
    name: 'SMTP.Send',
    type: 'Scope',
    id: '76faac2a-0f20-42f1-928a-50de5b9dbe52',
    source: 'Exchange Online SP',
  },
  {
    resourceAppId: EXCHANGE_ONLINE,
    name: 'IMAP.AccessAsApp',
    type: 'Role',
    id: '5e5addcd-3e8d-4e90-baf5-964efab2b20a',
    source: 'Exchange Online SP',
  },
  {
    resourceAppId: EXCHANGE_ONLINE,
    name: 'POP.AccessAsApp',
    type: 'Role',
    id: 'cb842b43-da6e-4506-86fe-bb12199c656d',
    source: 'Exchange Online SP',
  },
  {
    resourceAppId: MICROSOFT_GRAPH,
    name: 'User.Read',
    type: 'Scope',
    id: 'e1fe6dd8-ba31-4d61-89e7-88639da4683d',
    source: 'Graph permissions reference',
  },
  {
    resourceAppId: MICROSOFT_GRAPH,
    name: 'offline_access',
    type: 'Scope',
    id: '7427e0e9-2fba-42fe-b0c0-848c9e6a8182',
    source: 'Graph permissions reference',
  },
  {
    resourceAppId: MICROSOFT_GRAPH,
    name: 'openid',
    type: 'Scope',
    id: '37f7f235-527c-4136-accd-4a02d197296e',
    source: 'Graph permissions reference',
  },
  {
    resourceAppId: MICROSOFT_GRAPH,
    name: 'profile',
    type: 'Scope',
    id: '14dad69e-099b-42c9-810b-d002981feec1',
    source: 'Graph permissions reference',
  },
  {
    resourceAppId: MICROSOFT_GRAPH,
    name: 'Mail.ReadWrite',
    type: 'Scope',
    id: '024d486e-b451-40bb-833d-3e66d98c5c73',
    source: 'Graph permissions reference',
  },
  {
    resourceAppId: MICROSOFT_GRAPH,
    name: 'Mail.Send',
    type: 'Scope',
    id: 'e383f46e-2787-4529-855e-0e479a3ffac0',
    source: 'Graph permissions reference',
  },
  {
    resourceAppId: MICROSOFT_GRAPH,
    name: 'Mail.ReadWrite.Shared',
    type: 'Scope',
    id: '5df07973-7d5d-46ed-9847-1271055cbd51',
    source: 'Graph permissions reference',
  },
  {
    resourceAppId: MICROSOFT_GRAPH,
    name: 'Mail.Send.Shared',
    type: 'Scope',
    id: 'a367ab51-6b49-43bf-a716-a1fb06d2a174',
    source: 'Graph permissions reference',
  },
  {
    resourceAppId: MICROSOFT_GRAPH,
    name: 'Mail.ReadWrite',
    type: 'Role',
    id: 'e2a3a72e-5f79-4c64-b1b1-878b674786c9',
    source: 'Graph permissions reference',
  },
  {
    resourceAppId: MICROSOFT_GRAPH,
    name: 'Mail.Send',
    type: 'Role',
    id: 'b633e1c5-b582-4048-a93e-9f11b44c7e96',
    source: 'Graph permissions reference',
  },
];

/** Entra resolves a scope's resource URI to the service principal whose servicePrincipalNames list it. */
const RESOURCE_HOSTS: Record<string, string> = {
  'https://outlook.office365.com': EXCHANGE_ONLINE,
  'https://outlook.office.com': EXCHANGE_ONLINE,
  'https://graph.microsoft.com': MICROSOFT_GRAPH,
};
const TABLE_KEY_BY_APP_ID: Record<string, 'exchangeOnline' | 'microsoftGraph'> = {
  [EXCHANGE_ONLINE]: 'exchangeOnline',
  [MICROSOFT_GRAPH]: 'microsoftGraph',
};

const PROFILES: Exclude<Profile, 'custom'>[] = [
  'ews',
  'ews-shared',
  'imap',
  'pop',
  'smtp',
  'graph-mail',
  'graph-mail-shared',
];

const entraApp = readBicep('app/entra-app.bicep');

function literalObject(varName: string): { [key: string]: BicepNode } {
  const [literal] = objectLiterals(varExpression(entraApp, varName));
  const parsed = parseBicepLiteral(literal!);
  if (!isObject(parsed)) throw new Error(`${varName} is not an object literal`);
  return parsed;
}

function stringMap(node: BicepNode | undefined, what: string): Record<string, string> {
  if (!isObject(node)) throw new Error(`${what}: expected an object`);
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(node)) {
    if (typeof value !== 'string') throw new Error(`${what}.${key}: expected a string literal`);
    result[key] = value;
  }
  return result;
}

function stringList(node: BicepNode | undefined, what: string): string[] {
  if (!Array.isArray(node) || !node.every((v): v is string => typeof v === 'string')) {
    throw new Error(`${what}: expected an array of string literals`);
  }
  return node;
}

interface TableResource {
  resourceAppId: string;
  scopes: Record<string, string>;
  roles: Record<string, string>;
}

const permissionIds = literalObject('permissionIds');
const table: Record<string, TableResource> = Object.fromEntries(
  Object.entries(permissionIds).map(([key, node]) => {
    if (!isObject(node)) throw new Error(`permissionIds.${key}: expected an object`);
    const resourceAppId = node.resourceAppId;
    if (typeof resourceAppId !== 'string') throw new Error(`permissionIds.${key}.resourceAppId`);
    return [
      key,
      {
        resourceAppId,
        scopes: stringMap(node.scopes, `permissionIds.${key}.scopes`),
        roles: stringMap(node.roles, `permissionIds.${key}.roles`),
      },
    ];
  }),
);

const profilePermissions = literalObject('profilePermissions');
/** Application permissions whose ids Microsoft publishes nowhere: the Bicep reads them by name. */
const resolvedByName = stringList(
  parseBicepLiteral(varExpression(entraApp, 'exchangeRolesResolvedByName')),
  'exchangeRolesResolvedByName',
);
const signInScopes = stringList(parseBicepLiteral(varExpression(entraApp, 'signInScopes')), 'signInScopes');

function profileEntry(
  profile: string,
  key: 'exchangeOnline' | 'microsoftGraph' | 'exchangeOnlineRoles' | 'microsoftGraphRoles',
): string[] {
  const entry = profilePermissions[profile];
  if (!isObject(entry)) throw new Error(`profilePermissions.${profile} missing`);
  return stringList(entry[key], `profilePermissions.${profile}.${key}`);
}

describe('App Registration permissions (infra/app/entra-app.bicep)', () => {
  it('keeps every id of its permission table equal to the id Microsoft publishes for that name', () => {
    const rows = Object.values(table).flatMap((resource) => [
      ...Object.entries(resource.scopes).map(([name, id]) => ({
        resourceAppId: resource.resourceAppId,
        name,
        id,
        type: 'Scope' as const,
      })),
      ...Object.entries(resource.roles).map(([name, id]) => ({
        resourceAppId: resource.resourceAppId,
        name,
        id,
        type: 'Role' as const,
      })),
    ]);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      const published = PUBLISHED.find(
        (p) => p.resourceAppId === row.resourceAppId && p.name === row.name && p.type === row.type,
      );
      expect({ ...row, published: published?.id }).toEqual({ ...row, published: row.id });
    }
    expect(Object.keys(table).sort()).toEqual(['exchangeOnline', 'microsoftGraph']);
    expect(table.exchangeOnline!.resourceAppId).toBe(EXCHANGE_ONLINE);
    expect(table.microsoftGraph!.resourceAppId).toBe(MICROSOFT_GRAPH);
  });

  it('uses no permission GUID outside the table (only the table, the two resource app ids and its own app role ids)', () => {
    const tableIds = new Set(
      Object.values(table).flatMap((r) => [
        r.resourceAppId,
        ...Object.values(r.scopes),
        ...Object.values(r.roles),
      ]),
    );
    const appRoleIds = [
      varExpression(entraApp, 'brokerAdminRoleId'),
      varExpression(entraApp, 'brokerTokenReaderRoleId'),
      varExpression(entraApp, 'brokerMailboxSignInRoleId'),
    ].map((raw) => raw.replace(/'/g, ''));
    const allowed = new Set([...tableIds, ...appRoleIds]);
    const used = entraApp.match(GUID) ?? [];
    expect(used.filter((id) => !allowed.has(id.toLowerCase()))).toEqual([]);
    // requiredResourceAccess is built only from table lookups
    const rra = ['exchangeResourceAccess', 'graphResourceAccess', 'requiredResourceAccess'].map((name) =>
      varExpression(entraApp, name),
    );
    for (const expression of rra) expect(expression.match(GUID)).toBeNull();
    expect(rra.join('\n')).toMatch(/permissionIds\.exchangeOnline\.scopes\[name\]/);
    expect(rra.join('\n')).toMatch(/permissionIds\.microsoftGraph\.scopes\[name\]/);
    expect(rra.join('\n')).toMatch(/permissionIds\.microsoftGraph\.roles\[name\]/);
  });

  it('has a permission for every scope each profile requests (shared/connections/profiles.ts)', () => {
    const cloud = cloudFor('https://login.microsoftonline.com');
    for (const profile of PROFILES) {
      for (const scope of delegatedScopes({ profile, scopes: undefined }, cloud)) {
        const url = new URL(scope);
        const resourceAppId = RESOURCE_HOSTS[url.origin];
        const name = url.pathname.slice(1);
        expect({ scope, resourceAppId }).toEqual({ scope, resourceAppId: expect.any(String) });
        const key = TABLE_KEY_BY_APP_ID[resourceAppId!]!;
        expect({ profile, scope, inTable: name in table[key]!.scopes }).toEqual({
          profile,
          scope,
          inTable: true,
        });
        expect({ profile, scope, requested: profileEntry(profile, key).includes(name) }).toEqual({
          profile,
          scope,
          requested: true,
        });
      }
    }
    // MSAL adds openid profile offline_access to every sign-in; the console reads the user's profile.
    for (const scope of [...OIDC_SCOPES, 'User.Read']) {
      expect(signInScopes).toContain(scope);
      expect(table.microsoftGraph!.scopes).toHaveProperty([scope]);
    }
  });

  it('requests an application permission on the resource of every app-only profile', () => {
    const cloud = cloudFor('https://login.microsoftonline.com');
    for (const profile of ['ews', 'ews-shared', 'imap', 'pop', 'smtp', 'graph-mail'] as const) {
      const [scope] = appOnlyScopes({ profile, scopes: undefined }, cloud);
      const key = TABLE_KEY_BY_APP_ID[RESOURCE_HOSTS[new URL(scope!).origin]!]!;
      const roles = profileEntry(
        profile,
        key === 'exchangeOnline' ? 'exchangeOnlineRoles' : 'microsoftGraphRoles',
      );
      expect({ profile, roles: roles.length > 0 }).toEqual({ profile, roles: true });
    }
  });

  it('resolves every name a profile lists (a missing key would fail the deployment)', () => {
    expect(Object.keys(profilePermissions).sort()).toEqual([...PROFILES].sort());
    for (const profile of PROFILES) {
      for (const name of profileEntry(profile, 'exchangeOnline'))
        expect(table.exchangeOnline!.scopes).toHaveProperty([name]);
      for (const name of profileEntry(profile, 'microsoftGraph'))
        expect(table.microsoftGraph!.scopes).toHaveProperty([name]);
      for (const name of profileEntry(profile, 'exchangeOnlineRoles'))
        expect({ name, known: name in table.exchangeOnline!.roles || resolvedByName.includes(name) }).toEqual(
          {
            name,
            known: true,
          },
        );
      for (const name of profileEntry(profile, 'microsoftGraphRoles'))
        expect(table.microsoftGraph!.roles).toHaveProperty([name]);
    }
    for (const name of signInScopes) expect(table.microsoftGraph!.scopes).toHaveProperty([name]);
  });

  it("reads SMTP.SendAsApp by name from the tenant's Exchange Online service principal, guessing no id", () => {
    expect(resolvedByName).toEqual(['SMTP.SendAsApp']);
    for (const name of resolvedByName) expect(table.exchangeOnline!.roles).not.toHaveProperty([name]);
    expect(profileEntry('smtp', 'exchangeOnlineRoles')).toEqual(['SMTP.SendAsApp']);
    const access = varExpression(entraApp, 'exchangeResourceAccess');
    expect(access).toMatch(
      /map\(exchangeRoleNamesByName, name => \{ id: filter\(exchangeOnlineSp!\.appRoles, role => role\.value == name\)\[0\]\.id, type: 'Role' \}\)/,
    );
    // The service principal is read whenever a name must be resolved, not only for admin consent.
    expect(entraApp).toMatch(
      /resource exchangeOnlineSp 'Microsoft\.Graph\/servicePrincipals@v1\.0' existing = if \(\(grantAdminConsent && exchangeRequested\) \|\| !empty\(exchangeRoleNamesByName\)\)/,
    );
    // Admin consent assigns it like the roles of the table (scripts/assign-app-roles.ts makes it).
    expect(varExpression(entraApp, 'wantedApplicationPermissionAssignments')).toMatch(
      /map\(exchangeRoleNamesByName, name => \{ principalId: servicePrincipal\.id, resourceId: exchangeOnlineSp!\.id, appRoleId: filter\(exchangeOnlineSp!\.appRoles, role => role\.value == name\)\[0\]\.id \}\)/,
    );
  });

  it('offers exactly the app profiles as the `profiles` parameter', () => {
    const allowed = /@allowed\(\[([^\]]*)\]\)\s*param profiles array/.exec(entraApp)?.[1];
    expect(
      allowed
        ?.match(/'[^']+'/g)
        ?.map((s) => s.slice(1, -1))
        .sort(),
    ).toEqual([...PROFILES].sort());
    const main = readBicep('main.bicep');
    const mainAllowed = /@allowed\(\[([^\]]*)\]\)\s*param profiles array/.exec(main)?.[1];
    expect(
      mainAllowed
        ?.match(/'[^']+'/g)
        ?.map((s) => s.slice(1, -1))
        .sort(),
    ).toEqual([...PROFILES].sort());
  });

  it('declares Broker.Admin, Broker.TokenReader and Broker.MailboxSignIn with fixed ids, and v2 access tokens', () => {
    const roles = parseBicepLiteral(varExpression(entraApp, 'appRoles'));
    expect(Array.isArray(roles)).toBe(true);
    const values = (roles as BicepNode[]).map((r) => (isObject(r) ? r.value : undefined));
    expect(values).toEqual(['Broker.Admin', 'Broker.TokenReader', 'Broker.MailboxSignIn']);
    // Mailbox accounts sign in as users; the role only satisfies appRoleAssignmentRequired.
    const mailbox = (roles as BicepNode[])[2] as Record<string, BicepNode>;
    expect(mailbox.allowedMemberTypes).toEqual(['User']);
    expect(varExpression(entraApp, 'brokerMailboxSignInRoleId')).toMatch(/^'[0-9a-f-]{36}'$/);
    for (const role of roles as BicepNode[]) {
      expect(isObject(role) && role.id instanceof Expression).toBe(true);
    }
    expect(varExpression(entraApp, 'brokerAdminRoleId')).toMatch(/^'[0-9a-f-]{36}'$/);
    expect(varExpression(entraApp, 'brokerTokenReaderRoleId')).toMatch(/^'[0-9a-f-]{36}'$/);
    expect(varExpression(entraApp, 'api')).toMatch(/requestedAccessTokenVersion: 2/);
  });

  it('a failed first provision can be retried: no Graph assignment or grant is a Bicep resource (msgraph-bicep-types 161)', () => {
    const types = [...entraApp.matchAll(/^resource \w+ '([^']+)'/gm)].map((m) => m[1]);
    expect(types.filter((t) => /appRoleAssignedTo|oauth2PermissionGrants/.test(t!))).toEqual([]);
    // What the deployment wants is listed as outputs for scripts/assign-app-roles.ts (postprovision).
    expect(entraApp).toMatch(
      /^output appRoleAssignments array = concat\(wantedUserRoleAssignments, wantedApplicationPermissionAssignments\)$/m,
    );
    expect(entraApp).toMatch(/^output permissionGrants array = wantedPermissionGrants$/m);
    const users = varExpression(entraApp, 'wantedUserRoleAssignments');
    expect(users).toMatch(
      /map\(brokerAdminPrincipalIds, principalId => \{ principalId: principalId, resourceId: servicePrincipal\.id, appRoleId: brokerAdminRoleId \}\)/,
    );
    expect(users).toMatch(
      /map\(mailboxSignInPrincipalIds, principalId => \{ principalId: principalId, resourceId: servicePrincipal\.id, appRoleId: brokerMailboxSignInRoleId \}\)/,
    );
    // Application permissions and tenant-wide grants only with admin consent.
    expect(varExpression(entraApp, 'wantedApplicationPermissionAssignments')).toMatch(
      /^grantAdminConsent\n?\s*\?/,
    );
    expect(varExpression(entraApp, 'wantedPermissionGrants')).toMatch(/^grantAdminConsent\n?\s*\?/);
    expect(varExpression(entraApp, 'wantedPermissionGrants')).toMatch(/scope: join\(graphScopeNames, ' '\)/);
    const main = readBicep('main.bicep');
    expect(main).toMatch(
      /^output BROKER_APP_ROLE_ASSIGNMENTS array = entraApp\.outputs\.appRoleAssignments$/m,
    );
    expect(main).toMatch(/^output BROKER_PERMISSION_GRANTS array = entraApp\.outputs\.permissionGrants$/m);
    expect(main).toMatch(
      /^output ENTRA_SERVICE_PRINCIPAL_ID string = entraApp\.outputs\.servicePrincipalId$/m,
    );
    expect(main).not.toMatch(/assignAppRoles/);
  });
});
