import type { Broker } from '../../../shared/broker';
import { requireTokenReader, type Caller } from '../../../shared/http/caller';
import { startLocalHost, type LocalHost } from '../../../scripts/host';
import {
  authorizeConnection,
  freePort,
  servedOr,
  startHarness,
  testConnection,
  USERS,
  type Harness,
} from '../../support/harness';

/**
 * Two instances of the broker over the same stores. The token route of instance A keeps tokens in
 * memory; what an admin changes on instance B (disable, reader list, reset) must apply on A within
 * the row memory (1 s), not after A's 30 s token memory, and Test connection on A must never send a
 * token to a resource the connection no longer uses.
 */
let harness: Harness;
let other: Broker;
const bodies: string[] = [];
const READER: Caller = {
  via: 'app-service-auth',
  name: 'helpdesk',
  roles: ['Broker.TokenReader'],
  appOnly: true,
  appId: 'cccccccc-0000-4000-8000-000000000003',
};
const change = { actor: 'admin-on-b', correlationId: 'c' };
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  harness = await startHarness({ mailboxes: {} });
  other = harness.secondBroker();
}, 60_000);

afterAll(() => harness.close());

/** A read on instance A, as the token route makes it for READER. */
function readOnA(name: string) {
  return harness.broker.tokenReader.read(name, 60, (connection) =>
    requireTokenReader(READER, connection.readers, name),
  );
}

async function defineAndAuthorize(name: string, extra: Record<string, unknown> = {}) {
  const definition = { mailbox: USERS.support.username, profile: 'ews', readers: [READER.appId], ...extra };
  expect(await authorizeConnection(harness, name, USERS.support, definition)).toBe(200);
  expect(await servedOr(readOnA(name))).toBe('served');
}

it('regression: a disable on another instance was not seen for 30 s — now within a second', async () => {
  await defineAndAuthorize('disabled-elsewhere');
  await other.connections.disable('disabled-elsewhere', change);
  await pause(1100);
  expect(await servedOr(readOnA('disabled-elsewhere'))).toBe('connection_disabled');
});

it('regression: a reader removed on another instance kept reading — now refused within a second', async () => {
  await defineAndAuthorize('reader-removed');
  const current = (await harness.broker.registry.get('reader-removed'))!;
  await other.connections.define(
    'reader-removed',
    {
      mailbox: current.mailbox,
      account: current.account,
      profile: current.profile,
      grant: current.grant,
      readers: [],
      scopes: undefined,
      ewsUrl: undefined,
      description: '',
    },
    { ...change, reset: false },
  );
  await pause(1100);
  expect(await servedOr(readOnA('reader-removed'))).toBe('forbidden');
});

it('regression: Test connection sent an Exchange Online token to the host a reset pointed ewsUrl at', async () => {
  await defineAndAuthorize('repointed');
  const onPremises = 'https://mail.contoso.test/EWS/Exchange.asmx';
  const current = (await harness.broker.registry.get('repointed'))!;
  // The definition now names an on-premises server, while the published token (for
  // outlook.office365.com) is still in the vault: as after a reset whose secrets another instance
  // has not seen gone yet.
  await other.registry.upsertDefinition('repointed', {
    mailbox: current.mailbox,
    account: current.account,
    profile: 'ews',
    grant: current.grant,
    ewsUrl: onPremises,
    scopes: undefined,
    readers: current.readers,
    description: '',
  });
  const before = harness.services!.ews.requests.length;
  await pause(1100);
  const { json } = await testConnection(harness, 'repointed', bodies);
  expect(json).toMatchObject({ ok: false, code: 'token_wrong_audience' });
  expect(String(json.detail)).toContain('https://outlook.office365.com');
  expect(String(json.detail)).toContain('https://mail.contoso.test');
  expect(harness.services!.ews.requests.length).toBe(before);
  expect(harness.services!.router.tunnels.some((t) => t.target.startsWith('mail.contoso.test'))).toBe(false);
});

describe('through the token route behind App Service Authentication', () => {
  let azure: LocalHost;
  const CONSUMER_APP = 'eeeeeeee-0000-4000-8000-000000000005';

  beforeAll(async () => {
    azure = await startLocalHost({
      broker: harness.secondBroker({ WEBSITE_AUTH_ENABLED: 'true', BROKER_LOCAL_ADMIN: 'false' }),
      port: await freePort(),
    });
    await defineAndAuthorize('app-reader', { readers: [READER.appId, CONSUMER_APP] });
  });

  afterAll(() => azure.close());

  /** A caller as App Service Authentication passes it on: with `scp` for a user, without for an app. */
  function principal(claims: { typ: string; val: string }[]): string {
    return Buffer.from(
      JSON.stringify({
        auth_typ: 'aad',
        name_typ: 'name',
        role_typ: 'roles',
        claims: [{ typ: 'name', val: 'x' }, { typ: 'roles', val: 'Broker.TokenReader' }, ...claims],
      }),
    ).toString('base64');
  }

  async function token(name: string, claims: { typ: string; val: string }[]) {
    const response = await fetch(`${azure.url}/api/connections/${name}/token`, {
      headers: { 'X-MS-CLIENT-PRINCIPAL': principal(claims) },
    });
    const body = (await response.json()) as Record<string, unknown>;
    if (typeof body.access_token === 'string') harness.secretsSeen.add(body.access_token);
    return { status: response.status, body };
  }

  it('answers an unknown connection exactly as an unlisted one: a reader learns nothing', async () => {
    const stranger = [{ typ: 'appid', val: 'ffffffff-0000-4000-8000-000000000006' }];
    const unlisted = await token('app-reader', stranger);
    const unknown = await token('no-such-connection', stranger);
    const shape = ({ status, body }: { status: number; body: Record<string, unknown> }) => ({
      status,
      code: body.code,
      detail: String(body.detail).replace(/app-reader|no-such-connection/, '{name}'),
    });
    expect(shape(unlisted)).toEqual({
      status: 403,
      code: 'forbidden',
      detail: 'x may not read the token of {name}.',
    });
    expect(shape(unknown)).toEqual(shape(unlisted));
  });

  it('regression: a user signed in to a listed consumer app read the token — app ids match app-only callers only', async () => {
    const asApp = await token('app-reader', [{ typ: 'appid', val: CONSUMER_APP }]);
    expect(asApp.status).toBe(200);
    const asUserOfThatApp = await token('app-reader', [
      { typ: 'appid', val: CONSUMER_APP },
      { typ: 'http://schemas.microsoft.com/identity/claims/scope', val: 'user_impersonation' },
      {
        typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier',
        val: 'abababab-0000-4000-8000-000000000007',
      },
    ]);
    expect(asUserOfThatApp).toMatchObject({ status: 403, body: { code: 'forbidden' } });
  });
});
