/**
 * The mailbox side of the sandbox: EWS, Graph and IMAP/POP/SMTP stand-ins holding demo mailboxes,
 * behind a CONNECT proxy that answers for the real Microsoft host names. `npm start` runs it with no
 * Azure subscription, and the tests run it too, so Test connection exercises the production path:
 * the broker addresses outlook.office365.com (443, 993, 995), smtp.office365.com:587 and
 * graph.microsoft.com through HTTPS_PROXY.
 */
import { createBearerValidator } from './bearer';
import { startEwsStandIn, type EwsStandIn } from './ews';
import { startGraphStandIn, type GraphStandIn } from './graph';
import { startMailStandIn, type MailStandIn } from './mail';
import { startRouter, type Router } from './router';

export interface DemoMailbox {
  smtp: string;
  displayName: string;
  inbox: { total: number; unread: number };
  /** Delegates with Full Access. */
  fullAccess?: string[];
}

export interface SandboxServicesOptions {
  pki: { caCertPem: string; serverCertPem: string; serverKeyPem: string };
  /** The sign-in service's authority host (its JWKS validates every token). */
  authorityHost: string;
  mailboxes: DemoMailbox[];
  now?: () => number;
}

export interface SandboxServices {
  ews: EwsStandIn;
  graph: GraphStandIn;
  /** IMAP, POP3 and SMTP submission (SASL XOAUTH2) over the same mailboxes. */
  mail: MailStandIn;
  /** HTTPS_PROXY for the broker; NO_PROXY must keep loopback (Entra, Key Vault, storage) direct. */
  router: Router;
  close(): Promise<void>;
}

export async function startSandboxServices(options: SandboxServicesOptions): Promise<SandboxServices> {
  const validator = createBearerValidator({
    jwksUrl: `${options.authorityHost}/common/discovery/v2.0/keys`,
    ca: options.pki.caCertPem,
    ...(options.now ? { now: options.now } : {}),
  });
  const ews = await startEwsStandIn({ pki: options.pki, validator, mailboxes: options.mailboxes });
  const graph = await startGraphStandIn({
    pki: options.pki,
    validator,
    mailboxes: options.mailboxes.map((mailbox) => ({
      userPrincipalName: mailbox.smtp,
      displayName: mailbox.displayName,
      inbox: mailbox.inbox,
      fullAccess: mailbox.fullAccess ?? [],
    })),
  });
  const mail = await startMailStandIn({ pki: options.pki, validator, mailboxes: options.mailboxes });
  const router = await startRouter({
    routes: {
      'outlook.office365.com:443': ews.port,
      'graph.microsoft.com:443': graph.port,
      'outlook.office365.com:993': mail.imapPort,
      'outlook.office365.com:995': mail.popPort,
      'smtp.office365.com:587': mail.smtpPort,
    },
  });
  return {
    ews,
    graph,
    mail,
    router,
    async close() {
      await router.close();
      await Promise.all([ews.close(), graph.close(), mail.close()]);
    },
  };
}

/** The demo mailboxes `npm start` serves (the same accounts the sandbox's sign-in service knows). */
export const DEMO_MAILBOXES: DemoMailbox[] = [
  { smtp: 'support@contoso.test', displayName: 'Support', inbox: { total: 12, unread: 3 } },
  { smtp: 'sales@contoso.test', displayName: 'Sales', inbox: { total: 5, unread: 5 } },
  {
    smtp: 'shared@contoso.test',
    displayName: 'Shared inbox',
    inbox: { total: 7, unread: 1 },
    fullAccess: ['support@contoso.test'],
  },
  { smtp: 'admin@contoso.test', displayName: 'Admin', inbox: { total: 2, unread: 0 } },
];
