/**
 * Who may log in to the mail stand-ins with SASL XOAUTH2: the decision Exchange Online makes for
 * IMAP, POP and SMTP AUTH, from the `user=...^Aauth=Bearer ...^A^A` response (Microsoft's
 * "Authenticate an IMAP, POP or SMTP connection using OAuth",
 * https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth):
 *
 * - the token passes sandbox/bearer.ts (signature from the issuer's JWKS, lifetime) with Exchange
 *   Online's audience: https://outlook.office.com (the delegated scopes Microsoft documents) or
 *   https://outlook.office365.com (`/.default`, the client-credentials flow), or EXO's app id;
 * - delegated: `scp` holds IMAP.AccessAsUser.All / POP.AccessAsUser.All / SMTP.Send, and `user=` is
 *   the token's user or a mailbox it has Full Access to (the page's "shared mailboxes" section);
 * - app-only: `roles` holds IMAP.AccessAsApp / POP.AccessAsApp / SMTP.SendAsApp, and `user=` is a
 *   mailbox granted to the app's service principal (`Add-MailboxPermission ... -AccessRights FullAccess`);
 * - the protocol is enabled for the mailbox (`Set-CASMailbox -ImapEnabled / -PopEnabled /
 *   -SmtpClientAuthenticationDisabled`).
 * Exchange tells the client none of this: every refusal is one fixed text per protocol (see the
 * protocol files). The reason is kept in `checks` for tests; the token never is.
 */
import type { BearerFailure, BearerValidator } from '../bearer';

export type MailProtocol = 'imap' | 'pop' | 'smtp';

export type MailRefusal =
  | BearerFailure
  /** Not base64 of `user=...^Aauth=Bearer ...^A^A`. */
  | 'malformed_response'
  /** `user=` names no mailbox here. */
  | 'unknown_mailbox'
  /** Delegated token of someone who is neither `user=` nor a Full Access delegate of it. */
  | 'not_delegate'
  /** App-only token for a mailbox not granted to the app. */
  | 'app_not_granted'
  | 'protocol_disabled';

/** One XOAUTH2 attempt as decided: protocol, the `user=` asked for, verdict (never the token). */
export interface MailCheck {
  protocol: MailProtocol;
  user: string;
  ok: boolean;
  reason?: MailRefusal;
}

export interface MailMailbox {
  smtp: string;
  inbox: { total: number; unread: number };
  /** Delegates with Full Access. */
  fullAccess?: string[];
}

export type MailVerdict = { ok: true; mailbox: MailMailbox } | { ok: false; reason: MailRefusal };

export interface MailAuthorityOptions {
  validator: BearerValidator;
  mailboxes: MailMailbox[];
  /** Mailboxes app-only tokens may open; default every mailbox (as if each were granted to the app). */
  appMailboxes?: string[];
}

export interface MailAuthority {
  /** Decides one base64 XOAUTH2 response for a protocol and records the check. */
  authenticate(protocol: MailProtocol, response: string): Promise<MailVerdict>;
  checks: MailCheck[];
  /** `Set-CASMailbox`: turns a protocol off (or on again) for one mailbox. */
  setProtocolEnabled(mailbox: string, protocol: MailProtocol, on: boolean): void;
}

const AUDIENCES = [
  'https://outlook.office.com',
  'https://outlook.office365.com',
  // Office 365 Exchange Online's application id, which some tokens carry as `aud`.
  '00000002-0000-0ff1-ce00-000000000000',
];
const DELEGATED_SCOPE: Record<MailProtocol, string> = {
  imap: 'IMAP.AccessAsUser.All',
  pop: 'POP.AccessAsUser.All',
  smtp: 'SMTP.Send',
};
const APP_ROLE: Record<MailProtocol, string> = {
  imap: 'IMAP.AccessAsApp',
  pop: 'POP.AccessAsApp',
  smtp: 'SMTP.SendAsApp',
};

const lower = (value: string) => value.toLowerCase();
const text = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' ? value : undefined;

/** `base64("user=" + userName + "^Aauth=Bearer " + accessToken + "^A^A")`, or undefined. */
export function parseXoauth2(response: string): { user: string; token: string } | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(response)) return undefined;
  // Split on ^A (%x01): a pattern with control characters would read worse and lint worse.
  const [userPart = '', authPart = '', ...rest] = Buffer.from(response, 'base64')
    .toString('utf8')
    .split(String.fromCharCode(1));
  const user = /^user=(\S+)$/.exec(userPart)?.[1];
  const token = /^auth=Bearer (\S+)$/i.exec(authPart)?.[1];
  return user && token && rest.length === 2 && rest.every((part) => part === '')
    ? { user, token }
    : undefined;
}

export function createMailAuthority(options: MailAuthorityOptions): MailAuthority {
  const mailboxes = new Map(options.mailboxes.map((mailbox) => [lower(mailbox.smtp), mailbox]));
  const appMailboxes = options.appMailboxes && new Set(options.appMailboxes.map(lower));
  const disabled = new Set<string>();
  const checks: MailCheck[] = [];

  async function decide(protocol: MailProtocol, user: string, token: string): Promise<MailVerdict> {
    const checked = await options.validator.check(`Bearer ${token}`, {
      audiences: AUDIENCES,
      scopes: [DELEGATED_SCOPE[protocol]],
      roles: [APP_ROLE[protocol]],
    });
    if (!checked.ok) return { ok: false, reason: checked.reason };
    const mailbox = mailboxes.get(lower(user));
    if (!mailbox) return { ok: false, reason: 'unknown_mailbox' };
    const { claims } = checked;
    if (typeof claims.scp === 'string') {
      const caller = lower(
        text(claims.upn) ?? text(claims.preferred_username) ?? text(claims.unique_name) ?? '',
      );
      const delegate = (mailbox.fullAccess ?? []).some((d) => lower(d) === caller);
      if (caller !== lower(mailbox.smtp) && !delegate) return { ok: false, reason: 'not_delegate' };
    } else if (appMailboxes && !appMailboxes.has(lower(mailbox.smtp))) {
      return { ok: false, reason: 'app_not_granted' };
    }
    if (disabled.has(`${protocol}:${lower(mailbox.smtp)}`)) return { ok: false, reason: 'protocol_disabled' };
    return { ok: true, mailbox };
  }

  return {
    checks,
    async authenticate(protocol, response) {
      const parsed = parseXoauth2(response.trim());
      const verdict: MailVerdict = parsed
        ? await decide(protocol, parsed.user, parsed.token)
        : { ok: false, reason: 'malformed_response' };
      checks.push({
        protocol,
        user: parsed?.user ?? '',
        ok: verdict.ok,
        ...(verdict.ok ? {} : { reason: verdict.reason }),
      });
      return verdict;
    },
    setProtocolEnabled(mailbox, protocol, on) {
      const key = `${protocol}:${lower(mailbox)}`;
      if (on) disabled.delete(key);
      else disabled.add(key);
    },
  };
}
