/**
 * Role assignments, Flex Consumption rules, secretlessness and the security settings of the
 * resources, read from the Bicep text; plus the azd wiring (parameters, outputs, azure.yaml).
 */
import {
  GUID,
  bicepFiles,
  infraFileExists,
  isObject,
  objectLiterals,
  outputNames,
  paramNames,
  parseBicepLiteral,
  readBicep,
  readRepoFile,
  resourceBlocks,
  stripComments,
  varExpression,
} from './bicep-text';

/** Azure built-in roles (learn.microsoft.com/azure/role-based-access-control/built-in-roles). */
const BUILT_IN_ROLES: Record<string, string> = {
  'Key Vault Secrets Officer': 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  'Key Vault Secrets User': '4633458b-17de-408a-b874-0445c86b69e6',
  'Storage Blob Data Owner': 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  'Storage Queue Data Contributor': '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  'Storage Table Data Contributor': '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  'Monitoring Metrics Publisher': '3913510d-42f4-4e42-8a64-420c390055eb',
};

const rbac = readBicep('app/rbac.bicep');
const allBicep = bicepFiles().map((file) => ({ file, text: readBicep(file) }));

interface Assignment {
  symbol: string;
  scope: string;
  principal: string;
  role: string;
}

function roleAssignments(): Assignment[] {
  return resourceBlocks(rbac)
    .filter((block) => block.type.startsWith('Microsoft.Authorization/roleAssignments@'))
    .map((block) => {
      const name = /name: guid\(([\w.[\]]+)\.id, ([\w.]+), roleDefinitionIds\['([^']+)'\]\)/.exec(block.body);
      const scope = /scope: ([\w.[\]]+)/.exec(block.body)?.[1];
      const principal = /principalId: ([\w.]+)/.exec(block.body)?.[1];
      const definition = /roleDefinitionIds\['([^']+)'\]\s*\)\s*\}/.exec(block.body)?.[1];
      if (!name)
        throw new Error(`${block.symbol}: name is not guid(scope.id, principalId, roleDefinitionId)`);
      expect({ symbol: block.symbol, scope, principal, definition }).toEqual({
        symbol: block.symbol,
        scope: name[1],
        principal: name[2],
        definition: name[3],
      });
      return { symbol: block.symbol, scope: name[1]!, principal: name[2]!, role: name[3]! };
    });
}

describe('role assignments (infra/app/rbac.bicep)', () => {
  it('uses the built-in role definition ids, each named beside its GUID', () => {
    const table = parseBicepLiteral(objectLiterals(varExpression(rbac, 'roleDefinitionIds'))[0]!);
    expect(isObject(table)).toBe(true);
    expect(table).toEqual(BUILT_IN_ROLES);
    const guids = rbac.match(GUID) ?? [];
    expect(guids.filter((g) => !Object.values(BUILT_IN_ROLES).includes(g))).toEqual([]);
  });

  it('names every assignment guid(scope.id, principalId, roleDefinitionId) with the scope it applies to', () => {
    const assignments = roleAssignments();
    expect(assignments.length).toBeGreaterThanOrEqual(8);
  });

  it('gives the app identity what the Functions host and the broker need, and nothing else', () => {
    const app = roleAssignments()
      .filter((a) => a.principal === 'appPrincipalId')
      .map((a) => `${a.scope.replace(/\[.*\]/, '[]')}: ${a.role}`)
      .sort();
    expect(app).toEqual(
      [
        'appInsights: Monitoring Metrics Publisher',
        'privateVaults[]: Key Vault Secrets Officer',
        'storage: Storage Blob Data Owner',
        'storage: Storage Queue Data Contributor',
        'storage: Storage Table Data Contributor',
        'vaults[]: Key Vault Secrets Officer',
      ].sort(),
    );
  });

  it('lets listed consumers read published tokens only, and the deployer work with vault and tables', () => {
    const assignments = roleAssignments();
    const consumers = assignments.filter((a) => a.principal === 'assignment.principalId');
    expect(consumers.map((a) => a.role)).toEqual(['Key Vault Secrets User']);
    // Never a role on the vaults of the token caches (refresh tokens) and passwords.
    expect(consumers.map((a) => a.scope.replace(/\[.*\]/, '[]'))).toEqual(['vaults[]']);
    expect(assignments.filter((a) => a.scope.startsWith('privateVaults')).map((a) => a.principal)).toEqual([
      'appPrincipalId',
    ]);
    expect(
      assignments
        .filter((a) => a.principal === 'deployerPrincipalId')
        .map((a) => a.role)
        .sort(),
    ).toEqual(['Key Vault Secrets Officer', 'Storage Blob Data Owner', 'Storage Table Data Contributor']);
  });
});

describe('Flex Consumption and security settings', () => {
  it('sets none of the settings Flex Consumption rejects', () => {
    for (const { file, text } of allBicep) {
      expect({
        file,
        hit: /FUNCTIONS_WORKER_RUNTIME|WEBSITE_RUN_FROM_PACKAGE|WEBSITE_CONTENT\w*/.exec(text)?.[0],
      }).toEqual({
        file,
        hit: undefined,
      });
    }
  });

  it('runs node 22 on an FC1 plan, HTTPS only with TLS 1.2, under the user-assigned identity', () => {
    const functionApp = readBicep('app/function-app.bicep');
    expect(functionApp).toMatch(/name: 'FC1'\s*tier: 'FlexConsumption'/);
    expect(functionApp).toMatch(/runtime: \{\s*name: 'node'\s*version: '22'/);
    expect(functionApp).toMatch(/httpsOnly: true/);
    expect(functionApp).toMatch(/minTlsVersion: '1\.2'/);
    expect(functionApp).toMatch(/type: 'UserAssigned'/);
    expect(functionApp).toMatch(/keyVaultReferenceIdentity: identityId/);
    expect(functionApp).toMatch(/type: 'blobContainer'[\s\S]*type: 'UserAssignedIdentity'/);
  });

  it('has no client secret, password or key credential anywhere', () => {
    for (const { file, text } of allBicep) {
      expect({
        file,
        hit: /\bclientSecret\b|passwordCredentials|keyCredentials|ENTRA_CLIENT_SECRET/.exec(text)?.[0],
      }).toEqual({
        file,
        hit: undefined,
      });
    }
    expect(readBicep('app/entra-app.bicep')).toMatch(/federatedIdentityCredentials@v1\.0/);
  });

  it('protects the Key Vault: RBAC, soft delete, purge protection', () => {
    const kv = readBicep('app/key-vault.bicep');
    expect(kv).toMatch(/enableRbacAuthorization: true/);
    expect(kv).toMatch(/enableSoftDelete: true/);
    expect(kv).toMatch(/enablePurgeProtection: true/);
    expect(kv).not.toMatch(/accessPolicies/);
  });

  it('turns shared keys and public blob access off on the storage account, TLS 1.2', () => {
    const storage = readBicep('app/storage.bicep');
    expect(storage).toMatch(/allowSharedKeyAccess: false/);
    expect(storage).toMatch(/allowBlobPublicAccess: false/);
    expect(storage).toMatch(/minimumTlsVersion: 'TLS1_2'/);
  });

  it('turns local auth off on Application Insights', () => {
    expect(readBicep('app/monitoring.bicep')).toMatch(/DisableLocalAuth: true/);
  });
});

describe('azd wiring', () => {
  const main = readBicep('main.bicep');

  it('references only modules that exist', () => {
    const modules = [...main.matchAll(/^module \w+ '([^']+)'/gm)].map((m) => m[1]!);
    const entra = [...readBicep('app/entra-app.bicep').matchAll(/^module \w+ '([^']+)'/gm)].map(
      (m) => `app/${m[1]!}`,
    );
    for (const path of [...modules, ...entra])
      expect({ path, exists: infraFileExists(path) }).toEqual({ path, exists: true });
  });

  it('maps main.parameters.json onto parameters main.bicep declares, with the azd variables', () => {
    const raw = readRepoFile('infra/main.parameters.json');
    const parameters = JSON.parse(raw) as { parameters: Record<string, { value: unknown }> };
    const declared = paramNames(main);
    for (const name of Object.keys(parameters.parameters)) expect(declared).toContain(name);
    expect(parameters.parameters.environmentName?.value).toBe('${AZURE_ENV_NAME}');
    expect(parameters.parameters.location?.value).toBe('${AZURE_LOCATION}');
    expect(parameters.parameters.principalId?.value).toBe('${AZURE_PRINCIPAL_ID}');
  });

  it('outputs what azd and the operator need, in SCREAMING_CASE', () => {
    const outputs = outputNames(main);
    for (const name of [
      'AZURE_FUNCTION_APP_NAME',
      'SERVICE_API_URI',
      'BROKER_BASE_URL',
      'ENTRA_CLIENT_ID',
      'ENTRA_TENANT_ID',
      'KEY_VAULT_URL',
      'BROKER_CONSOLE_URL',
      'ADMIN_CONSENT_URL',
      'REDIRECT_URI',
    ]) {
      expect(outputs).toContain(name);
    }
    expect(outputs.filter((o) => !/^[A-Z][A-Z0-9_]*$/.test(o))).toEqual([]);
  });

  it('loads the GA Microsoft Graph extension under the alias the Bicep uses', () => {
    const config = JSON.parse(stripComments(readRepoFile('infra/bicepconfig.json'))) as {
      extensions: Record<string, string>;
    };
    expect(config.extensions.microsoftGraphV1).toBe(
      'br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:1.0.0',
    );
    for (const file of ['app/entra-app.bicep', 'app/entra-app-identifier-uri.bicep']) {
      expect(readBicep(file)).toMatch(/^extension microsoftGraphV1$/m);
    }
  });

  it("maps the deployer's principal type from azd (a CI service principal is not a User)", () => {
    const parameters = JSON.parse(readRepoFile('infra/main.parameters.json')) as {
      parameters: Record<string, { value: unknown }>;
    };
    expect(parameters.parameters.principalType?.value).toBe('${AZURE_PRINCIPAL_TYPE=User}');
    expect(parameters.parameters.profiles?.value).toEqual([
      'ews',
      'ews-shared',
      'imap',
      'pop',
      'smtp',
      'graph-mail',
      'graph-mail-shared',
    ]);
  });

  it('dereferences conditional existing resources with ! (no BCP318 warning)', () => {
    for (const { file, text } of allBicep) {
      const conditional = [...text.matchAll(/^resource (\w+) '[^']+' existing = if \(/gm)].map((m) => m[1]!);
      for (const name of conditional) {
        expect({ file, name, bare: new RegExp(`\\b${name}\\.\\w`).test(text) }).toEqual({
          file,
          name,
          bare: false,
        });
      }
    }
  });

  it('sets no ftpsState (Flex Consumption does not support it)', () => {
    for (const { file, text } of allBicep)
      expect({ file, ftps: /^\s*ftpsState:/m.test(text) }).toEqual({ file, ftps: false });
  });

  it('declares the api service as a TypeScript function app built before packaging', () => {
    const yaml = readRepoFile('azure.yaml');
    expect(yaml).toMatch(/^services:\n {2}api:\n {4}project: \.\n {4}language: ts\n {4}host: function$/m);
    expect(yaml).toMatch(/prepackage:/);
    // The hook stages the package; it never prunes the working tree azd builds in next.
    expect(yaml).toMatch(/run: npx tsx scripts\/stage-package\.ts/);
    expect(yaml).toMatch(/^ {4}dist: \.azd-package$/m);
    expect(yaml).not.toMatch(/prune/);
    const tagged = /tags: union\(tags, \{ 'azd-service-name': 'api' \}\)/;
    expect(readBicep('app/function-app.bicep')).toMatch(tagged);
  });
});
