import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signIn } from '../../../sandbox/entra/sign-in-driver';
import { invitationId } from '../../../shared/invitations/invitation';
import { TableInvitationStore } from '../../../shared/invitations/table-invitation-store';
import {
  api,
  authorizeConnection,
  Browser,
  expectNoSecrets,
  servedOr,
  startHarness,
  USERS,
  type Harness,
} from '../../support/harness';
import { testStorageSettings } from '../../support/storage';

/**
 * Invitations for mailbox owners, end to end over HTTP against Azurite and the Entra emulator: an
 * admin makes a link, the owner opens it (nothing consumed), signs in from it with no role in the
 * broker, and the link is spent only by a verified sign-in.
 */
describe('invitations for mailbox owners', () => {
  let harness: Harness;
  let receiver: Server;
  let rows: TableInvitationStore;
  const received: { type: string; [key: string]: unknown }[] = [];
  /** Every page and error body the tests saw (not the create answer, which carries the link by design). */
  const bodies: string[] = [];

  beforeAll(async () => {
    receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        bodies.push(body);
        received.push(JSON.parse(body) as { type: string });
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const { port } = receiver.address() as AddressInfo;
    harness = await startHarness({
      env: {
        NOTIFY_WEBHOOK_URL: `http://127.0.0.1:${String(port)}/hooks/broker`,
        NOTIFY_WEBHOOK_SECRET: 'webhook-signing-secret-for-tests',
      },
    });
    rows = new TableInvitationStore({
      settings: testStorageSettings(),
      tablePrefix: harness.env.BROKER_TABLE_PREFIX,
    });
  }, 60_000);

  afterAll(async () => {
    await harness.broker.notifier.drain();
    // The link's secret never reaches a log line, an audit event, a webhook, a page or an error.
    expectNoSecrets(harness.secretsSeen, [...harness.logs, ...bodies]);
    await harness.close();
    await new Promise((resolve) => receiver.close(resolve));
  });

  async function define(name: string, body: Record<string, unknown>) {
    const response = await api(harness.baseUrl, 'PUT', `/api/connections/${name}`, body);
    expect([200, 201]).toContain(response.status);
  }

  async function invite(name: string): Promise<{ url: string; token: string; expiresOn: string }> {
    const response = await api(harness.baseUrl, 'POST', `/api/connections/${name}/invitations`);
    expect(response.status).toBe(201);
    const url = String(response.json.url);
    const token = tokenOf(url);
    harness.secretsSeen.add(token);
    return { url, token, expiresOn: String(response.json.expiresOn) };
  }

  /** The link's secret: its fragment, which a browser never sends. */
  const tokenOf = (url: string) => new URL(url).hash.slice(1);
  const pageOf = (url: string) => `${new URL(url).origin}${new URL(url).pathname}`;

  /**
   * What the owner's browser does with the link: GET the page (the same for every link), then its
   * script POSTs the fragment to /api/invitation/details. The status is the details' answer.
   */
  async function open(url: string, browser = new Browser()) {
    const page = await browser.get(pageOf(url));
    const pageText = await page.text();
    const details = await api(harness.baseUrl, 'POST', '/api/invitation/details', { token: tokenOf(url) });
    bodies.push(pageText, details.text);
    return { status: details.status, text: `${pageText}\n${details.text}`, headers: page.headers, details };
  }

  /** Sign in from the link's page: POST the form, sign in at Entra, come back to the callback. */
  async function signInFromLink(url: string, user: { username: string; password: string }) {
    const browser = new Browser();
    const started = await browser.submitForm(pageOf(url), new URLSearchParams({ token: tokenOf(url) }));
    if (started.status !== 302) {
      const text = await started.text();
      bodies.push(text);
      return { started, status: started.status, text };
    }
    const location = new URL(started.headers.get('location') ?? '');
    const session = await harness.broker.sessions.peek(location.searchParams.get('state') ?? '');
    if (session) harness.secretsSeen.add(session.codeVerifier);
    const callbackUrl = await signIn(location.toString(), { ...user, consent: 'accept' });
    harness.secretsSeen.add(callbackUrl.searchParams.get('code') ?? '');
    const callback = await browser.postForm(
      `${callbackUrl.origin}${callbackUrl.pathname}`,
      callbackUrl.searchParams,
      new URL(harness.entra.url).origin,
    );
    const text = await callback.text();
    bodies.push(text);
    return { started, location, status: callback.status, text };
  }

  async function events(name: string) {
    const response = await api(harness.baseUrl, 'GET', `/api/connections/${name}/events`);
    bodies.push(response.text);
    return response.json.events as { type: string; actor: string; at: string; reason?: string }[];
  }

  it('makes a single-use link under PUBLIC_BASE_URL, valid INVITATION_TTL_HOURS, stored only hashed', async () => {
    await define('owner-ews', { mailbox: USERS.support.username, profile: 'ews' });
    const before = Date.now();
    const { url, token, expiresOn } = await invite('owner-ews');
    expect(url).toMatch(new RegExp(`^${harness.baseUrl}/api/invitation#[A-Za-z0-9_-]{43}$`));
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    const lifetime = Date.parse(expiresOn) - before;
    expect(lifetime).toBeGreaterThan(72 * 3_600_000 - 60_000);
    expect(lifetime).toBeLessThan(72 * 3_600_000 + 60_000);

    const stored = await rows.get(invitationId(token));
    expect(stored).toMatchObject({
      connection: 'owner-ews',
      createdBy: expect.any(String),
      usedAt: undefined,
    });
    // Nothing stored holds the secret: not the key, not a column.
    for await (const row of rows.client.listEntities()) expect(JSON.stringify(row)).not.toContain(token);

    const trail = await events('owner-ews');
    expect(trail[0]).toMatchObject({ type: 'invitation.created', actor: expect.any(String) });
    expect(trail[0]?.reason).toContain(USERS.support.username);
    await harness.broker.notifier.drain();
    expect(received).toContainEqual(
      expect.objectContaining({
        type: 'invitation.created',
        connection: 'owner-ews',
        actor: trail[0]?.actor,
      }),
    );
  });

  it('refuses an invitation for a grant nobody signs in with, and for a connection that does not exist', async () => {
    await define('owner-app', {
      mailbox: USERS.support.username,
      profile: 'ews',
      grant: 'client_credentials',
    });
    const appOnly = await api(harness.baseUrl, 'POST', '/api/connections/owner-app/invitations');
    bodies.push(appOnly.text);
    expect(appOnly.status).toBe(400);
    expect(appOnly.json.code).toBe('invalid_request');
    const missing = await api(harness.baseUrl, 'POST', '/api/connections/nobody-here/invitations');
    expect(missing.status).toBe(404);
  });

  it('shows the owner what the link is for, twice, consuming nothing; a wrong account leaves it usable; the right one spends it', async () => {
    await define('owner-graph', { mailbox: USERS.support.username, profile: 'graph-mail' });
    const { url, token } = await invite('owner-graph');

    for (let time = 0; time < 2; time++) {
      const page = await open(url);
      expect(page.status).toBe(200);
      expect(page.text).toContain(USERS.support.username);
      expect(page.text).toContain('through Microsoft Graph');
      expect(page.text).toContain(harness.broker.config.clientId);
      expect(page.text).toContain('Sign in with Microsoft');
      expect(page.headers.get('content-security-policy')).toContain(
        `form-action 'self' ${new URL(harness.entra.url).origin}`,
      );
    }
    expect((await rows.get(invitationId(token)))?.usedAt).toBeUndefined();

    // Someone else signs in: refused as for an admin's Authorize, and nothing is spent.
    const wrong = await signInFromLink(url, USERS.agent);
    expect(wrong.location?.searchParams.get('login_hint')).toBe(USERS.support.username);
    expect(wrong.location?.searchParams.get('code_challenge_method')).toBe('S256');
    expect(wrong.status).toBe(403);
    expect(wrong.text).toContain('Signed in with the wrong account');
    expect((await rows.get(invitationId(token)))?.usedAt).toBeUndefined();
    expect((await harness.broker.registry.get('owner-graph'))?.status).toBe('new');
    expect((await open(url)).status).toBe(200);

    const right = await signInFromLink(url, USERS.support);
    expect(right.status).toBe(200);
    expect(right.text).toContain(
      `Done — <strong>${USERS.support.username}</strong> is connected. You can close this window.`,
    );
    expect((await harness.broker.registry.get('owner-graph'))?.status).toBe('authorized');
    const used = await rows.get(invitationId(token));
    expect(used?.usedAt).toBeDefined();
    expect(used?.usedBy).toBe(USERS.support.username);

    const trail = await events('owner-graph');
    expect(trail.map((event) => event.type)).toEqual(
      expect.arrayContaining([
        'invitation.created',
        'authorization.failed',
        'invitation.used',
        'connection.authorized',
      ]),
    );
    expect(trail.find((event) => event.type === 'invitation.used')?.actor).toBe(USERS.support.username);
    await harness.broker.notifier.drain();
    expect(received).toContainEqual(
      expect.objectContaining({
        type: 'invitation.used',
        connection: 'owner-graph',
        actor: USERS.support.username,
      }),
    );

    // A second use: the page and the sign-in are refused, readably, with 410.
    const again = await open(url);
    expect(again.status).toBe(410);
    expect(again.details.json).toMatchObject({ code: 'invitation_invalid' });
    expect(again.text).toContain('This invitation was already used.');
    expect(again.text).toContain('invitation_invalid');
    expect(again.text).not.toMatch(/at .*\.ts:\d+/);
    expect((await signInFromLink(url, USERS.support)).status).toBe(410);
  }, 60_000);

  it('lets only one of two concurrent sign-ins use an invitation (the row is marked used with its etag)', async () => {
    await define('owner-race', { mailbox: USERS.support.username, profile: 'imap' });
    const { token } = await invite('owner-race');
    const connection = (await harness.broker.registry.get('owner-race'))!;
    const outcomes = await Promise.all(
      [1, 2, 3].map(() =>
        servedOr(
          harness.broker.invitations.redeem(invitationId(token), connection, 'support@contoso.test', 'c'),
        ),
      ),
    );
    expect(outcomes.sort()).toEqual(['invitation_invalid', 'invitation_invalid', 'served']);
  });

  it('refuses forged and malformed links with a readable 410 page, never a 5xx', async () => {
    for (const path of [
      `/api/invitation#${'A'.repeat(43)}`,
      '/api/invitation#short',
      `/api/invitation#${'A'.repeat(200)}`,
      '/api/invitation#%E2%80%AE',
      '/api/invitation',
    ]) {
      const page = await open(`${harness.baseUrl}${path}`);
      expect({ path, status: page.status }).toEqual({ path, status: 410 });
      expect(page.details.json).toMatchObject({ code: 'invitation_invalid' });
      // The Sign in form's POST with such a secret: a readable page, never a 5xx.
      const signIn = await new Browser().submitForm(
        `${harness.baseUrl}/api/invitation`,
        new URLSearchParams({ token: tokenOf(`${harness.baseUrl}${path}`) }),
      );
      const text = await signIn.text();
      bodies.push(text);
      expect({ path, status: signIn.status }).toEqual({ path, status: 410 });
      expect(text).toContain('This invitation link cannot be used');
    }
  });

  it('refuses an expired link and leaves the connection as it was', async () => {
    await define('owner-late', { mailbox: USERS.support.username, profile: 'pop' });
    const { url, token } = await invite('owner-late');
    await rows.client.updateEntity(
      {
        partitionKey: 'invitation',
        rowKey: invitationId(token),
        expiresOn: new Date(Date.now() - 1000).toISOString(),
      },
      'Merge',
    );
    const page = await open(url);
    expect(page.status).toBe(410);
    expect(page.text).toContain('This invitation has expired.');
    expect((await signInFromLink(url, USERS.support)).status).toBe(410);
    expect((await harness.broker.registry.get('owner-late'))?.status).toBe('new');
  });

  it('voids open links on a reset, an identity edit, and a delete followed by re-creating the name', async () => {
    await define('owner-void', { mailbox: USERS.support.username, profile: 'ews' });
    const reset = await invite('owner-void');
    await api(harness.baseUrl, 'PUT', '/api/connections/owner-void?reset=true', {
      mailbox: USERS.support.username,
      profile: 'ews',
    });
    expect((await open(reset.url)).status).toBe(410);

    const edited = await invite('owner-void');
    await define('owner-void', { mailbox: USERS.support.username, profile: 'smtp' });
    const afterEdit = await open(edited.url);
    expect(afterEdit.status).toBe(410);
    expect(afterEdit.text).toContain('no longer applies');

    const recreated = await invite('owner-void');
    expect((await api(harness.baseUrl, 'DELETE', '/api/connections/owner-void')).status).toBe(204);
    await define('owner-void', { mailbox: USERS.support.username, profile: 'smtp' });
    expect((await open(recreated.url)).status).toBe(410);
    expect((await signInFromLink(recreated.url, USERS.support)).status).toBe(410);
    expect((await harness.broker.registry.get('owner-void'))?.status).toBe('new');
  }, 60_000);

  it('voids the link when a reset happens between its sign-in and the callback', async () => {
    await define('owner-mid', { mailbox: USERS.support.username, profile: 'ews' });
    const { url } = await invite('owner-mid');
    const browser = new Browser();
    const started = await browser.submitForm(pageOf(url), new URLSearchParams({ token: tokenOf(url) }));
    expect(started.status).toBe(302);
    const callbackUrl = await signIn(started.headers.get('location') ?? '', {
      ...USERS.support,
      consent: 'accept',
    });
    harness.secretsSeen.add(callbackUrl.searchParams.get('code') ?? '');
    await api(harness.baseUrl, 'PUT', '/api/connections/owner-mid?reset=true', {
      mailbox: USERS.support.username,
      profile: 'ews',
    });
    const callback = await browser.postForm(
      `${callbackUrl.origin}${callbackUrl.pathname}`,
      callbackUrl.searchParams,
      new URL(harness.entra.url).origin,
    );
    const text = await callback.text();
    bodies.push(text);
    expect(callback.status).toBeGreaterThanOrEqual(400);
    expect(callback.status).toBeLessThan(500);
    expect((await harness.broker.registry.get('owner-mid'))?.status).toBe('new');
  });

  it('revokes the open links of a connection', async () => {
    await define('owner-revoke', { mailbox: USERS.support.username, profile: 'ews' });
    const first = await invite('owner-revoke');
    const second = await invite('owner-revoke');
    const revoked = await api(harness.baseUrl, 'DELETE', '/api/connections/owner-revoke/invitations');
    expect(revoked.status).toBe(204);
    expect((await open(first.url)).status).toBe(410);
    expect((await open(second.url)).status).toBe(410);
    const trail = await events('owner-revoke');
    expect(trail[0]).toMatchObject({ type: 'invitation.revoked', reason: '2 open invitations revoked.' });
    await harness.broker.notifier.drain();
    expect(received).toContainEqual(
      expect.objectContaining({ type: 'invitation.revoked', connection: 'owner-revoke' }),
    );
  });

  it('names where to make a fresh invitation when a delegated connection needs authorizing again', async () => {
    harness.entra.addUser({
      username: 'lapsed@contoso.test',
      password: 'Lapsed-1',
      tenantId: harness.entra.tenants.primary.tenantId,
    });
    const lapsed = { username: 'lapsed@contoso.test', password: 'Lapsed-1' };
    expect(await authorizeConnection(harness, 'owner-lapsed', lapsed)).toBe(200);
    harness.entra.faults.revokeConsent(lapsed.username);
    await harness.broker.refresher.refresh('owner-lapsed', { actor: 'test', force: true });
    await harness.broker.notifier.drain();
    const event = received.find(
      (e) => e.type === 'connection.reauthorization_required' && e.connection === 'owner-lapsed',
    );
    expect(event?.invitationsUrl).toBe(`${harness.baseUrl}/api/connections/owner-lapsed/invitations`);

    // One step: POST there, and the owner's sign-in brings it back.
    const { url } = await invite('owner-lapsed');
    const signedIn = await signInFromLink(url, lapsed);
    expect(signedIn.status).toBe(200);
    expect((await harness.broker.registry.get('owner-lapsed'))?.status).toBe('authorized');
  }, 60_000);
});
