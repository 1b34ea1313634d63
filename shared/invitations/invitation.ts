import { createHash, randomBytes } from 'node:crypto';
import { authorizationBinding, type Connection } from '../connections/connection';
import { BrokerError } from '../errors';

/**
 * An invitation (README "Invitations for mailbox owners"): a single-use link with which the person
 * a mailbox belongs to authorizes its connection without any role in the broker. Only the SHA-256
 * of the link's secret is stored; the secret itself exists only in the link.
 */
export interface Invitation {
  /** SHA-256 (hex) of the link's secret: the row key, never the secret. */
  id: string;
  connection: string;
  /** The connection as it was defined when the invitation was made (same row, same grant fields). */
  binding: InvitationBinding;
  /** The admin who made it. */
  createdBy: string;
  createdAt: string;
  expiresOn: string;
  /** When the owner's sign-in was verified and stored; unset while the invitation is open. */
  usedAt: string | undefined;
  usedBy: string | undefined;
  /** Optimistic-concurrency tag of the stored row: marking it used needs the one read. */
  etag: string;
}

/** The part of a connection's authorization binding an invitation holds on to (not `authorizedAt`). */
export interface InvitationBinding {
  createdAt: string;
  grantFingerprint: string;
}

export interface InvitationStore {
  create(invitation: Omit<Invitation, 'etag' | 'usedAt' | 'usedBy'>): Promise<void>;
  /** The invitation with this id, used or not; undefined when unknown, revoked or voided. */
  get(id: string): Promise<Invitation | undefined>;
  /**
   * Marks it used, only if the row is still as read (its etag): of two flows that verified a
   * sign-in with the same invitation, one wins. False when it changed or is gone.
   */
  markUsed(invitation: Invitation, usedBy: string, at: Date): Promise<boolean>;
  /** Deletes the connection's invitations that are neither used nor expired at `now`; returns how many. */
  deleteOpen(connection: string, now: Date): Promise<number>;
  /** Deletes every invitation of the connection, used or not (a reset, a retarget, a delete). */
  deleteAll(connection: string): Promise<number>;
}

/** The link's secret: 32 random bytes, base64url (256 bits). */
export const INVITATION_TOKEN = /^[A-Za-z0-9_-]{43}$/;

export function newInvitationToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The id an invitation is stored under: SHA-256 (hex) of the link's secret. */
export function invitationId(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function invitationBinding(connection: Parameters<typeof authorizationBinding>[0]): InvitationBinding {
  const { createdAt, grantFingerprint } = authorizationBinding(connection);
  return { createdAt, grantFingerprint };
}

/** The absolute link the admin sends to the mailbox owner. */
export function invitationUrl(publicBaseUrl: string, token: string): string {
  // The secret is the fragment: browsers never send it, so no request log or telemetry holds it.
  return `${publicBaseUrl}/api/invitation#${token}`;
}

/** Where an admin POSTs to make an invitation (also in the `reauthorization_required` webhook). */
export function invitationsUrl(publicBaseUrl: string, connection: string): string {
  return `${publicBaseUrl}/api/connections/${connection}/invitations`;
}

const ASK_AGAIN = 'Ask the administrator who sent you this link for a new invitation.';

function invalid(message: string): BrokerError {
  return new BrokerError('invitation_invalid', message, { remedy: ASK_AGAIN });
}

/** The token's shape, checked before any lookup: anything else is a link nobody made. */
export function assertInvitationToken(token: unknown): string {
  if (typeof token !== 'string' || !INVITATION_TOKEN.test(token)) {
    throw invalid('This invitation link is not valid.');
  }
  return token;
}

/**
 * Why an invitation may not be used now, or undefined when it may (pure; table-tested). It is used
 * at most once, only before it expires, only for the definition it was made for: a connection
 * deleted and re-created, redefined or no longer delegated voids it.
 */
export function invitationRefusal(
  invitation: Pick<Invitation, 'binding' | 'expiresOn' | 'usedAt'> | undefined,
  connection:
    (Pick<Connection, 'name' | 'status' | 'grant'> & Parameters<typeof authorizationBinding>[0]) | undefined,
  nowMs: number,
): BrokerError | undefined {
  if (!invitation) return invalid('This invitation link is not valid: it was revoked, or never existed.');
  if (invitation.usedAt !== undefined) return invalid('This invitation was already used.');
  if (!(Date.parse(invitation.expiresOn) > nowMs)) return invalid('This invitation has expired.');
  if (!connection || connection.grant !== 'authorization_code') {
    return invalid('This invitation no longer applies: the connection was removed or changed.');
  }
  const now = invitationBinding(connection);
  if (
    now.createdAt !== invitation.binding.createdAt ||
    now.grantFingerprint !== invitation.binding.grantFingerprint
  ) {
    return invalid('This invitation no longer applies: the connection was changed or re-created.');
  }
  if (connection.status === 'disabled') {
    return new BrokerError('connection_disabled', `Connection ${connection.name} is disabled.`, {
      remedy: 'Ask the administrator who sent you this link to enable it; the link works again then.',
    });
  }
  return undefined;
}

/**
 * What the connection will be able to do, in plain words, for the owner's page (pure): from its
 * profile (delegated grants only; invitations exist for nothing else).
 */
export function capabilityLine(
  connection: Pick<Connection, 'profile' | 'mailbox' | 'account' | 'scopes' | 'ewsUrl'>,
): string {
  const mailbox = connection.mailbox;
  const shared = connection.account !== connection.mailbox ? ` (as ${connection.account}, a delegate)` : '';
  switch (connection.profile) {
    case 'ews':
      return `Read and send mail in ${mailbox} over Exchange Web Services (EWS)${connection.ewsUrl ? ` at ${new URL(connection.ewsUrl).host}` : ''}.`;
    case 'ews-shared':
      return `Read and send mail in the shared mailbox ${mailbox}${shared} over Exchange Web Services (EWS).`;
    case 'imap':
      return `Read mail in ${mailbox} over IMAP.`;
    case 'pop':
      return `Download mail from ${mailbox} over POP.`;
    case 'smtp':
      return `Send mail as ${mailbox} over SMTP.`;
    case 'graph-mail':
      return `Read, change and send mail in ${mailbox} through Microsoft Graph.`;
    case 'graph-mail-shared':
      return `Read, change and send mail in the shared mailbox ${mailbox}${shared} through Microsoft Graph.`;
    case 'custom':
      return `Use these permissions: ${(connection.scopes ?? []).join(', ') || '(none listed)'}.`;
  }
}
