import { uniqueTablePrefix } from '../../sandbox/drive';
import type { StorageSettings } from '../../shared/config';

/** The run's Azurite (started by global-setup.ts), as storage settings. */
export function testStorageSettings(): StorageSettings {
  const connectionString = process.env.TEST_STORAGE_CONNECTION_STRING;
  if (!connectionString) {
    throw new Error(
      'TEST_STORAGE_CONNECTION_STRING is not set: run tests through jest (its globalSetup starts Azurite)',
    );
  }
  return { kind: 'connection-string', connectionString };
}

export { uniqueTablePrefix };
