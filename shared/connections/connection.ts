import { createHash } from 'node:crypto';
import * as z from 'zod';
import { BrokerError } from '../errors';

/** A connection (README "Connections"): a named authorization for one mailbox and one purpose. */
export const CONNECTION_NAME = /^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$/;

export const PROFILES = [
  'ews',
  'ews-shared',
  'imap',
  'pop',
  'smtp',
  'graph-mail',
  'graph-mail-shared',
  'custom',
] as const;
export type Profile = (typeof PROFILES)[number];

export const GRANTS = ['authorization_code', 'client_credentials', 'password'] as const;
export type Grant = (typeof GRANTS)[number];

/** Grants that need no browser: Authorize acquires and publishes a token from the server. */
export function isServerSideGrant(grant: Grant): boolean {
  return grant !== 'authorization_code';
}

/**
 * Profiles Exchange Online and Graph offer an application permission for (README "Grants"): all but
 * the shared-mailbox Graph grant, which is delegated only (app-only reaches any mailbox through graph-mail).
 */
const APP_ONLY_PROFILES = new Set<Profile>(PROFILES.filter((profile) => profile !== 'graph-mail-shared'));

export const STATUSES = ['new', 'authorized', 'degraded', 'reauthorization_required', 'disabled'] as const;
export type ConnectionStatus = (typeof STATUSES)[number];

/** What an admin defines with `PUT /connections/{name}`. */
export interface ConnectionDefinition {
  mailbox: string;
  /** Who signs in; the mailbox itself unless a delegate signs in for a shared mailbox. */
  account: string;
  profile: Profile;
  grant: Grant;
  /** Only for profile `custom`. */
  scopes: string[] | undefined;
  /**
   * An on-premises or hybrid Exchange EWS endpoint (profiles `ews`, `ews-shared`); its host forms
   * the token's resource. Unset: the configured cloud's Exchange Online.
   */
  ewsUrl: string | undefined;
  /** Who may read the token through the API: Entra object ids or app ids of consumers (admins always may). */
  readers: string[];
  description: string;
  /**
   * Another connection for the same account whose sign-in this one uses: it has no sign-in of its
   * own, its tokens are redeemed from that connection's refresh token for this profile's scopes
   * (README "One sign-in, several connections").
   */
  signInFrom?: string | undefined;
}

/** The last Test connection's verdict, kept in the row so every admin (and the Graph readiness view) sees it. */
export interface LastTest {
  ok: boolean;
  /** The failure's stable code (`ews_blocked`, `ews_disabled`, …); absent when ok. */
  code: string | undefined;
  protocol: string | null;
  testedAt: string;
}

export interface LastError {
  code: string;
  message: string;
  aadsts: number | undefined;
  remedy: string | undefined;
  at: string;
}

/** A connection as the registry keeps it. Times are ISO 8601 UTC strings. */
export interface Connection extends ConnectionDefinition {
  name: string;
  status: ConnectionStatus;
  createdAt: string;
  updatedAt: string;
  authorizedAt: string | undefined;
  /** Who last authorized it, as Entra named them (preferred_username), and in which tenant. */
  authorizedBy: string | undefined;
  tenantId: string | undefined;
  /** MSAL's account id inside the connection's token cache. */
  homeAccountId: string | undefined;
  /** Expiry of the access token published as `conn-{name}-token`. */
  tokenExpiresOn: string | undefined;
  lastRefreshAt: string | undefined;
  consecutiveFailures: number;
  /** When the current run of transient failures began (status `degraded`). */
  degradedSince: string | undefined;
  /** Earliest time the next automatic refresh may try (backoff after failures). */
  nextAttemptAt: string | undefined;
  lastError: LastError | undefined;
  lastTest?: LastTest | undefined;
  /**
   * Who holds the connection's lease (a refresh, a sign-in being stored, an admin change) and until
   * when: the claim lives in the row itself, taken and given back by the writes the holder makes anyway.
   */
  leaseOwner?: string | undefined;
  leaseExpiresOn?: string | undefined;
  /** Optimistic-concurrency tag of the stored row. */
  etag: string;
}

/** Whether someone holds an unexpired lease on the connection at `nowMs`. */
export function leaseHeld(
  connection: Pick<Connection, 'leaseOwner' | 'leaseExpiresOn'>,
  nowMs: number,
): boolean {
  return (
    connection.leaseOwner !== undefined &&
    connection.leaseOwner !== '' &&
    Date.parse(connection.leaseExpiresOn ?? '') > nowMs
  );
}

const GUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Lower-case addr-spec with a dotted domain; long enough for every real mailbox, short enough for a tag. */
const EMAIL =
  /^[a-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/i;

const scopeList = z
  .array(
    z
      .string()
      .min(1)
      .max(256)
      .regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'a scope has no spaces, quotes or backslashes'),
  )
  .min(1, 'at least one scope')
  .max(20, 'at most 20 scopes');

const definitionSchema = z
  .object({
    mailbox: z.string().max(254).regex(EMAIL, 'expected an SMTP address such as support@contoso.com'),
    account: z.string().max(254).regex(EMAIL, 'expected the sign-in name (UPN) of the account').optional(),
    profile: z.enum(PROFILES, { message: `expected one of ${PROFILES.join(', ')}` }),
    grant: z.enum(GRANTS, { message: `expected one of ${GRANTS.join(', ')}` }).default('authorization_code'),
    scopes: scopeList.optional(),
    ewsUrl: z.string().max(2048).optional(),
    readers: z
      .array(z.string().regex(GUID_SHAPE, 'each reader is an Entra object id or app id (a GUID)'))
      .max(50, 'at most 50 readers')
      .default([]),
    description: z.string().max(500, 'at most 500 characters').default(''),
    signInFrom: z.string().regex(CONNECTION_NAME, 'expected the name of another connection').optional(),
  })
  .strict()
  .superRefine((value, ctx) => {
    if (value.profile === 'custom' && !value.scopes) {
      ctx.addIssue({ code: 'custom', path: ['scopes'], message: 'required with profile custom' });
    }
    if (value.profile !== 'custom' && value.scopes) {
      ctx.addIssue({ code: 'custom', path: ['scopes'], message: 'only allowed with profile custom' });
    }
    if (value.ewsUrl !== undefined) {
      const problem = ewsUrlProblem(value.ewsUrl);
      if (problem) ctx.addIssue({ code: 'custom', path: ['ewsUrl'], message: problem });
      if (value.profile !== 'ews' && value.profile !== 'ews-shared') {
        ctx.addIssue({
          code: 'custom',
          path: ['ewsUrl'],
          message: 'only allowed with profiles ews and ews-shared',
        });
      }
    }
    if (value.grant === 'client_credentials' && !APP_ONLY_PROFILES.has(value.profile)) {
      ctx.addIssue({
        code: 'custom',
        path: ['grant'],
        message: `profile ${value.profile} has no app-only permission (a shared-mailbox Graph grant is delegated only; app-only reaches any mailbox through graph-mail); use authorization_code`,
      });
    }
    if (value.signInFrom !== undefined && value.grant === 'client_credentials') {
      ctx.addIssue({
        code: 'custom',
        path: ['signInFrom'],
        message: 'an app-only connection has no sign-in to share; signInFrom needs a delegated grant',
      });
    }
    if (
      value.grant === 'client_credentials' &&
      value.account !== undefined &&
      value.account.toLowerCase() !== value.mailbox.toLowerCase()
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['account'],
        message: 'an app-only connection has no signing-in account (the app acts on the mailbox)',
      });
    }
  });

const HOST_NAME = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$/i;

/** Why an EWS URL is unusable, or undefined: https, a DNS host name, no credentials, query or fragment. */
function ewsUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'expected an absolute URL such as https://mail.contoso.com/EWS/Exchange.asmx';
  }
  if (url.protocol !== 'https:') return 'expected an https:// URL (Exchange accepts OAuth only over TLS)';
  if (url.username || url.password) return 'must not carry credentials';
  if (url.search || url.hash || value.includes('#')) return 'must not carry a query or fragment';
  if (!HOST_NAME.test(url.hostname)) return 'expected a DNS host name (the token audience is https://{host})';
  return undefined;
}

export function assertConnectionName(name: unknown): string {
  if (typeof name !== 'string' || !CONNECTION_NAME.test(name)) {
    throw new BrokerError(
      'invalid_connection_name',
      'A connection name is 1 to 48 characters of lower-case letters, digits and hyphens, starting and ending with a letter or digit.',
    );
  }
  return name;
}

/**
 * Resources a `custom` connection may never name: the broker's own app (a token for it would be a
 * token for the broker's API), Key Vault (where the broker keeps every refresh token) and Azure
 * Resource Manager, in every cloud. A consumer handed such a token would hold far more than a mailbox.
 */
const FORBIDDEN_RESOURCE_HOSTS =
  /^(?:vault\.azure\.net|vault\.usgovcloudapi\.net|vault\.azure\.cn|vault\.microsoftazure\.de|managedhsm\.azure\.net|managedhsm\.usgovcloudapi\.net|managedhsm\.azure\.cn|management\.azure\.com|management\.core\.windows\.net|management\.usgovcloudapi\.net|management\.core\.usgovcloudapi\.net|management\.chinacloudapi\.cn|management\.core\.chinacloudapi\.cn)$/i;

export function forbiddenScope(scope: string, ownClientId: string | undefined): string | undefined {
  const lower = scope.toLowerCase();
  if (ownClientId) {
    const own = ownClientId.toLowerCase();
    if (lower.startsWith(`${own}/`) || lower === own || lower.startsWith(`api://${own}`)) {
      return `${scope}: the broker's own app is not a resource a connection may hold tokens for`;
    }
  }
  const host = /^https:\/\/([^/:]+)/i.exec(scope)?.[1];
  if (host && (FORBIDDEN_RESOURCE_HOSTS.test(host) || /\.vault\./i.test(host))) {
    return `${scope}: Key Vault and Azure Resource Manager are not resources a connection may hold tokens for`;
  }
  return undefined;
}

/** Validates a connection definition from outside (the PUT body), or throws `invalid_connection`. */
export function parseConnectionDefinition(
  input: unknown,
  options: { ownClientId?: string } = {},
): ConnectionDefinition {
  if ((input as { grant?: unknown } | null)?.grant === 'device_code') {
    throw new BrokerError(
      'invalid_connection',
      'The connection definition is not valid: grant: device_code is not supported (a confidential client such as the broker has no device-code flow in MSAL); use authorization_code, client_credentials or password.',
    );
  }
  const parsed = definitionSchema.safeParse(input);
  if (!parsed.success) {
    const details = parsed.error.issues
      .map((issue) => `${issue.path.length ? issue.path.join('.') : 'body'}: ${issue.message}`)
      .join('; ');
    throw new BrokerError('invalid_connection', `The connection definition is not valid: ${details}`);
  }
  const value = parsed.data;
  const refused = (value.scopes ?? [])
    .map((scope) => forbiddenScope(scope, options.ownClientId))
    .filter((problem) => problem !== undefined);
  if (refused.length > 0) {
    throw new BrokerError(
      'invalid_connection',
      `The connection definition is not valid: scopes: ${refused.join('; ')}`,
    );
  }
  const mailbox = value.mailbox.toLowerCase();
  return {
    mailbox,
    account: (value.account ?? mailbox).toLowerCase(),
    profile: value.profile,
    grant: value.grant,
    scopes: value.scopes,
    ewsUrl: value.ewsUrl === undefined ? undefined : new URL(value.ewsUrl).href,
    readers: [...new Set(value.readers.map((reader) => reader.toLowerCase()))],
    description: value.description,
    ...(value.signInFrom !== undefined ? { signInFrom: value.signInFrom } : {}),
  };
}

/** The fields that say whose grant a connection holds: changing one would re-target its tokens. */
export const GRANT_FIELDS = [
  'mailbox',
  'account',
  'profile',
  'grant',
  'scopes',
  'ewsUrl',
  'signInFrom',
] as const;

/**
 * What an authorization was started for: the connection as it was (same row, same grant fields,
 * same authorization). A sign-in completes only while all three still hold, so a popup left open
 * across a delete and re-create, an edit of the grant, a reset or another sign-in writes nothing.
 */
export interface AuthorizationBinding {
  createdAt: string;
  /** SHA-256 of the grant fields (base64url). */
  grantFingerprint: string;
  /** When the connection was last authorized ('' if never): a reset clears it, a sign-in renews it. */
  authorizedAt: string;
}

export function authorizationBinding(
  connection: Pick<Connection, 'createdAt' | 'authorizedAt' | (typeof GRANT_FIELDS)[number]>,
): AuthorizationBinding {
  // Without signInFrom the fingerprint is what it was before the field existed: sign-ins begun
  // before an upgrade still complete.
  const fields =
    connection.signInFrom === undefined ? GRANT_FIELDS.filter((f) => f !== 'signInFrom') : GRANT_FIELDS;
  const grant = JSON.stringify(fields.map((field) => connection[field] ?? null));
  return {
    createdAt: connection.createdAt,
    grantFingerprint: createHash('sha256').update(grant, 'utf8').digest('base64url'),
    authorizedAt: connection.authorizedAt ?? '',
  };
}
