/**
 * `npm start`: everything needed to use the broker on this machine, without Core Tools.
 *  - Azurite (tables) from node_modules, data kept in .azurite/;
 *  - the local secret-store key, generated once into .broker-local/ (git-ignored);
 *  - with no ENTRA_CLIENT_ID: the sandbox, a local Entra-compatible sign-in service with demo
 *    mailboxes (the same emulator the tests use), so the whole flow can be clicked through;
 *  - then the host (scripts/serve.ts) in a child process, because Node reads NODE_EXTRA_CA_CERTS
 *    (the sandbox's CA) only when a process starts.
 * Settings come from the environment, then local.settings.json "Values" (as `func start` reads them);
 * an empty value counts as unset, as in shared/config.ts (scripts/local-settings.ts).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEFAULT_AZURITE_PORTS, startAzurite } from '../sandbox/azurite';
import { startEntraEmulator } from '../sandbox/entra';
import { DEMO_MAILBOXES, startSandboxServices } from '../sandbox/services';
import { ensureTestPki } from '../sandbox/tls';
import {
  mergeSettings,
  readLocalSettings,
  sandboxPublicBaseUrl,
  sandboxSettings,
  wantsSandbox,
} from './local-settings';

const root = resolve(__dirname, '..');
const localDir = join(root, '.broker-local');

function localSecretKey(): string {
  const file = join(localDir, 'secret.key');
  if (!existsSync(file)) {
    mkdirSync(localDir, { recursive: true, mode: 0o700 });
    writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600 });
  }
  return readFileSync(file, 'utf8').trim();
}

const SANDBOX_USERS = [
  { username: 'support@contoso.test', password: 'Sandbox-Support-1' },
  { username: 'sales@contoso.test', password: 'Sandbox-Sales-1' },
  { username: 'admin@contoso.test', password: 'Sandbox-Admin-1', isAdmin: true },
];

async function main(): Promise<void> {
  const env = mergeSettings(readLocalSettings(join(root, 'local.settings.json')), process.env);
  const PORT = Number(env.BROKER_HOST_PORT ?? 7071);
  const children: { stop(): Promise<void> }[] = [];
  const stopAll = async () => {
    for (const child of children.reverse()) await child.stop().catch(() => undefined);
  };

  if (!env.AzureWebJobsStorage || env.AzureWebJobsStorage === 'UseDevelopmentStorage=true') {
    const azurite = await startAzurite({
      location: join(root, '.azurite'),
      preferredPorts: DEFAULT_AZURITE_PORTS,
      silent: true,
    });
    children.push(azurite);
    env.AzureWebJobsStorage = azurite.connectionString;
    console.log(`Azurite (storage emulator) is serving tables at ${azurite.tableUrl}`);
  }
  if (!env.KEY_VAULT_URL && !env.BROKER_LOCAL_SECRET_KEY) {
    env.BROKER_LOCAL_SECRET_KEY = localSecretKey();
    env.BROKER_LOCAL_SECRET_FILE ??= join(localDir, 'secrets.json');
  }

  const sandbox = wantsSandbox(env);
  if (sandbox) {
    const pki = ensureTestPki(env.SANDBOX_PKI_DIR ?? join(localDir, 'sandbox-pki'));
    const entra = await startEntraEmulator({ pki, port: Number(env.SANDBOX_ENTRA_PORT ?? 7443) });
    children.push({ stop: () => entra.close() });
    const tenant = entra.tenants.primary;
    for (const user of SANDBOX_USERS) entra.addUser({ ...user, tenantId: tenant.tenantId });
    const services = await startSandboxServices({ pki, authorityHost: entra.url, mailboxes: DEMO_MAILBOXES });
    children.push({ stop: () => services.close() });
    // The two diagnoses admins see from Exchange Online's EWS access controls (X-EWS-Policy-Reason).
    const ewsBlocked = /^(1|true)$/i.test(env.SANDBOX_EWS_BLOCKED ?? '');
    const ewsDisabled = /^(1|true)$/i.test(env.SANDBOX_EWS_DISABLED ?? '');
    if (ewsBlocked) services.ews.setAccessPolicy({ organizationEwsEnabled: true, allowedAppIds: [] });
    if (ewsDisabled) services.ews.setAccessPolicy({ organizationEwsEnabled: false });
    const publicBaseUrl = sandboxPublicBaseUrl(env, PORT);
    const app = entra.registerApp({
      clientSecret: randomBytes(24).toString('base64url'),
      redirectUris: [`${publicBaseUrl}/api/callback`],
      tenantId: tenant.tenantId,
      // As if deployed with enableAppOnly and admin consent: app-only connections work here too.
      roles: ['full_access_as_app', 'Mail.ReadWrite', 'Mail.Send'],
    });
    // The password grant (ROPC) cannot show a consent page: the sandbox's admin has consented.
    entra.grantAdminConsent(app.clientId);
    Object.assign(
      env,
      sandboxSettings(env, {
        port: PORT,
        authorityHost: entra.url,
        tenantId: tenant.tenantId,
        clientId: app.clientId,
        clientSecret: app.clientSecret ?? '',
        caCertFile: pki.caCertFile,
        proxyUrl: services.router.url,
      }),
    );
    console.log('');
    console.log('  SANDBOX: no ENTRA_CLIENT_ID is set, so sign-in is simulated on this machine.');
    console.log(`  Sign-in service (Entra-compatible emulator): ${entra.url}/${tenant.tenantId}`);
    console.log('  Demo accounts (user / password):');
    for (const user of SANDBOX_USERS) console.log(`    ${user.username} / ${user.password}`);
    console.log(
      `  Demo mailboxes (EWS and Graph; Test connection works): ${DEMO_MAILBOXES.map((m) => m.smtp).join(', ')}`,
    );
    console.log(`  shared@contoso.test is a shared mailbox support@contoso.test has Full Access to.`);
    if (ewsBlocked) {
      console.log(
        '  SANDBOX_EWS_BLOCKED: EWS answers 403 "EWS is blocked by policy" (this app is not in EwsAllowedAppIDs).',
      );
    }
    if (ewsDisabled) {
      console.log(
        '  SANDBOX_EWS_DISABLED: EWS answers 403 "EWS is disabled" (the organization\'s EwsEnabled is off).',
      );
    }
    console.log('');
  }

  const host = spawn(process.execPath, [require.resolve('tsx/cli'), join(__dirname, 'serve.ts')], {
    stdio: 'inherit',
    env: { ...env, BROKER_HOST_PORT: String(PORT) },
  });
  const shutdown = () => {
    host.kill('SIGTERM');
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  host.on('exit', (code) => {
    void stopAll().then(() => process.exit(code ?? 0));
  });
  if (sandbox) {
    console.log(`  Open http://localhost:${PORT}/api/console and click Authorize.`);
    console.log('');
  }
}

main().catch((error: unknown) => {
  console.error(`npm start failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
