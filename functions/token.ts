import { assertConnectionName } from '../shared/connections/connection';
import { BrokerError } from '../shared/errors';
import { identifyCaller, requireTokenReader } from '../shared/http/caller';
import { json } from '../shared/http/responses';
import type { BrokerRequest, Handler } from '../shared/http/types';
import type { HttpFunctionDefinition } from './route';

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
const handler: Handler = async (broker, request) => {
  const caller = identifyCaller(request, broker.config);
  const name = assertConnectionName(request.params.name);
  requireTokenReader(caller, undefined, name);
  const published = await broker.tokenReader.read(name, minValidSeconds(request), (connection) =>
    requireTokenReader(caller, connection.readers, name),
  );
  return json(200, published);
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
