import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  chromium,
  type Browser as Chromium,
  type BrowserContext,
  type Page,
  type Request,
} from 'playwright-core';
import { seriousViolationsInBothSchemes } from '../support/axe';
import { api, freePort } from '../support/harness';
import { uniqueTablePrefix } from '../support/storage';

/**
 * `npm start` twice over the same `.broker-local/` (here a temporary one): connections authorized
 * before the restart keep refreshing, serving and testing, and Authorize works again — in Chromium
 * with certificate checks on (the sign-in pages are plain-HTTP localhost, nothing is ignored).
 */
const CHROMIUM = '/usr/bin/chromium';
const root = resolve(__dirname, '..', '..');
const SUPPORT = { username: 'support@contoso.test', password: 'Sandbox-Support-1' };
/** Git-ignored (.test-tmp): the sandbox's console as a new user first sees it. */
const SCREENSHOTS = join(root, '.test-tmp', 'screenshots');

interface Started {
  child: ChildProcess;
  output: () => string;
}

let running: Started | undefined;
let browser: Chromium | undefined;

async function stop(started: Started | undefined): Promise<void> {
  const child = started?.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGTERM');
  await exited;
}

afterAll(async () => {
  await browser?.close();
  await stop(running);
});

/** `npm start` as a user runs it (no app registered, no CA trusted), until it says where to open. */
async function npmStart(env: Record<string, string>): Promise<Started> {
  const inherited = { ...process.env };
  delete inherited.ENTRA_CLIENT_ID;
  delete inherited.NODE_EXTRA_CA_CERTS;
  const child = spawn(process.execPath, [require.resolve('tsx/cli'), join(root, 'scripts', 'start.ts')], {
    cwd: root,
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  for (let waited = 0; !output.includes('/api/console and click Authorize'); waited += 200) {
    if (waited > 45_000 || child.exitCode !== null) throw new Error(`npm start did not come up:\n${output}`);
    await new Promise((done) => setTimeout(done, 200));
  }
  return { child, output: () => output };
}

/** The console's Authorize: a popup on the authorize route; sign in and accept when asked. */
async function authorizeInPopup(context: BrowserContext, base: string, name: string): Promise<void> {
  const page = await context.newPage();
  await page.goto(`${base}/api/console`);
  // Certificate checks are on: an untrusted certificate would stop at Chromium's interstitial
  // ("Your connection is not private") instead of reaching the sign-in form or closing.
  const signInPages: string[] = [];
  const seen = (request: Request) => {
    if (request.isNavigationRequest() && !request.url().startsWith(base)) signInPages.push(request.url());
  };
  context.on('request', seen);
  const popupPromise = page.waitForEvent('popup');
  // What the console's Authorize button does (the console's own test clicks it).
  await page.evaluate(
    `void window.open(${JSON.stringify(`/api/connections/${name}/authorize`)}, 'authorize', 'popup,width=520,height=640')`,
  );
  const popup = await popupPromise;
  const closed = popup.waitForEvent('close', { timeout: 30_000 });
  await signInIfAsked(popup);
  await closed;
  context.off('request', seen);
  expect(signInPages.length).toBeGreaterThan(0);
  for (const url of signInPages) expect(url).toMatch(/^http:\/\/localhost:\d+\//);
  await page.close();
}

async function signInIfAsked(popup: Page): Promise<void> {
  const form = popup.locator('input[name=passwd], button#idSIButton9');
  await form
    .first()
    .waitFor({ timeout: 15_000 })
    .catch(() => undefined);
  if (popup.isClosed()) return;
  if (await popup.locator('input[name=passwd]').count()) {
    await expect(popup.textContent('body')).resolves.toContain('ews-oauth-broker (sandbox)');
    await popup.fill('input[name=login]', SUPPORT.username);
    await popup.fill('input[name=passwd]', SUPPORT.password);
    await popup.getByRole('button', { name: 'Sign in' }).click();
  }
  const accept = popup.getByRole('button', { name: /accept/i });
  await accept.waitFor({ timeout: 5_000 }).catch(() => undefined);
  if (!popup.isClosed() && (await accept.count())) await accept.click();
}

function warningsIn(output: string): string[] {
  // The broker's own warnings and errors, and Node's (deprecations, TLS settings).
  return output.split('\n').filter((line) => /"level":"(warn|error)"|\(node:\d+\) \w*Warning/.test(line));
}

it('keeps the sandbox across a restart: refresh, token, Authorize and Test connection (EWS, Graph, IMAP, POP, SMTP) still work', async () => {
  const local = mkdtempSync(join(tmpdir(), 'sandbox-restart-'));
  const port = await freePort();
  const env = {
    BROKER_HOST_PORT: String(port),
    SANDBOX_ENTRA_PORT: String(await freePort()),
    SANDBOX_SIGN_IN_PORT: String(await freePort()),
    SANDBOX_STATE_FILE: join(local, 'sandbox.json'),
    SANDBOX_PKI_DIR: join(local, 'sandbox-pki'),
    AzureWebJobsStorage: process.env.TEST_STORAGE_CONNECTION_STRING ?? '',
    BROKER_TABLE_PREFIX: uniqueTablePrefix(),
    BROKER_LOCAL_SECRET_KEY: randomBytes(32).toString('base64'),
    BROKER_LOCAL_SECRET_FILE: join(local, 'secrets.json'),
  };
  const base = `http://localhost:${port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });

  running = await npmStart(env);
  const first = running.output();
  expect(first).toContain(`A new sandbox, kept in ${env.SANDBOX_STATE_FILE} across restarts`);
  // "Open …" only once the host listens.
  expect(first.indexOf('ews-oauth-broker is serving')).toBeGreaterThan(-1);
  expect(first.indexOf('/api/console and click Authorize')).toBeGreaterThan(first.indexOf('is serving'));
  for (const [name, profile] of [
    ['ews', 'ews'],
    ['graph-mail', 'graph-mail'],
  ] as const) {
    expect(
      (await api(base, 'PUT', `/api/connections/${name}`, { mailbox: SUPPORT.username, profile })).status,
    ).toBe(201);
  }
  const context = await browser.newContext();
  await authorizeInPopup(context, base, 'ews');
  await authorizeInPopup(context, base, 'graph-mail');
  for (const name of ['ews', 'graph-mail']) {
    expect((await api(base, 'GET', `/api/connections/${name}`)).json).toMatchObject({ status: 'authorized' });
  }
  // IMAP, POP and SMTP sign in through the ews connection's sign-in: no popup, usable at once.
  for (const profile of ['imap', 'pop', 'smtp']) {
    const defined = await api(base, 'PUT', `/api/connections/${profile}`, {
      mailbox: SUPPORT.username,
      profile,
      signInFrom: 'ews',
    });
    expect({ profile, status: defined.status, json: defined.json }).toMatchObject({
      profile,
      status: 201,
      json: { status: 'authorized' },
    });
  }
  await stop(running);
  expect(warningsIn(running.output())).toEqual([]);
  expect(statSync(env.SANDBOX_STATE_FILE).mode & 0o777).toBe(0o600);

  running = await npmStart(env);
  expect(running.output()).toContain('Same sandbox as last time');
  expect(running.output()).not.toContain('A new sandbox');
  // The refresh token from before the restart is still one the sign-in service knows.
  const refreshed = await api(base, 'POST', '/api/connections/ews/refresh');
  expect(refreshed.status).toBe(200);
  expect(refreshed.json).toMatchObject({ result: 'refreshed' });
  const token = await api(base, 'GET', '/api/connections/ews/token');
  expect(token.status).toBe(200);
  // Authorize again, in a browser whose sign-in session the restart forgot: the same user (object id).
  await authorizeInPopup(await browser.newContext(), base, 'ews');
  expect((await api(base, 'GET', '/api/connections/ews')).json).toMatchObject({ status: 'authorized' });
  for (const name of ['ews', 'graph-mail']) {
    const { json } = await api(base, 'POST', `/api/connections/${name}/test`);
    expect(json).toMatchObject({ ok: true, details: { folder: 'Inbox', totalCount: 12 } });
  }
  // The sandbox serves IMAP, POP and SMTP too (sandbox/mail), through the same CONNECT proxy.
  for (const name of ['imap', 'pop']) {
    const { json } = await api(base, 'POST', `/api/connections/${name}/test`);
    expect({ name, json }).toMatchObject({ name, json: { ok: true, details: { totalCount: 12 } } });
  }
  expect((await api(base, 'POST', '/api/connections/smtp/test')).json).toMatchObject({
    ok: true,
    protocol: 'smtp',
  });
  // The console says it is the sandbox, in its header badge and a banner; screenshots for review.
  mkdirSync(SCREENSHOTS, { recursive: true });
  const consolePage = await (await browser.newContext()).newPage();
  await consolePage.goto(`${base}/api/console`);
  await consolePage.locator('tr[data-connection="smtp"]').waitFor();
  await expect(consolePage.locator('header .env').textContent()).resolves.toContain('Sandbox');
  await expect(consolePage.locator('p.sandbox').textContent()).resolves.toContain(
    'Nothing reaches Microsoft',
  );
  for (const width of [1280, 390]) {
    await consolePage.setViewportSize({ width, height: 900 });
    for (const colorScheme of ['light', 'dark'] as const) {
      await consolePage.emulateMedia({ colorScheme });
      await consolePage.screenshot({
        path: join(SCREENSHOTS, `sandbox-console-${width}-${colorScheme}.png`),
        fullPage: true,
      });
    }
    expect({ width, findings: await seriousViolationsInBothSchemes(consolePage) }).toEqual({
      width,
      findings: [],
    });
  }
  await stop(running);
  expect(warningsIn(running.output())).toEqual([]);
}, 180_000);
