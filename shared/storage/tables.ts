/**
 * Table storage plumbing shared by the registry, the session store and the audit log: making a
 * TableClient from the configured settings, creating its table once per process, and turning storage
 * failures into BrokerErrors.
 */
import { TableClient, type TableServiceClientOptions, type TableEntityResult } from '@azure/data-tables';
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { azureSdkProxy } from '../azure-credential';
import type { BrokerConfig, StorageSettings } from '../config';
import { BrokerError, statusOf } from '../errors';
import { memoizeUntilFailure } from '../promises';

/** How often and how long the SDK retries one request (network errors, 408, 429, 5xx). */
export interface StorageRetryOptions {
  maxRetries?: number;
  retryDelayInMs?: number;
  maxRetryDelayInMs?: number;
}

/** What every table-backed store's constructor takes. */
export interface TableStoreOptions {
  settings: StorageSettings;
  /** For identity-based settings; default: DefaultAzureCredential with the configured managed identity. */
  credential?: TokenCredential;
  /** Put before the store's table name (tests give every file its own tables). */
  tablePrefix?: string;
  /** Default: 3 retries, 300 ms doubling up to 3 s (the SDK's own default waits up to a minute). */
  retry?: StorageRetryOptions;
  /** HTTPS_PROXY / NO_PROXY (`config.proxy`); without it the SDK reads them from `process.env` itself. */
  proxy?: BrokerConfig['proxy'];
}

const DEFAULT_RETRY: Required<StorageRetryOptions> = {
  maxRetries: 3,
  retryDelayInMs: 300,
  maxRetryDelayInMs: 3000,
};

const TABLE_NAME = /^[A-Za-z][A-Za-z0-9]{2,62}$/;

/** `prefix + name`, checked against Table storage's rules (letters and digits, 3-63, starting with a letter). */
export function tableName(name: string, prefix = ''): string {
  const full = `${prefix}${name}`;
  if (!TABLE_NAME.test(full)) {
    throw new BrokerError(
      'configuration_error',
      `"${full}" is not a valid table name: 3 to 63 letters and digits, starting with a letter.`,
    );
  }
  return full;
}

function isInsecureEndpoint(connectionString: string): boolean {
  return (
    /(^|;)\s*DefaultEndpointsProtocol\s*=\s*http\s*(;|$)/i.test(connectionString) ||
    /(^|;)\s*TableEndpoint\s*=\s*http:/i.test(connectionString)
  );
}

export function createTableClient(
  settings: StorageSettings,
  name: string,
  credential?: TokenCredential,
  retry: StorageRetryOptions = {},
  proxy?: BrokerConfig['proxy'],
): TableClient {
  const network = proxy ? azureSdkProxy(proxy) : {};
  const options: TableServiceClientOptions = { retryOptions: { ...DEFAULT_RETRY, ...retry }, ...network };
  if (settings.kind === 'connection-string') {
    // UseDevelopmentStorage=true is expanded by the SDK (which also allows its http endpoint);
    // a full connection string to Azurite has http endpoints, which the SDK refuses unless told.
    if (isInsecureEndpoint(settings.connectionString)) options.allowInsecureConnection = true;
    return TableClient.fromConnectionString(settings.connectionString, name, options);
  }
  const tokenCredential =
    credential ??
    new DefaultAzureCredential({
      ...network,
      ...(settings.managedIdentityClientId === undefined
        ? {}
        : { managedIdentityClientId: settings.managedIdentityClientId }),
    });
  if (settings.tableServiceUrl.startsWith('http:')) options.allowInsecureConnection = true;
  return new TableClient(settings.tableServiceUrl, name, tokenCredential, options);
}

/** A store's client: its table (default name, or the one the options give) with the options' prefix. */
export function storeTableClient(
  options: TableStoreOptions & { tableName?: string },
  defaultName: string,
): TableClient {
  return createTableClient(
    options.settings,
    tableName(options.tableName ?? defaultName, options.tablePrefix),
    options.credential,
    options.retry,
    options.proxy,
  );
}

/** Creates the client's table once per process; a failed attempt is forgotten so the next call tries again. */
/** Creates the table once per process (createTable treats 409 TableAlreadyExists as success). */
export const ensureTable: (client: TableClient) => Promise<void> = memoizeUntilFailure(
  (client: TableClient) => storageCall(`create table ${client.tableName}`, () => client.createTable()),
  (client) => `${client.url}|${client.tableName}`,
);

function errorName(error: unknown): string {
  return typeof error === 'object' && error !== null && typeof (error as { name?: unknown }).name === 'string'
    ? (error as { name: string }).name
    : '';
}

function errorCode(error: unknown): string {
  return typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string'
    ? (error as { code: string }).code
    : '';
}

const CREDENTIAL_ERRORS = new Set([
  'CredentialUnavailableError',
  'AuthenticationError',
  'AggregateAuthenticationError',
]);

/**
 * The one mapping of storage failures: unreachable, throttled or failing storage (after the SDK's
 * retries) is `upstream_unavailable`; refused access is `configuration_error`; anything else (a 404
 * or 412 the caller did not handle, a bad request) is returned unchanged, for the caller to rethrow.
 */
export function storageFailure(error: unknown, what: string): unknown {
  if (error instanceof BrokerError) return error;
  const status = statusOf(error);
  const name = errorName(error);
  if (CREDENTIAL_ERRORS.has(name) || status === 401 || status === 403) {
    return new BrokerError('configuration_error', `Table storage refused access (${what}).`, {
      remedy:
        'Check AzureWebJobsStorage: the connection string, or that the identity has the Storage Table Data Contributor role.',
      cause: error,
    });
  }
  const unreachable = name === 'RestError' && status === undefined; // refused, reset, timed out, DNS
  const aborted = name === 'AbortError' || errorCode(error) === 'ETIMEDOUT';
  if (unreachable || aborted || status === 408 || status === 429 || (status !== undefined && status >= 500)) {
    return new BrokerError(
      'upstream_unavailable',
      `Table storage is not available (${what}); try again shortly.`,
      {
        retryAfterSeconds: 5,
        cause: error,
      },
    );
  }
  return error;
}

/** Runs one storage operation, mapping failures through `storageFailure`. */
export async function storageCall<T>(what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw storageFailure(error, what);
  }
}

/** The entity's own columns, without the SDK's metadata (etag, timestamp, odata.metadata). */
export function entityColumns(entity: TableEntityResult<Record<string, unknown>>): Record<string, unknown> {
  const columns: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entity)) {
    if (key === 'etag' || key === 'timestamp' || key.startsWith('odata.')) continue;
    columns[key] = value;
  }
  return columns;
}

/** A string column, or undefined when absent or empty. */
export function stringColumn(entity: Record<string, unknown>, key: string): string | undefined {
  const value = entity[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** A number column, or undefined. */
export function numberColumn(entity: Record<string, unknown>, key: string): number | undefined {
  const value = entity[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
