import type { AuthorizationBinding } from '../connections/connection';

/**
 * A pending authorization: what `authorize` started and only `callback`, in the same browser,
 * within its time to live, may finish, once.
 */
export interface AuthSession {
  /** The `state` sent to Entra; random, 256 bits, base64url. Key of the session. */
  state: string;
  connection: string;
  /** PKCE code verifier (secret: never logged). */
  codeVerifier: string;
  nonce: string;
  /** SHA-256 (base64url) of the browser-binding cookie's value. */
  browserBindingHash: string;
  /** Who started it (admin principal name), for the audit trail. */
  startedBy: string;
  /** The connection as it was when the sign-in began; completion requires it unchanged. */
  binding: AuthorizationBinding;
  /**
   * The id (SHA-256 of the link's secret) of the invitation this sign-in was started from, if any:
   * the callback marks it used once the sign-in is verified.
   */
  invitation?: string;
  createdAt: string;
  expiresOn: string;
}

export interface AuthSessionStore {
  create(session: AuthSession): Promise<void>;
  /** Reads without consuming; undefined when unknown or already consumed. */
  peek(state: string): Promise<AuthSession | undefined>;
  /**
   * Removes the session and returns it, exactly once across all callers and instances
   * (delete with the row's etag); undefined when someone else consumed it first.
   */
  consume(state: string): Promise<AuthSession | undefined>;
  /** Deletes sessions that expired before `now`; returns how many. */
  purgeExpired(now: Date): Promise<number>;
}
