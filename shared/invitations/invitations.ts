import type { BrokerConfig } from '../config';
import type { Connection } from '../connections/connection';
import { requireConnection, type ConnectionRegistry } from '../connections/registry';
import type { ConnectionStateWriter } from '../connections/state';
import { BrokerError } from '../errors';
import { ADMIN_LEASE, withLease, type LeaseStore } from '../storage/lease';
import {
  assertInvitationToken,
  capabilityLine,
  invitationBinding,
  invitationId,
  invitationRefusal,
  invitationUrl,
  newInvitationToken,
  type Invitation,
  type InvitationStore,
} from './invitation';

/** What the sign-in of an invitation starts: the authorization service's `startForInvitation`. */
export type InvitationSignIn<Started> = (
  connection: Connection,
  invitation: string,
  actor: string,
) => Promise<Started>;

export interface InvitationServiceOptions<Started> {
  config: Pick<BrokerConfig, 'publicBaseUrl' | 'invitationTtlMs' | 'clientId'>;
  registry: ConnectionRegistry;
  store: InvitationStore;
  /** The one writer: invitation events go to the audit trail and the webhook through it. */
  state: Pick<ConnectionStateWriter, 'recordInvitationEvent'>;
  leases: LeaseStore;
  now: () => Date;
  signIn: InvitationSignIn<Started>;
}

/** What the owner's page shows before anything happens. */
export interface InvitationView {
  connection: string;
  mailbox: string;
  account: string;
  /** The App Registration the owner signs in to (its client id). */
  clientId: string;
  /** What the connection will be able to do, in plain words. */
  capability: string;
  expiresOn: string;
}

interface Change {
  actor: string;
  correlationId: string;
}

/**
 * Invitations for mailbox owners: an admin makes a single-use link, the owner opens it (a GET
 * changes nothing) and signs in from it with the same PKCE flow as Authorize; the invitation is
 * marked used when that sign-in is verified and about to be stored (`redeem`, from the callback).
 */
export class InvitationService<Started> {
  constructor(private readonly options: InvitationServiceOptions<Started>) {}

  /**
   * A new invitation for a delegated connection, bound to it as it is defined now. Under the
   * connection's lease, so it cannot slip in beside a reset or a delete that voids invitations.
   */
  async create(name: string, change: Change): Promise<{ url: string; expiresOn: string }> {
    const { config, registry, store, state, leases, now } = this.options;
    return withLease(leases, name, 'invitation', ADMIN_LEASE, async () => {
      const connection = await requireConnection(registry, name);
      if (connection.grant !== 'authorization_code') {
        throw new BrokerError(
          'invalid_request',
          `Connection ${name} uses the ${connection.grant} grant: nobody signs in, so there is nothing to invite to.`,
          { remedy: `Click Authorize in the console (API: \`POST /api/connections/${name}/authorize\`).` },
        );
      }
      if (connection.signInFrom !== undefined) {
        throw new BrokerError(
          'invalid_request',
          `Connection ${name} signs in through ${connection.signInFrom}: its owner authorizes that one.`,
          { remedy: `Make the invitation for ${connection.signInFrom}.` },
        );
      }
      if (connection.status === 'disabled') {
        throw new BrokerError('connection_disabled', `Connection ${name} is disabled.`, {
          remedy: 'Enable it first, then make the invitation.',
        });
      }
      const token = newInvitationToken();
      const createdAt = now();
      const expiresOn = new Date(createdAt.getTime() + config.invitationTtlMs).toISOString();
      await store.create({
        id: invitationId(token),
        connection: name,
        binding: invitationBinding(connection),
        createdBy: change.actor,
        createdAt: createdAt.toISOString(),
        expiresOn,
      });
      await state.recordInvitationEvent(connection, {
        type: 'invitation.created',
        ...change,
        reason: `Invitation for ${connection.account} to authorize, valid until ${expiresOn}.`,
      });
      return { url: invitationUrl(config.publicBaseUrl, token), expiresOn };
    });
  }

  /** Revokes the connection's open invitations; returns how many there were. */
  async revoke(name: string, change: Change): Promise<number> {
    const { registry, store, state, now } = this.options;
    const connection = await requireConnection(registry, name);
    const revoked = await store.deleteOpen(name, now());
    if (revoked > 0) {
      await state.recordInvitationEvent(connection, {
        type: 'invitation.revoked',
        ...change,
        reason: `${revoked} open invitation${revoked === 1 ? '' : 's'} revoked.`,
      });
    }
    return revoked;
  }

  /** The owner's page (`GET` on the link): what the invitation is for. Consumes nothing. */
  async view(token: string): Promise<InvitationView> {
    const { connection, invitation } = await this.usable(token);
    return {
      connection: connection.name,
      mailbox: connection.mailbox,
      account: connection.account,
      clientId: this.options.config.clientId,
      capability: capabilityLine(connection),
      expiresOn: invitation.expiresOn,
    };
  }

  /**
   * The owner's Sign in (`POST` on the link): starts the same sign-in as Authorize, remembering the
   * invitation. Consumes nothing yet: a sign-in with the wrong account leaves the link usable.
   */
  async begin(token: string): Promise<Started> {
    const { connection, invitation } = await this.usable(token);
    return this.options.signIn(connection, invitation.id, `invitation from ${invitation.createdBy}`);
  }

  /**
   * Marks the invitation used, once the sign-in it started is verified and about to be stored:
   * still usable for this connection, and conditionally on the row as read, so of two concurrent
   * sign-ins only one gets through.
   */
  async redeem(id: string, connection: Connection, signedInAs: string, correlationId: string): Promise<void> {
    const { store, state, now } = this.options;
    const invitation = await store.get(id);
    const refusal = invitationRefusal(invitation, connection, now().getTime());
    if (refusal) throw refusal;
    if (!invitation || !(await store.markUsed(invitation, signedInAs, now()))) {
      throw new BrokerError('invitation_invalid', 'This invitation was already used.', {
        remedy: 'Ask the administrator who sent you this link for a new invitation.',
      });
    }
    await state.recordInvitationEvent(connection, {
      type: 'invitation.used',
      actor: signedInAs,
      reason: `Invitation from ${invitation.createdBy} used by ${signedInAs}.`,
      correlationId,
    });
  }

  /** Voids every invitation of a connection (a reset, a retarget, a delete): their links stop working. */
  async voidAll(name: string): Promise<void> {
    await this.options.store.deleteAll(name);
  }

  private async usable(token: string): Promise<{ invitation: Invitation; connection: Connection }> {
    const { store, registry, now } = this.options;
    const invitation = await store.get(invitationId(assertInvitationToken(token)));
    const connection = invitation ? await registry.get(invitation.connection) : undefined;
    const refusal = invitationRefusal(invitation, connection, now().getTime());
    if (refusal) throw refusal;
    // invitationRefusal refuses a missing invitation or connection; this only tells the compiler.
    if (!invitation || !connection)
      throw new BrokerError('invitation_invalid', 'This invitation link is not valid.');
    return { invitation, connection };
  }
}
