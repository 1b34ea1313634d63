import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser as Chromium, type BrowserContext } from 'playwright-core';
import { secretNames } from '../../shared/secrets/secret-store';
import { allowListSnippet } from '../../shared/probes/remedies';
import { startHarness, USERS, type Harness } from '../support/harness';

const CHROMIUM = '/usr/bin/chromium';

/**
 * What an admin does: open the console, define a connection, click Authorize, sign in and consent
 * in the popup; the popup closes itself and the console shows the connection as authorized.
 */
describe('console and authorization popup in a real browser', () => {
  let harness: Harness | undefined;
  let browser: Chromium | undefined;
  let context: BrowserContext | undefined;

  beforeAll(async () => {
    harness = await startHarness({ mailboxes: {}, browserSignIn: true });
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
    // Certificate checks on: the sign-in pages are on plain-HTTP localhost, as in `npm start`.
    context = await browser.newContext();
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await harness?.close();
  });

  it('authorizes a connection through the popup, which closes itself', async () => {
    const page = await context!.newPage();
    const consoleErrors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    await page.goto(`${harness!.baseUrl}/api/console`);
    await page.fill('input[name=name]', 'support-in');
    await page.fill('input[name=mailbox]', USERS.support.username);
    await page.selectOption('select[name=profile]', 'ews');
    await page.click('form#define button[type=submit]');
    const row = page.locator('tr[data-connection="support-in"]');
    await row.locator('.status', { hasText: 'new' }).waitFor();
    // One that signs in through it: its next step is the source's sign-in.
    await page.fill('input[name=name]', 'support-imap');
    await page.fill('input[name=mailbox]', USERS.support.username);
    await page.selectOption('select[name=profile]', 'imap');
    await page.selectOption('select[name=signInFrom]', 'support-in');
    await page.click('form#define button[type=submit]');
    const dependantLine = page.locator('tr[data-detail-for="support-imap"] .row-feedback');
    await dependantLine.filter({ hasText: 'Saved support-imap. Click Authorize.' }).waitFor();

    const popupPromise = page.waitForEvent('popup');
    await row.getByRole('button', { name: 'Authorize' }).click();
    const popup = await popupPromise;
    await popup.waitForLoadState('domcontentloaded');
    expect(new URL(popup.url()).origin).toBe(new URL(harness!.entra.browserUrl).origin);
    await expect(popup.locator('input[name=login]').inputValue()).resolves.toBe(USERS.support.username);
    // Keyboard only: the password field has the focus, Enter signs in (not Cancel).
    await expect(popup.evaluate('document.activeElement.name')).resolves.toBe('passwd');
    await popup.keyboard.type(USERS.support.password);
    await popup.keyboard.press('Enter');
    // Consent page, then the redirect to /api/callback, whose page closes the popup.
    // Listen before clicking: the popup may close before the click's promise settles.
    const closed = popup.waitForEvent('close', { timeout: 20_000 });
    await popup.getByRole('button', { name: /accept/i }).click();
    await closed;

    await row.locator('.status', { hasText: 'authorized' }).waitFor({ timeout: 10_000 });
    // The result shows beside its row, and screen readers hear it from the one live region.
    await expect(
      page.locator('tr[data-detail-for="support-in"] .row-feedback').textContent(),
    ).resolves.toContain('support-in is authorized');
    await page.locator('#live', { hasText: 'support-in is authorized' }).waitFor({ state: 'attached' });
    // "Click Authorize" no longer holds for the dependant: its line and the form's say what it is.
    await dependantLine.filter({ hasText: 'support-imap is authorized through support-in.' }).waitFor();
    await expect(page.locator('#define-result').textContent()).resolves.toBe(
      'Saved support-imap. It is authorized now.',
    );
    expect(await harness!.broker.secrets.get(secretNames.token('support-in'))).toBeDefined();
    expect(consoleErrors).toEqual([]);
    await page.screenshot({ path: join(tmpdir(), 'broker-console-authorized.png') });
  }, 60_000);

  it('tests the connection from its row: the Inbox count, then the ews_blocked remedy', async () => {
    const page = await context!.newPage();
    await page.goto(`${harness!.baseUrl}/api/console`);
    const row = page.locator('tr[data-connection="support-in"]');
    await row.locator('.status', { hasText: 'authorized' }).waitFor();
    await row.getByRole('button', { name: 'Test connection' }).click();
    await row.locator('.test-summary.ok', { hasText: 'Inbox · 12 items' }).waitFor({ timeout: 15_000 });

    // Exchange Online now refuses EWS to apps not on the tenant's allow list.
    harness!.services!.ews.setAccessPolicy({ organizationEwsEnabled: true, allowedAppIds: [] });
    await row.getByRole('button', { name: 'Test connection' }).click();
    await row.locator('.test-summary.fail', { hasText: 'ews_blocked' }).waitFor({ timeout: 15_000 });
    const details = page.locator('tr[data-detail-for="support-in"]');
    // One line under the row; the detail and the remedy open with "What to do".
    await expect(details.locator('.feedback-text').textContent()).resolves.toMatch(
      /^Test failed: ews_blocked/,
    );
    await details.getByRole('button', { name: 'What to do about support-in' }).click();
    await expect(details.locator('.feedback-text').textContent()).resolves.toContain('HTTP 403');
    const remedy = await details.locator('.remedy').textContent();
    expect(remedy).toContain(allowListSnippet(harness!.env.ENTRA_CLIENT_ID!));
    // Backticks become code spans (DOM nodes, not markup), and no placeholder is left unfilled.
    await expect(details.locator('.remedy code').allTextContents()).resolves.toContain(
      allowListSnippet(harness!.env.ENTRA_CLIENT_ID!),
    );
    expect(remedy).not.toContain('`');
    expect(remedy).not.toContain('{name}');
    // When the test ran, next to the result: allow-list changes take up to 24 hours.
    await expect(row.locator('.test-summary.fail').textContent()).resolves.toMatch(
      /^✗ ews_blocked · just now$/,
    );
    expect(remedy).toContain('graph-mail');
    await page.screenshot({ path: join(tmpdir(), 'broker-console-ews-blocked.png') });
    harness!.services!.ews.setAccessPolicy();
  }, 60_000);

  it('adds the Graph connection of an EWS row in one click; the readiness view counts it', async () => {
    const page = await context!.newPage();
    await page.goto(`${harness!.baseUrl}/api/console`);
    const summary = page.locator('#graph-move-summary');
    await summary
      .filter({ hasText: '0 of 1 EWS connection has a working Microsoft Graph connection' })
      .waitFor();
    await expect(summary.textContent()).resolves.toMatch(
      /\d+ days? until Exchange Online turns EWS off \(2027-04-01\)/,
    );
    // The popup's sign-in consented to EWS only; a Global Administrator consents for the tenant.
    harness!.entra.grantAdminConsent(harness!.env.ENTRA_CLIENT_ID!);
    const ews = page.locator('tr[data-connection="support-in"]');
    // Everything but the row's next step sits in its menu, so the row stays one line high.
    await ews.getByRole('button', { name: 'More actions for support-in' }).click();
    await ews.getByRole('button', { name: 'Add the Graph connection support-in' }).click();
    // It asks for the name in the row (no browser dialog), with a suggestion.
    const name = page.getByRole('textbox', { name: 'Name of the Graph connection' });
    await expect(name.inputValue()).resolves.toBe('support-in-graph');
    await page.getByRole('button', { name: 'Add the Graph connection of support-in' }).click();
    const added = page.locator('tr[data-connection="support-in-graph"]');
    await added.locator('.status', { hasText: 'authorized' }).waitFor({ timeout: 15_000 });
    // Under its profile, in sight: how it gets its tokens.
    await expect(added.locator('td.profile .how').textContent()).resolves.toBe('via support-in');
    await expect(added.locator('td.profile').getAttribute('title')).resolves.toBe(
      'graph-mail · signs in through support-in',
    );
    await added.locator('.test-summary.ok', { hasText: 'Inbox · 12 items' }).waitFor();
    await expect(
      page.locator('tr[data-detail-for="support-in"] .row-feedback').textContent(),
    ).resolves.toContain('Added support-in-graph (Microsoft Graph)');
    await summary
      .filter({ hasText: '1 of 1 EWS connection has a working Microsoft Graph connection' })
      .waitFor();
    await expect(page.locator('tr[data-ews="support-in"] .graph-ready').textContent()).resolves.toBe(
      '✓ ready',
    );
    // It has its Graph connection now: the menu stops offering another.
    await ews.getByRole('button', { name: 'More actions for support-in' }).click();
    await ews.getByRole('button', { name: 'Refresh support-in' }).waitFor();
    await expect(
      ews.getByRole('button', { name: 'Add the Graph connection support-in' }).count(),
    ).resolves.toBe(0);
    await page.keyboard.press('Escape');
    await page.screenshot({ path: join(tmpdir(), 'broker-console-graph-move.png') });
  }, 60_000);

  it('says why a sign-in was refused under the row it was for', async () => {
    const page = await context!.newPage();
    await page.goto(`${harness!.baseUrl}/api/console`);
    await page.fill('input[name=name]', 'wrong-in');
    await page.fill('input[name=mailbox]', USERS.agent.username);
    await page.selectOption('select[name=profile]', 'ews');
    await page.click('form#define button[type=submit]');
    const row = page.locator('tr[data-connection="wrong-in"]');
    await row.locator('.status', { hasText: 'new' }).waitFor();
    const popupPromise = page.waitForEvent('popup');
    await row.getByRole('button', { name: 'Authorize wrong-in' }).click();
    const popup = await popupPromise;
    await popup.locator('input[name=passwd]').waitFor();
    // The support user signs in where the agent was expected.
    await popup.fill('input[name=login]', USERS.support.username);
    await popup.fill('input[name=passwd]', USERS.support.password);
    const closed = popup.waitForEvent('close', { timeout: 20_000 });
    await popup.getByRole('button', { name: 'Sign in' }).click();
    await closed;
    const line = page.locator('tr[data-detail-for="wrong-in"] .row-feedback.fail');
    await line.waitFor();
    await expect(line.textContent()).resolves.toContain(`You signed in as ${USERS.support.username}`);
    await expect(page.locator('#notice').isHidden()).resolves.toBe(true);
    // The window closing afterwards does not overwrite the reason.
    await page.waitForTimeout(2_000);
    await expect(line.textContent()).resolves.toContain(`You signed in as ${USERS.support.username}`);
    await page.close();
  }, 60_000);

  it('shows the result in the page itself when opened without an opener', async () => {
    // A fresh context: the sign-in service remembers the first test's session (single sign-on).
    const fresh = await browser!.newContext();
    const page = await fresh.newPage();
    await page.goto(`${harness!.baseUrl}/api/connections/support-in/authorize`);
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.waitForURL(/\/api\/callback/);
    await expect(page.locator('h1').textContent()).resolves.toBe('Sign-in was cancelled');
    expect(page.isClosed()).toBe(false);
  }, 60_000);
});
