import { randomBytes } from 'node:crypto';
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

/**
 * A table-name prefix of its own for a test file or test (letters and digits, starts with a letter,
 * 11 characters: leaves 52 for the table name), so tests sharing the run's Azurite never see each other's rows.
 */
export function uniqueTablePrefix(label = 't'): string {
  const head = label.replace(/[^A-Za-z0-9]/g, '').slice(0, 3) || 't';
  const safeHead = /^[A-Za-z]/.test(head) ? head : `t${head}`.slice(0, 3);
  return `${safeHead}${randomBytes(6).toString('hex')}`.slice(0, 11);
}
