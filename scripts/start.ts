/**
 * `npm start`: everything needed to use the broker on this machine, without Core Tools.
 *  - Azurite (tables) from node_modules, data kept in .azurite/;
 *  - the local secret-store key, generated once into .broker-local/ (git-ignored);
 *  - with no ENTRA_CLIENT_ID: the sandbox, a local Entra-compatible sign-in service with demo
 *    mailboxes (the same emulator the tests use), so the whole flow can be clicked through; its
 *    tenant, app registration, keys, users and grants are kept in .broker-local/ across restarts;
 *  - then the host (scripts/serve.ts) in a child process, because Node reads NODE_EXTRA_CA_CERTS
 *    (the sandbox's CA) only when a process starts.
 * Settings come from the environment, then local.settings.json "Values" (as `func start` reads them);
 * an empty value counts as unset, as in shared/config.ts (scripts/local-settings.ts).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { DEFAULT_AZURITE_PORTS, isPortFree, startAzurite } from '../sandbox/azurite';
import { startEntraEmulator } from '../sandbox/entra';
import { DEMO_MAILBOXES, startSandboxServices } from '../sandbox/services';
import { keepSandboxState, readSandboxState } from '../sandbox/state-file';
import { ensureTestPki } from '../sandbox/tls';
import {
  mergeSettings,
  readLocalSettings,
  sandboxPublicBaseUrl,
  sandboxSettings,
  startOverAdvice,
  wantsSandbox,
} from './local-settings';

const root = resolve(__dirname, '..');
const localDir = join(root, '.broker-local');
const azuriteDir = join(root, '.azurite');

function localSecretKey(): string {
  const file = join(localDir, 'secret.key');
  if (!existsSync(file)) {
    mkdirSync(localDir, { recursive: true, mode: 0o700 });
    writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600 });
  }
  return readFileSync(file, 'utf8').trim();
}

/** A port `npm start` was told to bind is taken: one line naming the setting that moves it. */
class PortInUse extends Error {
  constructor(port: number, setting: string) {
    super(`port ${port} is in use (another npm start?). Stop that, or set ${setting} to a free port.`);
  }
}

/** Runs `bind`, turning "address in use" into a PortInUse naming the setting of the port it hit. */
async function binding<T>(settings: Record<number, string>, bind: () => Promise<T>): Promise<T> {
  try {
    return await bind();
  } catch (error) {
    const { code, port } = error as NodeJS.ErrnoException & { port?: number };
    const setting = port === undefined ? undefined : settings[port];
    if (code === 'EADDRINUSE' && port !== undefined && setting) throw new PortInUse(port, setting);
    throw error;
  }
}

/** The sandbox's App Registration has a name, as a real one does: the sign-in pages show it. */
const SANDBOX_APP_NAME = 'ews-oauth-broker (sandbox)';

const SANDBOX_USERS = [
  { username: 'support@contoso.test', password: 'Sandbox-Support-1' },
  { username: 'sales@contoso.test', password: 'Sandbox-Sales-1' },
  { username: 'admin@contoso.test', password: 'Sandbox-Admin-1', isAdmin: true },
];

const children: { stop(): Promise<void> }[] = [];
const stopAll = async () => {
  for (const child of children.reverse()) await child.stop().catch(() => undefined);
};

async function main(): Promise<void> {
  const env = mergeSettings(readLocalSettings(join(root, 'local.settings.json')), process.env);
  const PORT = Number(env.BROKER_HOST_PORT ?? 7071);
  // Before anything starts: the host binds last, and a taken port would waste the whole start.
  if (!(await isPortFree(PORT))) throw new PortInUse(PORT, 'BROKER_HOST_PORT');

  const localStorage = !env.AzureWebJobsStorage || env.AzureWebJobsStorage === 'UseDevelopmentStorage=true';
  if (localStorage) {
    const azurite = await startAzurite({
      location: azuriteDir,
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
    const stateFile = env.SANDBOX_STATE_FILE ?? join(localDir, 'sandbox.json');
    const saved = readSandboxState(stateFile);
    // Saved once the app is registered; until then nothing a browser did is worth keeping.
    const keeper: { kept?: ReturnType<typeof keepSandboxState> } = {};
    const entraPort = Number(env.SANDBOX_ENTRA_PORT ?? 7443);
    const signInPort = Number(env.SANDBOX_SIGN_IN_PORT ?? 7480);
    const ports = { [entraPort]: 'SANDBOX_ENTRA_PORT', [signInPort]: 'SANDBOX_SIGN_IN_PORT' };
    const entra = await binding(ports, () =>
      startEntraEmulator({
        pki,
        port: entraPort,
        // The pages a browser visits on plain-HTTP localhost: no certificate warning from the test CA.
        browserPort: signInPort,
        ...(saved ? { restore: saved.entra } : {}),
        onChange: () => keeper.kept?.changed(),
      }),
    );
    children.push({
      stop: async () => {
        keeper.kept?.flush();
        await entra.close();
      },
    });
    const tenant = entra.tenants.primary;
    for (const user of SANDBOX_USERS)
      if (!entra.findUser(user.username)) entra.addUser({ ...user, tenantId: tenant.tenantId });
    const services = await startSandboxServices({ pki, authorityHost: entra.url, mailboxes: DEMO_MAILBOXES });
    children.push({ stop: () => services.close() });
    // The two diagnoses admins see from Exchange Online's EWS access controls (X-EWS-Policy-Reason).
    const ewsBlocked = /^(1|true)$/i.test(env.SANDBOX_EWS_BLOCKED ?? '');
    const ewsDisabled = /^(1|true)$/i.test(env.SANDBOX_EWS_DISABLED ?? '');
    if (ewsBlocked) services.ews.setAccessPolicy({ organizationEwsEnabled: true, allowedAppIds: [] });
    if (ewsDisabled) services.ews.setAccessPolicy({ organizationEwsEnabled: false });
    const publicBaseUrl = sandboxPublicBaseUrl(env, PORT);
    const registered = saved ? entra.findApp(saved.clientId) : undefined;
    // Registered again after a restart with the same id and secret: the redirect URI follows the port.
    const app = entra.registerApp({
      ...(registered ? { clientId: registered.clientId } : {}),
      clientSecret: registered?.clientSecret ?? randomBytes(24).toString('base64url'),
      displayName: SANDBOX_APP_NAME,
      redirectUris: [`${publicBaseUrl}/api/callback`],
      tenantId: tenant.tenantId,
      // As if deployed with enableAppOnly and admin consent: app-only connections work here too.
      roles: [
        'full_access_as_app',
        'IMAP.AccessAsApp',
        'POP.AccessAsApp',
        'SMTP.SendAsApp',
        'Mail.ReadWrite',
        'Mail.Send',
      ],
    });
    // The password grant (ROPC) cannot show a consent page: the sandbox's admin has consented.
    entra.grantAdminConsent(app.clientId);
    keeper.kept = keepSandboxState(stateFile, () => ({
      version: 1,
      clientId: app.clientId,
      entra: entra.snapshot(),
    }));
    keeper.kept.flush();
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
    const shown = (path: string) => {
      const near = relative(process.cwd(), path);
      return near.startsWith('..') ? path : near;
    };
    const where = shown(stateFile);
    const outsideLocal = (path: string | undefined) =>
      path !== undefined && relative(localDir, path).startsWith('..');
    // Everything the sandbox keeps: its tenant and the tokens (.broker-local/, or where the
    // settings put them) and the connections (Azurite's folder, or the configured storage).
    const startOver = startOverAdvice([
      ...(outsideLocal(stateFile) ? [where] : []),
      ...(outsideLocal(env.BROKER_LOCAL_SECRET_FILE) ? [shown(env.BROKER_LOCAL_SECRET_FILE ?? '')] : []),
      `${shown(localDir)}/`,
      localStorage ? `${shown(azuriteDir)}/` : 'the connections in AzureWebJobsStorage',
    ]);
    console.log(
      saved
        ? `  Same sandbox as last time (tenant, app, users, sign-ins from ${where}); ${startOver}.`
        : `  A new sandbox, kept in ${where} across restarts; ${startOver}.`,
    );
    console.log('  Demo accounts (user / password):');
    for (const user of SANDBOX_USERS) console.log(`    ${user.username} / ${user.password}`);
    console.log(
      `  Demo mailboxes (EWS, Graph, IMAP, POP and SMTP; Test connection works): ${DEMO_MAILBOXES.map((m) => m.smtp).join(', ')}`,
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
    stdio: ['inherit', 'pipe', 'inherit'],
    env: { ...env, BROKER_HOST_PORT: String(PORT) },
  });
  // The host's lines pass through; "Open …" follows only once it actually listens.
  let opened = !sandbox;
  host.stdout.on('data', (chunk: Buffer) => {
    process.stdout.write(chunk);
    if (!opened && chunk.toString().includes('ews-oauth-broker is serving')) {
      opened = true;
      console.log('');
      console.log(`  Open http://localhost:${PORT}/api/console and click Authorize.`);
      console.log('');
    }
  });
  const shutdown = () => {
    host.kill('SIGTERM');
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  host.on('exit', (code) => {
    void stopAll().then(() => process.exit(code ?? 0));
  });
}

main().catch((error: unknown) => {
  console.error(`npm start failed: ${error instanceof Error ? error.message : String(error)}`);
  void stopAll().then(() => process.exit(1));
});
