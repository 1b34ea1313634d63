/**
 * scripts/stage-package.ts (azd's prepackage hook): the npm command line it starts on Windows and
 * POSIX, and the package.json it ships. Node refuses to start a .cmd without a shell since the
 * CVE-2024-27980 fix (EINVAL), so `execFileSync('npm.cmd', …)` failed the hook on Windows.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STAGED_FUNCIGNORE, npmCommand, stagedPackageJson } from '../../../scripts/stage-package';
import { repoRoot } from './bicep-text';

const NODE_WIN = 'C:\\Program Files\\nodejs\\node.exe';
const NPM_CLI_WIN = 'C:\\Program Files\\nodejs\\node_modules\\npm\\bin\\npm-cli.js';
const NPM_CLI = '/usr/lib/node_modules/npm/bin/npm-cli.js';

describe('the npm the prepackage hook starts', () => {
  it('on Windows under npx/npm: node running npm-cli.js, no shell (never npm.cmd without one)', () => {
    expect(npmCommand('win32', { npm_execpath: NPM_CLI_WIN }, NODE_WIN)).toEqual({
      file: NODE_WIN,
      args: [NPM_CLI_WIN],
      shell: false,
    });
    // npx's own script sits beside npm's.
    expect(
      npmCommand(
        'win32',
        { npm_execpath: 'C:\\Program Files\\nodejs\\node_modules\\npm\\bin\\npx-cli.js' },
        NODE_WIN,
      ),
    ).toEqual({ file: NODE_WIN, args: [NPM_CLI_WIN], shell: false });
  });

  it("on Windows without npm_execpath (or with yarn's): npm through a shell", () => {
    const command = npmCommand('win32', {}, NODE_WIN);
    expect(command).toEqual({ file: 'npm', args: [], shell: true });
    expect(command.file).not.toMatch(/\.cmd$/);
    expect(npmCommand('win32', { npm_execpath: 'C:\\yarn\\bin\\yarn.js' }, NODE_WIN)).toEqual(command);
  });

  it('on POSIX: the same npm under the same node, else npm from PATH without a shell', () => {
    expect(npmCommand('linux', { npm_execpath: NPM_CLI }, '/usr/bin/node')).toEqual({
      file: '/usr/bin/node',
      args: [NPM_CLI],
      shell: false,
    });
    expect(npmCommand('darwin', {}, '/usr/local/bin/node')).toEqual({ file: 'npm', args: [], shell: false });
  });

  it('starts a working npm here, the way the hook does', () => {
    const npm = npmCommand(process.platform, process.env, process.execPath);
    const result = spawnSync(npm.file, [...npm.args, '--version'], { encoding: 'utf8', shell: npm.shell });
    expect({ status: result.status, version: result.stdout.trim() }).toEqual({
      status: 0,
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
    });
  });
});

describe('what the stage ships', () => {
  it('a package.json without scripts or devDependencies, nothing Oryx or npm could build from', () => {
    const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const staged = stagedPackageJson(manifest);
    expect(staged).not.toHaveProperty('scripts');
    expect(staged).not.toHaveProperty('devDependencies');
    expect(staged).toMatchObject({
      main: manifest.main,
      dependencies: manifest.dependencies,
      engines: manifest.engines,
    });
  });

  it('a .funcignore whose rules neither name node_modules nor negate anything', () => {
    const rules = STAGED_FUNCIGNORE.split('\n').filter((line) => line.trim() && !line.startsWith('#'));
    expect(rules.length).toBeGreaterThan(0);
    for (const rule of rules) {
      expect(rule).not.toMatch(/node_modules|^!|^\*+$|^\/?dist\b|host\.json|package/);
      expect(rule.startsWith('/')).toBe(true);
    }
  });
});
