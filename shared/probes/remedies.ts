/**
 * What an admin does about each probe failure, with this deployment's App ID and the mailbox
 * filled in, so the commands can be pasted into Exchange Online PowerShell as they are.
 */
import type { ConnectionStatus } from '../connections/connection';
import type { ProbeTarget } from './probe';
import type { ProbeCode, ProbeProtocol } from './result';
import { USER_AGENT, USER_AGENT_PATTERN } from '../net/user-agent';

export interface RemedyContext {
  appId: string;
  connection: Pick<
    ProbeTarget['connection'],
    'name' | 'mailbox' | 'account' | 'profile' | 'grant' | 'ewsUrl'
  >;
  protocol: ProbeProtocol | null;
  retryAfterSeconds?: number;
  /**
   * The Graph connection of the same mailbox (EWS remedies): null when there is none, undefined
   * when the tester could not tell.
   */
  graph?: { name: string; status: ConnectionStatus } | null;
}

/**
 * The PowerShell line that adds this App ID to EwsAllowedAppIDs without dropping the others: the
 * parameter takes ONE comma-separated string and replaces the whole list (Set-OrganizationConfig
 * reference), and the list is read only with -RetrieveEwsOperationAccessPolicy.
 */
export function allowListSnippet(appId: string): string {
  return (
    `$ids = @((Get-OrganizationConfig -RetrieveEwsOperationAccessPolicy).EwsAllowedAppIDs -join ',' -split ',' | ForEach-Object { $_.Trim() } | Where-Object { $_ }); ` +
    `if ($ids -notcontains '${appId}') { Set-OrganizationConfig -EwsAllowedAppIDs (($ids + '${appId}') -join ',') }`
  );
}

/**
 * The move to Graph, for a mailbox in Exchange Online (EWS there ends on 1 April 2027): to the
 * Graph connection it has, or how to add one (the console offers Add the Graph connection only
 * while there is none).
 */
function graphMove({ connection, graph }: RemedyContext): string {
  if (connection.ewsUrl !== undefined) return '';
  const ends = ' EWS in Exchange Online ends on 1 April 2027:';
  if (graph) {
    const ready =
      graph.status === 'authorized' ? '' : ` once it is authorized (its status is \`${graph.status}\`)`;
    return `${ends} ${graph.name}, the Microsoft Graph connection of the same mailbox, exists: move this consumer to it${ready}.`;
  }
  const appOnly = connection.grant === 'client_credentials';
  const profile = !appOnly && connection.profile === 'ews-shared' ? 'graph-mail-shared' : 'graph-mail';
  const add =
    "in the console, this connection's More → Add the Graph connection " +
    `(API: \`POST /api/connections/${connection.name}/graph\`) defines ${connection.name}-graph for the same mailbox ` +
    `with profile ${profile}, ${appOnly ? 'app-only as this one is' : 'signing in through the same sign-in'}, and tests it at once.`;
  return graph === null
    ? `${ends} move this consumer to Microsoft Graph — ${add}`
    : `${ends} move this consumer to Microsoft Graph. If this connection has no Graph connection yet, ${add} If it has one, move the consumer to that.`;
}

/** X-EWS-Policy-Reason "EWS is blocked by policy…": the App ID allow list or a User-Agent policy. */
function ewsBlocked(context: RemedyContext): string {
  const { appId } = context;
  return (
    `Exchange says EWS is blocked by policy for this app (App ID ${appId}, User-Agent ${USER_AGENT}). ` +
    'Either the App ID allow list or a User-Agent policy refused it; the header does not say which, and both must pass. ' +
    '1) App ID: `Get-OrganizationConfig -RetrieveEwsOperationAccessPolicy | Format-List EwsAllowedAppIDs` ' +
    '(a plain `Get-OrganizationConfig` does not show it). `-EwsAllowedAppIDs` takes one comma-separated string and replaces the whole list, ' +
    `so add this App ID while keeping every other: \`${allowListSnippet(appId)}\`. ` +
    'While `EwsEnabled` is `$true` only the listed apps reach EWS: never write the list with this App ID alone, ' +
    'and do not set `-EwsEnabled $true` before the list holds every EWS app the tenant still needs. ' +
    '2) User-Agent: `Get-OrganizationConfig | Format-List EwsApplicationAccessPolicy,EwsAllowList,EwsBlockList`; ' +
    `with \`EnforceAllowList\` add the broker: \`Set-OrganizationConfig -EwsAllowList @{Add="${USER_AGENT_PATTERN}"}\`; ` +
    `with \`EnforceBlockList\` make sure no \`EwsBlockList\` entry matches \`${USER_AGENT}\`. ` +
    'Changes to `EwsAllowedAppIDs` can take up to 24 hours to apply: test again tomorrow before changing anything else.' +
    graphMove(context)
  );
}

/** X-EWS-Policy-Reason "EWS is disabled…": the organization's or the mailbox's EwsEnabled. */
function ewsDisabled(context: RemedyContext): string {
  const { mailbox } = context.connection;
  return (
    `Exchange says EWS is disabled for ${mailbox} or the whole organization: \`EwsEnabled\`, not an allow list ` +
    '(no allow-list change helps while EWS is disabled). Check both: `Get-OrganizationConfig | Format-List EwsEnabled` and ' +
    `\`Get-CASMailbox -Identity ${mailbox} | Format-List EwsEnabled\`. ` +
    `For the mailbox: \`Set-CASMailbox -Identity ${mailbox} -EwsEnabled $true\`. ` +
    "The organization's `EwsEnabled` set to `$false` blocks every mailbox, including those set to `$true`. " +
    'Turning it back on (`Set-OrganizationConfig -EwsEnabled $true`) lets only the apps in `EwsAllowedAppIDs` reach EWS: ' +
    `first put every EWS app the tenant needs on that list, this one included (\`${allowListSnippet(context.appId)}\`).` +
    graphMove(context)
  );
}

function mailAuthFailed({ appId, connection, protocol }: RemedyContext): string {
  const mailbox = connection.mailbox;
  const permission =
    protocol === 'smtp' ? 'SMTP.SendAsApp' : protocol === 'pop' ? 'POP.AccessAsApp' : 'IMAP.AccessAsApp';
  const appOnly =
    connection.grant === 'client_credentials'
      ? ` For app-only access the app needs the ${permission} application permission of Office 365 Exchange Online with admin consent, its service principal registered in Exchange (\`New-ServicePrincipal -AppId ${appId} -ObjectId <its enterprise application object id>\`) and the mailbox granted to it (\`Add-MailboxPermission -Identity ${mailbox} -User <that service principal id> -AccessRights FullAccess\`).`
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
    case 'ews_disabled':
      return ewsDisabled(context);
    case 'ews_forbidden':
      return "Exchange refused the request with HTTP 403 but named no EWS access policy (no X-EWS-Policy-Reason) and no token problem, so the broker cannot tell why. Other access restrictions also answer 403. Give the request-id in the detail to Microsoft support, and check the mailbox's permissions for this account.";
    case 'mail_auth_failed':
      return mailAuthFailed(context);
    case 'token_expired':
      return `The broker refreshes tokens before they expire; check the server clock, then refresh the connection and test again: in the console, its More → Refresh (API: \`POST /api/connections/${connection.name}/refresh\`).`;
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
      return `No valid access token could be obtained right now (Entra ID unreachable or refresh failing). The connection's last error says why: in the console, on its row (API: \`GET /api/connections/${connection.name}\`).`;
    case 'not_supported':
      return 'A custom connection names its own scopes, so the broker cannot tell which protocol to test. Use a named profile to get Test connection.';
  }
}
