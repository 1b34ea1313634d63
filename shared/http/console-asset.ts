import { createHash } from 'node:crypto';
import { join } from 'node:path';

/** The console's browser script, once per process, and the hash that names its version. */
export interface ConsoleAsset {
  text: string;
  /** First 16 hex digits of its SHA-256: `/api/console.js?v={hash}` may be cached for good. */
  hash: string;
}

/**
 * The transpiled script, put in by `npm run build` (esbuild `define`, scripts/build.ts): the built
 * app carries it inside dist/functions/index.js. Undefined when running from sources.
 */
declare const BROKER_CONSOLE_SCRIPT: string | undefined;

/** The browser script's entry (a TypeScript module under its own DOM tsconfig). */
export const CONSOLE_ENTRY = join(__dirname, 'console', 'console.ts');

/**
 * The console script as one IIFE for today's browsers. esbuild is a development dependency: only
 * the build and a broker running from sources (`npm start`, the tests) call this.
 */
export async function transpileConsole(): Promise<string> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [CONSOLE_ENTRY],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const output = result.outputFiles[0];
  if (!output) throw new Error('esbuild produced no console script');
  return output.text;
}

let asset: Promise<ConsoleAsset> | undefined;

/** The script for `GET /api/console.js`: built in, or transpiled at the first request from sources. */
export function consoleScript(): Promise<ConsoleAsset> {
  asset ??= (
    typeof BROKER_CONSOLE_SCRIPT === 'string' ? Promise.resolve(BROKER_CONSOLE_SCRIPT) : transpileConsole()
  ).then((text) => ({ text, hash: createHash('sha256').update(text).digest('hex').slice(0, 16) }));
  // A failed transpile is tried again at the next request rather than remembered.
  asset.catch(() => {
    asset = undefined;
  });
  return asset;
}
