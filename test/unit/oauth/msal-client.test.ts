import { Response } from 'undici';
import { loadConfig, type BrokerConfig } from '../../../shared/config';
import { isBrokerError } from '../../../shared/errors';
import { createLogger } from '../../../shared/logging';
import type { Outbound } from '../../../shared/net/outbound';
import { createMsalClientFactory, OperationCache, tenantIdOfIssuer } from '../../../shared/oauth/msal-client';

const TENANT = '11111111-2222-3333-4444-555555555555';
const config = loadConfig({
  ENTRA_TENANT_ID: TENANT,
  ENTRA_CLIENT_ID: '66666666-7777-8888-9999-000000000000',
  ENTRA_CLIENT_SECRET: 'local-secret',
  BROKER_LOCAL_SECRET_KEY: Buffer.alloc(32, 7).toString('base64'),
});
const logger = createLogger(() => undefined);

function metadata(tenant: string): Response {
  return new Response(JSON.stringify({ issuer: `https://login.microsoftonline.com/${tenant}/v2.0` }));
}

/** An outbound whose fetch answers from `answer` and records each URL. */
function fakeOutbound(answer: (url: string, call: number) => Response | Promise<Response>) {
  const urls: string[] = [];
  const outbound = {
    fetch: async (url: string) => {
      urls.push(url);
      return answer(url, urls.length);
    },
    msalNetworkModule: {} as Outbound['msalNetworkModule'],
    retryAfterFor: () => undefined,
    connect: () => Promise.reject(new Error('unused')),
  } satisfies Outbound;
  return { outbound, urls };
}

async function errorOf(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (error) {
    if (isBrokerError(error)) return { code: error.code, aadsts: error.aadsts, message: error.message };
    throw error;
  }
  throw new Error('expected a BrokerError');
}

describe('tenantIdOfIssuer', () => {
  it.each<[string, string | undefined]>([
    [`https://login.microsoftonline.com/${TENANT}/v2.0`, TENANT],
    [`https://login.microsoftonline.com/${TENANT.toUpperCase()}/v2.0/`, TENANT],
    ['https://login.microsoftonline.com/{tenantid}/v2.0', undefined], // the `organizations` issuer template
    [`https://sts.windows.net/${TENANT}/`, undefined], // a v1 issuer
  ])('%p → %p', (issuer, tenantId) => {
    expect(tenantIdOfIssuer(issuer)).toBe(tenantId);
  });
});

describe('createMsalClientFactory', () => {
  it('fetches the authority metadata once per tenant, shared by concurrent clients', async () => {
    const { outbound, urls } = fakeOutbound((url) => metadata(/\.com\/([^/]+)\//.exec(url)?.[1] ?? ''));
    const factory = createMsalClientFactory(config, outbound, logger, undefined);
    await Promise.all([
      factory.create(new OperationCache()),
      factory.create(new OperationCache()),
      factory.create(new OperationCache(), 'contoso.onmicrosoft.com'),
    ]);
    await factory.create(new OperationCache());
    expect(await factory.resolvedTenantId()).toBe(TENANT);
    expect(urls).toEqual([
      `https://login.microsoftonline.com/${TENANT}/v2.0/.well-known/openid-configuration`,
      'https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration',
    ]);
  });

  it('does not remember a failed fetch: the next operation tries again', async () => {
    const { outbound, urls } = fakeOutbound((_url, call) =>
      call === 1 ? Promise.reject(new TypeError('fetch failed')) : metadata(TENANT),
    );
    const factory = createMsalClientFactory(config, outbound, logger, undefined);
    expect(await errorOf(factory.create(new OperationCache()))).toMatchObject({
      code: 'upstream_unavailable',
      message: 'Entra ID could not be reached at https://login.microsoftonline.com.',
    });
    await factory.create(new OperationCache());
    expect(urls).toHaveLength(2);
  });

  it.each<[string, Response, { code: string; aadsts?: number }]>([
    [
      'an unknown tenant',
      new Response('{"error":"invalid_tenant","error_description":"AADSTS90002: Tenant not found."}', {
        status: 400,
      }),
      { code: 'configuration_error', aadsts: 90002 },
    ],
    ['an outage', new Response('<html>busy</html>', { status: 503 }), { code: 'upstream_unavailable' }],
    ['metadata without an issuer', new Response('{}'), { code: 'upstream_unavailable' }],
  ])('classifies %s', async (_what, response, expected) => {
    const { outbound } = fakeOutbound(() => response);
    const factory = createMsalClientFactory(config, outbound, logger, undefined);
    expect(await errorOf(factory.create(new OperationCache()))).toMatchObject(expected);
  });

  it('resolves no tenant for `organizations`, without a fetch', async () => {
    const { outbound, urls } = fakeOutbound(() => metadata(TENANT));
    const factory = createMsalClientFactory(
      { ...config, tenantId: 'organizations' },
      outbound,
      logger,
      undefined,
    );
    expect(await factory.resolvedTenantId()).toBeUndefined();
    expect(factory.authorityUrl()).toBe('https://login.microsoftonline.com/organizations');
    expect(urls).toEqual([]);
  });

  it.each<[string, BrokerConfig['clientCredential']]>([
    [
      'a certificate setting without its key',
      { kind: 'certificate', pem: '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----' },
    ],
    ['the managed identity without its credential', { kind: 'managed-identity' }],
  ])('refuses %s as a configuration error', (_what, clientCredential) => {
    const { outbound } = fakeOutbound(() => metadata(TENANT));
    expect(() =>
      createMsalClientFactory({ ...config, clientCredential }, outbound, logger, undefined),
    ).toThrow(expect.objectContaining({ code: 'configuration_error' }) as Error);
  });
});
