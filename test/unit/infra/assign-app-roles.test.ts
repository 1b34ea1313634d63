/**
 * scripts/assign-app-roles.ts, azure.yaml's postprovision step: the reconcile decision as pure
 * functions (what exists + what is wanted → the Graph writes), then the script against a loopback
 * stand-in of the Microsoft Graph endpoints it calls.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  main,
  missingAppRoleAssignments,
  permissionGrantChanges,
  plannedChanges,
  readInputs,
  reconcile,
  type AppRoleAssignment,
  type ExistingGrant,
  type Inputs,
} from '../../../scripts/assign-app-roles';

const SP = '11111111-1111-4111-8111-111111111111'; // the broker's service principal
const EXCHANGE = '22222222-2222-4222-8222-222222222222'; // Office 365 Exchange Online's, in this tenant
const GRAPH_SP = '33333333-3333-4333-8333-333333333333'; // Microsoft Graph's, in this tenant
const DEPLOYER = '44444444-4444-4444-8444-444444444444';
const LATER_ADMIN = '55555555-5555-4555-8555-555555555555';
const ADMIN_ROLE = '473aa1e5-465d-4e62-9601-e9b7e40755f8';
const FULL_ACCESS_AS_APP = 'dc890d15-9560-4a4c-9b7f-a736ec74ec40';

const admin = (principalId: string): AppRoleAssignment => ({
  principalId,
  resourceId: SP,
  appRoleId: ADMIN_ROLE,
});
const fullAccess: AppRoleAssignment = {
  principalId: SP,
  resourceId: EXCHANGE,
  appRoleId: FULL_ACCESS_AS_APP,
};

describe('reconcile decision (pure)', () => {
  it('asks only for the assignments that do not exist, once each, ids compared without case', () => {
    const existing = [{ ...admin(DEPLOYER), principalId: DEPLOYER.toUpperCase() }];
    expect(missingAppRoleAssignments(existing, [admin(DEPLOYER), fullAccess, fullAccess])).toEqual([
      fullAccess,
    ]);
    expect(missingAppRoleAssignments([admin(DEPLOYER), fullAccess], [admin(DEPLOYER), fullAccess])).toEqual(
      [],
    );
  });

  it('creates a tenant-wide grant, adds missing scopes to one that exists, and never removes a scope', () => {
    const wanted = [
      { clientId: SP, resourceId: EXCHANGE, scope: 'EWS.AccessAsUser.All SMTP.Send' },
      { clientId: SP, resourceId: GRAPH_SP, scope: 'User.Read offline_access' },
    ];
    const existing: ExistingGrant[] = [
      // A user's own consent is not the tenant-wide grant.
      {
        id: 'user-grant',
        clientId: SP,
        resourceId: EXCHANGE,
        scope: 'EWS.AccessAsUser.All',
        consentType: 'Principal',
      },
      {
        id: 'graph-grant',
        clientId: SP,
        resourceId: GRAPH_SP,
        scope: 'User.Read Mail.Send',
        consentType: 'AllPrincipals',
      },
    ];
    expect(permissionGrantChanges(existing, wanted)).toEqual([
      {
        method: 'POST',
        path: '/oauth2PermissionGrants',
        body: {
          clientId: SP,
          consentType: 'AllPrincipals',
          resourceId: EXCHANGE,
          scope: 'EWS.AccessAsUser.All SMTP.Send',
        },
      },
      {
        method: 'PATCH',
        path: '/oauth2PermissionGrants/graph-grant',
        body: { scope: 'User.Read Mail.Send offline_access' },
      },
    ]);
    const afterwards: ExistingGrant[] = [
      {
        id: 'a',
        clientId: SP,
        resourceId: EXCHANGE,
        scope: 'SMTP.Send EWS.AccessAsUser.All',
        consentType: 'AllPrincipals',
      },
      {
        id: 'b',
        clientId: SP,
        resourceId: GRAPH_SP,
        scope: 'offline_access User.Read Mail.Send',
        consentType: 'AllPrincipals',
      },
    ];
    expect(permissionGrantChanges(afterwards, wanted)).toEqual([]);
  });

  it('turns a retried provision into the POSTs still missing, on the resource service principal', () => {
    expect(
      plannedChanges([admin(DEPLOYER)], [admin(DEPLOYER), admin(LATER_ADMIN), fullAccess], [], []),
    ).toEqual([
      {
        method: 'POST',
        path: `/servicePrincipals/${SP}/appRoleAssignedTo`,
        body: { principalId: LATER_ADMIN, resourceId: SP, appRoleId: ADMIN_ROLE },
      },
      {
        method: 'POST',
        path: `/servicePrincipals/${EXCHANGE}/appRoleAssignedTo`,
        body: { principalId: SP, resourceId: EXCHANGE, appRoleId: FULL_ACCESS_AS_APP },
      },
    ]);
  });
});

describe('inputs', () => {
  const env = {
    ENTRA_SERVICE_PRINCIPAL_ID: SP,
    AZURE_TENANT_ID: '66666666-6666-4666-8666-666666666666',
    BROKER_APP_ROLE_ASSIGNMENTS: JSON.stringify([admin(DEPLOYER), fullAccess]),
    BROKER_PERMISSION_GRANTS: JSON.stringify([{ clientId: SP, resourceId: GRAPH_SP, scope: 'User.Read' }]),
  };

  it('reads the outputs azd wrote to the environment (arrays as JSON)', () => {
    expect(readInputs(env)).toEqual({
      servicePrincipalId: SP,
      tenantId: env.AZURE_TENANT_ID,
      assignments: [admin(DEPLOYER), fullAccess],
      grants: [{ clientId: SP, resourceId: GRAPH_SP, scope: 'User.Read' }],
    });
    expect(readInputs({ ENTRA_SERVICE_PRINCIPAL_ID: SP, BROKER_APP_ROLE_ASSIGNMENTS: '[]' })).toEqual({
      servicePrincipalId: SP,
      assignments: [],
      grants: [],
    });
  });

  it('reads `az deployment … --query properties.outputs`, whatever case ARM gives the names', () => {
    const outputs = {
      entrA_SERVICE_PRINCIPAL_ID: { type: 'String', value: SP },
      brokeR_APP_ROLE_ASSIGNMENTS: { type: 'Array', value: [admin(DEPLOYER)] },
      BROKER_PERMISSION_GRANTS: { type: 'Array', value: [] },
    };
    expect(readInputs({}, outputs)).toEqual({
      servicePrincipalId: SP,
      assignments: [admin(DEPLOYER)],
      grants: [],
    });
  });

  it('refuses what is not an id, and an assignment the broker is not part of', () => {
    expect(() => readInputs({ ...env, ENTRA_SERVICE_PRINCIPAL_ID: '' })).toThrow(
      /ENTRA_SERVICE_PRINCIPAL_ID: not a GUID/,
    );
    expect(() =>
      readInputs({
        ...env,
        BROKER_APP_ROLE_ASSIGNMENTS: JSON.stringify([{ ...fullAccess, appRoleId: 'x' }]),
      }),
    ).toThrow(/\[0\]\.appRoleId: not a GUID/);
    expect(() =>
      readInputs({
        ...env,
        BROKER_APP_ROLE_ASSIGNMENTS: JSON.stringify([
          { principalId: DEPLOYER, resourceId: EXCHANGE, appRoleId: ADMIN_ROLE },
        ]),
      }),
    ).toThrow(/does not involve the broker's service principal/);
    expect(() => readInputs({ ...env, BROKER_APP_ROLE_ASSIGNMENTS: '{"a":1}' })).toThrow(/JSON array/);
  });
});

// ---- the script against a loopback Microsoft Graph ------------------------------------------------

interface GraphState {
  assignments: (AppRoleAssignment & { id: string })[];
  grants: ExistingGrant[];
  requests: string[];
  /** Answer the next POST with 429 this many times. */
  throttle: number;
}

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

const graphError = (status: number, code: string, message: string): Answer => ({
  status,
  body: { error: { code, message } },
});

/** One list item a page, so the script must follow @odata.nextLink. */
function page(items: unknown[], url: URL, baseUrl: string): Answer {
  const skip = Number(url.searchParams.get('$skiptoken') ?? '0');
  const next = new URL(url);
  next.searchParams.set('$skiptoken', String(skip + 1));
  return {
    status: 200,
    body: {
      value: items.slice(skip, skip + 1),
      ...(skip + 1 < items.length
        ? { '@odata.nextLink': `${baseUrl}${next.pathname.slice('/v1.0'.length)}${next.search}` }
        : {}),
    },
  };
}

/** The Graph v1.0 endpoints scripts/assign-app-roles.ts calls, answering as Graph does. */
function answer(state: GraphState, method: string, url: URL, raw: string, baseUrl: string): Answer {
  const path = url.pathname;
  let m: RegExpExecArray | null;
  if (method === 'GET' && (m = /^\/v1\.0\/servicePrincipals\/([^/]+)\/appRoleAssignedTo$/.exec(path))) {
    const resourceId = m[1];
    return page(
      state.assignments.filter((a) => a.resourceId === resourceId),
      url,
      baseUrl,
    );
  }
  if (method === 'GET' && (m = /^\/v1\.0\/servicePrincipals\/([^/]+)\/appRoleAssignments$/.exec(path))) {
    const principalId = m[1];
    return page(
      state.assignments.filter((a) => a.principalId === principalId),
      url,
      baseUrl,
    );
  }
  if (method === 'POST' && (m = /^\/v1\.0\/servicePrincipals\/([^/]+)\/appRoleAssignedTo$/.exec(path))) {
    if (state.throttle > 0) {
      state.throttle -= 1;
      return { ...graphError(429, 'TooManyRequests', 'slow down'), headers: { 'retry-after': '1' } };
    }
    const body = JSON.parse(raw) as AppRoleAssignment;
    if (body.resourceId !== m[1])
      return graphError(400, 'Request_BadRequest', 'resourceId differs from the path');
    const same = (a: AppRoleAssignment): boolean =>
      a.principalId === body.principalId &&
      a.appRoleId === body.appRoleId &&
      a.resourceId === body.resourceId;
    if (state.assignments.some(same))
      return graphError(400, 'Request_BadRequest', 'Permission being assigned already exists on the object');
    const created = { ...body, id: `assignment-${String(state.assignments.length)}` };
    state.assignments.push(created);
    return { status: 201, body: created };
  }
  if (method === 'GET' && path === '/v1.0/oauth2PermissionGrants') {
    const clientId = /^clientId eq '([^']+)'$/.exec(url.searchParams.get('$filter') ?? '')?.[1];
    return page(
      state.grants.filter((g) => g.clientId === clientId),
      url,
      baseUrl,
    );
  }
  if (method === 'POST' && path === '/v1.0/oauth2PermissionGrants') {
    const created = {
      ...(JSON.parse(raw) as Omit<ExistingGrant, 'id'>),
      id: `grant-${String(state.grants.length)}`,
    };
    state.grants.push(created);
    return { status: 201, body: created };
  }
  if (method === 'PATCH' && (m = /^\/v1\.0\/oauth2PermissionGrants\/([^/]+)$/.exec(path))) {
    const id = m[1];
    const grant = state.grants.find((g) => g.id === id);
    if (!grant) return graphError(404, 'Request_ResourceNotFound', 'no such grant');
    grant.scope = (JSON.parse(raw) as { scope: string }).scope;
    return { status: 204 };
  }
  return graphError(404, 'NotFound', `no route ${method} ${path}`);
}

function graphStandIn(state: GraphState): Promise<{ server: Server; baseUrl: string }> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => {
      raw += chunk.toString();
    });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://graph');
      const method = req.method ?? 'GET';
      state.requests.push(`${method} ${url.pathname}${url.search}`);
      const result =
        req.headers.authorization === 'Bearer graph-token'
          ? answer(state, method, url, raw, baseUrlOf(server))
          : graphError(401, 'InvalidAuthenticationToken', 'no token');
      res.writeHead(result.status, { 'content-type': 'application/json', ...result.headers });
      res.end(result.body === undefined ? '' : JSON.stringify(result.body));
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ server, baseUrl: baseUrlOf(server) });
    });
  });
}

function baseUrlOf(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1.0`;
}

describe('against a loopback Microsoft Graph', () => {
  let server: Server;
  let baseUrl: string;
  let state: GraphState;
  const sleeps: number[] = [];
  const deps = () => ({
    baseUrl,
    getToken: () => Promise.resolve('graph-token'),
    sleep: (ms: number) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
  });
  const wanted: Inputs = {
    servicePrincipalId: SP,
    assignments: [admin(DEPLOYER), fullAccess],
    grants: [
      { clientId: SP, resourceId: EXCHANGE, scope: 'EWS.AccessAsUser.All' },
      { clientId: SP, resourceId: GRAPH_SP, scope: 'User.Read offline_access openid profile' },
    ],
  };

  beforeEach(async () => {
    state = { assignments: [], grants: [], requests: [], throttle: 0 };
    sleeps.length = 0;
    ({ server, baseUrl } = await graphStandIn(state));
  });
  afterEach(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      }),
  );

  it('makes everything on a first run, then nothing: re-running after a failed provision never duplicates', async () => {
    const first = await reconcile(wanted, deps());
    expect(first.made.map((c) => `${c.method} ${c.path}`)).toEqual([
      `POST /servicePrincipals/${SP}/appRoleAssignedTo`,
      `POST /servicePrincipals/${EXCHANGE}/appRoleAssignedTo`,
      'POST /oauth2PermissionGrants',
      'POST /oauth2PermissionGrants',
    ]);
    expect(state.assignments).toHaveLength(2);
    state.requests.length = 0;
    const second = await reconcile(wanted, deps());
    expect(second.made).toEqual([]);
    expect(second.unchanged).toBe(4);
    expect(state.requests.every((r) => r.startsWith('GET '))).toBe(true);
  });

  it('assigns an admin added later, and only that one, following paged lists', async () => {
    await reconcile(wanted, deps());
    state.requests.length = 0;
    const result = await reconcile(
      { ...wanted, assignments: [...wanted.assignments, admin(LATER_ADMIN)] },
      deps(),
    );
    expect(result.made).toEqual([
      {
        method: 'POST',
        path: `/servicePrincipals/${SP}/appRoleAssignedTo`,
        body: { principalId: LATER_ADMIN, resourceId: SP, appRoleId: ADMIN_ROLE },
      },
    ]);
    expect(state.requests.filter((r) => r.includes('skiptoken')).length).toBeGreaterThan(0);
  });

  it('waits out throttling (Retry-After) and takes an assignment made meanwhile as done', async () => {
    state.throttle = 1;
    await reconcile({ ...wanted, grants: [] }, deps());
    expect(sleeps).toEqual([1000]);
    // Another run made the assignment between this run's read and its write: Graph's 400 is success.
    state.assignments.push({ ...fullAccess, id: 'made-meanwhile' });
    const racing = await reconcile({ ...wanted, grants: [] }, { ...deps(), fetch: listingNothing(baseUrl) });
    expect(racing.made).toEqual([]);
  });

  it('runs as the hook does, or from `az deployment` outputs (README path 2)', async () => {
    const lines: string[] = [];
    const env = {
      ENTRA_SERVICE_PRINCIPAL_ID: SP,
      BROKER_APP_ROLE_ASSIGNMENTS: JSON.stringify([admin(DEPLOYER)]),
      BROKER_PERMISSION_GRANTS: '[]',
    };
    const made = await main([], env, { ...deps(), log: (l) => lines.push(l) });
    expect(made.made).toHaveLength(1);
    expect(lines.at(-1)).toBe('1 made, 0 existed already');
    const file = join(mkdtempSync(join(tmpdir(), 'outputs-')), 'outputs.json');
    writeFileSync(
      file,
      JSON.stringify({
        ENTRA_SERVICE_PRINCIPAL_ID: { type: 'String', value: SP },
        BROKER_APP_ROLE_ASSIGNMENTS: { type: 'Array', value: [admin(DEPLOYER), admin(LATER_ADMIN)] },
        BROKER_PERMISSION_GRANTS: { type: 'Array', value: [] },
      }),
    );
    const fromFile = await main(['--deployment-outputs', file], {}, { ...deps(), log: () => undefined });
    expect(fromFile.made.map((c) => (c.method === 'POST' ? c.body.principalId : c.path))).toEqual([
      LATER_ADMIN,
    ]);
  });

  it('sends its token to Graph only, never to a link that points elsewhere', async () => {
    const evil = (async (input: string | URL) => {
      const url = input.toString();
      if (url.includes('/appRoleAssignedTo'))
        return new Response(JSON.stringify({ value: [], '@odata.nextLink': 'https://attacker.test/steal' }), {
          status: 200,
        });
      return fetch(input);
    }) as typeof fetch;
    await expect(reconcile(wanted, { ...deps(), fetch: evil })).rejects.toThrow(
      /not a Graph URL: https:\/\/attacker\.test/,
    );
  });
});

/** A fetch whose assignment lists come back empty, as they would have a moment before. */
function listingNothing(baseUrl: string): typeof fetch {
  return ((input: string | URL, init?: RequestInit) => {
    const url = input.toString();
    if (
      url.startsWith(baseUrl) &&
      /appRoleAssign(edTo|ments)$/.test(new URL(url).pathname) &&
      (init?.method ?? 'GET') === 'GET'
    )
      return Promise.resolve(new Response(JSON.stringify({ value: [] }), { status: 200 }));
    return fetch(input, init);
  }) as typeof fetch;
}
