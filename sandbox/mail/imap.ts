/**
 * IMAP4rev1 as outlook.office365.com:993 answers it, for what a client does to prove a token:
 * CAPABILITY, AUTHENTICATE XOAUTH2 (SASL-IR or the `+` continuation), SELECT / EXAMINE INBOX,
 * NOOP, LOGOUT. Texts: V = Microsoft's "Authenticate an IMAP, POP or SMTP connection using OAuth"
 * (https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth)
 * or captured Exchange Online sessions (the greeting, `NO LOGIN failed.`, `BAD Command Error. 12`,
 * lab.civicrm.org/dev/core/-/issues/3601); C = chosen in Exchange's style.
 * - success `A01 OK AUTHENTICATE completed.`, any refusal `A01 NO AUTHENTICATE failed.` (V): Exchange
 *   sends no SASL error challenge first and says nothing about why;
 * - LOGIN and AUTHENTICATE PLAIN are refused as with Basic authentication off (V for LOGIN);
 * - the SELECT/EXAMINE untagged answers (EXISTS, RECENT, FLAGS, UNSEEN, UIDVALIDITY, UIDNEXT) are
 *   Exchange's (V), the counts the mailbox's Inbox, the same the EWS and Graph stand-ins report.
 */
import type { MailAuthority, MailMailbox } from './authority';
import type { ClientLines } from './lines';

const CAPABILITY =
  'IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+';
const CAPABILITY_AUTHENTICATED =
  'IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CLIENTACCESSRULES CLIENTNETWORKPRESENCELOCATION BACKENDAUTHENTICATE CHILDREN IDLE NAMESPACE LITERAL+';
const FLAGS = '(\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)';
const INVALID_STATE = 'BAD Command received in Invalid state.';

/** A quoted or atom mailbox name, as SELECT and EXAMINE take it. */
function mailboxName(argument: string): string {
  const quoted = /^"((?:[^"\\]|\\.)*)"$/.exec(argument);
  return quoted?.[1] !== undefined ? quoted[1].replace(/\\(.)/g, '$1') : argument;
}

function selectAnswer(tag: string, verb: 'SELECT' | 'EXAMINE', mailbox: MailMailbox): string[] {
  const { total, unread } = mailbox.inbox;
  const readOnly = verb === 'EXAMINE';
  return [
    `* ${total} EXISTS`,
    '* 0 RECENT',
    `* FLAGS ${FLAGS}`,
    `* OK [PERMANENTFLAGS ${readOnly ? '()' : FLAGS}] Permanent flags`,
    ...(unread > 0 ? [`* OK [UNSEEN ${total - unread + 1}] Is the first unseen message`] : []),
    '* OK [UIDVALIDITY 14] UIDVALIDITY value',
    `* OK [UIDNEXT ${total + 1}] The next unique identifier value`,
    `${tag} OK [${readOnly ? 'READ-ONLY' : 'READ-WRITE'}] ${verb} completed.`,
  ];
}

export async function imapSession(lines: ClientLines, authority: MailAuthority, serverName: string) {
  lines.write(
    `* OK The Microsoft Exchange IMAP4 service is ready. [${Buffer.from(serverName, 'utf16le').toString('base64')}]`,
  );
  let mailbox: MailMailbox | undefined;
  for (;;) {
    const line = await lines.next();
    if (line === undefined) return;
    const match = /^(\S+) (\S+)(?: (.*))?$/.exec(line);
    if (!match?.[1] || !match[2]) {
      lines.write('* BAD Command Error. 12');
      continue;
    }
    const tag = match[1];
    const command = match[2].toUpperCase();
    const args = match[3] ?? '';
    switch (command) {
      case 'CAPABILITY':
        lines.write(
          `* CAPABILITY ${mailbox ? CAPABILITY_AUTHENTICATED : CAPABILITY}`,
          `${tag} OK CAPABILITY completed.`,
        );
        break;
      case 'NOOP':
        lines.write(`${tag} OK NOOP completed.`);
        break;
      case 'LOGOUT':
        lines.end('* BYE Microsoft Exchange Server IMAP4 server signing off.', `${tag} OK LOGOUT completed.`);
        return;
      case 'LOGIN':
        lines.write(mailbox ? `${tag} ${INVALID_STATE}` : `${tag} NO LOGIN failed.`);
        break;
      case 'AUTHENTICATE': {
        if (mailbox) {
          lines.write(`${tag} ${INVALID_STATE}`);
          break;
        }
        const [mechanism = '', initial] = args.split(' ');
        let response = initial;
        if (mechanism.toUpperCase() === 'XOAUTH2' && response === undefined) {
          lines.write('+ ');
          response = await lines.next();
          if (response === undefined) return;
          if (response === '*') {
            lines.write(`${tag} BAD AUTHENTICATE aborted.`);
            break;
          }
        }
        const verdict =
          mechanism.toUpperCase() === 'XOAUTH2'
            ? await authority.authenticate('imap', response ?? '')
            : undefined;
        if (verdict?.ok) {
          mailbox = verdict.mailbox;
          lines.write(`${tag} OK AUTHENTICATE completed.`);
        } else {
          lines.write(`${tag} NO AUTHENTICATE failed.`);
        }
        break;
      }
      case 'SELECT':
      case 'EXAMINE':
        if (!mailbox) lines.write(`${tag} ${INVALID_STATE}`);
        else if (mailboxName(args).toUpperCase() !== 'INBOX')
          lines.write(`${tag} NO Mailbox doesn't exist: ${args}`);
        else lines.write(...selectAnswer(tag, command, mailbox));
        break;
      default:
        lines.write(`${tag} BAD Command Error. 12`);
    }
  }
}
