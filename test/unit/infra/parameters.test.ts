import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Expression,
  infraFileExists,
  paramDeclarations,
  paramViolations,
  parseBicepLiteral,
  readBicep,
  readRepoFile,
  stripComments,
  varExpression,
  type BicepNode,
  type ParamDeclaration,
  type ParamValue,
} from './bicep-text';

/**
 * infra/main.bicepparam, the one parameter file both deployment paths of README "Deploy to Azure"
 * use: azd compiles it with the environment's values as environment variables, `az deployment sub
 * create -p infra/main.bicepparam` with the shell's (readEnvironmentVariable). It is evaluated here
 * for several environments and every value it passes is checked against main.bicep's declared type,
 * @allowed, length and range, as Bicep and ARM check them before anything is created.
 */
const main = readBicep('main.bicep');
const declarations = new Map(paramDeclarations(main).map((d) => [d.name, d]));

const MINIMAL = { AZURE_ENV_NAME: 'broker-prod', AZURE_LOCATION: 'westeurope' };
const ENVIRONMENTS: Record<string, Record<string, string>> = {
  'a first azd up by a user': {
    ...MINIMAL,
    AZURE_PRINCIPAL_ID: '0d2a5c39-1b7e-4f55-9a3e-8f1c2b7d6e40',
  },
  'a pipeline (service principal) granting consent, app-only on, after azd down': {
    AZURE_ENV_NAME: 'broker-ci',
    AZURE_LOCATION: 'swedencentral',
    AZURE_PRINCIPAL_ID: '5e0f3c1a-8d2b-4c6e-9f7a-1b3d5e7f9a2c',
    AZURE_PRINCIPAL_TYPE: 'ServicePrincipal',
    BROKER_GRANT_ADMIN_CONSENT: 'true',
    BROKER_ENABLE_APP_ONLY: 'true',
    KEY_VAULT_NAME_SALT: '20261126120000',
    ENTRA_SIGN_IN_AUDIENCE: 'AzureADMultipleOrgs',
    BROKER_ALLOWED_TENANTS: '["6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"]',
    REFRESH_SCHEDULE: '0 */5 * * * *',
    NOTIFY_WEBHOOK_URL: 'https://hooks.contoso.test/broker',
    BROKER_ADMIN_PRINCIPAL_IDS: '["7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"]',
    BROKER_MAILBOX_SIGN_IN_PRINCIPAL_IDS: '["1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e"]',
    BROKER_TOKEN_READERS:
      '[{"connection":"support-in","principalId":"9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"},{"connection":"sales-out","principalId":"9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b","keyVaultIndex":1}]',
    KEY_VAULT_COUNT: '2',
    BROKER_PROFILES: '["ews","smtp"]',
    BROKER_MAXIMUM_INSTANCE_COUNT: '40',
    BROKER_INSTANCE_MEMORY_MB: '4096',
  },
  'recovering the vaults of an earlier deployment': {
    ...MINIMAL,
    KEY_VAULT_NAME_SALT: '20261001080000',
    KEY_VAULT_CREATE_MODE: 'recover',
  },
};

/** Evaluates the expressions main.bicepparam uses, as `bicep build-params` would. */
function evaluateBicepParam(expression: string, env: Record<string, string>): ParamValue {
  const text = expression.trim();
  const call = /^(\w+)\(([\s\S]*)\)$/.exec(text);
  if (call) {
    const args = splitArguments(call[2]!).map((arg) => evaluateBicepParam(arg, env));
    switch (call[1]) {
      case 'readEnvironmentVariable': {
        const value = env[args[0] as string] ?? (args[1] as string | undefined);
        if (value === undefined)
          throw new Error(`environment variable ${JSON.stringify(args[0])} is not set`);
        return value;
      }
      case 'bool':
        if (args[0] !== 'true' && args[0] !== 'false')
          throw new Error(`bool(${JSON.stringify(args[0])}) fails`);
        return args[0] === 'true';
      case 'int':
        if (typeof args[0] !== 'string' || !/^-?\d+$/.test(args[0]))
          throw new Error(`int(${JSON.stringify(args[0])}) fails`);
        return Number(args[0]);
      case 'json':
        try {
          return JSON.parse(args[0] as string) as ParamValue;
        } catch {
          throw new Error(`json(${JSON.stringify(args[0])}) fails`);
        }
      default:
        throw new Error(`function ${call[1]} not evaluated by this test`);
    }
  }
  if (text.startsWith('['))
    return splitArguments(text.slice(1, -1)).map((item) => evaluateBicepParam(item, env));
  if (text.startsWith("'")) return text.slice(1, -1).replace(/\\'/g, "'");
  if (text === 'true' || text === 'false') return text === 'true';
  if (/^-?\d+$/.test(text)) return Number(text);
  throw new Error(`expression not evaluated by this test: ${text}`);
}

function splitArguments(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  let inString = false;
  for (const ch of text) {
    if (ch === "'") inString = !inString;
    if (!inString && (ch === '(' || ch === '[')) depth += 1;
    if (!inString && (ch === ')' || ch === ']')) depth -= 1;
    if (!inString && depth === 0 && (ch === ',' || ch === '\n')) {
      if (current.trim()) parts.push(current.trim());
      current = '';
    } else current += ch;
  }
  if (current.trim()) parts.push(current.trim());
  return parts;
}

function bicepParamAssignments(): Map<string, string> {
  const text = stripComments(readRepoFile('infra/main.bicepparam'));
  expect(text).toMatch(/^using 'main\.bicep'$/m);
  return new Map([...text.matchAll(/^param (\w+) = (.+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

function bicepParamValues(env: Record<string, string>): Map<string, ParamValue> {
  return new Map(
    [...bicepParamAssignments()].map(([name, expression]) => [name, evaluateBicepParam(expression, env)]),
  );
}

function violations(values: Map<string, ParamValue>): string[] {
  const problems: string[] = [];
  for (const [name, value] of values) {
    const declaration = declarations.get(name);
    if (!declaration) problems.push(`${name}: not a parameter of main.bicep`);
    else problems.push(...paramViolations(declaration, value));
  }
  for (const declaration of declarations.values()) {
    if (declaration.defaultValue === undefined && !values.has(declaration.name))
      problems.push(`${declaration.name}: required, not passed`);
  }
  return problems;
}

/** A main.bicep default as the value ARM would see. */
function declaredDefault(declaration: ParamDeclaration): ParamValue {
  const toValue = (node: BicepNode): ParamValue => {
    if (typeof node === 'string') return node;
    if (Array.isArray(node)) return node.map(toValue);
    if (node instanceof Expression) {
      if (node.text === 'true' || node.text === 'false') return node.text === 'true';
      if (/^-?\d+$/.test(node.text)) return Number(node.text);
      throw new Error(`${declaration.name}: default ${node.text} is not a literal`);
    }
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, toValue(v)]));
  };
  return toValue(parseBicepLiteral(declaration.defaultValue!));
}

describe('the parameter file (infra/main.bicepparam)', () => {
  it('is the only one: azd reads main.bicepparam whenever it exists, so no main.parameters.json beside it', () => {
    // Azure/azure-dev cli/azd/pkg/infra/provisioning/bicep/bicep_provider.go, Initialize: "Check if
    // there's a <moduleName>.bicepparam first. It will be preferred over a <moduleName>.bicep".
    expect(infraFileExists('main.bicepparam')).toBe(true);
    expect(infraFileExists('main.parameters.json')).toBe(false);
    const azureYaml = readRepoFile('azure.yaml');
    expect(azureYaml).toMatch(/^infra:\n {2}provider: bicep\n {2}path: infra\n {2}module: main$/m);
  });

  it.each(Object.entries(ENVIRONMENTS))('passes values main.bicep accepts for %s', (_scenario, env) => {
    expect(violations(bicepParamValues(env))).toEqual([]);
  });

  it('maps every parameter of main.bicep to an environment variable, falling back to its default', () => {
    const assignments = bicepParamAssignments();
    expect([...assignments.keys()].sort()).toEqual([...declarations.keys()].sort());
    for (const [name, expression] of assignments)
      expect({ name, fromEnvironment: /readEnvironmentVariable\('\w+'/.test(expression) }).toEqual({
        name,
        fromEnvironment: true,
      });
    const unset = bicepParamValues(MINIMAL);
    for (const declaration of declarations.values()) {
      if (declaration.defaultValue === undefined) continue;
      expect({ name: declaration.name, value: unset.get(declaration.name) }).toEqual({
        name: declaration.name,
        value: declaredDefault(declaration),
      });
    }
    // Each variable names one parameter.
    const variables = [...assignments.values()].map((e) => /readEnvironmentVariable\('(\w+)'/.exec(e)![1]);
    expect(new Set(variables).size).toBe(variables.length);
  });

  it('lists an admin added later (BROKER_ADMIN_PRINCIPAL_IDS) without re-deploying an assignment', () => {
    const values = bicepParamValues({
      ...MINIMAL,
      BROKER_ADMIN_PRINCIPAL_IDS: '["7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"]',
    });
    expect(values.get('brokerAdminPrincipalIds')).toEqual(['7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d']);
  });

  it('refuses a value that breaks a declaration (the check can fail)', () => {
    expect(violations(bicepParamValues({ ...MINIMAL, AZURE_LOCATION: 'westeurope2' }))).toEqual([
      'location: "westeurope2" is not allowed',
    ]);
    expect(violations(bicepParamValues({ ...MINIMAL, KEY_VAULT_CREATE_MODE: 'purge' }))).toEqual([
      'keyVaultCreateMode: "purge" is not allowed',
    ]);
    expect(violations(bicepParamValues({ ...MINIMAL, BROKER_MAXIMUM_INSTANCE_COUNT: '20' }))).toEqual([
      'maximumInstanceCount: below 40',
    ]);
    expect(() => bicepParamValues({ ...MINIMAL, BROKER_GRANT_ADMIN_CONSENT: 'yes' })).toThrow(
      /bool\("yes"\) fails/,
    );
    expect(() => bicepParamValues({ ...MINIMAL, BROKER_TOKEN_READERS: 'support-in' })).toThrow(/json\(/);
    expect(() => bicepParamValues({ AZURE_LOCATION: 'westeurope' })).toThrow(/"AZURE_ENV_NAME" is not set/);
  });

  it('README path 2 deploys with the .bicepparam file, and README says what azd does with it', () => {
    const readme = readRepoFile('README.md');
    const path2 = /### Path 2[^\n]*\n[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    expect(path2).toMatch(/az deployment sub create[^\n]*(\\\n[^\n]*)*-p infra\/main\.bicepparam/);
    expect(path2).not.toMatch(/main\.parameters\.json/);
    const deploy = deploySection(readme);
    expect(deploy).toMatch(/azd env set AZURE_LOCATION/);
    expect(deploy).toMatch(/main\.bicepparam/);
    expect(deploy).not.toMatch(/main\.parameters\.json/);
  });
});

function deploySection(readme: string): string {
  const start = readme.indexOf('## Deploy to Azure');
  return readme.slice(start, readme.indexOf('## Architecture', start));
}

describe('location', () => {
  it('is restricted to regions that offer Flex Consumption', () => {
    const location: ParamDeclaration = declarations.get('location')!;
    expect(location.allowed).toEqual(
      expect.arrayContaining(['westeurope', 'eastus', 'swedencentral', 'australiaeast']),
    );
    expect(location.allowed?.length).toBeGreaterThanOrEqual(30);
    // Regions without Flex Consumption (as of the quickstart's list).
    for (const region of ['westindia', 'francesouth', 'qatarcentral', 'usgovvirginia'])
      expect(location.allowed).not.toContain(region);
    expect(main).toMatch(/@metadata\(\{ azd: \{ type: 'location' \} \}\)\nparam location string/);
  });
});

describe('Flex Consumption scale', () => {
  it('keeps maximumInstanceCount within 40..1000 (a lower limit fails the deployment)', () => {
    for (const file of ['main.bicep', 'app/function-app.bicep']) {
      const declaration = paramDeclarations(readBicep(file)).find((d) => d.name === 'maximumInstanceCount')!;
      expect({ file, min: declaration.minValue, max: declaration.maxValue }).toEqual({
        file,
        min: 40,
        max: 1000,
      });
    }
  });
});

/** The `run:` of a hook of azure.yaml for `shell: sh`. */
function posixHook(yaml: string, hook: string): string {
  const block = new RegExp(
    `^ {2}${hook}:\\n {4}posix:\\n {6}shell: sh\\n {6}run: (\\|\\n(?: {8}.*\\n)+|.*\\n)`,
    'm',
  ).exec(yaml);
  expect(block).not.toBeNull();
  return block![1]!.startsWith('|') ? block![1]!.slice(2).replace(/^ {8}/gm, '') : block![1]!;
}

/** Runs a hook with recording `azd` and `npx` stubs on PATH; what each was called with. */
function runHook(
  script: string,
  env: Record<string, string>,
): { calls: string[]; stdout: string; status: number | null } {
  const bin = mkdtempSync(join(tmpdir(), 'azd-stub-'));
  const calls = join(bin, 'calls');
  for (const tool of ['azd', 'npx']) {
    writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool} $@" >> "${calls}"\n`);
    chmodSync(join(bin, tool), 0o755);
  }
  writeFileSync(calls, '');
  const result = spawnSync('sh', ['-c', script], {
    encoding: 'utf8',
    env: { PATH: `${bin}:${process.env.PATH ?? ''}`, ...env },
  });
  return {
    calls: readFileSync(calls, 'utf8').trim().split('\n'),
    stdout: result.stdout,
    status: result.status,
  };
}

describe('azd hooks', () => {
  const yaml = readRepoFile('azure.yaml');

  it('postdown: salts the next vault names and tells how to recover the old vaults instead', () => {
    const { calls, stdout, status } = runHook(posixHook(yaml, 'postdown'), {
      KEY_VAULT_NAME_SALT: '20261001080000',
    });
    expect(status).toBe(0);
    expect(calls).toEqual([expect.stringMatching(/^azd env set KEY_VAULT_NAME_SALT \d{14}$/)]);
    expect(calls[0]).not.toContain('20261001080000');
    expect(stdout).toContain(
      "azd env set KEY_VAULT_NAME_SALT '20261001080000' && azd env set KEY_VAULT_CREATE_MODE recover",
    );
    // Only while the private vaults were not purged (they have no purge protection).
    expect(stdout).toMatch(/did not purge the private vaults/);
  });

  it('postprovision: ends a recover provision, then reconciles the app role assignments (every time)', () => {
    const { calls, status } = runHook(posixHook(yaml, 'postprovision'), {});
    expect(status).toBe(0);
    expect(calls).toEqual([
      'azd env set KEY_VAULT_CREATE_MODE default',
      'npx tsx scripts/assign-app-roles.ts',
    ]);
    // Nothing turns the reconcile off after a provision: it is safe to repeat.
    expect(yaml).not.toMatch(/BROKER_ASSIGN_APP_ROLES/);
    const windows = /^ {2}postprovision:\n[\s\S]*?windows:\n {6}shell: pwsh\n {6}run: (.*)$/m.exec(yaml)?.[1];
    expect(windows).toBe(
      'azd env set KEY_VAULT_CREATE_MODE default; if ($?) { npx tsx scripts/assign-app-roles.ts }',
    );
  });

  it("salts the vault names, keeping the first release's names while no salt is set", () => {
    const token = varExpression(main, 'vaultToken');
    expect(token).toMatch(
      /^empty\(keyVaultNameSalt\) \? resourceToken : toLower\(uniqueString\(subscription\(\)\.id, environmentName, location, keyVaultNameSalt\)\)$/,
    );
    expect(varExpression(main, 'keyVaultNames')).toContain('${vaultToken}');
    expect(varExpression(main, 'privateKeyVaultNames')).toContain('${vaultToken}');
    // 'kvp' + 13 (uniqueString) + one digit: within Key Vault's 3-24 characters.
    expect('kvp'.length + 13 + 1).toBeLessThanOrEqual(24);
    // The App Registration's uniqueName does not take the salt: a second azd up reuses it.
    expect(main).toMatch(/uniqueName: 'ews-oauth-broker-\$\{resourceToken\}'/);
  });
});
