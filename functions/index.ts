import { app } from '@azure/functions';
import { ConfigError, loadConfig, type BrokerConfig } from '../shared/config';
import { adaptHttp } from './adapter';
import { lazyBroker } from './broker-instance';
import { httpFunctions } from './http-functions';
import { refreshTokensTimer } from './refresh-tokens';
import { ROUTED_METHODS } from './route';

// The Functions host's entry (package.json "main"). Bad settings stop start-up with one line.
function validatedConfig(): BrokerConfig {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) console.error(`ews-oauth-broker: ${error.message}`);
    throw error;
  }
}

const broker = lazyBroker(validatedConfig());

for (const definition of httpFunctions) {
  app.http(definition.name, {
    route: definition.route,
    methods: ROUTED_METHODS,
    authLevel: definition.authLevel,
    handler: adaptHttp(definition, broker),
  });
}

app.timer(refreshTokensTimer.name, {
  schedule: refreshTokensTimer.schedule,
  runOnStartup: false,
  useMonitor: true,
  handler: (timer, context) => refreshTokensTimer.run(broker(), context, timer),
});

// The parts of this bundle the benchmarks build their broker and local host from
// (bench/support/env.ts), so that they measure the compiled code Azure runs. The host ignores them.
export { createBroker } from '../shared/broker';
export { loadConfig } from '../shared/config';
export { adaptHttp } from './adapter';
export { httpFunctions } from './http-functions';
