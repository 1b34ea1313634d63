/**
 * `npm test`'s runner: makes the test CA (never committed) before jest starts, because Node reads
 * NODE_EXTRA_CA_CERTS only when a process starts, then runs jest with it. Arguments go to jest.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { ensureTestPki } from '../sandbox/tls';

const pkiDir = resolve(__dirname, '..', '.test-tmp', 'pki');
const pki = ensureTestPki(pkiDir);
const jest = require.resolve('jest/bin/jest');
const result = spawnSync(process.execPath, [jest, ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, NODE_EXTRA_CA_CERTS: pki.caCertFile, TEST_PKI_DIR: pkiDir },
});
process.exit(result.status ?? 1);
