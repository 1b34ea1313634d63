/**
 * Child process of the benchmarks: the Entra ID and Key Vault emulators, driven over IPC. They run
 * outside the broker's process so the broker's figures (CPU, event-loop time, RSS) are its own, as
 * they would be in Azure where Entra and Key Vault are remote services.
 */
import { startEntraEmulator, type EntraEmulator } from '../../sandbox/entra';
import { startKeyVaultEmulator, type KeyVaultEmulator } from '../../sandbox/keyvault';
import { ensureTestPki } from '../../sandbox/tls';
import type { EmulatorInfo, EmulatorRequest, EmulatorResponse, InitParams, KeyVaultStatsView } from './rpc';

let entra: EntraEmulator | undefined;
let keyVault: KeyVaultEmulator | undefined;
/** Added to the Key Vault emulator's clock (its throttling windows): lets seeding skip waiting out windows. */
let vaultClockOffsetMs = 0;

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is not started`);
  return value;
}

async function init(params: InitParams): Promise<EmulatorInfo> {
  const pki = ensureTestPki(params.pkiDir);
  entra = await startEntraEmulator({ pki });
  const tenant = entra.tenants.primary;
  entra.addUser({
    username: params.user.username,
    password: params.user.password,
    tenantId: tenant.tenantId,
  });
  const app = entra.registerApp({
    clientSecret: params.clientSecret,
    redirectUris: [params.redirectUri],
    tenantId: tenant.tenantId,
  });
  const identity = entra.addManagedIdentity();
  const emulator = entra;
  keyVault = await startKeyVaultEmulator({
    pki,
    now: () => Date.now() + vaultClockOffsetMs,
    limits: params.vaultLimits,
    authority: `${entra.url}/${tenant.tenantId}`,
    verifyToken: (bearer) => emulator.verifyAccessToken(bearer, 'https://vault.azure.net').valid,
  });
  return {
    entraUrl: entra.url,
    tenantId: tenant.tenantId,
    clientId: app.clientId,
    vaultUrl: keyVault.url,
    identity: { endpoint: identity.endpoint, header: identity.identityHeader, clientId: identity.clientId },
  };
}

function vaultStats(): KeyVaultStatsView {
  // Everything but the reset function, which cannot cross the process boundary.
  const { reset, ...counters } = need(keyVault, 'Key Vault emulator').stats;
  return counters;
}

async function handle(request: EmulatorRequest): Promise<unknown> {
  switch (request.method) {
    case 'init':
      return init(request.params);
    case 'mint': {
      const emulator = need(entra, 'Entra emulator');
      const { count, ...grant } = request.params;
      return Array.from({ length: count }, () => emulator.mintRefreshToken(grant));
    }
    case 'latency':
      need(entra, 'Entra emulator').faults.latencyMs = request.params.entraMs;
      need(keyVault, 'Key Vault emulator').faults.latencyMs = request.params.vaultMs;
      return null;
    case 'entraStats':
      return JSON.parse(JSON.stringify(need(entra, 'Entra emulator').stats)) as unknown;
    case 'vaultStats':
      return vaultStats();
    case 'resetStats': {
      need(keyVault, 'Key Vault emulator').stats.reset();
      const stats = need(entra, 'Entra emulator').stats;
      stats.requests = {};
      stats.refreshes = 0;
      stats.tokenErrors = 0;
      stats.managedIdentityTokens = 0;
      return null;
    }
    case 'advanceVaultClock':
      vaultClockOffsetMs += request.params.ms;
      return null;
    case 'memory':
      return process.memoryUsage().rss;
    case 'close':
      await keyVault?.close();
      await entra?.close();
      setImmediate(() => process.exit(0));
      return null;
  }
}

process.on('message', (message: EmulatorRequest) => {
  handle(message).then(
    (result) => {
      const response: EmulatorResponse = { id: message.id, ok: true, result };
      process.send?.(response);
    },
    (error: unknown) => {
      const response: EmulatorResponse = {
        id: message.id,
        ok: false,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      };
      process.send?.(response);
    },
  );
});
// The parent went away (finished or killed): nothing left to serve.
process.on('disconnect', () => process.exit(0));
