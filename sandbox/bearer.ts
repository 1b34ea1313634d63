/**
 * Bearer-token checks shared by the sandbox's resource stand-ins (EWS, Graph, the mail servers'
 * token introspection). They validate an Entra access token the way a Microsoft resource does:
 * RS256 signature against the issuer's published keys (fetched from its JWKS document, as Exchange
 * and Graph do), lifetime, audience, and the delegated scope (`scp`) or application role (`roles`).
 */
import { createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { get } from 'node:https';

export type BearerFailure =
  'malformed' | 'bad_signature' | 'expired' | 'not_yet_valid' | 'audience' | 'scope';

export type BearerCheck =
  | { ok: true; claims: Record<string, unknown> }
  | { ok: false; reason: BearerFailure; claims?: Record<string, unknown>; detail: string };

export interface BearerRequirements {
  /** Accepted `aud` values (compared without trailing slash, case-insensitively). */
  audiences: string[];
  /** A delegated token must carry one of these in `scp`... */
  scopes: string[];
  /** ...or an app-only token one of these in `roles`. */
  roles: string[];
}

export interface BearerValidator {
  check(authorization: string | undefined, requirements: BearerRequirements): Promise<BearerCheck>;
}

export interface BearerValidatorOptions {
  /** The issuer's JWKS document, e.g. `{authority}/common/discovery/v2.0/keys`. */
  jwksUrl: string;
  /** Clock (ms since epoch); the Entra emulator's clock in tests. */
  now?: () => number;
  /** The CA of the issuer's certificate, when this process does not trust it through NODE_EXTRA_CA_CERTS. */
  ca?: string;
}

function getJson(url: string, ca: string | undefined): Promise<unknown> {
  return new Promise((resolve, reject) => {
    get(url, ca === undefined ? {} : { ca }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    }).on('error', reject);
  });
}

const CLOCK_SKEW_SECONDS = 300;

function decodeSegment(segment: string | undefined): Record<string, unknown> | undefined {
  if (!segment) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const norm = (value: string) => value.replace(/\/+$/, '').toLowerCase();

export function createBearerValidator(options: BearerValidatorOptions): BearerValidator {
  const now = options.now ?? Date.now;
  let keys: Map<string, KeyObject> | undefined;

  async function keyFor(kid: string): Promise<KeyObject | undefined> {
    if (!keys?.has(kid)) {
      // Fetched on first use and again on an unknown kid (key rollover), as resource servers do.
      const body = (await getJson(options.jwksUrl, options.ca)) as {
        keys?: (JsonWebKey & { kid?: string })[];
      };
      keys = new Map(
        (body.keys ?? []).flatMap((jwk) =>
          jwk.kid ? [[jwk.kid, createPublicKey({ key: jwk, format: 'jwk' })] as const] : [],
        ),
      );
    }
    return keys.get(kid);
  }

  return {
    async check(authorization, requirements) {
      const match = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/i.exec(
        authorization?.trim() ?? '',
      );
      const token = match?.[1];
      const parts = token?.split('.') ?? [];
      const header = decodeSegment(parts[0]);
      const claims = decodeSegment(parts[1]);
      if (!token || !header || !claims) {
        return { ok: false, reason: 'malformed', detail: 'The token is not a well-formed JWT.' };
      }
      const key = typeof header.kid === 'string' ? await keyFor(header.kid) : undefined;
      const signed =
        header.alg === 'RS256' &&
        key !== undefined &&
        verify(
          'sha256',
          Buffer.from(`${parts[0]}.${parts[1]}`),
          key,
          Buffer.from(parts[2] ?? '', 'base64url'),
        );
      if (!signed) {
        return { ok: false, reason: 'bad_signature', claims, detail: 'The token signature is not valid.' };
      }
      const nowSeconds = Math.floor(now() / 1000);
      if (typeof claims.exp !== 'number' || claims.exp + CLOCK_SKEW_SECONDS <= nowSeconds) {
        return { ok: false, reason: 'expired', claims, detail: 'The token has expired.' };
      }
      if (typeof claims.nbf === 'number' && claims.nbf - CLOCK_SKEW_SECONDS > nowSeconds) {
        return { ok: false, reason: 'not_yet_valid', claims, detail: 'The token is not yet valid.' };
      }
      const audience = typeof claims.aud === 'string' ? claims.aud : '';
      if (!requirements.audiences.some((expected) => norm(expected) === norm(audience))) {
        return {
          ok: false,
          reason: 'audience',
          claims,
          detail: `The audience claim value is invalid '${audience}'.`,
        };
      }
      const scopes = typeof claims.scp === 'string' ? claims.scp.split(' ') : [];
      const roles = Array.isArray(claims.roles) ? claims.roles.map(String) : [];
      const allowed =
        requirements.scopes.some((scope) => scopes.includes(scope)) ||
        requirements.roles.some((role) => roles.includes(role));
      if (!allowed) {
        return {
          ok: false,
          reason: 'scope',
          claims,
          detail: `The token does not have the required scope or role (${[...requirements.scopes, ...requirements.roles].join(', ')}).`,
        };
      }
      return { ok: true, claims };
    },
  };
}
