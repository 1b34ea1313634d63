import { BrokerError } from '../errors';
import type { SecretProperties } from './secret-store';

/**
 * Key Vault's rules for a secret, checked before anything is sent or written, so both stores
 * accept exactly the same inputs and a mistake is reported with the name, never the value.
 */
export const SECRET_LIMITS = {
  /** Key Vault: 1–127 letters, digits and dashes. */
  name: /^[0-9a-zA-Z-]{1,127}$/,
  /** 25 KB per value (the service counts the UTF-8 bytes it stores). */
  maxValueBytes: 25_600,
  maxContentTypeLength: 255,
  maxTags: 15,
  maxTagNameLength: 512,
  maxTagValueLength: 256,
} as const;

export function isValidSecretName(name: string): boolean {
  return SECRET_LIMITS.name.test(name);
}

/** Throws BrokerError `internal_error` (a caller bug: names and values come from the broker itself). */
export function assertValidSecretName(name: string): void {
  if (!isValidSecretName(name)) {
    throw new BrokerError(
      'internal_error',
      `Invalid secret name "${name.slice(0, 140)}": expected 1 to 127 letters, digits and dashes`,
    );
  }
}

export function assertValidSecretInput(name: string, value: string, properties: SecretProperties = {}): void {
  assertValidSecretName(name);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > SECRET_LIMITS.maxValueBytes) {
    throw new BrokerError(
      'internal_error',
      `The value of secret ${name} is ${bytes} bytes; a secret holds at most ${SECRET_LIMITS.maxValueBytes} bytes`,
    );
  }
  const { contentType, tags, expiresOn } = properties;
  if (contentType !== undefined && contentType.length > SECRET_LIMITS.maxContentTypeLength) {
    throw new BrokerError(
      'internal_error',
      `The content type of secret ${name} is longer than 255 characters`,
    );
  }
  if (expiresOn !== undefined && Number.isNaN(expiresOn.getTime())) {
    throw new BrokerError('internal_error', `The expiry of secret ${name} is not a valid date`);
  }
  if (tags !== undefined) {
    const entries = Object.entries(tags);
    if (entries.length > SECRET_LIMITS.maxTags) {
      throw new BrokerError(
        'internal_error',
        `Secret ${name} has ${entries.length} tags; at most 15 are allowed`,
      );
    }
    for (const [tag, tagValue] of entries) {
      if (tag.length > SECRET_LIMITS.maxTagNameLength || tagValue.length > SECRET_LIMITS.maxTagValueLength) {
        throw new BrokerError(
          'internal_error',
          `A tag of secret ${name} is too long (names up to 512, values up to 256 characters)`,
        );
      }
    }
  }
}
