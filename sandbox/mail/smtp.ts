/**
 * SMTP client submission as smtp.office365.com:587 answers it: EHLO, STARTTLS, EHLO again (now with
 * AUTH), AUTH XOAUTH2, QUIT. It never accepts mail: MAIL, RCPT, DATA and BDAT are refused, so
 * nothing sent to the sandbox goes anywhere. Texts: V = Microsoft's "Authenticate an IMAP, POP or
 * SMTP connection using OAuth"
 * (https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth)
 * or Exchange Online's published answers; C = chosen in Exchange's style.
 * - `auth xoauth2`, `334 `, the response, then `235 2.7.0 Authentication successful` or
 *   `535 5.7.3 Authentication unsuccessful [server]` (V). The response may also come on the AUTH line;
 * - SMTP AUTH off for the mailbox: `535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication
 *   is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.` (C:
 *   Exchange Online's published text for the tenant switch, with "Mailbox" for "Tenant");
 * - AUTH only after STARTTLS, as Exchange offers it: before, `504 5.7.4 Unrecognized authentication
 *   type` (V); MAIL before AUTH `530 5.7.57 Client not authenticated to send mail.` (V); after AUTH
 *   `554 5.7.0` with the sandbox's reason (C).
 */
import type { SecureContext } from 'node:tls';
import type { MailAuthority } from './authority';
import { commandOf, type ClientLines } from './lines';

const EXTENSIONS = ['SIZE 157286400', 'PIPELINING', 'DSN', 'ENHANCEDSTATUSCODES'];
const EXTENSIONS_AFTER = ['8BITMIME', 'BINARYMIME', 'CHUNKING', 'SMTPUTF8'];
const DISABLED =
  '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.';

export async function smtpSession(
  lines: ClientLines,
  authority: MailAuthority,
  serverName: string,
  tls: SecureContext,
) {
  lines.write(`220 ${serverName} Microsoft ESMTP MAIL Service ready at ${new Date().toUTCString()}`);
  let secure = false;
  let greeted = false;
  let authenticated = false;
  for (;;) {
    const line = await lines.next();
    if (line === undefined) return;
    const { word, command, args } = commandOf(line);
    switch (command) {
      case 'EHLO': {
        greeted = true;
        const hello = `${serverName} Hello [127.0.0.1]`;
        const offered = [
          hello,
          ...EXTENSIONS,
          secure ? 'AUTH LOGIN XOAUTH2' : 'STARTTLS',
          ...EXTENSIONS_AFTER,
        ];
        lines.write(...offered.map((text, i) => `250${i === offered.length - 1 ? ' ' : '-'}${text}`));
        break;
      }
      case 'HELO':
        greeted = true;
        lines.write(`250 ${serverName} Hello [127.0.0.1]`);
        break;
      case 'STARTTLS':
        if (secure) {
          lines.write('503 5.5.2 Only one STARTTLS command can be issued per session');
          break;
        }
        lines.write('220 2.0.0 SMTP server ready');
        if (!(await lines.startTls(tls))) return;
        // RFC 3207 §4.2: the session starts over; the client must say EHLO again.
        secure = true;
        greeted = false;
        break;
      case 'AUTH': {
        if (!secure) {
          lines.write('504 5.7.4 Unrecognized authentication type');
          break;
        }
        if (!greeted) {
          lines.write('503 5.5.2 Send hello first');
          break;
        }
        if (authenticated) {
          lines.write('503 5.5.2 Already authenticated');
          break;
        }
        if (args[0]?.toUpperCase() !== 'XOAUTH2') {
          lines.write(`535 5.7.3 Authentication unsuccessful [${serverName}]`);
          break;
        }
        let response = args[1];
        if (response === undefined) {
          lines.write('334 ');
          response = await lines.next();
          if (response === undefined) return;
          if (response === '*') {
            lines.write('501 5.0.0 Authentication canceled');
            break;
          }
        }
        const verdict = await authority.authenticate('smtp', response);
        authenticated = verdict.ok;
        lines.write(
          verdict.ok
            ? '235 2.7.0 Authentication successful'
            : verdict.reason === 'protocol_disabled'
              ? DISABLED
              : `535 5.7.3 Authentication unsuccessful [${serverName}]`,
        );
        break;
      }
      case 'MAIL':
      case 'RCPT':
      case 'DATA':
      case 'BDAT':
        lines.write(
          authenticated
            ? '554 5.7.0 The sandbox accepts no mail: Test connection only proves the login'
            : `530 5.7.57 Client not authenticated to send mail. [${serverName}]`,
        );
        break;
      case 'RSET':
        lines.write('250 2.0.0 Resetting');
        break;
      case 'NOOP':
        lines.write('250 2.0.0 OK');
        break;
      case 'QUIT':
        lines.end('221 2.0.0 Service closing transmission channel');
        return;
      default:
        lines.write(`500 5.3.3 Unrecognized command '${word.slice(0, 32)}'`);
    }
  }
}
