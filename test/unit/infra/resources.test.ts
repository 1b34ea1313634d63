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

/** The Bicep files that assign Azure roles. */
const ROLE_FILES = ['app/rbac.bicep', 'app/token-readers.bicep'];
const tokenReaders = readBicep('app/token-readers.bicep');
const main = readBicep('main.bicep');
const allBicep = bicepFiles().map((file) => ({ file, text: readBicep(file) }));

interface Assignment {
  file: string;
  symbol: string;
  scope: string;
  principal: string;
  role: string;
}

function roleAssignments(): Assignment[] {
  return ROLE_FILES.flatMap((file) => fileRoleAssignments(file, readBicep(file)));
}

function fileRoleAssignments(file: string, text: string): Assignment[] {
  return resourceBlocks(text)
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
      return { file, symbol: block.symbol, scope: name[1]!, principal: name[2]!, role: name[3]! };
    });
}

describe('role assignments (infra/app/rbac.bicep, infra/app/token-readers.bicep)', () => {
  it.each(ROLE_FILES)('%s uses the built-in role definition ids, each named beside its GUID', (file) => {
    const text = readBicep(file);
    const table = parseBicepLiteral(objectLiterals(varExpression(text, 'roleDefinitionIds'))[0]!);
    expect(isObject(table)).toBe(true);
    for (const [name, id] of Object.entries(table as Record<string, unknown>))
      expect({ name, id }).toEqual({ name, id: BUILT_IN_ROLES[name] });
    const guids = text.match(GUID) ?? [];
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

  it("a consumer's vault role reads only the token it was granted: Secrets User on conn-{name}-token, never a vault", () => {
    const assignments = roleAssignments();
    const consumers = assignments.filter((a) => a.principal === 'reader.principalId');
    expect(consumers.map((a) => `${a.file} ${a.scope}: ${a.role}`)).toEqual([
      'app/token-readers.bicep tokenSecrets[i]: Key Vault Secrets User',
    ]);
    // The scope is one secret, the connection's published token, in the vault that holds it.
    const secret = resourceBlocks(tokenReaders).find((b) => b.symbol === 'tokenSecrets')!;
    expect(secret.type).toBe('Microsoft.KeyVault/vaults/secrets@2023-07-01');
    expect(secret.body).toMatch(/parent: vaults\[reader\.\?keyVaultIndex \?\? 0\]/);
    expect(secret.body).toMatch(/name: 'conn-\$\{reader\.connection\}-token'/);
    expect(tokenReaders).toMatch(
      /resource tokenSecrets '[^']+' existing = \[\n\s+for reader in tokenReaders:/,
    );
    expect(tokenReaders).toMatch(
      /resource tokenReaderSecretsUser '[^']+' = \[\n\s+for \(reader, i\) in tokenReaders:/,
    );
    // No role anywhere is scoped to a whole vault for anyone but the broker and the deployer.
    for (const a of assignments.filter((a) => /^(vaults|privateVaults)\[/.test(a.scope)))
      expect({ a: a.symbol, principal: a.principal }).toEqual({
        a: a.symbol,
        principal: expect.stringMatching(/^(appPrincipalId|deployerPrincipalId)$/),
      });
    // main.bicep takes the connection→consumer map, and no vault-wide list of readers.
    expect(main).toMatch(/^param tokenReaders array = \[\]$/m);
    expect(main).not.toMatch(/tokenReaderPrincipalIds/);
    expect(main).toMatch(
      /module tokenReaderRoles 'app\/token-readers\.bicep' = \{[\s\S]*?tokenReaders: tokenReaders/,
    );
  });

  it("lets the deployer work with vault and tables; only the broker reaches the caches' vaults", () => {
    const assignments = roleAssignments();
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

  it('protects the Key Vaults: RBAC and soft delete; purge protection a parameter, left out when off', () => {
    const kv = readBicep('app/key-vault.bicep');
    expect(kv).toMatch(/enableRbacAuthorization: true/);
    expect(kv).toMatch(/enableSoftDelete: true/);
    expect(kv).toMatch(/^param enablePurgeProtection bool = true$/m);
    // The service refuses `false` (Azure Verified Modules leave the property out instead).
    expect(kv).toMatch(/enablePurgeProtection: enablePurgeProtection \? true : null/);
    expect(kv).not.toMatch(/enablePurgeProtection: (true|false)\b/);
    expect(kv).not.toMatch(/accessPolicies/);
  });

  it('a delete is final: the private vault (refresh tokens) has no purge protection and the broker may purge', () => {
    const privateVault =
      /module privateKeyVault 'app\/key-vault\.bicep' = \{[\s\S]*?\n\}/.exec(main)?.[0] ?? '';
    expect(privateVault).toMatch(/names: privateKeyVaultNames/);
    expect(privateVault).toMatch(/enablePurgeProtection: false/);
    // The published-token vaults keep the default (purge protection on).
    const publishedVault = /module keyVault 'app\/key-vault\.bicep' = \{[\s\S]*?\n\}/.exec(main)?.[0] ?? '';
    expect(publishedVault).toMatch(/names: keyVaultNames/);
    expect(publishedVault).not.toMatch(/enablePurgeProtection/);
    // Key Vault Secrets Officer (data actions Microsoft.KeyVault/vaults/secrets/*) includes
    // secrets/purge/action; the broker holds it on every private vault.
    expect(
      roleAssignments()
        .filter((a) => a.principal === 'appPrincipalId' && a.scope.startsWith('privateVaults'))
        .map((a) => a.role),
    ).toEqual(['Key Vault Secrets Officer']);
  });

  it('regression: the webhook signing key sat in the consumer-readable vault — it lives in the private vault', () => {
    const module = (name: string) => {
      const start = main.indexOf(`module ${name} 'app/key-vault.bicep'`);
      expect(start).toBeGreaterThanOrEqual(0);
      return main.slice(start, main.indexOf('\n}\n', start));
    };
    expect(module('keyVault')).not.toMatch(/notifyWebhookSecret:/);
    expect(module('privateKeyVault')).toMatch(/notifyWebhookSecret: notifyWebhookSecret/);
    expect(main).toContain(
      "notifyWebhookSecretUri: '${privateKeyVault.outputs.vaultUris[0]}secrets/${notifyWebhookSecretName}'",
    );
    expect(main).not.toMatch(/keyVault\.outputs\.vaultUris\[0\]\}secrets\/\$\{notifyWebhookSecretName\}/);
  });

  it('turns basic (user name and password) publishing off for FTP and SCM', () => {
    const functionApp = readBicep('app/function-app.bicep');
    const policies = resourceBlocks(functionApp).filter((b) =>
      b.type.startsWith('Microsoft.Web/sites/basicPublishingCredentialsPolicies@'),
    );
    expect(
      policies.map((p) => ({
        parent: /parent: (\w+)/.exec(p.body)?.[1],
        name: /name: '(\w+)'/.exec(p.body)?.[1],
        allow: /allow: (\w+)/.exec(p.body)?.[1],
      })),
    ).toEqual([
      { parent: 'site', name: 'ftp', allow: 'false' },
      { parent: 'site', name: 'scm', allow: 'false' },
    ]);
  });

  it('creates the Function App only after its identity holds the deployment storage role', () => {
    const functionAppModule =
      /module functionApp 'app\/function-app\.bicep' = \{[\s\S]*?\n\}/.exec(main)?.[0] ?? '';
    expect(functionAppModule).toMatch(/dependsOn: \[rbac\]/);
    expect(main).toMatch(/module rbac 'app\/rbac\.bicep' = \{/);
    expect(
      roleAssignments()
        .filter(
          (a) => a.file === 'app/rbac.bicep' && a.principal === 'appPrincipalId' && a.scope === 'storage',
        )
        .map((a) => a.role),
    ).toContain('Storage Blob Data Owner');
    // A token reader entry for a secret that does not exist yet fails its own module, not the app's.
    expect(functionAppModule).not.toMatch(/tokenReaderRoles/);
  });

  it('lets only assigned users and applications get tokens for the broker (appRoleAssignmentRequired)', () => {
    const entra = readBicep('app/entra-app.bicep');
    const sp = resourceBlocks(entra).find((b) => b.symbol === 'servicePrincipal')!;
    expect(sp.type).toBe('Microsoft.Graph/servicePrincipals@v1.0');
    expect(sp.body).toMatch(/appRoleAssignmentRequired: true/);
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
  it('references only modules that exist', () => {
    const modules = [...main.matchAll(/^module \w+ '([^']+)'/gm)].map((m) => m[1]!);
    const entra = [...readBicep('app/entra-app.bicep').matchAll(/^module \w+ '([^']+)'/gm)].map(
      (m) => `app/${m[1]!}`,
    );
    for (const path of [...modules, ...entra])
      expect({ path, exists: infraFileExists(path) }).toEqual({ path, exists: true });
  });

  it('maps main.bicepparam onto parameters main.bicep declares, with the azd variables', () => {
    const bicepparam = stripComments(readRepoFile('infra/main.bicepparam'));
    const declared = paramNames(main);
    for (const [, name] of bicepparam.matchAll(/^param (\w+) =/gm)) expect(declared).toContain(name);
    expect(bicepparam).toMatch(/^param environmentName = readEnvironmentVariable\('AZURE_ENV_NAME'\)$/m);
    expect(bicepparam).toMatch(/^param location = readEnvironmentVariable\('AZURE_LOCATION'\)$/m);
    expect(bicepparam).toMatch(/^param principalId = readEnvironmentVariable\('AZURE_PRINCIPAL_ID', ''\)$/m);
    expect(bicepparam).toMatch(
      /^param principalType = readEnvironmentVariable\('AZURE_PRINCIPAL_TYPE', 'User'\)$/m,
    );
  });

  it('outputs what azd and the operator need, in SCREAMING_CASE', () => {
    const outputs = outputNames(main);
    for (const name of [
      'ENTRA_SERVICE_PRINCIPAL_ID',
      'BROKER_APP_ROLE_ASSIGNMENTS',
      'BROKER_PERMISSION_GRANTS',
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
    // The package is built here: azd must not hand it to Oryx (test/integration/scripts/packaging.test.ts).
    expect(yaml).toMatch(/^ {4}remoteBuild: false$/m);
    // remoteBuild came with azd 1.23.5 (Azure/azure-dev #6748); an older azd ignores it.
    expect(yaml).toMatch(/^requiredVersions:\n {2}azd: '>= 1\.23\.5'$/m);
    const tagged = /tags: union\(tags, \{ 'azd-service-name': 'api' \}\)/;
    expect(readBicep('app/function-app.bicep')).toMatch(tagged);
  });
});
