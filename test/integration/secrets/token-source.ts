import { randomBytes } from 'node:crypto';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';

/**
 * Where the Key Vault tests get their bearer token, in one place. Today: a static credential whose
 * token the emulator's `verifyToken` accepts. To run against the Entra emulator's managed-identity
 * endpoint instead, return a ManagedIdentityCredential here and verify the JWT in `verifyToken`.
 */
export interface TestTokenSource {
  credential: TokenCredential;
  verifyToken: (bearer: string) => boolean;
  /** Every getToken call: scopes and the tenant the challenge named. */
  requests: { scopes: string[]; tenantId: string | undefined }[];
  /** The token the credential hands out (so a test can check it never reaches a log). */
  token: string;
}

export function testTokenSource(options: { token?: string } = {}): TestTokenSource {
  const accepted = `kv-test-${randomBytes(12).toString('hex')}`;
  const token = options.token ?? accepted;
  const requests: TestTokenSource['requests'] = [];
  const credential: TokenCredential = {
    getToken(scopes: string | string[], getTokenOptions?: GetTokenOptions): Promise<AccessToken> {
      requests.push({
        scopes: Array.isArray(scopes) ? scopes : [scopes],
        tenantId: getTokenOptions?.tenantId,
      });
      return Promise.resolve({ token, expiresOnTimestamp: Date.now() + 3_600_000, tokenType: 'Bearer' });
    },
  };
  return { credential, verifyToken: (bearer) => bearer === accepted, requests, token };
}
