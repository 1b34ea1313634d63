import { httpFunctions } from '../../../functions/http-functions';
import { refreshTokensTimer } from '../../../functions/refresh-tokens';

/** The Functions app as the host sees it: the routes of the README's HTTP API and a start-up that fails loudly. */
/** Loads the host's entry file afresh, as the Functions host does at start-up. */
function loadEntry(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh module load is the point
  require('../../../functions/index');
}

describe('functions app', () => {
  it('registers every route of the HTTP API, each once', () => {
    const routes = httpFunctions.map((f) => `${f.route} ${f.authLevel}`).sort();
    expect(routes).toEqual(
      [
        'callback anonymous',
        'connections anonymous',
        'connections/{name} anonymous',
        'connections/{name}/authorize anonymous',
        'connections/{name}/disable anonymous',
        'connections/{name}/enable anonymous',
        'connections/{name}/events anonymous',
        'connections/{name}/graph anonymous',
        'connections/{name}/password anonymous',
        'connections/{name}/refresh anonymous',
        'connections/{name}/test anonymous',
        'connections/{name}/token anonymous',
        'connections/{name}/invitations anonymous',
        'invitation anonymous',
        'invitation/details anonymous',
        'console anonymous',
        'console.js anonymous',
        'graph-readiness anonymous',
        'health anonymous',
      ].sort(),
    );
    expect(new Set(httpFunctions.map((f) => f.name)).size).toBe(httpFunctions.length);
    expect(refreshTokensTimer.schedule).toBe('%REFRESH_SCHEDULE%');
  });

  it('loads as the host loads it with valid settings, and stops start-up with one line on bad ones', () => {
    const saved = { ...process.env };
    const errors: string[] = [];
    const spy = jest.spyOn(console, 'error').mockImplementation((line: unknown) => {
      errors.push(String(line));
    });
    try {
      Object.assign(process.env, {
        ENTRA_TENANT_ID: '11111111-2222-3333-4444-555555555555',
        ENTRA_CLIENT_ID: '66666666-7777-8888-9999-000000000000',
        ENTRA_CLIENT_SECRET: 'local-only',
        BROKER_LOCAL_SECRET_KEY: Buffer.alloc(32, 1).toString('base64'),
      });
      jest.isolateModules(() => {
        expect(loadEntry).not.toThrow();
      });
      process.env.ENTRA_CLIENT_ID = 'not-a-guid';
      jest.isolateModules(() => {
        expect(loadEntry).toThrow(/ENTRA_CLIENT_ID: expected a GUID/);
      });
      expect(errors).toEqual([
        expect.stringMatching(/^ews-oauth-broker: Invalid configuration: ENTRA_CLIENT_ID: /),
      ]);
    } finally {
      process.env = saved;
      spy.mockRestore();
    }
  });
});
