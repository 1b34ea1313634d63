/** A status change worth telling someone about (README "Notifications"). */
export interface StatusNotification {
  /** Stable event type. */
  type:
    | 'connection.reauthorization_required'
    | 'connection.degraded'
    | 'connection.recovered'
    | 'connection.authorized'
    | 'connection.disabled'
    | 'connection.enabled'
    | 'connection.reset'
    | 'connection.deleted'
    | 'invitation.created'
    | 'invitation.used'
    | 'invitation.revoked';
  connection: string;
  mailbox: string;
  status: string;
  previousStatus: string;
  /** Plain-words reason; never a secret. */
  reason?: string;
  aadsts?: number;
  remedy?: string;
  /** Who did it (invitation events: the admin; for `invitation.used`, the account that signed in). */
  actor?: string;
  /**
   * `connection.reauthorization_required` of a delegated connection: where an admin `POST`s to make
   * a fresh invitation for the mailbox owner.
   */
  invitationsUrl?: string;
  /**
   * The change is what an admin's action does, not a failure: a source's reset or disable takes
   * its dependants' sign-in with it. Logged as news, not as a warning; not part of the payload.
   */
  followsAdminAction?: boolean;
  /** ISO 8601 UTC time of the change. */
  at: string;
}

export interface Notifier {
  /** Queues the event for delivery and returns at once: delivery never blocks a refresh. */
  notify(event: StatusNotification): void;
  /** Resolves when every queued delivery has finished (delivered or given up); for shutdown and tests. */
  drain(): Promise<void>;
}
