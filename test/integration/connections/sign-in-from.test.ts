import { secretNames } from '../../../shared/secrets/secret-store';
import {
  api,
  authorizeConnection,
  expectNoSecrets,
  startHarness,
  storedRefreshToken,
  USERS,
  type Harness,
} from '../../support/harness';

/**
 * One sign-in, several connections (`signInFrom`) against the Entra emulator, which records consent
 * per user and scope at the authorize endpoint and answers AADSTS65001 when a refresh token is
 * redeemed for a scope nobody consented to. REFRESH_CACHE_WRITE_HOURS=0 so that every rotated
 * refresh token is written, and the emulator revokes rotated refresh tokens: a redemption whose new
 * refresh token were not stored would show as a failure of the next one.
 */
let harness: Harness;
const bodies: string[] = [];
const ACCOUNT = USERS.support.username;

beforeAll(async () => {
  harness = await startHarness({ env: { REFRESH_CACHE_WRITE_HOURS: '0' } });
  harness.entra.faults.revokeRotatedRefreshTokens = true;
}, 60_000);

afterAll(async () => {
  try {
    expectNoSecrets(harness.secretsSeen, [...harness.logs, ...bodies]);
  } finally {
    await harness.close();
  }
});

async function call(method: string, path: string, body?: unknown) {
  const response = await api(harness.baseUrl, method, path, body);
  bodies.push(response.text);
  return response;
}

const define = (name: string, body: Record<string, unknown>, query = '') =>
  call('PUT', `/api/connections/${name}${query}`, { mailbox: ACCOUNT, ...body });

async function tokenOf(name: string) {
  // Not kept with the other bodies: a token answer carries the token by design.
  const response = await api(harness.baseUrl, 'GET', `/api/connections/${name}/token`);
  if (response.status === 200) harness.secretsSeen.add(String(response.json.access_token));
  else bodies.push(response.text);
  return response;
}

function audienceOf(token: string): string {
  const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
    aud: string;
  };
  return claims.aud;
}

const statusOf = async (name: string) => (await harness.broker.registry.get(name))?.status;

describe('one sign-in, several connections', () => {
  it('one sign-in of a source yields tokens for an EWS, an SMTP and a Graph dependant', async () => {
    expect((await define('src', { profile: 'ews' })).status).toBe(201);
    const smtp = await define('src-smtp', { profile: 'smtp', signInFrom: 'src' });
    expect(smtp.status).toBe(201);
    expect(smtp.json).toMatchObject({ status: 'new', signInFrom: 'src' });
    expect((await define('src-graph', { profile: 'graph-mail', signInFrom: 'src' })).status).toBe(201);
    const signInsBefore = harness.entra.stats.requests.authorize ?? 0;

    expect(await authorizeConnection(harness, 'src')).toBe(200);

    expect((harness.entra.stats.requests.authorize ?? 0) - signInsBefore).toBe(1);
    const ews = await tokenOf('src');
    const smtpToken = await tokenOf('src-smtp');
    const graph = await tokenOf('src-graph');
    expect([ews.status, smtpToken.status, graph.status]).toEqual([200, 200, 200]);
    expect(audienceOf(String(ews.json.access_token))).toBe('https://outlook.office365.com');
    expect(smtpToken.json.scope).toContain('SMTP.Send');
    expect(graph.json.scope).toContain('Mail.ReadWrite');
    expect(audienceOf(String(graph.json.access_token))).toBe('https://graph.microsoft.com');
    const dependant = await harness.broker.registry.get('src-smtp');
    expect(dependant).toMatchObject({ status: 'authorized', authorizedBy: ACCOUNT });
    // A dependant keeps no refresh token of its own.
    expect(await harness.broker.secrets.get(secretNames.cache('src-smtp'))).toBeUndefined();
  });

  it('a dependant defined while its source is authorized is usable at once, with no popup', async () => {
    const signInsBefore = harness.entra.stats.requests.authorize ?? 0;
    const defined = await define('src-shared', {
      mailbox: 'shared@contoso.test',
      account: ACCOUNT,
      profile: 'ews-shared',
      signInFrom: 'src',
    });
    expect(defined.status).toBe(201);
    expect(defined.json).toMatchObject({ status: 'authorized' });
    expect((await tokenOf('src-shared')).status).toBe(200);
    expect(harness.entra.stats.requests.authorize ?? 0).toBe(signInsBefore);
  });

  it('consent missing for a dependant: stored 201, consent_required with a remedy naming the source, source untouched', async () => {
    const sourceToken = await storedRefreshToken(harness, 'src');
    const defined = await define('src-imap', { profile: 'imap', signInFrom: 'src' });
    expect(defined.status).toBe(201);
    expect(defined.json).toMatchObject({
      status: 'reauthorization_required',
      lastError: { code: 'consent_required', aadsts: 65001 },
    });
    expect((defined.json.lastError as { remedy: string }).remedy).toContain('Authorize src again');
    const token = await tokenOf('src-imap');
    expect(token.status).toBe(403);
    expect(token.json).toMatchObject({ code: 'consent_required' });
    expect(String(token.json.remedy)).toContain('src');
    expect(await statusOf('src')).toBe('authorized');
    expect(await storedRefreshToken(harness, 'src')).toBe(sourceToken);
    expect((await tokenOf('src')).status).toBe(200);
  });

  it("a new authorization of the source asks consent for its dependants' scopes and brings them back", async () => {
    expect(await authorizeConnection(harness, 'src')).toBe(200);
    expect(await statusOf('src-imap')).toBe('authorized');
    expect((await tokenOf('src-imap')).json.scope).toContain('IMAP.AccessAsUser.All');
  });

  it("a dependant's refresh never loses the source's refresh token (rotated ones are revoked here)", async () => {
    const before = await storedRefreshToken(harness, 'src');
    expect((await call('POST', '/api/connections/src-graph/refresh')).status).toBe(200);
    const after = await storedRefreshToken(harness, 'src');
    expect(after).not.toBe(before);
    expect((await call('POST', '/api/connections/src/refresh')).status).toBe(200);
    expect((await call('POST', '/api/connections/src-smtp/refresh')).status).toBe(200);
    expect(await statusOf('src')).toBe('authorized');
  });

  it("a dependant's redemption takes the source's lease: none overlaps the source's own", async () => {
    const source = await harness.broker.registry.get('src');
    await harness.broker.registry.updateState(
      'src',
      { leaseOwner: 'another-instance', leaseExpiresOn: new Date(Date.now() + 60_000).toISOString() },
      source!.etag,
      source,
    );
    const redemptions = harness.entra.stats.requests['token:refresh_token'] ?? 0;
    try {
      const refresh = await call('POST', '/api/connections/src-graph/refresh');
      expect(refresh.status).toBe(409);
      expect(refresh.json).toMatchObject({ code: 'refresh_in_progress' });
      expect(harness.entra.stats.requests['token:refresh_token'] ?? 0).toBe(redemptions);
    } finally {
      const held = await harness.broker.registry.get('src');
      await harness.broker.registry.updateState(
        'src',
        { leaseOwner: undefined, leaseExpiresOn: undefined },
        held!.etag,
        held,
      );
    }
    expect((await call('POST', '/api/connections/src-graph/refresh')).status).toBe(200);
  });

  it("a failure of one dependant never changes the source's status", async () => {
    harness.entra.faults.failNext(3, { status: 503, endpoint: 'token' });
    const refresh = await call('POST', '/api/connections/src-smtp/refresh');
    expect(refresh.status).toBeGreaterThanOrEqual(500);
    expect(await statusOf('src-smtp')).toBe('degraded');
    expect(await statusOf('src')).toBe('authorized');
    harness.entra.faults.reset();
    harness.entra.faults.revokeRotatedRefreshTokens = true;
    expect((await call('POST', '/api/connections/src-smtp/refresh')).status).toBe(200);
  });

  it('Authorize on a dependant redeems from the source now; with no source sign-in it names the source', async () => {
    const authorized = await call('POST', '/api/connections/src-smtp/authorize');
    expect(authorized.status).toBe(200);
    expect(authorized.json).toMatchObject({ connection: { status: 'authorized' } });
    expect((await define('lonely', { profile: 'ews' })).status).toBe(201);
    expect((await define('lonely-graph', { profile: 'graph-mail', signInFrom: 'lonely' })).status).toBe(201);
    const refused = await call('POST', '/api/connections/lonely-graph/authorize');
    expect(refused.status).toBe(409);
    expect(refused.json).toMatchObject({ code: 'connection_not_authorized' });
    expect(String(refused.json.remedy)).toContain('Authorize lonely');
  });

  it('definition rules: the source exists, signs in as a user for the same account, no chains', async () => {
    const refusals: [string, Record<string, unknown>, RegExp][] = [
      ['dep-x', { profile: 'smtp', signInFrom: 'nobody' }, /no connection named nobody/],
      ['dep-x', { profile: 'smtp', signInFrom: 'dep-x' }, /itself/],
      ['dep-x', { profile: 'smtp', signInFrom: 'src-smtp' }, /no chains/],
      ['dep-x', { mailbox: 'agent@contoso.test', profile: 'smtp', signInFrom: 'src' }, /account must match/],
      ['src', { profile: 'ews', signInFrom: 'lonely' }, /source of/],
      ['dep-x', { profile: 'smtp', grant: 'client_credentials', signInFrom: 'src' }, /delegated grant/],
    ];
    await define('app-src', { profile: 'graph-mail', grant: 'client_credentials' });
    refusals.push(['dep-x', { profile: 'smtp', signInFrom: 'app-src' }, /app-only/]);
    for (const [name, body, message] of refusals) {
      const refused = await define(name, body);
      expect({ name, body, status: refused.status, code: refused.json.code }).toEqual({
        name,
        body,
        status: 400,
        code: 'invalid_connection',
      });
      expect(String(refused.json.detail)).toMatch(message);
    }
    expect(await harness.broker.registry.get('dep-x')).toBeUndefined();
    expect((await harness.broker.registry.get('src'))?.signInFrom).toBeUndefined();
  });

  it('changing signInFrom on a dependant that holds tokens follows the 409 rule', async () => {
    const changed = await define('src-smtp', { profile: 'smtp' });
    expect(changed.status).toBe(409);
    expect(changed.json).toMatchObject({ code: 'connection_authorized' });
    expect((await harness.broker.registry.get('src-smtp'))?.signInFrom).toBe('src');
  });

  it("a source's reauthorization_required turns its dependants reauthorization_required", async () => {
    harness.entra.faults.resetPassword(ACCOUNT);
    const refresh = await call('POST', '/api/connections/src/refresh');
    expect(refresh.json).toMatchObject({ code: 'reauthorization_required' });
    for (const name of ['src-smtp', 'src-graph', 'src-shared', 'src-imap']) {
      expect({ name, status: await statusOf(name) }).toEqual({ name, status: 'reauthorization_required' });
    }
    expect(String((await harness.broker.registry.get('src-graph'))?.lastError?.remedy)).toContain(
      'Authorize src again',
    );
    expect(await authorizeConnection(harness, 'src')).toBe(200);
    for (const name of ['src-smtp', 'src-graph', 'src-shared', 'src-imap']) {
      expect({ name, status: await statusOf(name) }).toEqual({ name, status: 'authorized' });
    }
  });

  it('a reset of the source turns its dependants reauthorization_required', async () => {
    const reset = await define('src', { profile: 'ews' }, '?reset=true');
    expect(reset.status).toBe(200);
    expect(reset.json).toMatchObject({ status: 'new' });
    expect(await statusOf('src-graph')).toBe('reauthorization_required');
    // A reset throws the grant away: what was redeemed from it is no longer served.
    expect(await harness.broker.secrets.get(secretNames.token('src-graph'))).toBeUndefined();
    expect((await tokenOf('src-graph')).json).toMatchObject({ code: 'reauthorization_required' });
    // …and its row names no expiry for a token it no longer has (the console shows "none yet").
    expect((await call('GET', '/api/connections/src-graph')).json).toMatchObject({ tokenExpiresOn: null });
    expect(await authorizeConnection(harness, 'src')).toBe(200);
    expect(await statusOf('src-graph')).toBe('authorized');
  });

  it('deleting a source with dependants is refused (409 connection_in_use, naming them) unless asked for', async () => {
    const refused = await call('DELETE', '/api/connections/src');
    expect(refused.status).toBe(409);
    expect(refused.json).toMatchObject({ code: 'connection_in_use' });
    expect(String(refused.json.detail)).toContain('src-graph');
    // The console first (its Delete asks to delete them all), the API call in brackets.
    expect(String(refused.json.remedy)).toMatch(
      /in the console, the connection's More → Delete, then Delete all 5 \(API: `DELETE \/api\/connections\/src\?withDependants=true`\)/,
    );
    expect(await statusOf('src')).toBe('authorized');
    expect((await call('DELETE', '/api/connections/src?withDependants=maybe')).status).toBe(400);
    expect((await call('DELETE', '/api/connections/src?withDependants=true')).status).toBe(204);
    for (const name of ['src', 'src-smtp', 'src-graph', 'src-shared', 'src-imap']) {
      expect(await harness.broker.registry.get(name)).toBeUndefined();
      expect(await harness.broker.secrets.get(secretNames.token(name))).toBeUndefined();
    }
  });

  it('a password source that signs in again brings back the dependants its lost refresh token failed', async () => {
    expect((await define('pw-src', { profile: 'ews', grant: 'password' })).status).toBe(201);
    expect(
      (await call('PUT', '/api/connections/pw-src/password', { password: USERS.support.password })).status,
    ).toBe(204);
    expect((await call('POST', '/api/connections/pw-src/authorize')).status).toBe(200);
    const dependant = await define('pw-smtp', { profile: 'smtp', signInFrom: 'pw-src' });
    expect(dependant.json).toMatchObject({ status: 'authorized' });
    harness.entra.faults.resetPassword(ACCOUNT);
    expect((await call('POST', '/api/connections/pw-smtp/refresh')).json).toMatchObject({
      code: 'reauthorization_required',
    });
    expect(await statusOf('pw-src')).toBe('authorized');
    expect((await call('POST', '/api/connections/pw-src/refresh')).status).toBe(200);
    expect(await statusOf('pw-smtp')).toBe('authorized');
  });
});
