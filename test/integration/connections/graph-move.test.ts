import {
  api,
  authorizeConnection,
  expectNoSecrets,
  startHarness,
  USERS,
  type Harness,
} from '../../support/harness';

/**
 * EWS to Graph in one click, against the Entra emulator and the EWS and Graph stand-ins: the
 * Graph sibling signs in through the EWS connection's sign-in, gets its token with no popup and is
 * tested at once; the readiness view pairs them and counts the days to 1 April 2027.
 */
let harness: Harness;
const bodies: string[] = [];

beforeAll(async () => {
  harness = await startHarness({ mailboxes: {} });
  expect(await authorizeConnection(harness, 'support-in')).toBe(200);
}, 60_000);

afterAll(async () => {
  try {
    expectNoSecrets(harness.secretsSeen, [...harness.logs, ...bodies]);
  } finally {
    await harness.close();
  }
});

async function call(method: string, path: string, body?: unknown) {
  const response = await api(harness.baseUrl, method, path, body);
  bodies.push(response.text);
  return response;
}

it('a Graph connection for an EWS one is defined, signed in through the same sign-in and tested in one call', async () => {
  const before = await call('GET', '/api/graph-readiness');
  expect(before.json).toMatchObject({ ewsRetirement: '2027-04-01', ready: 0, total: 1 });
  expect(before.json.connections).toEqual([
    expect.objectContaining({ ews: 'support-in', graph: null, ready: false }),
  ]);
  const signIns = harness.entra.stats.requests.authorize ?? 0;
  // The EWS sign-in consented to EWS only: the Graph scopes need consent, which an admin may give
  // tenant-wide (or the next Authorize of support-in asks for them).
  harness.entra.grantAdminConsent(harness.env.ENTRA_CLIENT_ID!);

  const added = await call('POST', '/api/connections/support-in/graph');

  expect(added.status).toBe(201);
  expect(added.headers.get('location')).toBe('/api/connections/support-in-graph');
  expect(added.json.connection).toMatchObject({
    name: 'support-in-graph',
    profile: 'graph-mail',
    signInFrom: 'support-in',
    status: 'authorized',
    mailbox: USERS.support.username,
  });
  expect(added.json.test).toMatchObject({ ok: true, protocol: 'graph', details: { totalCount: 12 } });
  expect(harness.entra.stats.requests.authorize ?? 0).toBe(signIns);
  const after = await call('GET', '/api/graph-readiness');
  expect(after.json).toMatchObject({ ready: 1, total: 1 });
  expect(after.json.connections).toEqual([
    expect.objectContaining({
      ews: 'support-in',
      ready: true,
      graph: expect.objectContaining({ name: 'support-in-graph', status: 'authorized' }),
    }),
  ]);
});

it('takes a name, and refuses what it cannot do with a 4xx that changes nothing', async () => {
  const named = await call('POST', '/api/connections/support-in/graph', { name: 'support-mail' });
  expect(named.status).toBe(201);
  expect(named.json.connection).toMatchObject({ name: 'support-mail', signInFrom: 'support-in' });
  const refusals: [string, unknown, number, string][] = [
    ['/api/connections/support-in/graph', undefined, 409, 'connection_exists'],
    ['/api/connections/support-in/graph', { name: 'Bad Name' }, 400, 'invalid_connection_name'],
    ['/api/connections/support-in/graph', { name: 'x', other: 1 }, 400, 'invalid_request'],
    ['/api/connections/support-mail/graph', undefined, 400, 'invalid_request'],
    ['/api/connections/nobody/graph', undefined, 404, 'connection_not_found'],
  ];
  const count = (await harness.broker.registry.list()).length;
  for (const [path, body, status, code] of refusals) {
    const refused = await call('POST', path, body);
    expect({ path, body, status: refused.status, code: refused.json.code }).toEqual({
      path,
      body,
      status,
      code,
    });
  }
  expect((await harness.broker.registry.list()).length).toBe(count);
  // The console asks for the name: the remedy says to choose another, not what JSON to send.
  const taken = await call('POST', '/api/connections/support-in/graph', { name: 'support-mail' });
  expect(taken.json).toMatchObject({
    type: expect.stringMatching(/#error-connection_exists$/),
    status: 409,
    code: 'connection_exists',
  });
  expect(String(taken.json.remedy)).toMatch(/^Choose another name/);
  expect(String(taken.json.remedy)).not.toContain('Send');
});

it('a reset forgets the last tests of the source and its dependants: nothing is ready on a grant that is gone', async () => {
  expect((await harness.broker.registry.get('support-in-graph'))?.lastTest).toMatchObject({ ok: true });
  const source = await harness.broker.registry.get('support-in');
  const logged = harness.logs.length;
  const reset = await call('PUT', '/api/connections/support-in?reset=true', {
    mailbox: source!.mailbox,
    profile: source!.profile,
  });
  expect(reset.status).toBe(200);
  // Regression: the reset warned once per dependant (connection.notification, webhook false). An
  // admin's action is news: the dependants' lines are there, at info.
  const lines = harness.logs.slice(logged).map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(lines.filter((line) => line.level !== 'info')).toEqual([]);
  expect(
    lines
      .filter(
        (line) =>
          line.event === 'connection.notification' && line.type === 'connection.reauthorization_required',
      )
      .map((line) => line.connection)
      .sort(),
  ).toEqual(['support-in-graph', 'support-mail']);
  for (const name of ['support-in', 'support-in-graph']) {
    const view = await call('GET', `/api/connections/${name}`);
    expect({ name, lastTest: view.json.lastTest, tokenExpiresOn: view.json.tokenExpiresOn }).toEqual({
      name,
      lastTest: null,
      tokenExpiresOn: null,
    });
  }
  const readiness = await call('GET', '/api/graph-readiness');
  expect(readiness.json).toMatchObject({ ready: 0 });
});
