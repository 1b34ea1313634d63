/**
 * azd's `postprovision` hook (README path 2 runs it by hand): makes the app role assignments and the
 * tenant-wide delegated grants (admin consent) the deployment lists, through Microsoft Graph, and only
 * those that do not exist yet. So it can run after every provision, after a failed first one, and
 * after an admin was added to BROKER_ADMIN_PRINCIPAL_IDS. It never removes anything.
 *
 * Why not Bicep: Microsoft Graph Bicep cannot re-create an appRoleAssignedTo that exists
 * ("EntitlementGrant entry already exists", microsoftgraph/msgraph-bicep-types issue 161).
 *
 * Inputs (the deployment's outputs; azd writes array outputs as JSON): ENTRA_SERVICE_PRINCIPAL_ID,
 * BROKER_APP_ROLE_ASSIGNMENTS ([{ principalId, resourceId, appRoleId }]), BROKER_PERMISSION_GRANTS
 * ([{ clientId, resourceId, scope }]), AZURE_TENANT_ID; or `--deployment-outputs <file>` holding
 * `az deployment sub show --query properties.outputs`. Signs in with azd's login, else the Azure CLI's.
 *
 * Graph calls (v1.0): GET /servicePrincipals/{sp}/appRoleAssignedTo (who holds the broker's roles),
 * GET /servicePrincipals/{sp}/appRoleAssignments (which application permissions the broker holds),
 * GET /oauth2PermissionGrants?$filter=clientId eq '{sp}'; then POST /servicePrincipals/{resource}/
 * appRoleAssignedTo, POST /oauth2PermissionGrants or PATCH /oauth2PermissionGrants/{id} (scopes added).
 */
import { readFileSync } from 'node:fs';
import type { TokenCredential } from '@azure/identity';

export interface AppRoleAssignment {
  principalId: string;
  resourceId: string;
  appRoleId: string;
}

/** A tenant-wide (consentType AllPrincipals) delegated permission grant. */
export interface PermissionGrant {
  clientId: string;
  resourceId: string;
  scope: string;
}

export interface ExistingGrant extends PermissionGrant {
  id: string;
  consentType: string;
}

export type GraphChange =
  | { method: 'POST'; path: string; body: Record<string, string> }
  | { method: 'PATCH'; path: string; body: { scope: string } };

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const sameId = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
const scopesOf = (scope: string): string[] => scope.split(/\s+/).filter(Boolean);

/** The wanted assignments that no existing one already makes (ids compared without case), once each. */
export function missingAppRoleAssignments(
  existing: readonly AppRoleAssignment[],
  wanted: readonly AppRoleAssignment[],
): AppRoleAssignment[] {
  const missing: AppRoleAssignment[] = [];
  const same = (a: AppRoleAssignment, b: AppRoleAssignment): boolean =>
    sameId(a.principalId, b.principalId) &&
    sameId(a.resourceId, b.resourceId) &&
    sameId(a.appRoleId, b.appRoleId);
  for (const assignment of wanted) {
    if (existing.some((e) => same(e, assignment)) || missing.some((m) => same(m, assignment))) continue;
    missing.push(assignment);
  }
  return missing;
}

/**
 * The Graph writes that make `wanted` true: a new AllPrincipals grant where the client has none for
 * the resource, else the missing scopes added to the one it has. Scopes are never taken away.
 */
export function permissionGrantChanges(
  existing: readonly ExistingGrant[],
  wanted: readonly PermissionGrant[],
): GraphChange[] {
  const changes: GraphChange[] = [];
  const added = new Map<string, Set<string>>();
  for (const grant of wanted) {
    const current = existing.find(
      (e) =>
        e.consentType === 'AllPrincipals' &&
        sameId(e.clientId, grant.clientId) &&
        sameId(e.resourceId, grant.resourceId),
    );
    if (!current) {
      const key = `${grant.clientId.toLowerCase()} ${grant.resourceId.toLowerCase()}`;
      if (added.has(key)) continue;
      added.set(key, new Set(scopesOf(grant.scope)));
      changes.push({
        method: 'POST',
        path: '/oauth2PermissionGrants',
        body: {
          clientId: grant.clientId,
          consentType: 'AllPrincipals',
          resourceId: grant.resourceId,
          scope: scopesOf(grant.scope).join(' '),
        },
      });
      continue;
    }
    const have = scopesOf(current.scope);
    const missing = scopesOf(grant.scope).filter((s) => !have.includes(s));
    if (missing.length > 0)
      changes.push({
        method: 'PATCH',
        path: `/oauth2PermissionGrants/${current.id}`,
        body: { scope: [...have, ...missing].join(' ') },
      });
  }
  return changes;
}

/** Every Graph write this run makes: the missing app role assignments, then the grant changes. */
export function plannedChanges(
  existingAssignments: readonly AppRoleAssignment[],
  wantedAssignments: readonly AppRoleAssignment[],
  existingGrants: readonly ExistingGrant[],
  wantedGrants: readonly PermissionGrant[],
): GraphChange[] {
  return [
    ...missingAppRoleAssignments(existingAssignments, wantedAssignments).map((a): GraphChange => ({
      method: 'POST',
      path: `/servicePrincipals/${a.resourceId}/appRoleAssignedTo`,
      body: { principalId: a.principalId, resourceId: a.resourceId, appRoleId: a.appRoleId },
    })),
    ...permissionGrantChanges(existingGrants, wantedGrants),
  ];
}

// ---- inputs ---------------------------------------------------------------------------------------

export interface Inputs {
  servicePrincipalId: string;
  tenantId?: string;
  assignments: AppRoleAssignment[];
  grants: PermissionGrant[];
}

function guid(value: unknown, what: string): string {
  if (typeof value !== 'string' || !GUID.test(value))
    throw new TypeError(`${what}: not a GUID (${String(value)})`);
  return value;
}

function jsonArray(value: unknown, what: string): Record<string, unknown>[] {
  const parsed: unknown =
    typeof value === 'string' ? (value.trim() === '' ? [] : JSON.parse(value)) : (value ?? []);
  if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === 'object' && v !== null))
    throw new TypeError(`${what}: expected a JSON array of objects`);
  return parsed as Record<string, unknown>[];
}

/**
 * The script's inputs from the hook's environment, or from `az deployment … --query
 * properties.outputs` (names matched without case; ARM may change their case).
 */
export function readInputs(
  env: Record<string, string | undefined>,
  deploymentOutputs?: Record<string, { value?: unknown }>,
): Inputs {
  const output = (name: string): unknown => {
    if (!deploymentOutputs) return env[name];
    const key = Object.keys(deploymentOutputs).find((k) => k.toLowerCase() === name.toLowerCase());
    return key === undefined ? undefined : deploymentOutputs[key]?.value;
  };
  const servicePrincipalId = guid(output('ENTRA_SERVICE_PRINCIPAL_ID'), 'ENTRA_SERVICE_PRINCIPAL_ID');
  const assignments = jsonArray(output('BROKER_APP_ROLE_ASSIGNMENTS'), 'BROKER_APP_ROLE_ASSIGNMENTS').map(
    (a, i): AppRoleAssignment => ({
      principalId: guid(a.principalId, `BROKER_APP_ROLE_ASSIGNMENTS[${i}].principalId`),
      resourceId: guid(a.resourceId, `BROKER_APP_ROLE_ASSIGNMENTS[${i}].resourceId`),
      appRoleId: guid(a.appRoleId, `BROKER_APP_ROLE_ASSIGNMENTS[${i}].appRoleId`),
    }),
  );
  const grants = jsonArray(output('BROKER_PERMISSION_GRANTS'), 'BROKER_PERMISSION_GRANTS').map(
    (g, i): PermissionGrant => {
      if (typeof g.scope !== 'string' || scopesOf(g.scope).length === 0)
        throw new TypeError(`BROKER_PERMISSION_GRANTS[${i}].scope: expected scope names`);
      return {
        clientId: guid(g.clientId, `BROKER_PERMISSION_GRANTS[${i}].clientId`),
        resourceId: guid(g.resourceId, `BROKER_PERMISSION_GRANTS[${i}].resourceId`),
        scope: g.scope,
      };
    },
  );
  // Existing assignments are read from the broker's side only (its few, not all of Microsoft Graph's).
  for (const a of assignments) {
    if (!sameId(a.principalId, servicePrincipalId) && !sameId(a.resourceId, servicePrincipalId))
      throw new RangeError(
        `app role assignment ${JSON.stringify(a)} does not involve the broker's service principal`,
      );
  }
  for (const g of grants) {
    if (!sameId(g.clientId, servicePrincipalId))
      throw new RangeError(`permission grant ${JSON.stringify(g)} is not for the broker's service principal`);
  }
  const tenantId = output('AZURE_TENANT_ID');
  return {
    servicePrincipalId,
    ...(typeof tenantId === 'string' && tenantId ? { tenantId } : {}),
    assignments,
    grants,
  };
}

// ---- Microsoft Graph ------------------------------------------------------------------------------

export const GRAPH = 'https://graph.microsoft.com/v1.0';

export interface GraphDeps {
  /** https://graph.microsoft.com/v1.0, or a stand-in. */
  baseUrl: string;
  getToken: () => Promise<string>;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  log?: (line: string) => void;
}

export class GraphError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Graph's answer when an app role assignment exists already (a second run racing the first). */
function alreadyExists(error: unknown): boolean {
  return (
    error instanceof GraphError &&
    (error.status === 409 || (error.status === 400 && /already exists/i.test(error.message)))
  );
}

/** Throttling, server trouble, and a principal Entra has not replicated yet: worth another try. */
function transient(error: unknown): boolean {
  if (!(error instanceof GraphError)) return false;
  if (error.status === 429 || error.status >= 500) return true;
  return (error.status === 404 || error.status === 400) && /does not exist|not found/i.test(error.message);
}

async function call(deps: GraphDeps, method: string, url: string, body?: unknown): Promise<unknown> {
  const doFetch = deps.fetch ?? fetch;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const target = url.startsWith('http') ? url : `${deps.baseUrl}${url}`;
  // Follow Graph's own links (@odata.nextLink) only: the request carries a bearer token.
  if (new URL(target).origin !== new URL(deps.baseUrl).origin)
    throw new RangeError(`not a Graph URL: ${target}`);
  for (let attempt = 1; ; attempt++) {
    const response = await doFetch(target, {
      method,
      headers: {
        authorization: `Bearer ${await deps.getToken()}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (response.ok) return text ? (JSON.parse(text) as unknown) : undefined;
    let code = '';
    let message = `${method} ${url}: HTTP ${response.status}`;
    try {
      const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
      code = parsed.error?.code ?? '';
      if (parsed.error?.message) message = `${message}: ${parsed.error.message}`;
    } catch {
      // not JSON: keep the status
    }
    const error = new GraphError(response.status, code, message);
    if (!transient(error) || attempt >= 6) throw error;
    const retryAfter = Number(response.headers.get('retry-after'));
    await sleep(
      Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter, 60) * 1000 : 2 ** attempt * 1000,
    );
  }
}

async function list<T>(deps: GraphDeps, path: string): Promise<T[]> {
  const items: T[] = [];
  let next: string | undefined = path;
  while (next) {
    const page = (await call(deps, 'GET', next)) as { value?: T[]; '@odata.nextLink'?: string };
    items.push(...(page.value ?? []));
    next = page['@odata.nextLink'];
  }
  return items;
}

export interface ReconcileResult {
  made: GraphChange[];
  /** Wanted assignments and grants that existed already. */
  unchanged: number;
}

/** Reads what exists, makes what is missing. */
export async function reconcile(inputs: Inputs, deps: GraphDeps): Promise<ReconcileResult> {
  const sp = inputs.servicePrincipalId;
  const existingAssignments = [
    ...(await list<AppRoleAssignment>(deps, `/servicePrincipals/${sp}/appRoleAssignedTo`)),
    ...(await list<AppRoleAssignment>(deps, `/servicePrincipals/${sp}/appRoleAssignments`)),
  ];
  const existingGrants =
    inputs.grants.length === 0
      ? []
      : await list<ExistingGrant>(
          deps,
          `/oauth2PermissionGrants?$filter=${encodeURIComponent(`clientId eq '${sp}'`)}`,
        );
  const changes = plannedChanges(existingAssignments, inputs.assignments, existingGrants, inputs.grants);
  const made: GraphChange[] = [];
  for (const change of changes) {
    try {
      await call(deps, change.method, change.path, change.body);
      made.push(change);
      deps.log?.(`${change.method} ${change.path} ${JSON.stringify(change.body)}`);
    } catch (error) {
      if (!alreadyExists(error)) throw error;
      deps.log?.(`exists already: ${change.path} ${JSON.stringify(change.body)}`);
    }
  }
  return { made, unchanged: inputs.assignments.length + inputs.grants.length - made.length };
}

/** Microsoft Graph tokens from azd's sign-in (the hook), else the Azure CLI's (README path 2). */
export async function signedInCredential(tenantId?: string): Promise<TokenCredential> {
  const { AzureCliCredential, AzureDeveloperCliCredential, ChainedTokenCredential } =
    await import('@azure/identity');
  const options = tenantId ? { tenantId } : {};
  return new ChainedTokenCredential(
    new AzureDeveloperCliCredential(options),
    new AzureCliCredential(options),
  );
}

export async function main(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  deps: Partial<GraphDeps> & { credential?: TokenCredential } = {},
): Promise<ReconcileResult> {
  const fileFlag = argv.indexOf('--deployment-outputs');
  const file = fileFlag >= 0 ? argv[fileFlag + 1] : undefined;
  if (fileFlag >= 0 && !file) throw new TypeError('--deployment-outputs needs a file');
  const inputs = readInputs(
    env,
    file ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, { value?: unknown }>) : undefined,
  );
  const log =
    deps.log ??
    ((line: string) => {
      console.log(`assign-app-roles: ${line}`);
    });
  if (inputs.assignments.length === 0 && inputs.grants.length === 0) {
    log('nothing to assign');
    return { made: [], unchanged: 0 };
  }
  const credential = deps.credential ?? (await signedInCredential(inputs.tenantId));
  const result = await reconcile(inputs, {
    baseUrl: deps.baseUrl ?? GRAPH,
    getToken:
      deps.getToken ??
      (async () => {
        const token = await credential.getToken('https://graph.microsoft.com/.default');
        if (!token) throw new Error('no Microsoft Graph token: sign in with `azd auth login` or `az login`');
        return token.token;
      }),
    log,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
  });
  log(`${result.made.length} made, ${result.unchanged} existed already`);
  return result;
}

if (require.main === module) {
  main(process.argv.slice(2), process.env).catch((error: unknown) => {
    console.error(`assign-app-roles: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
