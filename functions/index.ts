import { app } from '@azure/functions';
import { ConfigError, loadConfig } from '../shared/config';
import { adaptHttp } from './adapter';
import { broker } from './broker-instance';
import { httpFunctions } from './http-functions';
import { refreshTokensTimer } from './refresh-tokens';

// The Functions host's entry (package.json "main"). Bad settings stop start-up with one line.
try {
  loadConfig();
} catch (error) {
  if (error instanceof ConfigError) console.error(`ews-oauth-broker: ${error.message}`);
  throw error;
}

for (const definition of httpFunctions) {
  app.http(definition.name, {
    route: definition.route,
    methods: definition.methods,
    authLevel: definition.authLevel,
    handler: adaptHttp(definition.handler, broker),
  });
}

app.timer(refreshTokensTimer.name, {
  schedule: refreshTokensTimer.schedule,
  runOnStartup: false,
  useMonitor: true,
  handler: (timer, context) => refreshTokensTimer.run(broker(), context, timer),
});
