/**
 * The local host process: validates the settings (one line and exit on a bad one, as in Azure),
 * then serves every function on http://localhost:7071/api/. Started by scripts/start.ts.
 */
import { createBroker } from '../shared/broker';
import { ConfigError, loadConfig } from '../shared/config';
import { refreshTokensTimer } from '../functions/refresh-tokens';
import { parseNcrontab } from '../shared/schedule/ncrontab';
import { startLocalTimer } from '../shared/schedule/local-timer';
import { startLocalHost } from './host';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`ews-oauth-broker: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
  const broker = createBroker(config);
  const port = Number(process.env.BROKER_HOST_PORT ?? 7071);
  const host = await startLocalHost({ broker, port, hostname: 'localhost' }).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    console.error(
      `ews-oauth-broker: port ${port} is in use. Stop what uses it, or set BROKER_HOST_PORT to a free port.`,
    );
    process.exit(1);
  });
  console.log(
    `ews-oauth-broker is serving ${host.url}/api/ (health: ${host.url}/api/health, console: ${host.url}/api/console)`,
  );
  console.log(
    `Secret store: ${broker.secrets.kind === 'key-vault' ? `Key Vault ${config.keyVaultUrls.join(', ')}` : `local encrypted file (development only) ${config.localSecretFile}`}`,
  );
  // The refreshTokens timer on the same NCRONTAB schedule as in Azure (the host runs one at a time).
  const timer = startLocalTimer({
    schedule: parseNcrontab(config.refresh.schedule),
    run: () => refreshTokensTimer.run(broker),
    onError: (error) => {
      broker.logger.error('refresh.timer_failed', { error });
    },
  });
  console.log(`refreshTokens timer: ${config.refresh.schedule} (NCRONTAB, UTC)`);
  const stop = () => {
    void Promise.all([timer.stop(), host.close(), broker.notifier.drain()]).then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(
    `ews-oauth-broker failed to start: ${error instanceof Error ? error.message : String(error)}`,
  );
  process.exit(1);
});
