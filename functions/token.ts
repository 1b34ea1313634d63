import { assertConnectionName } from '../shared/connections/connection';
import { BrokerError } from '../shared/errors';
import { identifyCaller, requireTokenReader } from '../shared/http/caller';
import { jsonText } from '../shared/http/responses';
import type { PublishedToken } from '../shared/oauth/token-reader';
import type { BrokerRequest } from '../shared/http/types';
import type { Handler } from './route';
import type { HttpFunctionDefinition } from './route';

/**
 * Serialized answers by published token: the reader hands every read of a connection within one
 * second the same frozen object, so a route polled thousands of times a second serializes it once
 * (JSON.stringify of the ~4 KB answer was the largest cost of a warm read).
 */
const serialized = new WeakMap<PublishedToken, string>();

function bodyOf(published: PublishedToken): string {
  let body = serialized.get(published);
  if (body === undefined) {
    body = JSON.stringify(published);
    serialized.set(published, body);
  }
  return body;
}

/** Access tokens live 60 to 90 minutes: a consumer may ask for at most 59 of them. */
const MAX_MIN_VALID_SECONDS = 3540;

/** `?min_valid_seconds=N`: how long the token must still be valid; 60 when absent. */
function minValidSeconds(request: BrokerRequest): number {
  const values = request.url.searchParams.getAll('min_valid_seconds');
  if (values.length === 0) return 60;
  const value = values[0] ?? '';
  if (
    values.length > 1 ||
    !/^\d{1,5}$/.test(value) ||
    Number(value) < 60 ||
    Number(value) > MAX_MIN_VALID_SECONDS
  ) {
    throw new BrokerError(
      'invalid_request',
      `min_valid_seconds must be one whole number of seconds from 60 to ${MAX_MIN_VALID_SECONDS} (a token lives at most about an hour).`,
    );
  }
  return Number(value);
}

/**
 * `GET /api/connections/{name}/token` (token reader listed on the connection): the published
 * access token. The role is checked before the connection is read, the reader list once it is.
 */
const handler: Handler<'config' | 'tokenReader'> = async (broker, request) => {
  const caller = identifyCaller(request, broker.config);
  const name = assertConnectionName(request.params.name);
  requireTokenReader(caller, undefined, name);
  const published = await broker.tokenReader
    .read(name, minValidSeconds(request), (connection) =>
      requireTokenReader(caller, connection.readers, name),
    )
    .catch((error: unknown) => {
      // A reader not listed learns nothing: an unknown connection gets the same answer as an unlisted one.
      if (error instanceof BrokerError && error.code === 'connection_not_found')
        requireTokenReader(caller, [], name);
      throw error;
    });
  return jsonText(200, bodyOf(published));
};

export const token: HttpFunctionDefinition = {
  name: 'token',
  route: 'connections/{name}/token',
  methods: ['GET'],
  kind: 'api',
  // No host-level key (one would open every connection): App Service Authentication identifies the
  // caller, and the handler checks its Broker.TokenReader role and the connection's readers.
  authLevel: 'anonymous',
  handler,
};
