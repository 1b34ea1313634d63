import { identifyCaller, requireAdmin, requireTokenReader } from '../../../shared/http/caller';
import { loadConfig } from '../../../shared/config';
import type { BrokerRequest } from '../../../shared/http/types';

const baseEnv = {
  ENTRA_TENANT_ID: '11111111-2222-3333-4444-555555555555',
  ENTRA_CLIENT_ID: '66666666-7777-8888-9999-000000000000',
  ENTRA_CLIENT_SECRET: 's',
  BROKER_LOCAL_SECRET_KEY: Buffer.alloc(32).toString('base64'),
};

function request(headers: Record<string, string>): BrokerRequest {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    method: 'GET',
    url: new URL('http://localhost/api/connections'),
    headers: { get: (name: string) => lower[name.toLowerCase()] ?? null },
    params: {},
    text: () => Promise.resolve(''),
    correlationId: 'c',
  };
}

const OID = 'aaaaaaaa-0000-0000-0000-000000000001';
const APP = 'bbbbbbbb-0000-0000-0000-000000000002';

function principal(roles: string[], ids: { oid?: string; appid?: string } = {}): string {
  return Buffer.from(
    JSON.stringify({
      auth_typ: 'aad',
      name_typ: 'name',
      role_typ: 'roles',
      claims: [
        { typ: 'name', val: 'Ada' },
        ...roles.map((val) => ({ typ: 'roles', val })),
        ...(ids.oid
          ? [{ typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: ids.oid }]
          : []),
        ...(ids.appid ? [{ typ: 'appid', val: ids.appid }] : []),
      ],
    }),
  ).toString('base64');
}

describe('identifyCaller', () => {
  it('ignores the App Service principal header when the platform has not turned authentication on', () => {
    const caller = identifyCaller(
      request({ 'X-MS-CLIENT-PRINCIPAL': principal(['Broker.Admin']) }),
      loadConfig(baseEnv),
    );
    expect(caller.via).toBe('none');
    expect(() => requireAdmin(caller)).toThrow(expect.objectContaining({ code: 'unauthenticated' }));
  });

  it('trusts the header when WEBSITE_AUTH_ENABLED says so, and checks the app role', () => {
    const config = loadConfig({ ...baseEnv, WEBSITE_AUTH_ENABLED: 'True' });
    const admin = identifyCaller(
      request({
        'X-MS-CLIENT-PRINCIPAL': principal(['Broker.Admin']),
        'X-MS-CLIENT-PRINCIPAL-NAME': 'ada@contoso.com',
      }),
      config,
    );
    expect(requireAdmin(admin).name).toBe('ada@contoso.com');
    const reader = identifyCaller(
      request({ 'X-MS-CLIENT-PRINCIPAL': principal(['Broker.TokenReader']) }),
      config,
    );
    expect(() => requireAdmin(reader)).toThrow(expect.objectContaining({ code: 'forbidden' }));
    expect(requireTokenReader(reader, undefined, 'support-in').roles).toContain('Broker.TokenReader');
    const nobody = identifyCaller(request({ 'X-MS-CLIENT-PRINCIPAL': principal([]) }), config);
    expect(() => requireTokenReader(nobody, undefined, 'support-in')).toThrow(
      expect.objectContaining({ code: 'forbidden' }),
    );
  });

  it.each([
    ['an admin, listed or not', principal(['Broker.Admin']), [], 'ok'],
    ['a token reader listed by object id', principal(['Broker.TokenReader'], { oid: OID }), [OID], 'ok'],
    ['a token reader listed by app id', principal(['Broker.TokenReader'], { appid: APP }), [APP], 'ok'],
    ['a token reader not listed', principal(['Broker.TokenReader'], { oid: OID }), [APP], 'forbidden'],
    ['a listed caller without the role', principal([], { oid: OID }), [OID], 'forbidden'],
    ['a signed-in user without a role', principal([], { oid: OID }), [], 'forbidden'],
  ])('token reading: %s → %s', (_who, header, readers, expected) => {
    const config = loadConfig({ ...baseEnv, WEBSITE_AUTH_ENABLED: 'true' });
    const caller = identifyCaller(request({ 'X-MS-CLIENT-PRINCIPAL': header }), config);
    if (expected === 'ok') expect(requireTokenReader(caller, readers, 'support-in')).toBe(caller);
    else
      expect(() => requireTokenReader(caller, readers, 'support-in')).toThrow(
        expect.objectContaining({ code: expected }),
      );
  });

  it('never serves a token anonymously, locally or with a forged header while authentication is off', () => {
    const forged = identifyCaller(
      request({ 'X-MS-CLIENT-PRINCIPAL': principal(['Broker.Admin']) }),
      loadConfig(baseEnv),
    );
    expect(() => requireTokenReader(forged, [OID], 'support-in')).toThrow(
      expect.objectContaining({ code: 'unauthenticated' }),
    );
    const localAdmin = identifyCaller(request({}), loadConfig({ ...baseEnv, BROKER_LOCAL_ADMIN: 'true' }));
    expect(requireTokenReader(localAdmin, [], 'support-in')).toBe(localAdmin);
  });

  it('treats a garbled principal as no principal', () => {
    const config = loadConfig({ ...baseEnv, WEBSITE_AUTH_ENABLED: 'true' });
    expect(identifyCaller(request({ 'X-MS-CLIENT-PRINCIPAL': '%%%not-base64-json' }), config).via).toBe(
      'none',
    );
  });

  it('opens admin routes locally only with BROKER_LOCAL_ADMIN', () => {
    expect(
      identifyCaller(request({}), loadConfig({ ...baseEnv, BROKER_LOCAL_ADMIN: 'true' })).roles,
    ).toContain('Broker.Admin');
    expect(identifyCaller(request({}), loadConfig(baseEnv)).roles).toEqual([]);
  });

  it('regression: an anonymous caller never falls back to local admin while platform authentication is on', () => {
    const config = loadConfig({ ...baseEnv, BROKER_LOCAL_ADMIN: 'true', WEBSITE_AUTH_ENABLED: 'true' });
    expect(identifyCaller(request({}), config)).toEqual({ via: 'none', name: 'anonymous', roles: [] });
  });
});
