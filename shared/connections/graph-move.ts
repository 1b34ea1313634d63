/**
 * The move from EWS to Microsoft Graph before Exchange Online turns EWS off (1 April 2027): which EWS
 * connections already have a working Graph sibling, and the definition of the sibling to add. Pure:
 * the route and the console read it; the lifecycle defines what it plans.
 */
import { BrokerError } from '../errors';
import {
  assertConnectionName,
  CONNECTION_NAME,
  type Connection,
  type ConnectionDefinition,
  type LastTest,
  type Profile,
} from './connection';
import type { ConnectionLifecycle } from './lifecycle';
import { requireConnection, type ConnectionRegistry } from './registry';

/** The day EWS in Exchange Online stops answering for good (after the October 2026 allow-list block). */
export const EWS_RETIREMENT = '2027-04-01';
const DAY_MS = 86_400_000;

const EWS_PROFILES = new Set<Profile>(['ews', 'ews-shared']);
const GRAPH_PROFILES = new Set<Profile>(['graph-mail', 'graph-mail-shared']);

export interface GraphReadinessRow {
  ews: string;
  mailbox: string;
  profile: Profile;
  status: Connection['status'];
  /** The last Test connection of the EWS connection (`ews_blocked`, `ews_disabled`, ok), if any. */
  lastTest: LastTest | null;
  graph: { name: string; status: Connection['status']; lastTest: LastTest | null } | null;
  /** A Graph sibling that is authorized and whose last test, if any, passed. */
  ready: boolean;
}

export interface GraphReadiness {
  ewsRetirement: string;
  daysLeft: number;
  ready: number;
  total: number;
  connections: GraphReadinessRow[];
}

/** Whole days from `now` until EWS retires, never below 0. */
export function daysUntilEwsRetirement(now: Date): number {
  return Math.max(0, Math.ceil((Date.parse(`${EWS_RETIREMENT}T00:00:00Z`) - now.getTime()) / DAY_MS));
}

/**
 * The Graph connection that serves the same mailbox as `ews`: for the same account (or app-only
 * when `ews` is), preferring one that signs in through the same sign-in.
 */
export function graphSiblingOf(ews: Connection, all: Connection[]): Connection | undefined {
  const signIn = ews.signInFrom ?? ews.name;
  const candidates = all.filter(
    (other) =>
      GRAPH_PROFILES.has(other.profile) &&
      other.mailbox === ews.mailbox &&
      (other.grant === 'client_credentials') === (ews.grant === 'client_credentials') &&
      other.account === ews.account,
  );
  return candidates.find((other) => other.signInFrom === signIn) ?? candidates[0];
}

/** Every EWS connection with its Graph sibling, if any, and the days left (pure; table-tested). */
export function graphReadiness(all: Connection[], now: Date): GraphReadiness {
  const connections = all
    .filter((connection) => EWS_PROFILES.has(connection.profile))
    .map((ews): GraphReadinessRow => {
      const graph = graphSiblingOf(ews, all);
      return {
        ews: ews.name,
        mailbox: ews.mailbox,
        profile: ews.profile,
        status: ews.status,
        lastTest: ews.lastTest ?? null,
        graph: graph ? { name: graph.name, status: graph.status, lastTest: graph.lastTest ?? null } : null,
        ready: graph !== undefined && graph.status === 'authorized' && graph.lastTest?.ok !== false,
      };
    })
    .sort((a, b) => Number(a.ready) - Number(b.ready) || a.ews.localeCompare(b.ews));
  return {
    ewsRetirement: EWS_RETIREMENT,
    daysLeft: daysUntilEwsRetirement(now),
    ready: connections.filter((row) => row.ready).length,
    total: connections.length,
    connections,
  };
}

/**
 * The Graph sibling of an EWS connection: `graph-mail` (`graph-mail-shared` for `ews-shared`), the
 * same mailbox, account and readers, signing in through the EWS connection's sign-in (its own, or
 * the one it borrows: no chains). An app-only EWS connection gets an app-only `graph-mail`, which
 * reaches any mailbox.
 */
export function graphSiblingDefinition(
  ews: Connection,
  requestedName: string | undefined,
): {
  name: string;
  definition: ConnectionDefinition;
} {
  if (!EWS_PROFILES.has(ews.profile)) {
    throw new BrokerError(
      'invalid_request',
      `Connection ${ews.name} is not an EWS connection (profile ${ews.profile}).`,
    );
  }
  const name = requestedName ?? `${ews.name}-graph`;
  if (!CONNECTION_NAME.test(name)) {
    throw new BrokerError('invalid_connection_name', `${name} is not a valid connection name.`, {
      remedy:
        'Choose a name of 1 to 48 lower-case letters, digits and hyphens that starts and ends with a letter or digit (the API takes it as `name` in the body).',
    });
  }
  const appOnly = ews.grant === 'client_credentials';
  return {
    name,
    definition: {
      mailbox: ews.mailbox,
      account: ews.account,
      profile: appOnly || ews.profile === 'ews' ? 'graph-mail' : 'graph-mail-shared',
      grant: appOnly ? 'client_credentials' : 'authorization_code',
      scopes: undefined,
      ewsUrl: undefined,
      readers: [...ews.readers],
      description: `Microsoft Graph for ${ews.mailbox}, beside ${ews.name} (EWS retires on ${EWS_RETIREMENT}).`,
      ...(appOnly ? {} : { signInFrom: ews.signInFrom ?? ews.name }),
    },
  };
}

/**
 * "Add the Graph connection" on an EWS row: defines its Graph sibling (which, signing in through the
 * same sign-in, gets its first token at once when that sign-in holds one) and tests it right away.
 * Body: optional `{ "name": "…" }` (default `{ews}-graph`).
 */
export async function addGraphSibling<TestResult>(
  services: {
    registry: Pick<ConnectionRegistry, 'get'>;
    connections: Pick<ConnectionLifecycle, 'define'>;
    tester: { test(name: string, correlationId: string): Promise<TestResult> };
  },
  rawName: string | undefined,
  body: unknown,
  change: { actor: string; correlationId: string },
): Promise<{ connection: Connection; test: TestResult | null }> {
  const ews = await requireConnection(services.registry, assertConnectionName(rawName));
  const requested = requestedNameOf(body);
  const { name, definition } = graphSiblingDefinition(ews, requested);
  if (await services.registry.get(name)) {
    throw new BrokerError('connection_exists', `There is already a connection named ${name}.`, {
      remedy: `Choose another name for the Graph connection (the API takes it as \`name\` in the body), or use ${name} if it is the Graph connection you meant.`,
    });
  }
  const { connection } = await services.connections.define(name, definition, { ...change, reset: false });
  const test =
    connection.status === 'authorized' ? await services.tester.test(name, change.correlationId) : null;
  return { connection, test };
}

function requestedNameOf(body: unknown): string | undefined {
  if (body === undefined || body === null) return undefined;
  const fields = typeof body === 'object' && !Array.isArray(body) ? Object.keys(body) : ['?'];
  const name = (body as { name?: unknown }).name;
  if (fields.some((field) => field !== 'name') || (name !== undefined && typeof name !== 'string')) {
    throw new BrokerError('invalid_request', 'Send nothing, or { "name": "…" } for the Graph connection.');
  }
  return name;
}
