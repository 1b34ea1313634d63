import type { TokenCredential } from '@azure/identity';
import type { BrokerConfig } from './config';
import { createAzureCredential } from './azure-credential';
import type { AuditLog } from './audit/audit-log';
import { TableAuditLog } from './audit/table-audit-log';
import type { ConnectionRegistry } from './connections/registry';
import { TableConnectionRegistry } from './connections/table-registry';
import { createLogger, type Logger } from './logging';
import { createOutbound, type Outbound } from './net/outbound';
import type { AuthSessionStore } from './oauth/auth-session';
import { AuthorizationService } from './oauth/authorization';
import { createMsalClientFactory, type MsalClientFactory } from './oauth/msal-client';
import { TableAuthSessionStore } from './oauth/table-session-store';
import { TokenService } from './oauth/token-service';
import { createSecretStore } from './secrets';
import type { SecretStore } from './secrets/secret-store';

/** Everything the routes and the timer need, built once per process from the configuration. */
export interface Broker {
  config: BrokerConfig;
  logger: Logger;
  now: () => Date;
  outbound: Outbound;
  registry: ConnectionRegistry;
  sessions: AuthSessionStore;
  audit: AuditLog;
  secrets: SecretStore;
  msal: MsalClientFactory;
  tokens: TokenService;
  authorization: AuthorizationService;
}

export interface BrokerOverrides {
  logger?: Logger;
  now?: () => Date;
  credential?: TokenCredential;
}

export function createBroker(config: BrokerConfig, overrides: BrokerOverrides = {}): Broker {
  const logger = overrides.logger ?? createLogger();
  const now = overrides.now ?? (() => new Date());
  const credential = overrides.credential ?? createAzureCredential(config);
  const outbound = createOutbound(config);
  const storage = { settings: config.storage, credential, tablePrefix: config.tablePrefix };
  const registry = new TableConnectionRegistry(storage);
  const sessions = new TableAuthSessionStore(storage);
  const audit = new TableAuditLog(storage);
  const secrets = createSecretStore(config, credential, { logger });
  const msal = createMsalClientFactory(
    config,
    outbound,
    logger,
    config.clientCredential.kind === 'managed-identity' ? credential : undefined,
  );
  const tokens = new TokenService({ registry, secrets, audit, logger, now });
  const authorization = new AuthorizationService({
    config,
    registry,
    sessions,
    audit,
    msal,
    tokens,
    logger,
    now,
  });
  return { config, logger, now, outbound, registry, sessions, audit, secrets, msal, tokens, authorization };
}
