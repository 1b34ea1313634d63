import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import ignore from 'ignore';
import { httpFunctions } from '../../../functions/http-functions';
import { refreshTokensTimer } from '../../../functions/refresh-tokens';

/**
 * Both deployment paths of the README, replayed in a copy of the repository, and the package each
 * produces loaded as the Functions host loads it: with production dependencies only and no
 * node_modules above it, `require('./dist/functions/index.js')` must register every function.
 *
 * - azd (`azd up`): restore (npm install), the service's `prepackage` hook, the Node framework's
 *   `npm run build --if-present`, then a zip of the folder `dist:` names. A hook that pruned the
 *   build tools used to break the build that follows it.
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

it('azd packages a loadable app: restore, prepackage, build, zip of dist', () => {
  const azureYaml = readFileSync(join(copy, 'azure.yaml'), 'utf8');
  const dist = /^\s+dist:\s*(\S+)/m.exec(azureYaml)?.[1];
  const hook = /prepackage:\s*\n\s+posix:\s*\n\s+shell: sh\s*\n\s+run: (.+)/.exec(azureYaml)?.[1];
  expect(dist).toBe('.azd-package');
  expect(hook).toBeDefined();

  run(hook!); // prepackage
  run('npm run build --if-present'); // azd's own build step, after the hook

  // "Unzip" the package somewhere with no node_modules above it, and load it as the host would.
  const unpacked = mkdtempSync(join(tmpdir(), 'azd-package-'));
  cpSync(join(copy, dist!), unpacked, { recursive: true });
  expect(readdirSync(unpacked).sort()).toEqual([
    'dist',
    'host.json',
    'node_modules',
    'package-lock.json',
    'package.json',
  ]);
  expectNoDevDependencies(unpacked);
  expect(loadPackage(unpacked)).toEqual(expectedFunctions);
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
