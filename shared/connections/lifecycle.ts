/**
 * An admin's changes to a connection — define, reset, disable, enable, delete — decided in one
 * place and written through the state writer (the one writer), under the connection's lease where
 * the invariants need it.
 */
import { BrokerError } from '../errors';
import type { ConnectionStateWriter } from './state';
import { ADMIN_LEASE, withLease, type LeaseStore } from '../storage/lease';
import { GRANT_FIELDS, type Connection, type ConnectionDefinition } from './connection';
import {
  canLendSignIn,
  dependantsOf,
  requireConnection,
  type ConnectionRegistry,
  type ConnectionState,
} from './registry';

/** Which grant fields a new definition would change (pure). */
export function retargetedFields(current: Connection, next: ConnectionDefinition): string[] {
  return GRANT_FIELDS.filter((field) => JSON.stringify(current[field]) !== JSON.stringify(next[field]));
}

/** Whether a connection may hold tokens: anything that has been authorized once. */
export function holdsGrant(connection: Connection): boolean {
  return connection.status !== 'new' || connection.authorizedAt !== undefined;
}

/** State of a connection that holds nothing: as first defined. */
const CLEARED: ConnectionState = {
  status: 'new',
  authorizedAt: undefined,
  authorizedBy: undefined,
  tenantId: undefined,
  homeAccountId: undefined,
  tokenExpiresOn: undefined,
  lastRefreshAt: undefined,
  consecutiveFailures: 0,
  degradedSince: undefined,
  nextAttemptAt: undefined,
  lastError: undefined,
  // A verdict about tokens the connection no longer holds would mislead (the Graph view reads it).
  lastTest: undefined,
};

export interface ConnectionLifecycleOptions {
  registry: ConnectionRegistry;
  /** The one writer of secrets, state and audit events. */
  state: ConnectionStateWriter;
  leases: LeaseStore;
  /**
   * Redeems a dependant's first token from its source's sign-in (the refresh service, injected so
   * that connections/ does not depend on oauth/). Hands back the row as it left it.
   */
  signInThroughSource?: (dependant: Connection, actor: string) => Promise<Connection>;
  /**
   * The connection's invitations for its mailbox owner: a reset, a retarget or a delete voids them
   * (the invitation service, injected so that connections/ does not depend on invitations/).
   */
  invitations?: { voidAll(name: string): Promise<void> };
}

interface Change {
  actor: string;
  correlationId: string;
}

export class ConnectionLifecycle {
  constructor(private readonly options: ConnectionLifecycleOptions) {}

  /**
   * Defines or changes a connection. A change of whose grant it is (mailbox, account, profile,
   * grant, scopes, ewsUrl) on a connection that holds tokens is refused with 409
   * `connection_authorized` unless `reset`: then its secrets go and it starts again as `new`.
   */
  async define(
    name: string,
    definition: ConnectionDefinition,
    change: Change & { reset: boolean },
  ): Promise<{ connection: Connection; created: boolean }> {
    const existing = await this.options.registry.get(name);
    await this.checkSignInSharing(name, definition, existing);
    const changed = existing && holdsGrant(existing) ? retargetedFields(existing, definition) : [];
    if (changed.length > 0 && !change.reset) {
      throw new BrokerError(
        'connection_authorized',
        `Connection ${name} holds tokens for ${existing?.account ?? 'its account'}; changing ${changed.join(', ')} would hand them to another grant.`,
        {
          remedy: `To make the change anyway, reset the connection with it: its tokens are deleted and it must be authorized again (the console asks whether to reset when you save; API: send the change with \`?reset=true\`). Or define a new connection.`,
        },
      );
    }
    // `?reset=true` always resets an existing connection, even with an unchanged definition (SPEC):
    // that is how an admin throws away a grant they no longer trust.
    if (existing && (changed.length > 0 || change.reset)) {
      const reset = await this.exclusively(name, async () => {
        // First: a reset that fails part-way has voided them anyway (fail closed).
        await this.options.invitations?.voidAll(name);
        await this.options.state.deleteSecrets(name);
        const { connection } = await this.options.state.define(name, definition);
        return this.options.state.changeState(connection, CLEARED, {
          type: 'connection.reset',
          actor: change.actor,
          reason:
            changed.length > 0
              ? `Reset: ${changed.join(', ')} changed; its tokens were deleted.`
              : 'Reset on request (?reset=true); its tokens were deleted.',
          correlationId: change.correlationId,
        });
      });
      return { connection: await this.signInThroughSource(reset, change), created: false };
    }
    const { connection, created } = await this.options.state.define(name, definition);
    await this.record(name, created ? 'connection.created' : 'connection.changed', change, connection.status);
    return { connection: await this.signInThroughSource(connection, change), created };
  }

  /**
   * A dependant defined while its source holds a sign-in is usable at once: its first token is
   * redeemed now, with no click and no popup. A refusal (consent missing for its scopes) is its
   * status, never the definition's failure.
   */
  private async signInThroughSource(connection: Connection, change: Change): Promise<Connection> {
    const redeem = this.options.signInThroughSource;
    if (!redeem || connection.signInFrom === undefined || connection.status !== 'new') return connection;
    const source = await this.options.registry.get(connection.signInFrom);
    if (!source || !canLendSignIn(source)) return connection;
    return redeem(connection, change.actor);
  }

  /**
   * The rules of `signInFrom` (README "One sign-in, several connections"): the source exists, signs
   * in as a user (delegated or password grant) for the same account, and is not itself a
   * dependant; a source keeps its dependants' account and a delegated grant.
   */
  private async checkSignInSharing(
    name: string,
    definition: ConnectionDefinition,
    existing: Connection | undefined,
  ): Promise<void> {
    const refuse = (message: string) => {
      throw new BrokerError(
        'invalid_connection',
        `The connection definition is not valid: signInFrom: ${message}`,
      );
    };
    const dependants = existing ? await dependantsOf(this.options.registry, name) : [];
    const names = dependants.map((dependant) => dependant.name).join(', ');
    if (definition.signInFrom !== undefined) {
      if (definition.signInFrom === name) refuse('a connection cannot sign in through itself');
      if (dependants.length > 0)
        refuse(`${name} is the source of ${names}; a source signs in itself (no chains)`);
      const source = await this.options.registry.get(definition.signInFrom);
      if (!source) refuse(`there is no connection named ${definition.signInFrom}`);
      else if (source.signInFrom !== undefined)
        refuse(
          `${source.name} signs in through ${source.signInFrom} itself; name ${source.signInFrom} instead (no chains)`,
        );
      else if (source.grant === 'client_credentials')
        refuse(`${source.name} is app-only: it has no user sign-in to share`);
      else if (source.account !== definition.account)
        refuse(
          `${source.name} signs in as ${source.account}, this connection is for ${definition.account}; the account must match`,
        );
    }
    if (
      dependants.length > 0 &&
      (definition.account !== existing?.account || definition.grant === 'client_credentials')
    ) {
      throw new BrokerError(
        'connection_in_use',
        `${names} sign in through ${name}: its account and user sign-in must stay as they are.`,
        { remedy: `Delete or redefine ${names} first, or define a new connection.` },
      );
    }
  }

  /**
   * A delete is final: it holds the connection's lease, so a refresh in flight finishes (and
   * writes) first, and no writer starts until the row is gone; writers that hold the lease check
   * the row still exists before they write (refresh, authorization, password).
   */
  async delete(name: string, change: Change & { withDependants?: boolean }): Promise<void> {
    const dependants = await dependantsOf(this.options.registry, name);
    if (dependants.length > 0 && !change.withDependants) {
      const names = dependants.map((dependant) => dependant.name).join(', ');
      throw new BrokerError(
        'connection_in_use',
        `${names} ${dependants.length === 1 ? 'signs' : 'sign'} in through ${name}; deleting it would leave ${dependants.length === 1 ? 'it' : 'them'} without a sign-in.`,
        {
          remedy: `Delete ${names} first, or all of them at once: in the console, the connection's More → Delete, then Delete all ${dependants.length + 1} (API: \`DELETE /api/connections/${name}?withDependants=true\`).`,
        },
      );
    }
    for (const dependant of dependants)
      await this.delete(dependant.name, { ...change, withDependants: false });
    await this.exclusively(name, async () => {
      const connection = await this.existing(name);
      await this.options.invitations?.voidAll(name);
      await this.options.state.remove(connection, { type: 'connection.deleted', ...change });
    });
  }

  private exclusively<T>(name: string, work: () => Promise<T>): Promise<T> {
    return withLease(this.options.leases, name, 'admin', ADMIN_LEASE, work);
  }

  /**
   * Stops refreshing and serving the connection; its tokens stay until it is enabled or deleted.
   * Under the lease: a refresh in flight finishes first, and every later writer (refresh, sign-in)
   * re-reads the row under the same lease and finds it disabled.
   */
  async disable(name: string, change: Change): Promise<Connection> {
    return this.exclusively(name, async () => {
      const connection = await this.existing(name);
      if (connection.status === 'disabled') return connection;
      return this.options.state.changeState(
        connection,
        { status: 'disabled' },
        {
          type: 'connection.disabled',
          ...change,
        },
      );
    });
  }

  /** Resumes a disabled connection: `authorized` if it ever was (the next refresh tells), else `new`. */
  async enable(name: string, change: Change): Promise<Connection> {
    return this.exclusively(name, async () => {
      const connection = await this.existing(name);
      if (connection.status !== 'disabled') return connection;
      const status = connection.authorizedAt === undefined ? 'new' : 'authorized';
      return this.options.state.changeState(
        connection,
        { status, nextAttemptAt: undefined },
        { type: 'connection.enabled', ...change },
      );
    });
  }

  private async existing(name: string): Promise<Connection> {
    return requireConnection(this.options.registry, name);
  }

  private record(name: string, type: string, change: Change, toStatus?: string): Promise<void> {
    return this.options.state.recordEvent(name, { type, ...change, ...(toStatus ? { toStatus } : {}) });
  }
}
