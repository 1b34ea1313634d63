/** One audit event: a status change or another fact an operator needs to reconstruct what happened. */
export interface AuditEvent {
  connection: string;
  /** Stable event name, e.g. `connection.authorized`, `connection.status_changed`. */
  type: string;
  /** Who caused it: an admin's name, `timer`, `token-route`, `system`. */
  actor: string;
  fromStatus?: string;
  toStatus?: string;
  /** Plain-words reason; the Entra error code and AADSTS number where there is one. Never a secret. */
  reason?: string;
  aadsts?: number;
  correlationId?: string;
  at: string;
}

export interface AuditLog {
  record(event: AuditEvent): Promise<void>;
  /** Newest first. */
  list(connection: string, limit?: number): Promise<AuditEvent[]>;
}
