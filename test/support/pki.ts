import { ensureTestPki, type TestPki } from '../../sandbox/tls';

/** The run's test PKI, made by scripts/run-tests.ts before jest started (so NODE_EXTRA_CA_CERTS trusts it). */
export function testPki(): TestPki {
  const dir = process.env.TEST_PKI_DIR;
  if (!dir)
    throw new Error(
      'Run tests with `npm test` (or `npx tsx scripts/run-tests.ts <files>`): TEST_PKI_DIR is not set',
    );
  return ensureTestPki(dir);
}
