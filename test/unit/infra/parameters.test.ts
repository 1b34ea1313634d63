import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  paramDeclarations,
  paramViolations,
  readBicep,
  readRepoFile,
  stripComments,
  varExpression,
  type ParamDeclaration,
  type ParamValue,
} from './bicep-text';

/**
 * The two ways README's "Deploy to Azure" passes parameters: azd's infra/main.parameters.json
 * (`${VAR=default}` placeholders azd fills from the environment) and infra/main.bicepparam for
 * `az deployment sub create` (readEnvironmentVariable). Each is evaluated here for several
 * environments and every value it passes is checked against main.bicep's declared type,
 * @allowed, length and range, as ARM checks them before anything is created.
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
    BROKER_ASSIGN_APP_ROLES: 'false',
    KEY_VAULT_NAME_SALT: '20261126120000',
    ENTRA_SIGN_IN_AUDIENCE: 'AzureADMultipleOrgs',
    REFRESH_SCHEDULE: '0 */5 * * * *',
    NOTIFY_WEBHOOK_URL: 'https://hooks.contoso.test/broker',
  },
  'recovering the vaults of an earlier deployment': {
    ...MINIMAL,
    KEY_VAULT_NAME_SALT: '20261001080000',
    KEY_VAULT_CREATE_MODE: 'recover',
  },
};

/** azd's substitution of main.parameters.json, then its conversion to the declared type. */
function azdParameters(env: Record<string, string>): Map<string, ParamValue> {
  const file = JSON.parse(readRepoFile('infra/main.parameters.json')) as {
    parameters: Record<string, { value: ParamValue }>;
  };
  const substitute = (value: ParamValue): ParamValue => {
    if (Array.isArray(value)) return value.map(substitute);
    if (typeof value !== 'string') return value;
    return value.replace(
      /\$\{(\w+)(?:=([^}]*))?\}/g,
      (_, name: string, fallback?: string) => env[name] ?? fallback ?? '',
    );
  };
  const values = new Map<string, ParamValue>();
  for (const [name, { value }] of Object.entries(file.parameters)) {
    const text = substitute(value);
    const declared = declarations.get(name)?.type;
    // azd turns a placeholder's string into the parameter's type; a string that is not one stays a string.
    if (declared === 'bool' && (text === 'true' || text === 'false')) values.set(name, text === 'true');
    else if (declared === 'int' && typeof text === 'string' && /^-?\d+$/.test(text))
      values.set(name, Number(text));
    else values.set(name, text);
  }
  return values;
}

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
        return Number(args[0]);
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

describe.each([
  ['azd (infra/main.parameters.json)', azdParameters],
  ['az deployment sub create (infra/main.bicepparam)', bicepParamValues],
])('parameters passed by %s', (_, parametersFor) => {
  it.each(Object.entries(ENVIRONMENTS))('satisfy main.bicep for %s', (_scenario, env) => {
    expect(violations(parametersFor(env))).toEqual([]);
  });

  it('are refused by this check when a value breaks a declaration (the check can fail)', () => {
    expect(violations(parametersFor({ ...MINIMAL, AZURE_LOCATION: 'westeurope2' }))).toEqual([
      'location: "westeurope2" is not allowed',
    ]);
    expect(violations(parametersFor({ ...MINIMAL, KEY_VAULT_CREATE_MODE: 'purge' }))).toEqual([
      'keyVaultCreateMode: "purge" is not allowed',
    ]);
  });
});

describe('the two parameter files', () => {
  it('pass the same parameters from the same environment variables with the same defaults', () => {
    const fromJson = azdParameters(MINIMAL);
    const fromBicepParam = bicepParamValues(MINIMAL);
    expect([...fromBicepParam.keys()].sort()).toEqual([...fromJson.keys()].sort());
    for (const env of Object.values(ENVIRONMENTS)) {
      expect(Object.fromEntries(bicepParamValues(env))).toEqual(Object.fromEntries(azdParameters(env)));
    }
  });

  it('a bicepparam value a Bicep build would refuse is refused here too', () => {
    expect(() => bicepParamValues({ ...MINIMAL, BROKER_GRANT_ADMIN_CONSENT: 'yes' })).toThrow(
      /bool\("yes"\) fails/,
    );
    expect(() => bicepParamValues({ AZURE_LOCATION: 'westeurope' })).toThrow(/"AZURE_ENV_NAME" is not set/);
  });

  it("README path 2 deploys with the .bicepparam file, never with azd's placeholder file", () => {
    const readme = readRepoFile('README.md');
    const path2 = /### Path 2[^\n]*\n[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    expect(path2).toMatch(/az deployment sub create[^\n]*(\\\n[^\n]*)*-p infra\/main\.bicepparam/);
    expect(path2).not.toMatch(/main\.parameters\.json/);
  });
});

describe('location', () => {
  it('is restricted to regions that offer Flex Consumption, and azd asks for one', () => {
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

describe('azd down, then azd up', () => {
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

  it.each(['postdown', 'postprovision'])(
    'runs the %s hook as written in azure.yaml (with a recording azd)',
    (hook) => {
      const yaml = readRepoFile('azure.yaml');
      const block = new RegExp(
        `^ {2}${hook}:\\n {4}posix:\\n {6}shell: sh\\n {6}run: (\\|\\n(?: {8}.*\\n)+|.*\\n)`,
        'm',
      ).exec(yaml);
      expect(block).not.toBeNull();
      const script = block![1]!.startsWith('|') ? block![1]!.slice(2).replace(/^ {8}/gm, '') : block![1]!;
      const bin = mkdtempSync(join(tmpdir(), 'azd-stub-'));
      const calls = join(bin, 'calls');
      writeFileSync(join(bin, 'azd'), `#!/bin/sh\necho "$@" >> "${calls}"\n`);
      chmodSync(join(bin, 'azd'), 0o755);
      writeFileSync(calls, '');
      const result = spawnSync('sh', ['-c', script], {
        encoding: 'utf8',
        env: { PATH: `${bin}:${process.env.PATH ?? ''}`, KEY_VAULT_NAME_SALT: '20261001080000' },
      });
      expect(result.status).toBe(0);
      const recorded = readFileSync(calls, 'utf8').trim().split('\n');
      if (hook === 'postdown') {
        expect(recorded).toEqual([expect.stringMatching(/^env set KEY_VAULT_NAME_SALT \d{14}$/)]);
        expect(recorded[0]).not.toContain('20261001080000');
        // It tells the operator how to get the old vaults back instead.
        expect(result.stdout).toContain(
          "azd env set KEY_VAULT_NAME_SALT '20261001080000' && azd env set KEY_VAULT_CREATE_MODE recover",
        );
      } else {
        expect(recorded).toEqual([
          'env set BROKER_ASSIGN_APP_ROLES false',
          'env set KEY_VAULT_CREATE_MODE default',
        ]);
      }
    },
  );

  it('makes app role assignments only while assignAppRoles is on (Graph Bicep cannot re-create one)', () => {
    const entra = readBicep('app/entra-app.bicep');
    const assignments = [
      ...entra.matchAll(
        /^resource (\w+) 'Microsoft\.Graph\/appRoleAssignedTo@v1\.0' = \[\n\s+for \w+ in \(([^)]*)\)/gm,
      ),
    ];
    expect(assignments.map((m) => m[1])).toEqual([
      'brokerAdmins',
      'exchangeOnlineAppRoles',
      'exchangeOnlineAppRolesByName',
      'microsoftGraphAppRoles',
    ]);
    for (const [, , condition] of assignments) expect(condition).toMatch(/assignAppRoles/);
  });
});
