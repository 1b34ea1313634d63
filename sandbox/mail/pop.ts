/**
 * POP3 as outlook.office365.com:995 answers it: CAPA, AUTH XOAUTH2, STAT, NOOP, QUIT. Texts: V =
 * Microsoft's "Authenticate an IMAP, POP or SMTP connection using OAuth"
 * (https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth),
 * C = chosen in Exchange's style.
 * - `AUTH XOAUTH2`, `+`, the response on a line of its own, then `+OK User successfully
 *   authenticated.` or `-ERR Authentication failure: unknown user name or bad password.` (V). The
 *   page says the command must be split into two lines; Exchange refuses the response on the AUTH
 *   line (V: github.com/genexuslabs/JavaClasses/pull/625), and so does this stand-in;
 * - USER/PASS and AUTH PLAIN get the same failure, as with Basic authentication off (C);
 * - STAT counts the Inbox (size: 8 KiB a message, as the Graph stand-in's sizeInBytes) (C).
 */
import type { MailAuthority, MailMailbox } from './authority';
import { commandOf, type ClientLines } from './lines';

const AUTH_FAILED = '-ERR Authentication failure: unknown user name or bad password.';
const INVALID_STATE = '-ERR Command is not valid in this state.';
const MESSAGE_BYTES = 8192;

export async function popSession(lines: ClientLines, authority: MailAuthority, serverName: string) {
  lines.write(
    `+OK The Microsoft Exchange POP3 service is ready. [${Buffer.from(serverName, 'utf16le').toString('base64')}]`,
  );
  let mailbox: MailMailbox | undefined;
  for (;;) {
    const line = await lines.next();
    if (line === undefined) return;
    const { command, args } = commandOf(line);
    switch (command) {
      case 'CAPA':
        lines.write('+OK', 'TOP', 'UIDL', ...(mailbox ? [] : ['SASL PLAIN XOAUTH2', 'USER']), '.');
        break;
      case 'NOOP':
        lines.write(mailbox ? '+OK' : INVALID_STATE);
        break;
      case 'QUIT':
        lines.end('+OK Microsoft Exchange Server POP3 server signing off.');
        return;
      case 'USER':
        lines.write(mailbox ? INVALID_STATE : '+OK');
        break;
      case 'PASS':
        lines.write(mailbox ? INVALID_STATE : AUTH_FAILED);
        break;
      case 'AUTH': {
        if (mailbox) {
          lines.write(INVALID_STATE);
          break;
        }
        const mechanism = args[0]?.toUpperCase();
        if (mechanism === undefined) {
          lines.write('+OK', 'PLAIN', 'XOAUTH2', '.');
          break;
        }
        if (mechanism !== 'XOAUTH2' || args.length > 1) {
          lines.write(AUTH_FAILED);
          break;
        }
        lines.write('+');
        const response = await lines.next();
        if (response === undefined) return;
        const verdict = response === '*' ? undefined : await authority.authenticate('pop', response);
        if (verdict?.ok) {
          mailbox = verdict.mailbox;
          lines.write('+OK User successfully authenticated.');
        } else {
          lines.write(AUTH_FAILED);
        }
        break;
      }
      case 'STAT':
        lines.write(
          mailbox ? `+OK ${mailbox.inbox.total} ${mailbox.inbox.total * MESSAGE_BYTES}` : INVALID_STATE,
        );
        break;
      default:
        lines.write('-ERR Protocol error. 14');
    }
  }
}
