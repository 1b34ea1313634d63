import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { signIn } from '../../sandbox/entra/sign-in-driver';
import { api, Browser, freePort } from '../support/harness';
import { uniqueTablePrefix } from '../support/storage';

/**
 * The README's first command: `npm start` with no ENTRA_CLIENT_ID runs the sandbox, and a demo
 * connection authorized there passes Test connection over EWS and Graph (the sandbox's own
 * stand-ins, reached through its proxy). Ports, storage and the CA are the test run's.
 */
let child: ChildProcess | undefined;
let output = '';

afterAll(async () => {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((done) => child?.once('exit', done));
  child.kill('SIGTERM');
  await exited;
});

it('npm start serves the sandbox, where Test connection opens the demo mailboxes', async () => {
  const port = await freePort();
  const root = resolve(__dirname, '..', '..');
  // As a user runs it: no app registered (sandbox), and no CA trusted beforehand.
  const inherited = { ...process.env };
  delete inherited.ENTRA_CLIENT_ID;
  delete inherited.NODE_EXTRA_CA_CERTS;
  child = spawn(process.execPath, [require.resolve('tsx/cli'), join(root, 'scripts', 'start.ts')], {
    cwd: root,
    env: {
      ...inherited,
      BROKER_HOST_PORT: String(port),
      SANDBOX_ENTRA_PORT: String(await freePort()),
      SANDBOX_SIGN_IN_PORT: String(await freePort()),
      SANDBOX_PKI_DIR: process.env.TEST_PKI_DIR,
      // Not the developer's .broker-local/sandbox.json: this run starts a sandbox of its own.
      SANDBOX_STATE_FILE: join(mkdtempSync(join(tmpdir(), 'sandbox-start-state-')), 'sandbox.json'),
      AzureWebJobsStorage: process.env.TEST_STORAGE_CONNECTION_STRING,
      BROKER_TABLE_PREFIX: uniqueTablePrefix(),
      BROKER_LOCAL_SECRET_KEY: randomBytes(32).toString('base64'),
      BROKER_LOCAL_SECRET_FILE: join(mkdtempSync(join(tmpdir(), 'sandbox-start-')), 'secrets.json'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const base = `http://localhost:${port}`;
  for (let waited = 0; !output.includes('is serving'); waited += 200) {
    if (waited > 30_000 || child.exitCode !== null) throw new Error(`npm start did not come up:\n${output}`);
    await new Promise((done) => setTimeout(done, 200));
  }
  expect(output).toContain('SANDBOX');
  expect(output).toContain('support@contoso.test');

  for (const [name, definition] of [
    ['demo-ews', { mailbox: 'support@contoso.test', profile: 'ews' }],
    ['demo-graph', { mailbox: 'support@contoso.test', profile: 'graph-mail' }],
  ] as const) {
    expect((await api(base, 'PUT', `/api/connections/${name}`, definition)).status).toBe(201);
    const browser = new Browser();
    const start = await browser.get(`${base}/api/connections/${name}/authorize`);
    const callback = await signIn(start.headers.get('location') ?? '', {
      username: 'support@contoso.test',
      password: 'Sandbox-Support-1',
      consent: 'accept',
    });
    expect((await browser.get(callback)).status).toBe(200);
    const { json } = await api(base, 'POST', `/api/connections/${name}/test`);
    expect(json).toMatchObject({ ok: true, details: { folder: 'Inbox', totalCount: 12, unreadCount: 3 } });
  }

  // App-only and the password grant work in the sandbox too, without a browser.
  await api(base, 'PUT', '/api/connections/demo-app', {
    mailbox: 'sales@contoso.test',
    profile: 'ews',
    grant: 'client_credentials',
  });
  expect((await api(base, 'POST', '/api/connections/demo-app/authorize')).status).toBe(200);
  expect((await api(base, 'POST', '/api/connections/demo-app/test')).json).toMatchObject({
    ok: true,
    details: { totalCount: 5 },
  });
  await api(base, 'PUT', '/api/connections/demo-ropc', {
    mailbox: 'support@contoso.test',
    profile: 'graph-mail',
    grant: 'password',
  });
  await api(base, 'PUT', '/api/connections/demo-ropc/password', { password: 'Sandbox-Support-1' });
  expect((await api(base, 'POST', '/api/connections/demo-ropc/authorize')).status).toBe(200);
  expect((await api(base, 'POST', '/api/connections/demo-ropc/test')).json).toMatchObject({ ok: true });
}, 90_000);
