/**
 * The secrets operations of the Key Vault REST API (7.x): routing, the JSON each one answers and
 * `nextLink` paging, over the {@link SecretStore}.
 */
import { randomBytes } from 'node:crypto';
import { badParameter, deletedNotFound, HttpError, notFound } from './errors';
import { latest, type SecretStore, type StoredSecret, type StoredVersion } from './store';
import type { KeyVaultOperation } from './types';
import { parseJson, validateAttributes, validateContentType, validateName, validateTags } from './validate';

const MAX_VALUE_BYTES = 25_600;
const MAX_RESULTS = 25;
const VERSION = /^[0-9a-f]{32}$/i;

const unixSeconds = (ms: number) => Math.floor(ms / 1000);

export interface Route {
  operation: KeyVaultOperation;
  name: string | undefined;
  version: string | undefined;
}

/** Maps method + path to an operation; undefined when Key Vault has no such secrets route. */
export function route(method: string, segments: string[]): Route | undefined {
  const [collection, name, third, ...rest] = segments as (string | undefined)[];
  if (rest.length > 0) return undefined;
  if (collection === 'secrets') {
    if (name === undefined)
      return method === 'GET' ? { operation: 'list', name, version: undefined } : undefined;
    if (third === 'versions' && method === 'GET')
      return { operation: 'listVersions', name, version: undefined };
    if (method === 'GET') return { operation: 'get', name, version: third || undefined };
    if (method === 'PUT' && !third) return { operation: 'set', name, version: undefined };
    if (method === 'PATCH') return { operation: 'update', name, version: third || undefined };
    if (method === 'DELETE' && !third) return { operation: 'delete', name, version: undefined };
    return undefined;
  }
  if (collection === 'deletedsecrets') {
    if (name === undefined)
      return method === 'GET' ? { operation: 'listDeleted', name, version: undefined } : undefined;
    if (third === 'recover' && method === 'POST') return { operation: 'recover', name, version: undefined };
    if (third) return undefined;
    if (method === 'GET') return { operation: 'getDeleted', name, version: undefined };
    if (method === 'DELETE') return { operation: 'purge', name, version: undefined };
  }
  return undefined;
}

export interface VaultBehaviour {
  /** `https://127.0.0.1:{port}`, the base of every id and nextLink. */
  url: string;
  now: () => number;
  purgeProtection: boolean;
  deleteDelayMs: number;
  recoverDelayMs: number;
  purgeDelayMs: number;
  retentionDays: number;
  region: string;
}

export class SecretOperations {
  private readonly recoveryLevel: string;

  constructor(
    private readonly store: SecretStore,
    private readonly vault: VaultBehaviour,
  ) {
    this.recoveryLevel = vault.purgeProtection ? 'Recoverable' : 'Recoverable+Purgeable';
  }

  handle(
    r: Route,
    query: URLSearchParams,
    body: string,
    apiVersion: string,
  ): { status: number; body?: unknown } {
    switch (r.operation) {
      case 'set':
        return this.set(validateName(r.name), body);
      case 'get':
        return this.get(validateName(r.name), r.version);
      case 'update':
        return this.update(validateName(r.name), r.version, body);
      case 'delete':
        return this.delete(validateName(r.name));
      case 'getDeleted': {
        const name = validateName(r.name);
        const secret = this.store.lookup(name);
        if (!secret || secret.state !== 'deleted') throw deletedNotFound(name);
        return { status: 200, body: this.deletedBundle(secret, latest(secret), false) };
      }
      case 'recover': {
        const secret = this.store.softDeleted(validateName(r.name));
        this.store.begin(secret, 'recovering', this.vault.recoverDelayMs);
        return { status: 200, body: this.bundle(secret, latest(secret), false) };
      }
      case 'purge':
        return this.purge(validateName(r.name));
      case 'list':
        return {
          status: 200,
          body: this.page(this.store.inState('active'), query, '/secrets', apiVersion, (s) =>
            this.item(s, latest(s), false),
          ),
        };
      case 'listVersions': {
        const name = validateName(r.name);
        const secret = this.store.lookup(name);
        // The real service answers an empty list (not 404) for an unknown name.
        const versions = secret?.state === 'active' ? secret.versions : [];
        return {
          status: 200,
          body: this.page(versions, query, `/secrets/${name}/versions`, apiVersion, (v) =>
            this.item(secret as StoredSecret, v, true),
          ),
        };
      }
      case 'listDeleted':
        return {
          status: 200,
          body: this.page(this.store.inState('deleted'), query, '/deletedsecrets', apiVersion, (s) => ({
            ...this.deletion(s),
            ...this.item(s, latest(s), false),
          })),
        };
    }
  }

  private set(name: string, body: string) {
    const parsed = parseJson(body);
    const value = parsed.value;
    if (typeof value !== 'string') throw badParameter("Property 'value' is required and must be a string.");
    if (Buffer.byteLength(value, 'utf8') > MAX_VALUE_BYTES) {
      throw badParameter(`Secret is beyond the maximum permitted length of ${MAX_VALUE_BYTES} characters.`);
    }
    const contentType = validateContentType(parsed.contentType);
    const tags = validateTags(parsed.tags);
    const attrs = validateAttributes(parsed.attributes);
    const secret = this.store.writable(name);
    const t = unixSeconds(this.vault.now());
    const version: StoredVersion = {
      version: randomBytes(16).toString('hex'),
      value,
      contentType,
      tags,
      enabled: attrs.enabled ?? true,
      nbf: attrs.nbf,
      exp: attrs.exp,
      created: t,
      updated: t,
    };
    secret.versions.push(version);
    return { status: 200, body: this.bundle(secret, version, true) };
  }

  private get(name: string, wanted: string | undefined) {
    if (wanted !== undefined && !VERSION.test(wanted)) throw notFound(name, wanted);
    const { secret, version } = this.store.activeVersion(name, wanted);
    if (!version.enabled) {
      throw new HttpError(
        403,
        'Forbidden',
        'Operation get is not allowed on a disabled secret.',
        'SecretDisabled',
      );
    }
    // Like the real service, nbf/exp are not enforced for secrets: they are metadata for the client.
    return { status: 200, body: this.bundle(secret, version, true) };
  }

  private update(name: string, wanted: string | undefined, body: string) {
    const parsed = parseJson(body);
    const { secret, version } = this.store.activeVersion(name, wanted);
    const attrs = validateAttributes(parsed.attributes);
    if ('contentType' in parsed) version.contentType = validateContentType(parsed.contentType);
    if ('tags' in parsed) version.tags = validateTags(parsed.tags);
    if (attrs.enabled !== undefined) version.enabled = attrs.enabled;
    if (attrs.nbf !== undefined) version.nbf = attrs.nbf;
    if (attrs.exp !== undefined) version.exp = attrs.exp;
    version.updated = unixSeconds(this.vault.now());
    return { status: 200, body: this.bundle(secret, version, false) };
  }

  private delete(name: string) {
    const secret = this.store.lookup(name);
    if (!secret || secret.state !== 'active') throw notFound(name);
    const t = this.vault.now();
    secret.deletedDate = t;
    secret.scheduledPurgeDate = t + this.vault.retentionDays * 86_400_000;
    this.store.begin(secret, 'deleting', this.vault.deleteDelayMs);
    return { status: 200, body: this.deletedBundle(secret, latest(secret), false) };
  }

  private purge(name: string) {
    const secret = this.store.softDeleted(name);
    if (this.vault.purgeProtection) {
      throw new HttpError(
        403,
        'Forbidden',
        `Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.\r\nVault: emulator;location=${this.vault.region}`,
      );
    }
    this.store.begin(secret, 'purging', this.vault.purgeDelayMs);
    return { status: 204 };
  }

  // ---- wire shapes ------------------------------------------------------------------------------

  private attributes(version: StoredVersion): Record<string, unknown> {
    return {
      enabled: version.enabled,
      ...(version.nbf !== undefined ? { nbf: version.nbf } : {}),
      ...(version.exp !== undefined ? { exp: version.exp } : {}),
      created: version.created,
      updated: version.updated,
      recoveryLevel: this.recoveryLevel,
      recoverableDays: this.vault.retentionDays,
    };
  }

  private bundle(secret: StoredSecret, version: StoredVersion, withValue: boolean): Record<string, unknown> {
    return {
      ...(withValue ? { value: version.value } : {}),
      ...(version.contentType !== undefined ? { contentType: version.contentType } : {}),
      id: `${this.vault.url}/secrets/${secret.name}/${version.version}`,
      attributes: this.attributes(version),
      ...(version.tags !== undefined ? { tags: version.tags } : {}),
    };
  }

  private deletion(secret: StoredSecret): Record<string, unknown> {
    return {
      recoveryId: `${this.vault.url}/deletedsecrets/${secret.name}`,
      deletedDate: unixSeconds(secret.deletedDate ?? this.vault.now()),
      scheduledPurgeDate: unixSeconds(secret.scheduledPurgeDate ?? this.vault.now()),
    };
  }

  private deletedBundle(
    secret: StoredSecret,
    version: StoredVersion,
    withValue: boolean,
  ): Record<string, unknown> {
    return { ...this.deletion(secret), ...this.bundle(secret, version, withValue) };
  }

  private item(secret: StoredSecret, version: StoredVersion, withVersion: boolean): Record<string, unknown> {
    const base = `${this.vault.url}/secrets/${secret.name}`;
    return {
      id: withVersion ? `${base}/${version.version}` : base,
      attributes: this.attributes(version),
      ...(version.contentType !== undefined ? { contentType: version.contentType } : {}),
      ...(version.tags !== undefined ? { tags: version.tags } : {}),
    };
  }

  // ---- paging -------------------------------------------------------------------------------------

  private page<T>(
    all: T[],
    query: URLSearchParams,
    path: string,
    apiVersion: string,
    render: (item: T) => Record<string, unknown>,
  ): Record<string, unknown> {
    const maxParam = query.get('maxresults');
    let max = MAX_RESULTS;
    if (maxParam !== null) {
      max = Number(maxParam);
      if (!Number.isInteger(max) || max < 1 || max > MAX_RESULTS) {
        throw badParameter(
          `Invalid value for maxresults: ${maxParam.slice(0, 20)}. The value must be between 1 and 25.`,
        );
      }
    }
    let offset = 0;
    const skip = query.get('$skiptoken');
    if (skip !== null) {
      try {
        const decoded = JSON.parse(Buffer.from(skip, 'base64url').toString('utf8')) as { offset?: unknown };
        if (typeof decoded.offset !== 'number') throw new Error('bad token');
        offset = decoded.offset;
      } catch {
        throw badParameter('The $skiptoken is invalid.');
      }
    }
    const slice = all.slice(offset, offset + max);
    const next = offset + max < all.length;
    const nextLink = next
      ? `${this.vault.url}${path}?api-version=${encodeURIComponent(apiVersion)}&$skiptoken=${Buffer.from(
          JSON.stringify({ offset: offset + max }),
        ).toString('base64url')}${maxParam !== null ? `&maxresults=${max}` : ''}`
      : null;
    return { value: slice.map(render), nextLink };
  }

  // ---- operations ---------------------------------------------------------------------------------
}
