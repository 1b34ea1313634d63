/**
 * jest globalSetup: one in-memory Azurite for the whole run. Its connection string goes into
 * `process.env.TEST_STORAGE_CONNECTION_STRING`, which the test workers (spawned after this) inherit.
 * With TEST_STORAGE_CONNECTION_STRING already set, that storage is used and nothing is started.
 * AZURITE_DEBUG_LOG=<file> writes Azurite's debug log; AZURITE_VERBOSE=1 shows its access log.
 */
import { startAzurite, type AzuriteInstance } from '../../sandbox/azurite';

declare global {
  var __TEST_AZURITE__: AzuriteInstance | undefined;
}

export default async function globalSetup(): Promise<void> {
  if (process.env.TEST_STORAGE_CONNECTION_STRING) return;
  const debugLog = process.env.AZURITE_DEBUG_LOG;
  const azurite = await startAzurite({
    silent: process.env.AZURITE_VERBOSE !== '1',
    ...(debugLog ? { debugLog } : {}),
  });
  globalThis.__TEST_AZURITE__ = azurite;
  process.env.TEST_STORAGE_CONNECTION_STRING = azurite.connectionString;
}
