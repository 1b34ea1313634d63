/**
 * `npm run build`: type-checks with tsc, then bundles the Functions entry into the one file the
 * host loads (`dist/functions/index.js`, package.json "main"). Bundling is for start-up time:
 * the host loads one file instead of ~60, and zod is tree-shaken (required as a package it loads
 * its 250 locale files). The Azure SDKs stay ordinary packages in node_modules, as do the ones
 * the broker loads only on use (ews-javascript-api for Test connection, undici for outbound calls).
 * The console's browser script (shared/http/console/) is transpiled here too and carried inside the
 * bundle as a string (`BROKER_CONSOLE_SCRIPT`), which `GET /api/console.js` serves.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { transpileConsole } from '../shared/http/console-asset';

const root = resolve(__dirname, '..');

/** Packages the bundle requires at run time from node_modules (production dependencies). */
export const RUNTIME_PACKAGES = ['@azure/*', 'ews-javascript-api', 'undici'];

export async function bundleEntry(outfile: string): Promise<void> {
  const consoleScript = await transpileConsole();
  await build({
    entryPoints: [join(root, 'functions', 'index.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // esbuild itself: only a broker running from sources transpiles the console script (never reached here).
    external: [...RUNTIME_PACKAGES, 'esbuild'],
    define: { BROKER_CONSOLE_SCRIPT: JSON.stringify(consoleScript) },
    sourcemap: true,
    logLevel: 'warning',
  });
}

async function main(): Promise<void> {
  // The app, then the console's browser script under its own (DOM) tsconfig.
  for (const project of ['tsconfig.json', join('shared', 'http', 'console', 'tsconfig.json')]) {
    const typecheck = spawnSync(
      process.execPath,
      [require.resolve('typescript/bin/tsc'), '-p', join(root, project), '--noEmit'],
      { stdio: 'inherit' },
    );
    if (typecheck.status !== 0) process.exit(typecheck.status ?? 1);
  }
  rmSync(join(root, 'dist'), { recursive: true, force: true });
  await bundleEntry(join(root, 'dist', 'functions', 'index.js'));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
