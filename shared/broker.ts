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
import { AuthorizationService, type StartedAuthorization } from './oauth/authorization';
import { InvitationService } from './invitations/invitations';
import type { InvitationStore } from './invitations/invitation';
import { TableInvitationStore } from './invitations/table-invitation-store';
import { createMsalClientFactory, type MsalClientFactory } from './oauth/msal-client';
import { TableAuthSessionStore } from './oauth/table-session-store';
import { ConnectionStateWriter } from './connections/state';
import { RefreshService, type BrokerHealthState } from './oauth/refresh';
import { TokenReader } from './oauth/token-reader';
import { ConnectionLifecycle } from './connections/lifecycle';
import { HealthService } from './health';
import { ConnectionTester } from './probes/tester';
import type { Notifier } from './notify/notifier';
import { createNotifier } from './notify/webhook-notifier';
import type { LeaseStore } from './storage/lease';
import { RowLeaseStore } from './connections/row-lease';
import { createSecretStore, type KeyVaultTuning } from './secrets';
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
  state: ConnectionStateWriter;
  authorization: AuthorizationService;
  invitations: InvitationService<StartedAuthorization>;
  leases: LeaseStore;
  notifier: Notifier;
  healthState: BrokerHealthState;
  refresher: RefreshService;
  tokenReader: TokenReader;
  tester: ConnectionTester;
  connections: ConnectionLifecycle;
  healthService: HealthService;
}

export interface BrokerOverrides {
  logger?: Logger;
  now?: () => Date;
  credential?: TokenCredential;
  /** Refresh tuning for tests and benchmarks. */
  refresh?: { slotTimeoutMs?: number; leaseMs?: number };
  tokenMemoryTtlMs?: number;
  /** Key Vault retry and poll tuning (tests shorten the waits meant for the real service). */
  keyVault?: KeyVaultTuning;
}

/**
 * The composition root: builds each part once, in dependency order, and hands it to the parts that
 * use it. Long on purpose (one statement per part, its dependencies listed by name); splitting it
 * would only pass the same parts through more parameters.
 */
export function createBroker(config: BrokerConfig, overrides: BrokerOverrides = {}): Broker {
  const logger = overrides.logger ?? createLogger();
  const now = overrides.now ?? (() => new Date());
  const credential = overrides.credential ?? createAzureCredential(config);
  const outbound = createOutbound(config);
  const { registry, sessions, audit, leases, invitationStore } = createTableStores(config, credential, now);
  const secrets = createSecretStore(config, credential, { logger, keyVault: overrides.keyVault });
  const msal = createMsalClientFactory(
    config,
    outbound,
    logger,
    config.clientCredential.kind === 'managed-identity' ? credential : undefined,
  );
  const notifier = createNotifier({
    url: config.notify.webhookUrl,
    secret: config.notify.webhookSecret,
    outbound,
    logger,
    now,
  });
  const state = new ConnectionStateWriter({
    registry,
    secrets,
    audit,
    logger,
    now,
    notifier,
    leases,
    cacheWriteHours: config.refresh.cacheWriteHours,
    publicBaseUrl: config.publicBaseUrl,
    // The reader is built below (it needs the refresher, which needs this writer); the hook runs later.
    onChanged: (name) => {
      tokenReader.forget(name);
    },
  });
  const invitations: InvitationService<StartedAuthorization> = new InvitationService<StartedAuthorization>({
    config,
    registry,
    store: invitationStore,
    state,
    leases,
    now,
    // The authorization service is built next (it marks invitations used); the hook runs later.
    signIn: (connection, invitation, actor): Promise<StartedAuthorization> =>
      authorization.startForInvitation(connection, invitation, actor),
  });
  const authorization = new AuthorizationService({
    invitations,
    config,
    registry,
    sessions,
    msal,
    state,
    secrets,
    logger,
    now,
    // Closures: the refresh service is built next, and is only called once requests arrive.
    dependants: {
      signInThroughSource: (dependant, actor) => refresher.signInThroughSource(dependant, actor),
      reviveDependants: (source, actor) => refresher.reviveDependants(source, actor),
    },
  });
  const healthState: BrokerHealthState = { configurationProblem: undefined };
  const refresher = new RefreshService({
    config,
    registry,
    secrets,
    msal,
    state,
    logger,
    now,
    health: healthState,
    retryAfterFor: (correlationId) => outbound.retryAfterFor(correlationId),
    ...overrides.refresh,
  });
  const tokenReader = new TokenReader({
    registry,
    secrets,
    refresher,
    marginMs: config.refresh.marginMs,
    now,
    memoryTtlMs: overrides.tokenMemoryTtlMs,
  });
  const tester = new ConnectionTester({ config, registry, tokenReader, outbound, logger, state });
  const connections = new ConnectionLifecycle({
    registry,
    state,
    leases,
    invitations,
    signInThroughSource: async (dependant, actor) =>
      (await refresher.signInThroughSource(dependant, actor)).row,
  });
  const healthService = new HealthService({ registry, secrets, msal, health: healthState, logger });
  return {
    config,
    logger,
    now,
    outbound,
    registry,
    sessions,
    audit,
    secrets,
    msal,
    state,
    authorization,
    invitations,
    leases,
    notifier,
    healthState,
    refresher,
    tokenReader,
    tester,
    connections,
    healthService,
  };
}

/** The stores kept in Table storage: one account, credential, table prefix and proxy for all five. */
function createTableStores(
  config: BrokerConfig,
  credential: TokenCredential,
  now: () => Date,
): {
  registry: ConnectionRegistry;
  sessions: AuthSessionStore;
  audit: AuditLog;
  leases: LeaseStore;
  invitationStore: InvitationStore;
} {
  const storage = {
    settings: config.storage,
    credential,
    tablePrefix: config.tablePrefix,
    proxy: config.proxy,
  };
  const registry = new TableConnectionRegistry(storage);
  return {
    registry,
    sessions: new TableAuthSessionStore(storage),
    invitationStore: new TableInvitationStore(storage),
    audit: new TableAuditLog(storage),
    // A connection's lease lives in its registry row: the refresh claims and gives it back with the
    // row writes it makes anyway (see RefreshService.refresh).
    leases: new RowLeaseStore(registry, now),
  };
}
