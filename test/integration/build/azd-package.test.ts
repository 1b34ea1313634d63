import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { httpFunctions } from '../../../functions/http-functions';
import { refreshTokensTimer } from '../../../functions/refresh-tokens';

/**
 * `azd up` packages the app in this order: restore (npm install), the service's `prepackage`
 * hook, the Node framework's `npm run build --if-present`, then a zip of the folder `dist:` names.
 * Reproduced in a copy of the repository: every step must succeed (a hook that pruned the build
 * tools used to break the build that follows it), and the unpacked package, with production
 * dependencies only, must load and register every function.
 */
const root = resolve(__dirname, '..', '..', '..');

it('azd packages a loadable app: restore, prepackage, build, zip of dist', () => {
  const copy = mkdtempSync(join(tmpdir(), 'azd-copy-'));
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
  const azureYaml = execFileSync('cat', ['azure.yaml'], { cwd: copy, encoding: 'utf8' });
  const dist = /^\s+dist:\s*(\S+)/m.exec(azureYaml)?.[1];
  const hook = /prepackage:\s*\n\s+posix:\s*\n\s+shell: sh\s*\n\s+run: (.+)/.exec(azureYaml)?.[1];
  expect(dist).toBe('.azd-package');
  expect(hook).toBeDefined();

  const run = (command: string) => {
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
  };
  run(hook!); // prepackage
  run('npm run build --if-present'); // azd's own build step, after the hook

  // "Unzip" the package somewhere with no node_modules above it, and load it as the host would.
  const unpacked = mkdtempSync(join(tmpdir(), 'azd-package-'));
  cpSync(join(copy, dist!), unpacked, { recursive: true });
  const shipped = readdirSync(unpacked).sort();
  expect(shipped).toEqual(['dist', 'host.json', 'node_modules', 'package-lock.json', 'package.json']);
  for (const devOnly of ['typescript', 'jest', 'esbuild', 'tsx', 'playwright-core', 'azurite']) {
    expect({ devOnly, shipped: existsSync(join(unpacked, 'node_modules', devOnly)) }).toEqual({
      devOnly,
      shipped: false,
    });
  }
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
  expect(load.status).toBe(0);
  const registered = [...load.stderr.matchAll(/register function "([^"]+)"/g)].map((match) => match[1]);
  expect(registered.sort()).toEqual([...httpFunctions.map((f) => f.name), refreshTokensTimer.name].sort());
}, 300_000);
