import { signIn } from '../../../sandbox/entra/sign-in-driver';
import { secretNames } from '../../../shared/secrets/secret-store';
import { api, Browser, expectNoSecrets, startHarness, USERS, type Harness } from '../../support/harness';

const EWS_SCOPE = 'https://outlook.office365.com/EWS.AccessAsUser.All';

/** Defines a connection, runs authorize → sign-in → callback in one browser; returns what it saw. */
async function authorizeThroughBrowser(
  harness: Harness,
  name: string,
  user: { username: string; password: string },
  browser = new Browser(),
) {
  const start = await browser.get(`${harness.baseUrl}/api/connections/${name}/authorize`);
  expect(start.status).toBe(302);
  const authorizeUrl = new URL(start.headers.get('location') ?? '');
  const state = authorizeUrl.searchParams.get('state') ?? '';
  const session = await harness.broker.sessions.peek(state);
  if (session) harness.secretsSeen.add(session.codeVerifier);
  const callbackUrl = await signIn(authorizeUrl.toString(), { ...user, consent: 'accept' });
  const code = callbackUrl.searchParams.get('code');
  if (code) harness.secretsSeen.add(code);
  // Entra's form_post page: the browser POSTs the fields; nothing stands in the callback's URL.
  const callback = await browser.postForm(
    `${callbackUrl.origin}${callbackUrl.pathname}`,
    callbackUrl.searchParams,
    new URL(harness.entra.url).origin,
  );
  const page = await callback.text();
  return { authorizeUrl, callbackUrl, callback, page, browser, state };
}

async function collectStoredSecrets(harness: Harness, name: string): Promise<void> {
  for (const secretName of [secretNames.cache(name), secretNames.token(name)]) {
    const secret = await harness.broker.secrets.get(secretName);
    if (!secret) continue;
    harness.secretsSeen.add(secret.value);
    if (secretName.endsWith('-cache')) {
      const cache = JSON.parse(secret.value) as { RefreshToken?: Record<string, { secret: string }> };
      for (const entry of Object.values(cache.RefreshToken ?? {})) harness.secretsSeen.add(entry.secret);
    }
  }
}

describe('authorize a connection end to end (local encrypted store)', () => {
  let harness: Harness;
  const bodies: string[] = [];
  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(async () => {
    expectNoSecrets(harness.secretsSeen, [...harness.logs, ...bodies]);
    await harness.close();
  });

  it('defines, authorizes, publishes and serves a token', async () => {
    const put = await api(harness.baseUrl, 'PUT', '/api/connections/support-in', {
      mailbox: 'support@contoso.test',
      profile: 'ews',
    });
    expect(put.status).toBe(201);
    expect(put.json).toMatchObject({ name: 'support-in', status: 'new', account: 'support@contoso.test' });

    const list = await api(harness.baseUrl, 'GET', '/api/connections');
    expect(list.status).toBe(200);
    expect(list.json.connections).toEqual([expect.objectContaining({ name: 'support-in', status: 'new' })]);

    const { authorizeUrl, callback, page } = await authorizeThroughBrowser(
      harness,
      'support-in',
      USERS.support,
    );
    bodies.push(page);
    const query = authorizeUrl.searchParams;
    expect(authorizeUrl.pathname).toBe(`/${harness.entra.tenants.primary.tenantId}/oauth2/v2.0/authorize`);
    expect(query.get('code_challenge_method')).toBe('S256');
    expect(query.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(query.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(query.get('nonce')).toBeTruthy();
    expect(query.get('login_hint')).toBe('support@contoso.test');
    // Regression: the code and state came back in the callback's URL, where request logs and
    // Application Insights request telemetry keep them; now Entra POSTs them in a form.
    expect(query.get('response_mode')).toBe('form_post');
    expect(query.get('redirect_uri')).toBe(`${harness.baseUrl}/api/callback`);
    expect(query.get('scope')?.split(' ')).toEqual(expect.arrayContaining([EWS_SCOPE, 'offline_access']));

    expect(callback.status).toBe(200);
    expect(callback.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(callback.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page).toContain('Authorized');
    expect(page).toContain('window.opener.postMessage');
    expect(page).toContain(JSON.stringify(new URL(harness.baseUrl).origin));

    await collectStoredSecrets(harness, 'support-in');
    const cache = await harness.broker.secrets.get(secretNames.cache('support-in'));
    expect(cache?.contentType).toBe('application/json');
    expect(
      Object.keys((JSON.parse(cache?.value ?? '{}') as { RefreshToken?: object }).RefreshToken ?? {}),
    ).toHaveLength(1);
    const published = await harness.broker.secrets.get(secretNames.token('support-in'));
    expect(published?.expiresOn?.getTime()).toBeGreaterThan(Date.now());
    expect(published?.tags).toMatchObject({
      mailbox: 'support@contoso.test',
      expiresOn: published?.expiresOn?.toISOString(),
    });
    expect(published?.tags?.scope).toContain(EWS_SCOPE);

    const connection = await api(harness.baseUrl, 'GET', '/api/connections/support-in');
    expect(connection.json).toMatchObject({
      status: 'authorized',
      authorizedBy: 'support@contoso.test',
      consecutiveFailures: 0,
    });
    expect(connection.json.recentEvents).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'connection.authorized', fromStatus: 'new', toStatus: 'authorized' }),
      ]),
    );

    // The token route's body carries the access token by design; it is not checked for leaks.
    const token = await api(harness.baseUrl, 'GET', '/api/connections/support-in/token');
    expect(token.status).toBe(200);
    expect(token.headers.get('cache-control')).toBe('no-store');
    expect(token.json).toMatchObject({
      token_type: 'Bearer',
      mailbox: 'support@contoso.test',
      access_token: published?.value,
    });
    expect(Date.parse(String(token.json.expires_on))).toBe(published?.expiresOn?.getTime());
    expect(token.json.expires_in).toBeGreaterThan(3000);
    expect(
      harness.entra.verifyAccessToken(String(token.json.access_token), 'https://outlook.office365.com').valid,
    ).toBe(true);
    expect(Buffer.from(String(token.json.xoauth2), 'base64').toString()).toBe(
      `user=support@contoso.test\x01auth=Bearer ${String(token.json.access_token)}\x01\x01`,
    );
  });

  it('replaces the tokens when a connection is authorized again', async () => {
    const before = await harness.broker.secrets.get(secretNames.cache('support-in'));
    const { page } = await authorizeThroughBrowser(harness, 'support-in', USERS.support);
    bodies.push(page);
    await collectStoredSecrets(harness, 'support-in');
    const after = await harness.broker.secrets.get(secretNames.cache('support-in'));
    expect(after?.version).not.toBe(before?.version);
    expect(after?.value).not.toBe(before?.value);
  });

  it('refuses a different account and keeps the existing tokens', async () => {
    const before = await harness.broker.secrets.get(secretNames.cache('support-in'));
    const { callback, page } = await authorizeThroughBrowser(harness, 'support-in', USERS.agent);
    bodies.push(page);
    expect(callback.status).toBe(403);
    expect(page).toContain('account_mismatch');
    expect(page).toContain('agent@contoso.test');
    const after = await harness.broker.secrets.get(secretNames.cache('support-in'));
    expect(after?.version).toBe(before?.version);
    const connection = await api(harness.baseUrl, 'GET', '/api/connections/support-in');
    expect(connection.json.status).toBe('authorized');
    expect(connection.json.recentEvents).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          type: 'authorization.failed',
          reason: expect.stringContaining('account_mismatch'),
        }),
      ]),
    );
  });

  it('accepts a delegate signing in for a shared mailbox', async () => {
    await api(harness.baseUrl, 'PUT', '/api/connections/shared-box', {
      mailbox: 'shared@contoso.test',
      account: 'agent@contoso.test',
      profile: 'ews-shared',
    });
    const { callback, page } = await authorizeThroughBrowser(harness, 'shared-box', USERS.agent);
    bodies.push(page);
    expect(callback.status).toBe(200);
    await collectStoredSecrets(harness, 'shared-box');
    const token = await api(harness.baseUrl, 'GET', '/api/connections/shared-box/token');
    expect(token.json.mailbox).toBe('shared@contoso.test');
  });

  describe('state', () => {
    beforeAll(async () => {
      await api(harness.baseUrl, 'PUT', '/api/connections/state-check', {
        mailbox: 'support@contoso.test',
        profile: 'imap',
      });
    });

    async function startAndSignIn(browser: Browser) {
      const start = await browser.get(`${harness.baseUrl}/api/connections/state-check/authorize`);
      const authorizeUrl = new URL(start.headers.get('location') ?? '');
      const session = await harness.broker.sessions.peek(authorizeUrl.searchParams.get('state') ?? '');
      if (session) harness.secretsSeen.add(session.codeVerifier);
      const callbackUrl = await signIn(authorizeUrl.toString(), { ...USERS.support, consent: 'accept' });
      harness.secretsSeen.add(callbackUrl.searchParams.get('code') ?? '');
      return callbackUrl;
    }

    async function nothingStored() {
      expect(await harness.broker.secrets.get(secretNames.cache('state-check'))).toBeUndefined();
      expect(await harness.broker.secrets.get(secretNames.token('state-check'))).toBeUndefined();
      expect((await harness.broker.registry.get('state-check'))?.status).toBe('new');
    }

    it('rejects a tampered state', async () => {
      const browser = new Browser();
      const callbackUrl = await startAndSignIn(browser);
      callbackUrl.searchParams.set('state', 'A'.repeat(43));
      const response = await browser.get(callbackUrl);
      const page = await response.text();
      bodies.push(page);
      expect(response.status).toBe(400);
      expect(page).toContain('state_invalid');
      await nothingStored();
    });

    it('rejects a state presented by another browser, and the first browser can still finish', async () => {
      const first = new Browser();
      const callbackUrl = await startAndSignIn(first);
      const other = await new Browser().get(callbackUrl);
      const otherPage = await other.text();
      bodies.push(otherPage);
      expect(other.status).toBe(400);
      expect(otherPage).toContain('state_invalid');
      expect(otherPage).toContain('different browser');
      await nothingStored();
      const finished = await first.get(callbackUrl);
      bodies.push(await finished.text());
      expect(finished.status).toBe(200);
      await collectStoredSecrets(harness, 'state-check');
      expect((await harness.broker.registry.get('state-check'))?.status).toBe('authorized');
      // Back to "new" for the next cases.
      await api(harness.baseUrl, 'DELETE', '/api/connections/state-check');
      await api(harness.baseUrl, 'PUT', '/api/connections/state-check', {
        mailbox: 'support@contoso.test',
        profile: 'imap',
      });
    });

    it('rejects a replayed callback', async () => {
      const browser = new Browser();
      const callbackUrl = await startAndSignIn(browser);
      const start = await harness.broker.sessions.peek(callbackUrl.searchParams.get('state') ?? '');
      expect(start).toBeDefined();
      // Replay with the cookie kept, by a browser that already consumed it once.
      const firstCookieHolder = browser;
      const replayBrowser = Object.create(firstCookieHolder) as Browser;
      const first = await firstCookieHolder.get(callbackUrl);
      bodies.push(await first.text());
      expect(first.status).toBe(200);
      await collectStoredSecrets(harness, 'state-check');
      const replay = await replayBrowser.get(callbackUrl);
      const page = await replay.text();
      bodies.push(page);
      expect(replay.status).toBe(400);
      expect(page).toContain('state_invalid');
      await api(harness.baseUrl, 'DELETE', '/api/connections/state-check');
      await api(harness.baseUrl, 'PUT', '/api/connections/state-check', {
        mailbox: 'support@contoso.test',
        profile: 'imap',
      });
    });

    it('rejects an expired state and deletes it', async () => {
      const browser = new Browser();
      const callbackUrl = await startAndSignIn(browser);
      const state = callbackUrl.searchParams.get('state') ?? '';
      const session = await harness.broker.sessions.consume(state);
      expect(session).toBeDefined();
      if (!session) return;
      await harness.broker.sessions.create({
        ...session,
        expiresOn: new Date(Date.now() - 1000).toISOString(),
      });
      const response = await browser.get(callbackUrl);
      const page = await response.text();
      bodies.push(page);
      expect(response.status).toBe(400);
      expect(page).toContain('state_expired');
      expect(await harness.broker.sessions.peek(state)).toBeUndefined();
      await nothingStored();
    });

    it('lets Entra reject a PKCE verifier that does not match (AADSTS501481), storing nothing', async () => {
      const browser = new Browser();
      const callbackUrl = await startAndSignIn(browser);
      const state = callbackUrl.searchParams.get('state') ?? '';
      const session = await harness.broker.sessions.consume(state);
      if (!session) throw new Error('no session');
      const forged = 'f'.repeat(43);
      harness.secretsSeen.add(forged);
      await harness.broker.sessions.create({ ...session, codeVerifier: forged });
      const response = await browser.get(callbackUrl);
      const page = await response.text();
      bodies.push(page);
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(page).toContain('AADSTS501481');
      await nothingStored();
    });

    it('shows a cancelled sign-in as access_denied', async () => {
      const browser = new Browser();
      const start = await browser.get(`${harness.baseUrl}/api/connections/state-check/authorize`);
      const callbackUrl = await signIn(start.headers.get('location') ?? '', {
        ...USERS.support,
        cancel: true,
      });
      expect(callbackUrl.searchParams.get('error')).toBe('access_denied');
      const response = await browser.get(callbackUrl);
      const page = await response.text();
      bodies.push(page);
      expect(response.status).toBe(403);
      expect(page).toContain('Sign-in was cancelled');
      expect(page).toContain('access_denied');
      await nothingStored();
    });

    it('shows consent_required (AADSTS65001) with the admin-consent link', async () => {
      harness.entra.faults.consentRequired(true);
      try {
        const browser = new Browser();
        const start = await browser.get(`${harness.baseUrl}/api/connections/state-check/authorize`);
        const callbackUrl = await signIn(start.headers.get('location') ?? '', {
          ...USERS.support,
          consent: 'accept',
        });
        expect(callbackUrl.searchParams.get('error')).toBe('consent_required');
        const response = await browser.get(callbackUrl);
        const page = await response.text();
        bodies.push(page);
        expect(response.status).toBe(403);
        expect(page).toContain('consent_required');
        expect(page).toContain('AADSTS65001');
        const { config } = harness.broker;
        const expected = new URL(`${config.cloud.authorityHost}/${config.tenantId}/adminconsent`);
        expected.searchParams.set('client_id', config.clientId);
        expected.searchParams.set('redirect_uri', config.redirectUri);
        expect(page).toContain(expected.toString().replace(/&/g, '&#38;'));
        await nothingStored();
      } finally {
        harness.entra.faults.consentRequired(false);
      }
    });
  });

  describe('bad input gets a clear 4xx problem and changes nothing', () => {
    it.each<[string, string, string, unknown, Record<string, string>, number, string]>([
      [
        'an invalid name',
        'PUT',
        '/api/connections/Bad_Name',
        { mailbox: 'a@b.test', profile: 'ews' },
        {},
        400,
        'invalid_connection_name',
      ],
      [
        'a too long name',
        'GET',
        `/api/connections/${'a'.repeat(49)}`,
        undefined,
        {},
        400,
        'invalid_connection_name',
      ],
      ['an unknown connection', 'GET', '/api/connections/nobody', undefined, {}, 404, 'connection_not_found'],
      [
        'a token of an unknown connection',
        'GET',
        '/api/connections/nobody/token',
        undefined,
        {},
        404,
        'connection_not_found',
      ],
      ['malformed JSON', 'PUT', '/api/connections/x1', '{"mailbox":', {}, 400, 'invalid_request'],
      ['a JSON array', 'PUT', '/api/connections/x1', [], {}, 400, 'invalid_connection'],
      [
        'a wrong media type',
        'PUT',
        '/api/connections/x1',
        undefined,
        { 'content-type': 'text/plain' },
        415,
        'unsupported_media_type',
      ],
      [
        'an oversized body',
        'PUT',
        '/api/connections/x1',
        { mailbox: 'a@b.test', profile: 'ews', description: 'x'.repeat(40_000) },
        {},
        413,
        'payload_too_large',
      ],
      [
        'an unknown profile',
        'PUT',
        '/api/connections/x1',
        { mailbox: 'a@b.test', profile: 'mapi' },
        {},
        400,
        'invalid_connection',
      ],
      ['a wrong method on the list', 'POST', '/api/connections', {}, {}, 405, 'method_not_allowed'],
      [
        'a wrong method on the token',
        'DELETE',
        '/api/connections/support-in/token',
        undefined,
        {},
        405,
        'method_not_allowed',
      ],
      ['a wrong method on health', 'PATCH', '/api/health', {}, {}, 405, 'method_not_allowed'],
      [
        'a token before authorization',
        'GET',
        '/api/connections/state-check/token',
        undefined,
        {},
        409,
        'connection_not_authorized',
      ],
    ])('%s', async (_label, method, path, body, headers, status, code) => {
      const before = await harness.broker.registry.list();
      const response = await api(harness.baseUrl, method, path, body, headers);
      bodies.push(response.text);
      expect(response.status).toBe(status);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(response.json).toMatchObject({ status, code, correlationId: expect.any(String) });
      expect(response.text).not.toMatch(/\n\s+at /);
      const after = await harness.broker.registry.list();
      expect(after.map((c) => [c.name, c.etag])).toEqual(before.map((c) => [c.name, c.etag]));
    });

    it('answers an unknown route with a problem', async () => {
      const response = await api(harness.baseUrl, 'GET', '/api/nothing-here');
      expect(response.status).toBe(404);
    });

    it('shows a readable page for a callback without parameters', async () => {
      const response = await new Browser().get(`${harness.baseUrl}/api/callback`);
      const page = await response.text();
      bodies.push(page);
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page).toContain('state_invalid');
    });

    it('rejects a callback with a repeated parameter', async () => {
      const response = await new Browser().get(`${harness.baseUrl}/api/callback?state=a&state=b&code=c`);
      expect(response.status).toBe(400);
      expect(await response.text()).toContain('invalid_request');
    });
  });

  it('is healthy', async () => {
    const health = await api(harness.baseUrl, 'GET', '/api/health');
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({
      status: 'ok',
      secretStore: 'local-file',
      checks: { storage: 'ok', secrets: 'ok', entra: 'ok' },
    });
  });
});

describe('admin routes without an admin', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({ env: { BROKER_LOCAL_ADMIN: 'false' } });
  });
  afterAll(async () => {
    await harness.close();
  });

  it.each([
    ['GET', '/api/connections'],
    ['PUT', '/api/connections/x'],
    ['DELETE', '/api/connections/x'],
  ])('%s %s answers 401', async (method, path) => {
    const response = await api(
      harness.baseUrl,
      method,
      path,
      method === 'PUT' ? { mailbox: 'a@b.test', profile: 'ews' } : undefined,
    );
    expect(response.status).toBe(401);
    expect(response.json.code).toBe('unauthenticated');
    expect(await harness.broker.registry.list()).toEqual([]);
  });

  it('does not start an authorization', async () => {
    const response = await new Browser().get(`${harness.baseUrl}/api/connections/x/authorize`);
    expect(response.status).toBe(401);
    expect(response.headers.get('location')).toBeNull();
  });

  it('ignores a forged App Service principal header when platform authentication is off', async () => {
    const forged = Buffer.from(JSON.stringify({ claims: [{ typ: 'roles', val: 'Broker.Admin' }] })).toString(
      'base64',
    );
    const response = await api(harness.baseUrl, 'GET', '/api/connections', undefined, {
      'x-ms-client-principal': forged,
    });
    expect(response.status).toBe(401);
  });
});

describe('multi-tenant app', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({ multiTenant: true });
  });
  afterAll(async () => {
    await harness.close();
  });

  it('refuses an account of a tenant not in ALLOWED_TENANTS', async () => {
    await api(harness.baseUrl, 'PUT', '/api/connections/outside', {
      mailbox: 'eve@fabrikam.test',
      profile: 'ews',
    });
    const { callback, page } = await authorizeThroughBrowser(harness, 'outside', USERS.outsider);
    expect(callback.status).toBe(403);
    expect(page).toContain('tenant_not_allowed');
    expect(await harness.broker.secrets.get(secretNames.cache('outside'))).toBeUndefined();
    expect((await harness.broker.registry.get('outside'))?.status).toBe('new');
  });

  it('accepts an account of an allowed tenant', async () => {
    await api(harness.baseUrl, 'PUT', '/api/connections/inside', {
      mailbox: 'support@contoso.test',
      profile: 'graph-mail',
    });
    const { callback } = await authorizeThroughBrowser(harness, 'inside', USERS.support);
    expect(callback.status).toBe(200);
    expect((await harness.broker.registry.get('inside'))?.status).toBe('authorized');
  });
});
