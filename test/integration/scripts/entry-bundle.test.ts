import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { httpFunctions } from '../../../functions/http-functions';
import { refreshTokensTimer } from '../../../functions/refresh-tokens';
import { bundleEntry } from '../../../scripts/build';

/**
 * The file the Functions host loads is the bundle `npm run build` makes, not the TypeScript the
 * other tests run: load it as the host would (a fresh node, production settings) and check that
 * it registers every function and leaves the on-use packages unloaded.
 */
it('the bundled entry loads in a fresh process and registers every function', async () => {
  const root = resolve(__dirname, '..', '..', '..');
  // Inside the repository, so the bundle's runtime packages resolve from node_modules.
  const entry = join(root, '.test-tmp', 'bundle', 'functions', 'index.js');
  await bundleEntry(entry);
  const script = `require(${JSON.stringify(entry)});
    const loaded = Object.keys(require.cache);
    process.stdout.write(JSON.stringify({ ews: loaded.some((f) => f.includes('ews-javascript-api')), undici: loaded.some((f) => f.includes('/undici/')) }));`;
  const result = spawnSync(process.execPath, ['-e', script], {
    cwd: root,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      ENTRA_TENANT_ID: '11111111-2222-3333-4444-555555555555',
      ENTRA_CLIENT_ID: '66666666-7777-8888-9999-000000000000',
      ENTRA_CLIENT_SECRET: 'bundle-test',
      BROKER_LOCAL_SECRET_KEY: Buffer.alloc(32, 1).toString('base64'),
    },
  });
  expect(result.status).toBe(0);
  // Outside the host, @azure/functions runs in test mode and names each registration it skips.
  const registered = [...result.stderr.matchAll(/register function "([^"]+)"/g)].map((match) => match[1]);
  expect(registered.sort()).toEqual([...httpFunctions.map((f) => f.name), refreshTokensTimer.name].sort());
  expect(JSON.parse(result.stdout)).toEqual({ ews: false, undici: false });
}, 60_000);

it('carries the console script, transpiled, so GET /api/console.js needs no esbuild in production', () => {
  const root = resolve(__dirname, '..', '..', '..');
  const bundle = readFileSync(join(root, '.test-tmp', 'bundle', 'functions', 'index.js'), 'utf8');
  // A text of the browser script (its row menu), inside the bundle as a string.
  expect(bundle).toContain('More actions for ');
  expect(bundle).not.toContain('BROKER_CONSOLE_SCRIPT');
});
