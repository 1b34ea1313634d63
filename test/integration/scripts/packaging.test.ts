import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ignore from 'ignore';
import { httpFunctions } from '../../../functions/http-functions';
import { refreshTokensTimer } from '../../../functions/refresh-tokens';

/**
 * Both deployment paths of the README, replayed in a copy of the repository, and the package each
 * produces loaded as the Functions host loads it: with production dependencies only and no
 * node_modules above it, `require('./dist/functions/index.js')` must register every function.
 *
 * - azd (`azd up`): restore (npm install), the service's `prepackage` hook, the Node framework's
 *   `npm run build --if-present`, then the zip azd makes of the folder `dist:` names, with azd's own
 *   rules (Azure/azure-dev cli/azd/pkg/project): project_utils.go createDeployableZip applies the
 *   `.funcignore` found IN that folder, leaves out the ignore file itself, `.azure` folders and
 *   `local.settings.json`, and with no `.funcignore` leaves out every `node_modules` of a JavaScript
 *   or TypeScript service (since the remoteBuild option, unless `remoteBuild` is explicitly false);
 *   service_target_functionapp.go resolveFunctionAppRemoteBuild decides whether Flex Consumption
 *   builds remotely (Oryx: `npm install` and `npm run build` on the package). Every azd release
 *   azure.yaml's requiredVersions admits is replayed, as far as its rules differ.
 * - Core Tools (`func azure functionapp publish --no-build`): `npm ci && npm run build && npm prune
 *   --omit=dev`, then a zip of the project folder minus what `.funcignore` names (gitignore
 *   syntax, applied here with the `ignore` package).
 */
const root = resolve(__dirname, '..', '..', '..');
const expectedFunctions = [...httpFunctions.map((f) => f.name), refreshTokensTimer.name].sort();
const DEV_ONLY = ['typescript', 'jest', 'esbuild', 'tsx', 'playwright-core', 'azurite'];

let copy: string;

beforeAll(() => {
  copy = mkdtempSync(join(tmpdir(), 'package-copy-'));
  const tracked = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: root,
    encoding: 'utf8',
  })
    .split('\0')
    .filter(Boolean);
  for (const file of tracked) {
    if (!existsSync(join(root, file))) continue;
    mkdirSync(dirname(join(copy, file)), { recursive: true });
    cpSync(join(root, file), join(copy, file));
  }
  // Restore: the same locked packages `npm install` would put there.
  symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'), 'dir');
  // What a developer's working tree holds besides the sources, none of which may ship.
  const local: Record<string, string> = {
    'local.settings.json': '{"Values":{"ENTRA_CLIENT_SECRET":"packaging-test-secret"}}',
    '.azure/prod/.env': 'AZURE_ENV_NAME="prod"\n',
    '.azure/config.json': '{}',
    '.broker-local/secret-store.key': 'packaging-test-key',
    '.test-tmp/pki/ca.pem': '-----BEGIN CERTIFICATE-----',
    '.azurite/__azurite_db_table__.json': '{}',
    '.env': 'ENTRA_CLIENT_SECRET=packaging-test-secret',
  };
  for (const [file, content] of Object.entries(local)) {
    mkdirSync(dirname(join(copy, file)), { recursive: true });
    writeFileSync(join(copy, file), content);
  }
});

function run(command: string): void {
  const result = spawnSync('sh', ['-c', command], { cwd: copy, encoding: 'utf8', env: { ...process.env } });
  expect({
    command,
    status: result.status,
    stderr: result.status === 0 ? '' : result.stderr.slice(-2000),
  }).toEqual({
    command,
    status: 0,
    stderr: '',
  });
}

/** Loads the unpacked package as the host would; the function names it registered. */
function loadPackage(unpacked: string): string[] {
  const load = spawnSync(process.execPath, ['-e', "require('./dist/functions/index.js')"], {
    cwd: unpacked,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      ENTRA_TENANT_ID: '11111111-2222-3333-4444-555555555555',
      ENTRA_CLIENT_ID: '66666666-7777-8888-9999-000000000000',
      ENTRA_CLIENT_SECRET: 'package-test',
      BROKER_LOCAL_SECRET_KEY: Buffer.alloc(32, 1).toString('base64'),
    },
  });
  expect({ status: load.status, stderr: load.status === 0 ? '' : load.stderr.slice(-2000) }).toEqual({
    status: 0,
    stderr: '',
  });
  return [...load.stderr.matchAll(/register function "([^"]+)"/g)].map((match) => match[1]!).sort();
}

function expectNoDevDependencies(unpacked: string): void {
  for (const devOnly of DEV_ONLY) {
    expect({ devOnly, shipped: existsSync(join(unpacked, 'node_modules', devOnly)) }).toEqual({
      devOnly,
      shipped: false,
    });
  }
}

interface AzdRules {
  release: string;
  /** resolveFunctionAppRemoteBuild for JS/TS when azure.yaml does not say: true, or inferred from ./.funcignore. */
  unsetRemoteBuild: 'true' | 'inferred';
  /** createDeployableZip: a path is left out when any rule matches (even `!`), or when the rules ignore it. */
  ignoreRules: 'any-match' | 'gitignore';
  /** With no .funcignore, node_modules ships when remoteBuild is explicitly false (else always left out). */
  keepsNodeModulesWhenRemoteBuildFalse: boolean;
}

/**
 * azd's packaging rules by release, from 1.23.5 (the remoteBuild option, #6748) on: 1.23.12 infers
 * an unset remoteBuild from the project's .funcignore (#7223; before, JS/TS built remotely); 1.23.13
 * applies `!` rules as gitignore does (#7311). Whether 1.23.5-1.23.11 already kept node_modules for
 * `remoteBuild: false` without a .funcignore is not known here, so those releases are taken not to.
 */
const AZD_RELEASES: AzdRules[] = [
  {
    release: '1.23.5-1.23.11',
    unsetRemoteBuild: 'true',
    ignoreRules: 'any-match',
    keepsNodeModulesWhenRemoteBuildFalse: false,
  },
  {
    release: '1.23.12',
    unsetRemoteBuild: 'inferred',
    ignoreRules: 'any-match',
    keepsNodeModulesWhenRemoteBuildFalse: true,
  },
  {
    release: '1.23.13+',
    unsetRemoteBuild: 'inferred',
    ignoreRules: 'gitignore',
    keepsNodeModulesWhenRemoteBuildFalse: true,
  },
];

function funcignoreRules(text: string): string[] {
  return text.split(/\r?\n/).filter((line) => line.trim() !== '' && !line.startsWith('#'));
}

/** service_target_functionapp.go resolveFunctionAppRemoteBuild, JavaScript/TypeScript branch. */
function azdRemoteBuild(
  rules: AzdRules,
  remoteBuild: boolean | undefined,
  projectFuncignore: string | undefined,
): boolean {
  if (rules.unsetRemoteBuild === 'true') return remoteBuild ?? true;
  if (projectFuncignore === undefined) return remoteBuild ?? true;
  const nodeModulesExcluded = ignore().add(projectFuncignore).ignores('node_modules/');
  if (remoteBuild === undefined) return nodeModulesExcluded;
  if (remoteBuild && !nodeModulesExcluded)
    throw new Error("'remoteBuild: true' requires '.funcignore' to exclude node_modules");
  if (!remoteBuild && nodeModulesExcluded)
    throw new Error("'remoteBuild: false' cannot be used when '.funcignore' excludes node_modules");
  return remoteBuild;
}

/** project_utils.go createDeployableZip for a TypeScript function app: the files the zip holds. */
function azdZip(rules: AzdRules, root: string, remoteBuild: boolean | undefined): string[] {
  const ignoreFile = join(root, '.funcignore');
  const text = existsSync(ignoreFile) ? readFileSync(ignoreFile, 'utf8') : undefined;
  const ignored = (rel: string): boolean => {
    if (text === undefined) return false;
    if (rules.ignoreRules === 'gitignore') return ignore().add(text).ignores(rel);
    return funcignoreRules(text).some((rule) => ignore().add(rule.replace(/^!/, '')).ignores(rel));
  };
  const zipped: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const isDir = entry.isDirectory() || (entry.isSymbolicLink() && statSync(path).isDirectory());
      const rel = relative(root, path).split(sep).join('/') + (isDir ? '/' : '');
      if (entry.name === '.azure' && isDir) continue;
      if (entry.name === '.funcignore' && !isDir) continue;
      if (entry.name === 'local.settings.json' && !isDir) continue;
      if (ignored(rel)) continue;
      if (text === undefined && entry.name === 'node_modules' && isDir) {
        if (!(rules.keepsNodeModulesWhenRemoteBuildFalse && remoteBuild === false)) continue;
      }
      if (isDir) walk(path);
      else zipped.push(rel);
    }
  };
  walk(root);
  return zipped.sort();
}

function unzip(root: string, files: string[]): string {
  const unpacked = mkdtempSync(join(tmpdir(), 'azd-package-'));
  for (const file of files) {
    mkdirSync(dirname(join(unpacked, file)), { recursive: true });
    cpSync(join(root, file), join(unpacked, file), { dereference: true });
  }
  return unpacked;
}

it("azd packages a loadable app: restore, prepackage, build, zip of dist with azd's rules, no remote build", () => {
  const azureYaml = readFileSync(join(copy, 'azure.yaml'), 'utf8');
  const dist = /^ {4}dist:\s*(\S+)$/m.exec(azureYaml)?.[1];
  const hook = /prepackage:\s*\n\s+posix:\s*\n\s+shell: sh\s*\n\s+run: (.+)/.exec(azureYaml)?.[1];
  const remoteBuildSetting = /^ {4}remoteBuild: (true|false)$/m.exec(azureYaml)?.[1];
  const remoteBuild = remoteBuildSetting === undefined ? undefined : remoteBuildSetting === 'true';
  expect(
    /^services:\n {2}api:\n {4}project: \.\n {4}language: ts\n {4}host: function$/m.test(azureYaml),
  ).toBe(true);
  expect(/^requiredVersions:\n {2}azd: '>= 1\.23\.5'$/m.test(azureYaml)).toBe(true);
  expect(dist).toBe('.azd-package');
  expect(hook).toBeDefined();

  run(hook!); // prepackage
  run('npm run build --if-present'); // azd's own build step, after the hook

  const stage = join(copy, dist!);
  // The stage carries the .funcignore azd applies to it, and nothing to build from.
  expect(existsSync(join(stage, '.funcignore'))).toBe(true);
  const manifest = JSON.parse(readFileSync(join(stage, 'package.json'), 'utf8')) as Record<string, unknown>;
  expect({ scripts: manifest.scripts, devDependencies: manifest.devDependencies }).toEqual({
    scripts: undefined,
    devDependencies: undefined,
  });

  const projectFuncignore = readFileSync(join(copy, '.funcignore'), 'utf8');
  for (const rules of AZD_RELEASES) {
    // Flex Consumption does not build remotely: Oryx would run `npm install` and a build of sources
    // the package does not hold. Whatever the project's own .funcignore (Core Tools' file) says.
    for (const projectIgnore of [projectFuncignore, undefined])
      expect({
        release: rules.release,
        remoteBuild: azdRemoteBuild(rules, remoteBuild, projectIgnore),
      }).toEqual({
        release: rules.release,
        remoteBuild: false,
      });

    const zipped = azdZip(rules, stage, remoteBuild);
    const unpacked = unzip(stage, zipped);
    expect({ release: rules.release, top: readdirSync(unpacked).sort() }).toEqual({
      release: rules.release,
      top: ['dist', 'host.json', 'node_modules', 'package-lock.json', 'package.json'],
    });
    expect(existsSync(join(unpacked, 'node_modules', '@azure', 'functions', 'package.json'))).toBe(true);
    expectNoDevDependencies(unpacked);
    expect(loadPackage(unpacked)).toEqual(expectedFunctions);
  }
}, 300_000);

it('func azure functionapp publish packages a loadable app without sources, tests, stand-ins or secrets', () => {
  const readme = readFileSync(join(copy, 'README.md'), 'utf8');
  const path2 = /### Path 2[^\n]*\n[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  // The README's commands, in its order: build, then production dependencies only, then publish.
  expect(path2).toMatch(
    /npm ci && npm run build && npm prune --omit=dev[\s\S]*func azure functionapp publish \S+ --no-build/,
  );

  run('npm run build');
  const funcignore = ignore().add(readFileSync(join(copy, '.funcignore'), 'utf8'));
  const shipped: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const rel = relative(copy, path) + (entry.isDirectory() ? '/' : '');
      // node_modules (a link to the restored packages here) is checked below.
      if (rel.replace(/\/$/, '') === 'node_modules' || funcignore.ignores(rel)) continue;
      if (entry.isDirectory()) walk(path);
      else shipped.push(rel);
    }
  };
  walk(copy);
  expect(shipped.sort()).toEqual([
    'dist/functions/index.js',
    'host.json',
    'package-lock.json',
    'package.json',
  ]);
  // .funcignore leaves node_modules in; after `npm prune --omit=dev` it holds what a production
  // install from the lockfile holds, which the azd stage above made.
  expect(funcignore.ignores('node_modules/')).toBe(false);
  expect(funcignore.ignores('node_modules/@azure/msal-node/dist/index.cjs')).toBe(false);
  expect(funcignore.ignores('node_modules/some-package/test/')).toBe(false);

  if (!existsSync(join(copy, '.azd-package', 'node_modules'))) run('npx tsx scripts/stage-package.ts');
  const unpacked = mkdtempSync(join(tmpdir(), 'func-package-'));
  for (const file of shipped) {
    mkdirSync(dirname(join(unpacked, file)), { recursive: true });
    cpSync(join(copy, file), join(unpacked, file));
  }
  cpSync(join(copy, '.azd-package', 'node_modules'), join(unpacked, 'node_modules'), { recursive: true });
  expectNoDevDependencies(unpacked);
  expect(loadPackage(unpacked)).toEqual(expectedFunctions);
}, 300_000);
