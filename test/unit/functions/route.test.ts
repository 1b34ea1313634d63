import { serve, type HttpFunctionDefinition } from '../../../functions/route';
import type { Broker } from '../../../shared/broker';
import { loadConfig } from '../../../shared/config';
import { json } from '../../../shared/http/responses';
import type { BrokerRequest } from '../../../shared/http/types';

const env = {
  ENTRA_TENANT_ID: '11111111-2222-3333-4444-555555555555',
  ENTRA_CLIENT_ID: '66666666-7777-8888-9999-000000000000',
  ENTRA_CLIENT_SECRET: 's',
  BROKER_LOCAL_SECRET_KEY: Buffer.alloc(32).toString('base64'),
};
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const definition: HttpFunctionDefinition = {
  name: 'probe',
  route: 'probe',
  methods: ['GET'],
  kind: 'api',
  authLevel: 'anonymous',
  handler: () => Promise.resolve(json(200, { ok: true })),
};

function request(host: string): BrokerRequest {
  return {
    method: 'GET',
    url: new URL(`http://${host}/api/probe`),
    headers: { get: (name: string) => (name.toLowerCase() === 'host' ? host : null) },
    params: {},
    text: () => Promise.resolve(''),
    correlationId: 'c',
  };
}

function brokerWith(localAdmin: boolean): Broker {
  const config = loadConfig({ ...env, BROKER_LOCAL_ADMIN: String(localAdmin) });
  return { config, logger: silent } as unknown as Broker;
}

describe('serve() under any host (npm start and func start alike)', () => {
  it.each(['localhost:7071', '127.0.0.1:7071', '[::1]:7071', 'LOCALHOST'])(
    'answers %s with local admin on',
    async (host) => {
      expect((await serve(definition)(brokerWith(true), request(host))).status).toBe(200);
    },
  );

  it.each(['rebound.example:7071', 'evil.example', '192.168.1.10:7071'])(
    'regression: func start with the sample settings answered %s — now 421 while local admin is on',
    async (host) => {
      const response = await serve(definition)(brokerWith(true), request(host));
      expect(response.status).toBe(421);
      expect(JSON.parse(response.body ?? '{}')).toMatchObject({ code: 'misdirected_request' });
    },
  );

  it('leaves the Host alone when local admin is off (Azure, behind App Service)', async () => {
    expect((await serve(definition)(brokerWith(false), request('broker.azurewebsites.net'))).status).toBe(
      200,
    );
  });
});
