/**
 * The shapes the console reads from the broker's JSON (shared/http/connection-view.ts, the test,
 * readiness and audit routes, the callback page's message) and the console's own result line.
 * Declared here, not imported from the server: the browser module takes no server code.
 */

export interface LastError {
  code?: string;
  message: string;
  remedy?: string;
  aadsts?: number;
}

export interface LastTest {
  ok: boolean;
  code?: string;
  protocol?: string | null;
  testedAt: string;
}

export interface ConnectionView {
  name: string;
  mailbox: string;
  account: string;
  profile: string;
  grant: string;
  scopes?: string[];
  ewsUrl?: string;
  signInFrom?: string;
  readers: string[];
  description: string;
  status: string;
  tokenExpiresOn: string | null;
  lastError: LastError | null;
  lastTest: LastTest | null;
}

export interface TestResult {
  ok: boolean;
  pending?: boolean;
  protocol?: string;
  code?: string;
  detail?: string;
  remedy?: string;
  testedAt?: string;
  details?: { folder?: string; totalCount?: number; unreadCount?: number; serverVersion?: string };
}

/** RFC 9457 problem details as the broker answers them (shared/http/responses.ts). */
export interface Problem {
  type?: string;
  code?: string;
  detail?: string;
  remedy?: string;
  actionUrl?: string;
  aadsts?: string;
}

export interface Invitation {
  url: string;
  expiresOn: string;
}

/** One result shown beside its row. */
export interface Feedback {
  ok: boolean;
  /** Under way: no icon, no dismiss. */
  pending?: boolean;
  text: string;
  remedy?: string | undefined;
  /** A link for the administrator (the admin-consent URL). */
  link?: string | undefined;
  /** The README section about the error (the problem's `type`). */
  docs?: string | undefined;
  invitation?: Invitation;
  /** A next step offered in the result's own line (delete the dependants too). */
  offer?: Offer;
  /** A question the admin's click opened in the row, instead of a browser dialog. */
  question?: Question;
  /** "Click Authorize": true while the connection is new; once it is not, the line says what it is. */
  nextStep?: boolean;
}

export interface Offer {
  text: string;
  /** Its name for screen readers, with the connection. */
  label: string;
  run: () => Promise<void>;
}

/** Reset and Delete ask first; Set password and Add the Graph connection ask for a value. */
export interface Question {
  field?: { label: string; type: 'text' | 'password'; value?: string; autocomplete: string };
  confirm: { text: string; label: string; danger?: boolean };
  cancelLabel: string;
  run: (value: string) => Promise<void>;
}

export interface AuditEvent {
  type: string;
  actor: string;
  fromStatus?: string;
  toStatus?: string;
  reason?: string;
  aadsts?: number;
  at: string;
}

export interface AuthorizationMessage {
  type: string;
  connection: string | null;
  ok: boolean;
  message: string;
  remedy?: string;
  aadsts?: number;
  actionUrl?: string;
}

export interface Readiness {
  total: number;
  ready: number;
  daysLeft: number;
  ewsRetirement: string;
  connections: {
    ews: string;
    mailbox: string;
    ready: boolean;
    lastTest: { ok: boolean; code?: string; testedAt: string } | null;
    graph: { name: string; status: string } | null;
  }[];
}
