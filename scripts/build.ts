/**
 * `npm run build`: type-checks with tsc, then bundles the Functions entry into the one file the
 * host loads (`dist/functions/index.js`, package.json "main"). Bundling is for start-up time:
 * the host loads one file instead of ~60, and zod is tree-shaken (required as a package it loads
 * its 250 locale files). The Azure SDKs stay ordinary packages in node_modules, as do the ones
 * the broker loads only on use (ews-javascript-api for Test connection, undici for outbound calls).
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const root = resolve(__dirname, '..');

/** Packages the bundle requires at run time from node_modules (production dependencies). */
export const RUNTIME_PACKAGES = ['@azure/*', 'ews-javascript-api', 'undici'];

export async function bundleEntry(outfile: string): Promise<void> {
  await build({
    entryPoints: [join(root, 'functions', 'index.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: RUNTIME_PACKAGES,
    sourcemap: true,
    logLevel: 'warning',
  });
}

async function main(): Promise<void> {
  const typecheck = spawnSync(
    process.execPath,
    [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.json'), '--noEmit'],
    {
      stdio: 'inherit',
    },
  );
  if (typecheck.status !== 0) process.exit(typecheck.status ?? 1);
  rmSync(join(root, 'dist'), { recursive: true, force: true });
  await bundleEntry(join(root, 'dist', 'functions', 'index.js'));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
