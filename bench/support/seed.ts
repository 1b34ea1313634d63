/**
 * Seeding many authorized connections without the sign-in pages. One connection is authorized
 * through the real flow; every other one gets a copy of its registry row (due for refresh) and of
 * its MSAL token cache with the refresh token replaced by one minted for it in the Entra emulator
 * (an independent grant of the same user), written straight to the stores.
 */
import type { TransactionAction } from '@azure/data-tables';
import { delegatedScopes } from '../../shared/connections/profiles';

/** Scopes MSAL adds to every user request (a seeded grant holds them as a real one does). */
const OIDC_SCOPES = ['openid', 'profile', 'offline_access'];
import { secretNames } from '../../shared/secrets/secret-store';
import { entityColumns } from '../../shared/storage/tables';
import { BENCH_USER, type BenchEnv } from './env';
import { forEachConcurrent } from './measure';
import { tableClientOf } from './process-stats';

export interface SeedTemplate {
  /** The registry row of the authorized connection (columns only). */
  row: Record<string, unknown>;
  /** Its serialized MSAL cache, and the refresh token inside it. */
  cache: string;
  refreshToken: string;
  scopes: string[];
  mailbox: string;
  account: string;
}

export async function readTemplate(bench: BenchEnv, name: string): Promise<SeedTemplate> {
  const registry = bench.broker.registry;
  const client = tableClientOf(registry);
  if (!client) throw new Error('the registry is not in Table storage');
  const connection = await registry.get(name);
  if (!connection) throw new Error(`no connection ${name}`);
  const row = entityColumns(await client.getEntity('connection', name));
  const secret = await bench.broker.secrets.get(secretNames.cache(name));
  if (!secret) throw new Error(`no cache secret for ${name}`);
  const parsed = JSON.parse(secret.value) as { RefreshToken?: Record<string, { secret: string }> };
  const tokens = Object.values(parsed.RefreshToken ?? {});
  const refreshToken = tokens[0]?.secret;
  if (tokens.length !== 1 || !refreshToken)
    throw new Error('the template cache should hold one refresh token');
  return {
    row,
    cache: secret.value,
    refreshToken,
    scopes: [...delegatedScopes(connection, bench.broker.config.cloud), ...OIDC_SCOPES],
    mailbox: connection.mailbox,
    account: connection.account,
  };
}

export interface SeedOptions {
  names: string[];
  /** When the seeded access tokens expire (ISO); inside the refresh margin makes them due. */
  tokenExpiresOn: string;
  /** Parallel secret writes; default 32. */
  concurrency?: number;
  /** Called before every `vaultBatch` secret writes (e.g. to move the vault's throttling window on). */
  vaultBatch?: { size: number; before: () => Promise<void> };
}

/** Writes registry rows (100 per table transaction) and cache secrets for `names`. */
export async function seedConnections(
  bench: BenchEnv,
  template: SeedTemplate,
  options: SeedOptions,
): Promise<void> {
  const client = tableClientOf(bench.broker.registry);
  if (!client) throw new Error('the registry is not in Table storage');
  const { names } = options;
  const tokens: string[] = [];
  for (let start = 0; start < names.length; start += 2000) {
    const count = Math.min(2000, names.length - start);
    tokens.push(
      ...(await bench.emulators.call('mint', {
        username: BENCH_USER.username,
        clientId: bench.info.clientId,
        scopes: template.scopes,
        count,
      })),
    );
  }

  const batches: string[][] = [];
  for (let start = 0; start < names.length; start += 100) batches.push(names.slice(start, start + 100));
  await forEachConcurrent(batches, 4, async (batch) => {
    const actions: TransactionAction[] = batch.map((name) => [
      'create',
      {
        ...template.row,
        partitionKey: 'connection',
        rowKey: name,
        tokenExpiresOn: options.tokenExpiresOn,
      },
    ]);
    await client.submitTransaction(actions);
  });

  const write = async (name: string, index: number) => {
    const cache = template.cache.replace(template.refreshToken, () => tokens[index] ?? '');
    await bench.broker.secrets.set(secretNames.cache(name), cache, {
      contentType: 'application/json',
      tags: { mailbox: template.mailbox, account: template.account },
    });
  };
  const batch = options.vaultBatch;
  if (!batch) {
    await forEachConcurrent(names, options.concurrency ?? 32, write);
    return;
  }
  for (let start = 0; start < names.length; start += batch.size) {
    await batch.before();
    const slice = names.slice(start, start + batch.size);
    await forEachConcurrent(slice, options.concurrency ?? 32, (name, index) => write(name, start + index));
  }
}

/** `prefix-00042` style names. */
export function connectionNames(prefix: string, count: number, from = 0): string[] {
  return Array.from({ length: count }, (_, index) => `${prefix}-${String(from + index).padStart(5, '0')}`);
}
