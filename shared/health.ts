import type { ConnectionRegistry } from './connections/registry';
import type { Logger } from './logging';
import type { MsalClientFactory } from './oauth/msal-client';
import type { BrokerHealthState } from './oauth/refresh';
import type { SecretStore } from './secrets/secret-store';
import { BrokerError } from './errors';

/** How long the store and metadata checks are reused: /health is public, and may be polled hard. */
const CHECK_TTL_MS = 20_000;

export interface HealthReport {
  ok: boolean;
  checks: Record<string, string>;
  configurationProblem?: { message: string; aadsts: string | null; at: string };
}

/**
 * The broker's health: storage, secret store and Entra metadata reachable (checked at most every
 * 20 s, one check at a time however many ask), and no configuration problem seen by a refresh
 * (read live: it is memory). The public sees only ok/failing; admins see why.
 */
export class HealthService {
  private probed: { at: number; checks: Promise<Record<string, string>> } | undefined;

  constructor(
    private readonly broker: {
      registry: Pick<ConnectionRegistry, 'check'>;
      secrets: Pick<SecretStore, 'check'>;
      msal: Pick<MsalClientFactory, 'resolvedTenantId'>;
      health: BrokerHealthState;
      logger: Logger;
    },
  ) {}

  async report(): Promise<HealthReport> {
    const now = Date.now();
    if (!this.probed || now - this.probed.at > CHECK_TTL_MS) {
      this.probed = { at: now, checks: this.probe() };
    }
    const checks = { ...(await this.probed.checks) };
    // Set by a refresh that Entra refused for the app itself (bad secret, unknown app): every
    // connection would fail the same way, so the broker as a whole is unhealthy.
    const problem = this.broker.health.configurationProblem;
    checks.entra_credentials = problem ? 'configuration_error' : 'ok';
    return {
      ok: Object.values(checks).every((value) => value === 'ok'),
      checks,
      ...(problem
        ? {
            configurationProblem: {
              ...problem,
              aadsts: problem.aadsts !== undefined ? `AADSTS${problem.aadsts}` : null,
            },
          }
        : {}),
    };
  }

  private async probe(): Promise<Record<string, string>> {
    const checks: Record<string, string> = {};
    const run = async (name: string, check: () => Promise<unknown>) => {
      try {
        await check();
        checks[name] = 'ok';
      } catch (error) {
        checks[name] = error instanceof BrokerError ? error.code : 'unavailable';
        this.broker.logger.warn('health.check_failed', { check: name, error });
      }
    };
    await Promise.all([
      run('storage', () => this.broker.registry.check()),
      run('secrets', () => this.broker.secrets.check()),
      run('entra', () => this.broker.msal.resolvedTenantId()),
    ]);
    return checks;
  }
}
