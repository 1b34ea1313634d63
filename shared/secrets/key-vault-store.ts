import { SecretClient, type KeyVaultSecret, type SecretClientOptions } from '@azure/keyvault-secrets';
import type { TokenCredential } from '@azure/identity';
import { azureSdkProxy } from '../azure-credential';
import type { BrokerConfig } from '../config';
import { BrokerError, statusOf } from '../errors';
import type { Logger } from '../logging';
import type { SecretProperties, SecretStore, StoredSecret } from './secret-store';
import { assertValidSecretInput, assertValidSecretName } from './validation';
import { isLoopbackHost } from '../net/loopback';
import { parseRetryAfter } from '../net/retry-after';

type PipelinePolicy = NonNullable<SecretClientOptions['additionalPolicies']>[number]['policy'];

export interface KeyVaultTuning {
  /** Retries of one request after 429, 408, 5xx or a network error (SDK retry policy). Default 4. */
  maxRetries?: number;
  /** First back-off of the exponential strategy (ms; doubles per retry, with jitter). Default 800. */
  retryDelayInMs?: number;
  /** Longest exponential back-off (ms). Default 8,000. */
  maxRetryDelayInMs?: number;
  /**
   * A 429/503 whose Retry-After asks for longer than this (seconds) is not waited for: the call
   * fails at once with `upstream_unavailable` and the vault's `retryAfterSeconds`, so a caller
   * (an HTTP request, a timer run) is never parked for minutes. Default 10.
   */
  maxRetryAfterSeconds?: number;
  /** Interval of the SDK's delete/recover pollers (ms). The SDK's default is 2,000. */
  pollIntervalMs?: number;
  /** Upper bound of one store call, retries and polling included (ms). Default 30,000. */
  operationTimeoutMs?: number;
}

export interface KeyVaultSecretStoreOptions extends KeyVaultTuning {
  /** e.g. `https://contoso-broker.vault.azure.net` */
  vaultUrl: string;
  credential: TokenCredential;
  logger?: Logger;
  /** Extra SecretClient options (tests add pipeline policies here). */
  clientOptions?: SecretClientOptions;
  /** HTTPS_PROXY / NO_PROXY (`config.proxy`); without it the SDK reads them from `process.env` itself. */
  proxy?: BrokerConfig['proxy'];
}

const DEFAULTS = {
  maxRetries: 4,
  retryDelayInMs: 800,
  maxRetryDelayInMs: 8_000,
  maxRetryAfterSeconds: 10,
  pollIntervalMs: 2_000,
  operationTimeoutMs: 30_000,
} as const;

/** A name never written by the broker: `check()` reads it and expects 404. */
const HEALTH_PROBE_NAME = 'broker-health-probe';

/** Thrown inside the pipeline when the vault asks us to wait longer than we are willing to. */
class RetryAfterTooLongError extends Error {
  constructor(
    readonly status: number,
    readonly retryAfterSeconds: number,
  ) {
    super(`Key Vault asked to retry after ${retryAfterSeconds} s (HTTP ${status})`);
    this.name = 'RetryAfterTooLongError';
  }
}

/**
 * Runs inside the SDK's retry loop (position `perRetry`): when a 429/503 carries a Retry-After
 * above the cap, it stops the loop by throwing an error the retry policy does not retry.
 */
function retryAfterCapPolicy(maxSeconds: number): PipelinePolicy {
  return {
    name: 'brokerRetryAfterCap',
    async sendRequest(request, next) {
      const response = await next(request);
      if (response.status === 429 || response.status === 503) {
        const seconds = parseRetryAfter(response.headers.get('retry-after'));
        if (seconds !== undefined && seconds > maxSeconds)
          throw new RetryAfterTooLongError(response.status, seconds);
      }
      return response;
    },
  };
}

/**
 * The SecretClient the broker uses (also what tests use, so they exercise the same pipeline).
 * Retries are the SDK's own policy (it honours Retry-After on 429/503 and backs off
 * exponentially on 408/5xx and network errors), bounded in count and in wait.
 */
export function createSecretClient(
  vaultUrl: string,
  credential: TokenCredential,
  tuning: KeyVaultTuning = {},
  extra: SecretClientOptions = {},
  proxy?: BrokerConfig['proxy'],
): SecretClient {
  const settings = resolveTuning(tuning);
  const loopback = isLoopbackHost(new URL(vaultUrl).hostname);
  const network = proxy ? azureSdkProxy(proxy) : { additionalPolicies: [] };
  return new SecretClient(vaultUrl, credential, {
    ...network,
    ...extra,
    retryOptions: {
      maxRetries: settings.maxRetries,
      retryDelayInMs: settings.retryDelayInMs,
      maxRetryDelayInMs: settings.maxRetryDelayInMs,
      ...extra.retryOptions,
    },
    additionalPolicies: [
      ...network.additionalPolicies,
      { policy: retryAfterCapPolicy(settings.maxRetryAfterSeconds), position: 'perRetry' },
      ...(extra.additionalPolicies ?? []),
    ],
    // The SDK only sends its token to a vault whose host is a subdomain of the resource named in
    // the challenge (`vault.azure.net`), so a look-alike host cannot harvest a Key Vault token. A
    // loopback vault (the emulator at https://127.0.0.1:port) can never pass that check, so it is
    // switched off for loopback hosts only; every real vault URL keeps it.
    disableChallengeResourceVerification: loopback || extra.disableChallengeResourceVerification === true,
  });
}

function resolveTuning(tuning: KeyVaultTuning): Required<KeyVaultTuning> {
  return {
    maxRetries: tuning.maxRetries ?? DEFAULTS.maxRetries,
    retryDelayInMs: tuning.retryDelayInMs ?? DEFAULTS.retryDelayInMs,
    maxRetryDelayInMs: tuning.maxRetryDelayInMs ?? DEFAULTS.maxRetryDelayInMs,
    maxRetryAfterSeconds: tuning.maxRetryAfterSeconds ?? DEFAULTS.maxRetryAfterSeconds,
    pollIntervalMs: tuning.pollIntervalMs ?? DEFAULTS.pollIntervalMs,
    operationTimeoutMs: tuning.operationTimeoutMs ?? DEFAULTS.operationTimeoutMs,
  };
}

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  statusCode?: unknown;
  details?: { error?: { code?: unknown; innerError?: { code?: unknown } } };
  response?: { headers?: { get(name: string): string | undefined } };
}

const shape = (error: unknown): ErrorShape => (error && typeof error === 'object' ? error : {});
const innerCodeOf = (error: unknown): string | undefined => {
  const code = shape(error).details?.error?.innerError?.code;
  return typeof code === 'string' ? code : undefined;
};
const vaultCodeOf = (error: unknown): string | undefined => {
  const code = shape(error).code;
  return typeof code === 'string' && /^[A-Za-z]{1,60}$/.test(code) ? code : undefined;
};

const delay = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * SecretStore over Azure Key Vault. One secret per name; every `set` adds a version. Values
 * never appear in errors or logs: errors carry the secret name, the HTTP status and Key Vault's
 * error code only.
 */
export class KeyVaultSecretStore implements SecretStore {
  readonly kind = 'key-vault' as const;
  private readonly vaultUrl: string;

  uriOf(name: string): string {
    return `${this.vaultUrl}/secrets/${name}`;
  }
  private readonly client: SecretClient;
  private readonly logger: Logger | undefined;
  private readonly pollIntervalMs: number;
  private readonly operationTimeoutMs: number;

  constructor(options: KeyVaultSecretStoreOptions) {
    const settings = resolveTuning(options);
    this.client = createSecretClient(
      options.vaultUrl,
      options.credential,
      settings,
      options.clientOptions,
      options.proxy,
    );
    this.vaultUrl = options.vaultUrl.replace(/\/+$/, '');
    this.logger = options.logger;
    this.pollIntervalMs = settings.pollIntervalMs;
    this.operationTimeoutMs = settings.operationTimeoutMs;
  }

  async get(name: string): Promise<StoredSecret | undefined> {
    assertValidSecretName(name);
    const abortSignal = AbortSignal.timeout(this.operationTimeoutMs);
    try {
      return toStored(await this.client.getSecret(name, { abortSignal }));
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw this.vaultFailure(error, 'read', name);
    }
  }

  async set(name: string, value: string, properties: SecretProperties = {}): Promise<StoredSecret> {
    assertValidSecretInput(name, value, properties);
    const abortSignal = AbortSignal.timeout(this.operationTimeoutMs);
    const options = {
      abortSignal,
      ...(properties.contentType !== undefined ? { contentType: properties.contentType } : {}),
      ...(properties.expiresOn !== undefined ? { expiresOn: properties.expiresOn } : {}),
      ...(properties.tags !== undefined ? { tags: properties.tags } : {}),
    };
    // A soft-deleted name cannot be written until it is recovered or purged; purge may be forbidden
    // (purge protection, or no purge permission), so recover it and write the new version on top.
    // Deletion, purge and recovery complete asynchronously in Key Vault, so a few rounds may be needed.
    // Versions that were there before this write, when the name had to be recovered first.
    let recoveredVersions: string[] = [];
    for (let round = 0; ; round++) {
      try {
        const stored = toStored(await this.client.setSecret(name, value, options));
        await this.disableVersions(name, recoveredVersions, abortSignal);
        return stored;
      } catch (error) {
        const status = statusOf(error);
        const inner = innerCodeOf(error);
        if (status !== 409 || round >= 8 || abortSignal.aborted)
          throw this.vaultFailure(error, 'write', name);
        if (inner === 'ObjectIsDeletedButRecoverable') {
          this.logger?.info('secret_store.recovering_deleted_secret', { name });
          try {
            const poller = await this.client.beginRecoverDeletedSecret(name, {
              abortSignal,
              intervalInMs: this.pollIntervalMs,
            });
            await poller.pollUntilDone({ abortSignal });
            // Listed before our write, so never the newest version, whoever else writes meanwhile.
            recoveredVersions = await this.versionsOf(name, abortSignal);
          } catch (recoverError) {
            // Someone else recovered or purged it meanwhile: write again.
            const recoverStatus = statusOf(recoverError);
            if (recoverStatus !== 404 && recoverStatus !== 409)
              throw this.vaultFailure(recoverError, 'recover', name);
          }
        } else {
          // Being deleted, purged or recovered right now: wait for the vault to finish.
          await delay(this.pollIntervalMs, abortSignal).catch((abortError: unknown) => {
            throw this.vaultFailure(abortError, 'write', name);
          });
        }
      }
    }
  }

  /**
   * A name written again after a delete starts clean: recovery (needed under purge protection)
   * brings back every old version, and for a token cache those hold old refresh tokens. They are
   * disabled, so only what is written from now on can be read; Key Vault keeps them until the
   * retention period ends only because purge protection forbids removing them sooner.
   */
  async disableVersion(name: string, version: string): Promise<void> {
    assertValidSecretName(name);
    await this.disableVersions(name, [version], AbortSignal.timeout(this.operationTimeoutMs));
  }

  private async versionsOf(name: string, abortSignal: AbortSignal): Promise<string[]> {
    const versions: string[] = [];
    try {
      for await (const version of this.client.listPropertiesOfSecretVersions(name, { abortSignal })) {
        if (version.version && version.enabled !== false) versions.push(version.version);
      }
    } catch (error) {
      throw this.vaultFailure(error, 'read', name);
    }
    return versions;
  }

  private async disableVersions(name: string, versions: string[], abortSignal: AbortSignal): Promise<void> {
    for (const version of versions) {
      try {
        await this.client.updateSecretProperties(name, version, { enabled: false, abortSignal });
      } catch (error) {
        if (statusOf(error) !== 404) throw this.vaultFailure(error, 'write', name);
      }
    }
  }

  async delete(name: string): Promise<void> {
    assertValidSecretName(name);
    const abortSignal = AbortSignal.timeout(this.operationTimeoutMs);
    try {
      const poller = await this.client.beginDeleteSecret(name, {
        abortSignal,
        intervalInMs: this.pollIntervalMs,
      });
      await poller.pollUntilDone({ abortSignal });
    } catch (error) {
      // 404: nothing active under that name (never written, or already deleted). A soft-deleted
      // copy may still exist, so the purge below is still attempted.
      if (statusOf(error) !== 404) throw this.vaultFailure(error, 'delete', name);
    }
    try {
      await this.client.purgeDeletedSecret(name, { abortSignal });
    } catch (error) {
      const status = statusOf(error);
      if (status === 404) return;
      if (status === 403) {
        // Purge protection (or an identity without the purge permission): the deleted secret and
        // all its old versions stay recoverable by vault administrators until the retention period
        // ends, then Key Vault purges them itself. A later `set` of the same name recovers it first.
        this.logger?.info('secret_store.purge_not_allowed', { name });
        return;
      }
      // The secret is already deleted (soft): a failed purge is not worth failing the caller for,
      // because `set` copes with a soft-deleted name.
      this.logger?.warn('secret_store.purge_failed', {
        name,
        status,
        errorCode: vaultCodeOf(error),
      });
    }
  }

  async check(): Promise<void> {
    const abortSignal = AbortSignal.timeout(this.operationTimeoutMs);
    try {
      await this.client.getSecret(HEALTH_PROBE_NAME, { abortSignal });
    } catch (error) {
      if (statusOf(error) === 404) return;
      throw this.vaultFailure(error, 'check', HEALTH_PROBE_NAME);
    }
  }

  private vaultFailure(error: unknown, action: string, name: string): BrokerError {
    if (error instanceof BrokerError) return error;
    if (error instanceof RetryAfterTooLongError) {
      return new BrokerError(
        'upstream_unavailable',
        `Key Vault is throttling or unavailable (HTTP ${error.status}) during ${action} of secret ${name}; retry after ${error.retryAfterSeconds} s`,
        { retryAfterSeconds: error.retryAfterSeconds, cause: error },
      );
    }
    const status = statusOf(error);
    const vaultCode = vaultCodeOf(error);
    const detail = `HTTP ${status ?? 'no response'}${vaultCode ? ` ${vaultCode}` : ''}`;
    if (shape(error).name === 'AbortError' || shape(error).name === 'TimeoutError') {
      return new BrokerError(
        'upstream_unavailable',
        `Key Vault did not complete the ${action} of secret ${name} within ${Math.round(this.operationTimeoutMs / 1000)} s`,
        { cause: sanitize(error) },
      );
    }
    if (status === undefined || status === 408 || status === 429 || status >= 500) {
      const retryAfterSeconds = parseRetryAfter(shape(error).response?.headers?.get('retry-after'));
      return new BrokerError(
        'upstream_unavailable',
        status === undefined
          ? `Key Vault could not be reached during ${action} of secret ${name}`
          : `Key Vault is throttling or unavailable (${detail}) during ${action} of secret ${name}`,
        { ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}), cause: sanitize(error) },
      );
    }
    if (status === 401 || status === 403) {
      const disabled = innerCodeOf(error) === 'SecretDisabled';
      return new BrokerError(
        'configuration_error',
        disabled
          ? `Secret ${name} is disabled in Key Vault`
          : `Key Vault refused the ${action} of secret ${name} (${detail})`,
        {
          remedy: disabled
            ? 'Enable the secret in Key Vault (the broker never disables secrets).'
            : "Give the broker's managed identity the Key Vault Secrets Officer role on the vault (RBAC), or get/set/delete/recover/purge secret permissions (access policy).",
          cause: sanitize(error),
        },
      );
    }
    return new BrokerError(
      'internal_error',
      `Key Vault rejected the ${action} of secret ${name} (${detail})`,
      {
        cause: sanitize(error),
      },
    );
  }
}

/**
 * The SDK's RestError holds the request (and so, for a PUT, the secret value in its body):
 * keep only what is safe to carry as a cause.
 */
function sanitize(error: unknown): Error {
  const { name, statusCode, code } = shape(error) as { name?: unknown; statusCode?: unknown; code?: unknown };
  const safe = new Error(
    `${typeof name === 'string' ? name : 'Error'}${typeof statusCode === 'number' ? ` (HTTP ${statusCode})` : ''}${
      typeof code === 'string' ? ` ${code.slice(0, 60)}` : ''
    }`,
  );
  safe.name = typeof name === 'string' ? name : 'Error';
  return safe;
}

function toStored(secret: KeyVaultSecret): StoredSecret {
  const p = secret.properties;
  return {
    name: secret.name,
    value: secret.value ?? '',
    version: p.version ?? '',
    updatedOn: p.updatedOn ?? p.createdOn ?? new Date(),
    ...(p.contentType !== undefined ? { contentType: p.contentType } : {}),
    ...(p.expiresOn !== undefined ? { expiresOn: p.expiresOn } : {}),
    ...(p.tags !== undefined ? { tags: { ...p.tags } } : {}),
  };
}
