/**
 * Microsoft's clouds and their hosts: sign-in, Exchange, Outlook, Graph and the mail servers. Facts,
 * not settings: config.ts picks one from ENTRA_CLOUD / ENTRA_AUTHORITY_HOST and hands it on.
 */

export interface CloudEndpoints {
  /** e.g. `https://login.microsoftonline.com` (no trailing slash). */
  authorityHost: string;
  /** Resource host of EWS tokens (`https://outlook.office365.com`). */
  exchangeResource: string;
  /** Resource host of IMAP/POP/SMTP delegated scopes (`https://outlook.office.com`). */
  outlookResource: string;
  /** Resource host of Microsoft Graph (`https://graph.microsoft.com`). */
  graphResource: string;
  /** Audience of the federated-credential assertion for this cloud. */
  tokenExchangeAudience: string;
  /** Where mailboxes answer EWS, IMAP (implicit TLS), POP3 (implicit TLS) and SMTP submission (STARTTLS). */
  ewsUrl: string;
  imap: MailEndpoint;
  pop: MailEndpoint;
  smtp: MailEndpoint;
}

export interface MailEndpoint {
  host: string;
  port: number;
}

export const CLOUDS = ['global', 'usgov', 'usgov-dod', 'china'] as const;
export type CloudName = (typeof CLOUDS)[number];

/**
 * Each cloud's hosts, in one table: sign-in, Exchange (EWS and the IMAP/POP resource), the
 * outlook resource of the delegated IMAP/POP/SMTP scopes, Graph, and the mail servers.
 */
const CLOUD_TABLE: Record<CloudName, Omit<CloudEndpoints, 'authorityHost'> & { loginHost: string }> = {
  global: {
    loginHost: 'login.microsoftonline.com',
    exchangeResource: 'https://outlook.office365.com',
    outlookResource: 'https://outlook.office.com',
    graphResource: 'https://graph.microsoft.com',
    tokenExchangeAudience: 'api://AzureADTokenExchange',
    ewsUrl: 'https://outlook.office365.com/EWS/Exchange.asmx',
    imap: { host: 'outlook.office365.com', port: 993 },
    pop: { host: 'outlook.office365.com', port: 995 },
    smtp: { host: 'smtp.office365.com', port: 587 },
  },
  // US Government GCC High.
  usgov: {
    loginHost: 'login.microsoftonline.us',
    exchangeResource: 'https://outlook.office365.us',
    outlookResource: 'https://outlook.office365.us',
    graphResource: 'https://graph.microsoft.us',
    tokenExchangeAudience: 'api://AzureADTokenExchangeUSGov',
    ewsUrl: 'https://outlook.office365.us/EWS/Exchange.asmx',
    imap: { host: 'outlook.office365.us', port: 993 },
    pop: { host: 'outlook.office365.us', port: 995 },
    smtp: { host: 'smtp.office365.us', port: 587 },
  },
  // US Government DoD: the same sign-in host as GCC High, its own Exchange and Graph.
  'usgov-dod': {
    loginHost: 'login.microsoftonline.us',
    exchangeResource: 'https://outlook-dod.office365.us',
    outlookResource: 'https://outlook-dod.office365.us',
    graphResource: 'https://dod-graph.microsoft.us',
    tokenExchangeAudience: 'api://AzureADTokenExchangeUSGov',
    ewsUrl: 'https://outlook-dod.office365.us/EWS/Exchange.asmx',
    imap: { host: 'outlook-dod.office365.us', port: 993 },
    pop: { host: 'outlook-dod.office365.us', port: 995 },
    smtp: { host: 'smtp-dod.office365.us', port: 587 },
  },
  // China, operated by 21Vianet.
  china: {
    loginHost: 'login.partner.microsoftonline.cn',
    exchangeResource: 'https://partner.outlook.cn',
    outlookResource: 'https://partner.outlook.cn',
    graphResource: 'https://microsoftgraph.chinacloudapi.cn',
    tokenExchangeAudience: 'api://AzureADTokenExchangeChina',
    ewsUrl: 'https://partner.outlook.cn/EWS/Exchange.asmx',
    imap: { host: 'partner.outlook.cn', port: 993 },
    pop: { host: 'partner.outlook.cn', port: 995 },
    smtp: { host: 'smtp.partner.outlook.cn', port: 587 },
  },
};

/** The cloud an authority host belongs to; undefined for a host Microsoft does not run. */
export function cloudOfAuthority(authorityHost: string): CloudName | undefined {
  const host = new URL(authorityHost).hostname.toLowerCase();
  return CLOUDS.find((name) => CLOUD_TABLE[name].loginHost === host);
}

/**
 * The endpoints of a cloud. The cloud is ENTRA_CLOUD when set (the only way to choose DoD, which
 * shares GCC High's sign-in host), else the one the authority host belongs to, else Global (an
 * authority Microsoft does not run: a test or sandbox sign-in service).
 */
export function cloudFor(authorityHost: string, cloud?: CloudName): CloudEndpoints {
  const entry = CLOUD_TABLE[cloud ?? cloudOfAuthority(authorityHost) ?? 'global'];
  return {
    authorityHost: authorityHost.replace(/\/+$/, ''),
    exchangeResource: entry.exchangeResource,
    outlookResource: entry.outlookResource,
    graphResource: entry.graphResource,
    tokenExchangeAudience: entry.tokenExchangeAudience,
    ewsUrl: entry.ewsUrl,
    imap: entry.imap,
    pop: entry.pop,
    smtp: entry.smtp,
  };
}

/** The sign-in host of a cloud (GCC High and DoD share one). */
export function loginHostOf(cloud: CloudName): string {
  return CLOUD_TABLE[cloud].loginHost;
}
