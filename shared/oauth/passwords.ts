import { assertConnectionName } from '../connections/connection';
import { requireConnection, type ConnectionRegistry } from '../connections/registry';
import { BrokerError } from '../errors';
import type { ConnectionStateWriter } from '../connections/state';

/** Entra accepts passwords of up to 256 characters. */
const MAX_PASSWORD_LENGTH = 256;

/**
 * Sets the account password of a `password`-grant connection: validated here, written by the state
 * writer only (`conn-{name}-password`), never returned, never logged, deleted with the connection.
 */
export async function setPassword(
  services: {
    registry: Pick<ConnectionRegistry, 'get'>;
    state: Pick<ConnectionStateWriter, 'storePassword'>;
  },
  rawName: string | undefined,
  /** Read after the name is known to exist: an unknown connection is 404 whatever the body. */
  readBody: () => Promise<unknown>,
  change: { actor: string; correlationId: string },
): Promise<void> {
  const connection = await requireConnection(services.registry, assertConnectionName(rawName));
  if (connection.grant !== 'password') {
    throw new BrokerError(
      'invalid_request',
      `Connection ${connection.name} uses the ${connection.grant} grant, which keeps no password.`,
    );
  }
  // Under the connection's lease, and only while it exists: a delete racing this leaves no orphan.
  await services.state.storePassword(connection, passwordOf(await readBody()), {
    type: 'connection.password_set',
    ...change,
  });
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
