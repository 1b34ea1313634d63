import type { Connection } from '../connections/connection';
import { BrokerError } from '../errors';
import type { ConnectionStateWriter } from '../connections/state';

/** Entra accepts passwords of up to 256 characters. */
const MAX_PASSWORD_LENGTH = 256;

/**
 * Sets the account password of a `password`-grant connection: validated here, written by the state
 * writer only (`conn-{name}-password`), never returned, never logged, deleted with the connection.
 */
export async function setPassword(
  state: Pick<ConnectionStateWriter, 'storePassword'>,
  connection: Connection,
  body: unknown,
  change: { actor: string; correlationId: string },
): Promise<void> {
  if (connection.grant !== 'password') {
    throw new BrokerError(
      'invalid_request',
      `Connection ${connection.name} uses the ${connection.grant} grant, which keeps no password.`,
    );
  }
  // Under the connection's lease, and only while it exists: a delete racing this leaves no orphan.
  await state.storePassword(connection, passwordOf(body), { type: 'connection.password_set', ...change });
}

function passwordOf(body: unknown): string {
  const fields = typeof body === 'object' && body !== null && !Array.isArray(body) ? Object.keys(body) : [];
  const password = (body as { password?: unknown } | null)?.password;
  if (fields.length !== 1 || typeof password !== 'string') {
    throw new BrokerError('invalid_request', 'Send exactly { "password": "..." }.');
  }
  if (password.length === 0 || password.length > MAX_PASSWORD_LENGTH) {
    throw new BrokerError('invalid_request', `The password must be 1 to ${MAX_PASSWORD_LENGTH} characters.`);
  }
  return password;
}
