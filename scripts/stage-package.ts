/**
 * azd's `prepackage` hook: builds the app and stages exactly what Azure runs into `.azd-package/`
 * (azure.yaml `dist:`): the bundled entry, host.json, package.json and production dependencies.
 * The working tree keeps its development tools, because azd runs the Node framework's own
 * `npm run build` AFTER this hook (a hook that pruned devDependencies broke that build).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..');
export const STAGE = join(root, '.azd-package');

export function stagePackage(npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'): void {
  execFileSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' });
  rmSync(STAGE, { recursive: true, force: true });
  mkdirSync(STAGE, { recursive: true });
  for (const entry of ['host.json', 'package.json', 'package-lock.json']) {
    cpSync(join(root, entry), join(STAGE, entry));
  }
  cpSync(join(root, 'dist'), join(STAGE, 'dist'), {
    recursive: true,
    filter: (source) => !source.endsWith('.map'),
  });
  // Production dependencies only, as locked; no scripts: nothing the runtime needs builds anything.
  execFileSync(npm, ['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], {
    cwd: STAGE,
    stdio: 'inherit',
  });
}

if (require.main === module) stagePackage();
