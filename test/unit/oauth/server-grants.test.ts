import type { Connection } from '../../../shared/connections/connection';
import { isBrokerError } from '../../../shared/errors';
import { classifyEntraAnswer } from '../../../shared/oauth/entra-errors';
import { forPasswordGrant, storedPassword } from '../../../shared/oauth/server-grants';
import type { SecretStore } from '../../../shared/secrets/secret-store';

/** The password grant's remedies: most admins read them in the console, so it comes first. */
describe('the password remedies', () => {
  const consoleFirst = (name: string) =>
    `in the console, the connection's More → Set password (API: \`PUT /api/connections/${name}/password\`).`;

  it.each([50126, 50055])(
    'AADSTS%s: set the current password (More → Set password), then Authorize',
    (aadsts) => {
      const failure = forPasswordGrant(classifyEntraAnswer('invalid_grant', aadsts, 400), 'genesys-in');
      expect(failure.remedy).toBe(
        `Set the account's current password, then Authorize again: ${consoleFirst('genesys-in')}`,
      );
      expect(failure.remedy).not.toContain('{name}');
    },
  );

  it('no password stored: set it (More → Set password), then Authorize', async () => {
    const secrets = { get: () => Promise.resolve(undefined) } as unknown as SecretStore;
    const connection = { name: 'genesys-in' } as Connection;
    const refused = await storedPassword(secrets, connection).catch((error: unknown) => error);
    expect(isBrokerError(refused) && refused.code).toBe('password_required');
    expect(isBrokerError(refused) && refused.remedy).toBe(
      `Set it, then Authorize: ${consoleFirst('genesys-in')}`,
    );
  });
});
