/** RS256 signing key of one emulator instance (generated at start; the sandbox keeps it across restarts). */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';

export type JwtClaims = Record<string, unknown>;

export interface DecodedJwt {
  header: Record<string, unknown>;
  payload: JwtClaims;
}

export function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Parses a compact JWT without verifying it; undefined when it is not one. */
export function decodeJwt(token: string): DecodedJwt | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const header: unknown = JSON.parse(Buffer.from(parts[0] ?? '', 'base64url').toString('utf8'));
    const payload: unknown = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8'));
    if (!isRecord(header) || !isRecord(payload)) return undefined;
    return { header, payload };
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export interface SavedSigningKey {
  kid: string;
  privateKeyPem: string;
}

export class SigningKey {
  readonly kid: string;
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;

  /** A new key, or `saved` (what `export()` returned) again. */
  constructor(saved?: SavedSigningKey) {
    if (saved) {
      this.privateKey = createPrivateKey(saved.privateKeyPem);
      this.publicKey = createPublicKey(this.privateKey);
      this.kid = saved.kid;
      return;
    }
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = privateKey;
    this.publicKey = publicKey;
    this.kid = randomBytes(20).toString('base64url');
  }

  /** The key material, for the sandbox's state file (secret). */
  export(): SavedSigningKey {
    return {
      kid: this.kid,
      privateKeyPem: this.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    };
  }

  sign(claims: JwtClaims): string {
    const header = { typ: 'JWT', alg: 'RS256', kid: this.kid };
    const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(input), this.privateKey);
    return `${input}.${signature.toString('base64url')}`;
  }

  /** Checks structure, alg, kid and signature (not time or audience). */
  verify(token: string): { ok: true; jwt: DecodedJwt } | { ok: false; reason: string } {
    const jwt = decodeJwt(token);
    if (!jwt) return { ok: false, reason: 'malformed' };
    if (jwt.header.alg !== 'RS256') return { ok: false, reason: 'unsupported alg' };
    if (jwt.header.kid !== this.kid) return { ok: false, reason: 'unknown kid' };
    const parts = token.split('.');
    const valid = verify(
      'sha256',
      Buffer.from(parts.slice(0, 2).join('.')),
      this.publicKey,
      Buffer.from(parts.at(2) ?? '', 'base64url'),
    );
    return valid ? { ok: true, jwt } : { ok: false, reason: 'bad signature' };
  }

  /** The public key as one JWK entry, in the shape of Entra's v2.0 keys document. */
  jwk(issuer: string): Record<string, unknown> {
    const jwk = this.publicKey.export({ format: 'jwk' });
    return { kty: 'RSA', use: 'sig', kid: this.kid, n: jwk.n, e: jwk.e, alg: 'RS256', issuer };
  }
}
