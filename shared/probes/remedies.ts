/**
 * What an admin does about each probe failure, with this deployment's App ID and the mailbox
 * filled in, so the commands can be pasted into Exchange Online PowerShell as they are.
 */
import type { ProbeTarget } from './probe';
import type { ProbeCode, ProbeProtocol } from './result';

export interface RemedyContext {
  appId: string;
  connection: Pick<
    ProbeTarget['connection'],
    'name' | 'mailbox' | 'account' | 'profile' | 'grant' | 'ewsUrl'
  >;
  protocol: ProbeProtocol | null;
  retryAfterSeconds?: number;
}

/** EWS in Exchange Online: the allow list since 1 October 2026, the end on 1 April 2027. */
function ewsBlocked({ appId, connection }: RemedyContext): string {
  const onPremises = connection.ewsUrl !== undefined;
  const steps = [
    `Exchange refuses EWS to this app (App ID ${appId}).`,
    'An Exchange admin checks, in Exchange PowerShell:',
    '`Get-OrganizationConfig | Format-List Ews*` (EwsEnabled, EwsAllowedAppIDs, EwsApplicationAccessPolicy)',
    `and \`Get-CASMailbox ${connection.mailbox} | Format-List Ews*\` (EwsEnabled, EwsAllowList, EwsBlockList),`,
    `then allows this app: \`Set-OrganizationConfig -EwsAllowedAppIDs @{Add="${appId}"}\``,
    `(and, for the mailbox, \`Set-CASMailbox ${connection.mailbox} -EwsEnabled $true\`).`,
  ];
  if (!onPremises) {
    steps.push(
      'EWS in Exchange Online ends on 1 April 2027: move this consumer to Microsoft Graph —',
      `define a connection for the same mailbox with profile graph-mail and authorize it once:`,
      `PUT /api/connections/${connection.name}-graph {"mailbox":"${connection.mailbox}","account":"${connection.account}","profile":"graph-mail"}.`,
    );
  }
  return steps.join(' ');
}

function mailAuthFailed({ appId, connection, protocol }: RemedyContext): string {
  const mailbox = connection.mailbox;
  const appOnly =
    connection.grant === 'client_credentials'
      ? ` For app-only access, register the app in Exchange (\`New-ServicePrincipal -AppId ${appId} -ObjectId <its enterprise application object id>\`) and grant it the mailbox (\`Add-MailboxPermission -Identity ${mailbox} -User <that service principal id> -AccessRights FullAccess\`).`
      : '';
  if (protocol === 'smtp') {
    return (
      `Exchange refused SMTP AUTH for ${mailbox}. SMTP AUTH is off by default: check \`Get-CASMailbox ${mailbox} | Format-List SmtpClientAuthenticationDisabled\` and \`Get-TransportConfig | Format-List SmtpClientAuthenticationDisabled\`, then \`Set-CASMailbox ${mailbox} -SmtpClientAuthenticationDisabled $false\`. Security defaults also block SMTP AUTH. Make sure the connection was authorized as ${connection.account}, who may send as ${mailbox}.` +
      appOnly
    );
  }
  const flag = protocol === 'pop' ? 'PopEnabled' : 'ImapEnabled';
  const name = protocol === 'pop' ? 'POP' : 'IMAP';
  return (
    `Exchange refused ${name} XOAUTH2 for ${mailbox}. Usually ${name} is disabled for the mailbox or by a CAS mailbox plan: check \`Get-CASMailbox ${mailbox} | Format-List ${flag}\`, then \`Set-CASMailbox ${mailbox} -${flag} $true\` (it can take an hour to apply). Also check that the connection's token was issued for ${mailbox} (or a delegate with Full Access).` +
    appOnly
  );
}

export function remedyFor(code: ProbeCode, context: RemedyContext): string {
  const { connection, appId } = context;
  switch (code) {
    case 'ews_blocked':
      return ewsBlocked(context);
    case 'mail_auth_failed':
      return mailAuthFailed(context);
    case 'token_expired':
      return 'The broker refreshes tokens before they expire; check the server clock, then POST /api/connections/{name}/refresh and test again.';
    case 'token_wrong_audience':
      return connection.ewsUrl
        ? `The token's audience must be ${new URL(connection.ewsUrl).origin} (the host of ewsUrl). Check ewsUrl, that hybrid modern authentication is enabled on-premises, then authorize again.`
        : 'The token was issued for another resource: check the connection profile matches the protocol, then authorize the connection again.';
    case 'token_wrong_scope':
      return `The App Registration (App ID ${appId}) lacks the permission this protocol needs, or consent was not granted: add it (see the README's permission table), grant admin consent, and authorize the connection again.`;
    case 'token_invalid':
      return 'The server did not accept the token. Authorize the connection again; if that does not help, check that the mailbox is in the tenant the app is registered in.';
    case 'mailbox_not_found':
      return `Exchange has no mailbox ${connection.mailbox}. Check the address (\`Get-Mailbox ${connection.mailbox}\`); a mailbox on Exchange Server on-premises needs the connection's ewsUrl.`;
    case 'mailbox_access_denied':
      return connection.account === connection.mailbox
        ? `${connection.account} may not open this folder. Check the mailbox's permissions and that the connection's profile matches how the mailbox is used.`
        : `${connection.account} may not open ${connection.mailbox}. An Exchange admin grants Full Access: \`Add-MailboxPermission -Identity ${connection.mailbox} -User ${connection.account} -AccessRights FullAccess -InheritanceType All\` (it can take up to an hour to apply).`;
    case 'impersonation_denied':
      return `The app (App ID ${appId}) may not act as ${connection.mailbox}. Grant it with RBAC for Applications (\`New-ManagementRoleAssignment -App <service principal id> -Role "Application EWS.AccessAsApp" -CustomResourceScope <scope containing ${connection.mailbox}>\`) or check the application access policy (\`Test-ApplicationAccessPolicy -Identity ${connection.mailbox} -AppId ${appId}\`).`;
    case 'throttled':
      return `Exchange is throttling this app or mailbox; test again${context.retryAfterSeconds !== undefined ? ` after ${context.retryAfterSeconds} s` : ' shortly'}.`;
    case 'upstream_error':
      return 'The server answered with an error. Test again; if it persists, check Service health in the Microsoft 365 admin center.';
    case 'tls_failed':
      return 'The TLS handshake failed. Behind a TLS-inspecting proxy, set NODE_EXTRA_CA_CERTS to the proxy CA certificate file (and HTTPS_PROXY to the proxy).';
    case 'dns_failed':
      return 'The host name could not be resolved from the Function App. Check its DNS (VNet integration, private DNS zones) or set HTTPS_PROXY so the proxy resolves it.';
    case 'connect_failed':
      return 'Check outbound network rules (NSG, firewall) and the proxy settings HTTPS_PROXY and NO_PROXY; IMAP (993), POP (995) and SMTP (587) need their ports open or a proxy that tunnels them.';
    case 'timeout':
      return 'The server did not answer in time. Check the network path and proxy, then test again.';
    case 'reauthorization_required':
      return 'An admin opens the console and clicks Authorize for this connection.';
    case 'token_unavailable':
      return 'No valid access token could be obtained right now (Entra ID unreachable or refresh failing); GET /api/connections/{name} shows the last error.';
    case 'not_supported':
      return 'A custom connection names its own scopes, so the broker cannot tell which protocol to test. Use a named profile to get Test connection.';
  }
}
