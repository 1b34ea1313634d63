/**
 * azd's `prepackage` hook: builds the app and stages exactly what Azure runs into `.azd-package/`
 * (azure.yaml `dist:`): the bundled entry, host.json, a package.json without scripts or
 * devDependencies, the production dependencies, and a `.funcignore`. The working tree keeps its
 * development tools, because azd runs the Node framework's own `npm run build` AFTER this hook (a
 * hook that pruned devDependencies broke that build).
 *
 * Why a `.funcignore` in the stage: azd zips the `dist:` folder with the rules of the `.funcignore`
 * it finds IN that folder, and without one it leaves every `node_modules` out of a JavaScript or
 * TypeScript function app unless `remoteBuild` is explicitly false (Azure/azure-dev
 * cli/azd/pkg/project/project_utils.go, createDeployableZip). azure.yaml says `remoteBuild: false`;
 * this file keeps node_modules in whatever azd does by default. Its rules name nothing the stage
 * holds, and no rule is a negation (azd before 1.23.13 left out every path a rule matched, `!` or
 * not). test/integration/scripts/packaging.test.ts zips the stage with azd's rules and loads it.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

const root = resolve(__dirname, '..');
export const STAGE = join(root, '.azd-package');

export const STAGED_FUNCIGNORE = `# Written by scripts/stage-package.ts. azd zips this folder (azure.yaml dist:) with the rules of
# this file; without it azd would leave node_modules out. Nothing here names what the app needs.
/local.settings.json
/.env
`;

/** How to start npm: `file` with `args` in front of npm's own arguments, through a shell or not. */
export interface NpmCommand {
  file: string;
  args: string[];
  shell: boolean;
}

/**
 * The npm to run, without a shell wherever that is possible. npm sets `npm_execpath` to its CLI
 * script for everything it starts (`npx tsx scripts/stage-package.ts` here), so the same npm runs
 * under the same node. Without it: `npm` on POSIX; on Windows `npm` is `npm.cmd`, which Node (since
 * the CVE-2024-27980 fix) refuses to start without a shell (EINVAL), so a shell starts it there.
 * Another tool's execpath (yarn, pnpm) is not npm's and is not used.
 */
export function npmCommand(
  platform: NodeJS.Platform,
  env: Record<string, string | undefined>,
  nodePath: string,
): NpmCommand {
  const execPath = env.npm_execpath;
  if (execPath) {
    const name = basename(execPath.replace(/\\/g, '/'));
    if (name === 'npm-cli.js') return { file: nodePath, args: [execPath], shell: false };
    // npx's script lives beside npm's.
    if (name === 'npx-cli.js')
      return { file: nodePath, args: [`${execPath.slice(0, -name.length)}npm-cli.js`], shell: false };
  }
  return platform === 'win32'
    ? { file: 'npm', args: [], shell: true }
    : { file: 'npm', args: [], shell: false };
}

/** package.json as it ships: what the host reads (`main`, dependencies, engines), nothing that builds. */
export function stagedPackageJson(source: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(source).filter(([key]) => key !== 'scripts' && key !== 'devDependencies'),
  );
}

function runNpm(npm: NpmCommand, args: string[], cwd: string): void {
  execFileSync(npm.file, [...npm.args, ...args], { cwd, stdio: 'inherit', shell: npm.shell });
}

export function stagePackage(npm = npmCommand(process.platform, process.env, process.execPath)): void {
  runNpm(npm, ['run', 'build'], root);
  rmSync(STAGE, { recursive: true, force: true });
  mkdirSync(STAGE, { recursive: true });
  for (const entry of ['host.json', 'package-lock.json']) cpSync(join(root, entry), join(STAGE, entry));
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(STAGE, 'package.json'), `${JSON.stringify(stagedPackageJson(manifest), null, 2)}\n`);
  cpSync(join(root, 'dist'), join(STAGE, 'dist'), {
    recursive: true,
    filter: (source) => !source.endsWith('.map'),
  });
  writeFileSync(join(STAGE, '.funcignore'), STAGED_FUNCIGNORE);
  // Production dependencies only, as locked; no scripts: nothing the runtime needs builds anything.
  runNpm(npm, ['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], STAGE);
}

if (require.main === module) stagePackage();
