import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser as Chromium, type BrowserContext, type Page } from 'playwright-core';
import { parseConnectionDefinition } from '../../shared/connections/connection';
import { invitationId } from '../../shared/invitations/invitation';
import { TableInvitationStore } from '../../shared/invitations/table-invitation-store';
import { expectNoSecrets, startHarness, USERS, type Harness } from '../support/harness';
import { testStorageSettings } from '../support/storage';

const CHROMIUM = '/usr/bin/chromium';

/**
 * What a mailbox owner does with an invitation, in a real browser that has no admin anything (the
 * broker runs without local admin: every admin route answers 401): open the link (twice, as a mail
 * scanner and then the person would), click Sign in with Microsoft, sign in, done.
 */
describe('invitation link in a real browser, without any admin role', () => {
  let harness: Harness | undefined;
  let browser: Chromium | undefined;
  let context: BrowserContext | undefined;
  let rows: TableInvitationStore;
  const pages: string[] = [];
  const change = { actor: 'admin@contoso.test', correlationId: 'e2e' };

  beforeAll(async () => {
    harness = await startHarness({ env: { BROKER_LOCAL_ADMIN: 'false' }, browserSignIn: true });
    rows = new TableInvitationStore({
      settings: testStorageSettings(),
      tablePrefix: harness.env.BROKER_TABLE_PREFIX,
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        '--no-first-run',
      ],
    });
  }, 60_000);

  beforeEach(async () => {
    await context?.close();
    // A fresh context per test: no cookie, no session, nothing of an admin.
    context = await browser!.newContext();
  });

  afterAll(async () => {
    // The link's secret never reaches a log line or a page.
    if (harness) expectNoSecrets(harness.secretsSeen, [...harness.logs, ...pages]);
    await context?.close();
    await browser?.close();
    await harness?.close();
  });

  /** What an admin would do through the API (closed here): define a delegated connection and invite its owner. */
  async function invitationFor(name: string): Promise<{ url: string; token: string }> {
    const broker = harness!.broker;
    if (!(await broker.registry.get(name))) {
      const definition = parseConnectionDefinition(
        { mailbox: USERS.support.username, profile: 'ews' },
        { ownClientId: broker.config.clientId },
      );
      await broker.connections.define(name, definition, { ...change, reset: false });
    }
    const { url } = await broker.invitations.create(name, change);
    const token = new URL(url).hash.slice(1);
    harness!.secretsSeen.add(token);
    return { url, token };
  }

  /**
   * Opens the link as a fresh load (the same URL again would only move to its fragment). The page
   * is the same for every link; its script asks /api/invitation/details, whose answer is the status.
   */
  async function visit(page: Page, url: string): Promise<{ status: number; text: string }> {
    await page.goto('about:blank');
    const details = page.waitForResponse((response) => response.url().endsWith('/api/invitation/details'));
    const response = await page.goto(url);
    expect(response?.status()).toBe(200);
    const answer = await details;
    await page.locator('#invitation:visible, #refused:visible').waitFor();
    const text = await page.content();
    pages.push(text);
    return { status: answer.status(), text };
  }

  /** Click Sign in with Microsoft, sign in at the emulator as `user`, accept; the callback's page. */
  async function signInAs(page: Page, user: { username: string; password: string }): Promise<number> {
    const callback = page.waitForResponse((response) => response.url().endsWith('/api/callback'), {
      timeout: 20_000,
    });
    await page.getByRole('button', { name: 'Sign in with Microsoft' }).click();
    await page.waitForURL((url) => url.origin === new URL(harness!.entra.browserUrl).origin);
    await expect(page.locator('input[name=login]').inputValue()).resolves.toBe(USERS.support.username);
    await page.fill('input[name=login]', user.username);
    await page.fill('input[name=passwd]', user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const accept = page.getByRole('button', { name: /accept/i });
    await Promise.race([accept.click().catch(() => undefined), callback]);
    const answer = await callback;
    await page.waitForLoadState('domcontentloaded');
    pages.push(await page.content());
    return answer.status();
  }

  it('opens twice without consuming it, refuses a wrong account, and authorizes for the right one', async () => {
    const page = await context!.newPage();
    const cspViolations: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') cspViolations.push(message.text());
    });
    const { url, token } = await invitationFor('owner-in');

    // Nobody here is an admin: the console and the API are closed to this browser.
    expect((await page.request.get(`${harness!.baseUrl}/api/connections`)).status()).toBe(401);

    for (let time = 0; time < 2; time++) {
      const opened = await visit(page, url);
      expect(opened.status).toBe(200);
      await expect(page.locator('h1').textContent()).resolves.toBe(`Connect ${USERS.support.username}`);
      await expect(page.locator('#account').textContent()).resolves.toBe(USERS.support.username);
      await expect(page.locator('#capability').textContent()).resolves.toContain('Exchange Web Services');
    }
    expect((await rows.get(invitationId(token)))?.usedAt).toBeUndefined();

    // Someone else signs in from the link: refused, and the link still works.
    expect(await signInAs(page, USERS.agent)).toBe(403);
    await expect(page.locator('h1').textContent()).resolves.toBe('Signed in with the wrong account');
    expect((await rows.get(invitationId(token)))?.usedAt).toBeUndefined();
    expect((await harness!.broker.registry.get('owner-in'))?.status).toBe('new');

    expect((await visit(page, url)).status).toBe(200);
    expect(await signInAs(page, USERS.support)).toBe(200);
    await expect(page.locator('body').textContent()).resolves.toContain(
      `Done — ${USERS.support.username} is connected. You can close this window.`,
    );
    expect((await harness!.broker.registry.get('owner-in'))?.status).toBe('authorized');
    expect((await rows.get(invitationId(token)))?.usedBy).toBe(USERS.support.username);
    // The refused sign-in's 403 is expected; a blocked form or redirect would be a CSP violation.
    expect(cspViolations.filter((line) => /Content Security Policy/i.test(line))).toEqual([]);
    await page.screenshot({ path: join(tmpdir(), 'broker-invitation-done.png') });

    // A second use of the same link.
    const second = await visit(page, url);
    expect(second.status).toBe(410);
    expect(second.text).toContain('This invitation was already used.');
  }, 90_000);

  it('refuses a forged, an expired and a reset-voided link with a readable page', async () => {
    const page = await context!.newPage();
    const forged = await visit(page, `${harness!.baseUrl}/api/invitation#${'Q'.repeat(43)}`);
    expect(forged.status).toBe(410);
    await expect(page.locator('h1').textContent()).resolves.toBe('This invitation link cannot be used');

    const late = await invitationFor('owner-late');
    await rows.client.updateEntity(
      {
        partitionKey: 'invitation',
        rowKey: invitationId(late.token),
        expiresOn: new Date(Date.now() - 1000).toISOString(),
      },
      'Merge',
    );
    const expired = await visit(page, late.url);
    expect(expired.status).toBe(410);
    expect(expired.text).toContain('This invitation has expired.');
    expect(expired.text).toContain('Ask the administrator who sent you this link for a new invitation.');

    const voided = await invitationFor('owner-reset');
    const definition = parseConnectionDefinition(
      { mailbox: USERS.support.username, profile: 'ews' },
      { ownClientId: harness!.broker.config.clientId },
    );
    await harness!.broker.connections.define('owner-reset', definition, { ...change, reset: true });
    const afterReset = await visit(page, voided.url);
    expect(afterReset.status).toBe(410);
    await expect(page.locator('h1').textContent()).resolves.toBe('This invitation link cannot be used');
    expect(afterReset.text).not.toMatch(/\.ts:\d+/);
  }, 60_000);
});

/** The admin's side: the console's Invite button makes the link, copies it, shows its expiry, revokes it. */
describe('console Invite button', () => {
  let harness: Harness | undefined;
  let browser: Chromium | undefined;

  beforeAll(async () => {
    harness = await startHarness();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-sync', '--no-first-run'],
    });
  }, 60_000);

  afterAll(async () => {
    if (harness) expectNoSecrets(harness.secretsSeen, harness.logs);
    await browser?.close();
    await harness?.close();
  });

  it('shows the link with Copy and its expiry on delegated rows only, and Revoke voids it', async () => {
    const context = await browser!.newContext({ permissions: ['clipboard-read', 'clipboard-write'] });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    for (const [name, grant] of [
      ['owner-row', 'authorization_code'],
      ['app-row', 'client_credentials'],
    ] as const) {
      const definition = parseConnectionDefinition(
        { mailbox: USERS.support.username, profile: 'ews', grant },
        { ownClientId: harness!.broker.config.clientId },
      );
      await harness!.broker.connections.define(name, definition, {
        actor: 'admin',
        correlationId: 'e2e',
        reset: false,
      });
    }
    await page.goto(`${harness!.baseUrl}/api/console`);
    const row = page.locator('tr[data-connection="owner-row"]');
    await row.waitFor();
    // Both menus open: an app-only row offers no Invite where a delegated row does.
    const appRow = page.locator('tr[data-connection="app-row"]');
    await appRow.getByRole('button', { name: 'More actions for app-row' }).click();
    await appRow.getByRole('button', { name: 'Refresh app-row' }).waitFor();
    await expect(appRow.getByRole('button', { name: 'Invite' }).count()).resolves.toBe(0);
    await page.keyboard.press('Escape');

    await row.getByRole('button', { name: 'More actions for owner-row' }).click();
    await row.getByRole('button', { name: 'Invite owner-row' }).click();
    const notice = page.locator('tr[data-detail-for="owner-row"]');
    // One line: Copy link in it, the link itself and Revoke under Details.
    await notice.getByRole('button', { name: 'Details about owner-row' }).click();
    const link = notice.locator('input.invitation-url');
    await link.waitFor();
    const url = await link.inputValue();
    harness!.secretsSeen.add(new URL(url).hash.slice(1));
    expect(url).toMatch(new RegExp(`^${harness!.baseUrl}/api/invitation#[A-Za-z0-9_-]{43}$`));
    await expect(notice.textContent()).resolves.toMatch(
      /Invitation for support@contoso\.test to authorize owner-row: single use, valid until .+\./,
    );
    await notice.getByRole('button', { name: 'Copy' }).click();
    await expect(page.evaluate('navigator.clipboard.readText()')).resolves.toBe(url);

    const other = await context.newPage();
    const detailsStatus = async () => {
      await other.goto('about:blank');
      const details = other.waitForResponse((response) => response.url().endsWith('/api/invitation/details'));
      await other.goto(url);
      return (await details).status();
    };
    expect(await detailsStatus()).toBe(200);
    await notice.getByRole('button', { name: 'Revoke' }).click();
    await notice.locator('.row-feedback', { hasText: 'revoked' }).waitFor();
    expect(await detailsStatus()).toBe(410);
    await expect(other.locator('h1').textContent()).resolves.toBe('This invitation link cannot be used');
    expect(errors).toEqual([]);
    await context.close();
  }, 60_000);
});
