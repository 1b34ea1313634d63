/**
 * README "Deploy to Azure" says what the Bicep, the parameter file and azure.yaml do: its parameter
 * table against main.bicep and main.bicepparam, and the operator's steps the Bicep cannot take.
 */
import { paramNames, readBicep, readRepoFile, stripComments } from './bicep-text';

const readme = readRepoFile('README.md');
const start = readme.indexOf('## Deploy to Azure');
const deploy = readme.slice(start, readme.indexOf('## Architecture', start));

/** The parameter table's rows: parameter names → environment variables (backticked, in order). */
function parameterTable(): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of deploy.split('\n')) {
    const cells = line.split(' | ');
    if (cells.length < 4 || !line.startsWith('| `')) continue;
    const names = [...cells[0]!.matchAll(/`(\w+)`/g)].map((m) => m[1]!);
    const variables = [...cells[1]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!);
    names.forEach((name, i) =>
      rows.set(name, variables.length === names.length ? [variables[i]!] : variables),
    );
  }
  return rows;
}

describe('README "Deploy to Azure"', () => {
  it('lists every parameter of main.bicep with the variable main.bicepparam reads for it', () => {
    const bicepparam = stripComments(readRepoFile('infra/main.bicepparam'));
    const variableOf = new Map(
      [...bicepparam.matchAll(/^param (\w+) = .*readEnvironmentVariable\('(\w+)'/gm)].map((m) => [
        m[1]!,
        m[2]!,
      ]),
    );
    const table = parameterTable();
    for (const name of paramNames(readBicep('main.bicep')))
      expect({ name, variable: table.get(name) }).toEqual({ name, variable: [variableOf.get(name)] });
  });

  it('gives the documented per-secret role line for a consumer added after the connection is authorized', () => {
    expect(deploy).toMatch(
      /az role assignment create --role "Key Vault Secrets User" --assignee <principalId> \\\n\s+--scope "\$\(az keyvault show -n <vault name> --query id -o tsv\)\/secrets\/conn-support-in-token"/,
    );
    expect(deploy).toMatch(/only once the secret exists/);
    expect(deploy).not.toMatch(/tokenReaderPrincipalIds|Secrets User on\s+the published-token vault/);
  });

  it('says the broker purges a deleted connection from the private vaults, and what Entra keeps', () => {
    expect(deploy).toMatch(/\*\*purges\*\* them from the private vaults/);
    expect(deploy).toMatch(
      /\*\*Microsoft Entra keeps a refresh token\s+it has issued valid until it expires\*\*/,
    );
    expect(deploy).toMatch(/azd down --purge/);
  });

  it('says which azd it needs, as azure.yaml does', () => {
    const required = /^requiredVersions:\n {2}azd: '>= (\d+\.\d+\.\d+)'$/m.exec(
      readRepoFile('azure.yaml'),
    )?.[1];
    expect(required).toBeDefined();
    expect(deploy).toContain(`**azd ${required!} or later**`);
  });

  it('no longer tells the operator to turn role assignments on and off', () => {
    expect(deploy).not.toMatch(/BROKER_ASSIGN_APP_ROLES|assignAppRoles|main\.parameters\.json/);
    expect(deploy).toMatch(/scripts\/assign-app-roles\.ts --deployment-outputs outputs\.json/);
  });
});
