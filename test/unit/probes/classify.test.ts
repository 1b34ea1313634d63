import { ProxyTunnelError } from '../../../shared/net/outbound';
import { classifyBearerRefusal } from '../../../shared/probes/bearer-refusal';
import { classifyNetworkError } from '../../../shared/probes/network';
import { USER_AGENT, USER_AGENT_PATTERN } from '../../../shared/net/user-agent';
import { allowListSnippet, remedyFor } from '../../../shared/probes/remedies';
import { version } from '../../../package.json';

const CHALLENGE =
  'Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="00000001-0000-0000-c000-000000000000@*", token_types="app_asserted_user_v1 service_asserted_app_v1", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="invalid_token"';

describe('a resource refusing a bearer token', () => {
  it.each([
    // Exchange (x-ms-diagnostics, as Exchange Online and Exchange Server send them)
    ['2000002;reason="The token has expired.";error_category="token_expired"', undefined, 'token_expired'],
    [
      '2000003;reason="The audience claim value is invalid \'https://graph.microsoft.com\'.";error_category="invalid_resource"',
      undefined,
      'token_wrong_audience',
    ],
    [
      '2000003;reason="The hostname component of the audience claim value is invalid. Expected \'https://mail.contoso.com\'. Actual \'http://mail.contoso.com\'.";error_category="invalid_resource"',
      undefined,
      'token_wrong_audience',
    ],
    [
      '2000008;reason="The token contains not enough scope to make this call.";error_category="invalid_grant"',
      undefined,
      'token_wrong_scope',
    ],
    [
      '2000000;reason="The token has an invalid signature.";error_category="invalid_signature"',
      undefined,
      'token_invalid',
    ],
    // Graph (its JSON error message)
    [undefined, 'Lifetime validation failed, the token is expired.', 'token_expired'],
    [undefined, 'Access token validation failure. Invalid audience.', 'token_wrong_audience'],
    [undefined, 'Signature is invalid.', 'token_invalid'],
    [undefined, undefined, 'token_invalid'],
  ] as const)('%s / %s → %s', (diagnostics, message, code) => {
    const failure = classifyBearerRefusal({ wwwAuthenticate: CHALLENGE, diagnostics, message });
    expect(failure.code).toBe(code);
  });

  it('quotes the reason but never a token-shaped string', () => {
    const failure = classifyBearerRefusal({
      diagnostics:
        '2000001;reason="bad token eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln";error_category="invalid_token"',
    });
    expect(failure.message).toContain('[token]');
    expect(failure.message).not.toContain('eyJhbGci');
  });
});

describe('a failure to reach the server', () => {
  const target = { host: 'outlook.office365.com', port: 993, timeoutSeconds: 15 };
  const withCode = (code: string) => Object.assign(new Error(code), { code });
  it.each([
    [withCode('ENOTFOUND'), 'dns_failed'],
    [withCode('EAI_AGAIN'), 'dns_failed'],
    [withCode('ECONNREFUSED'), 'connect_failed'],
    [withCode('ECONNRESET'), 'connect_failed'],
    [withCode('CERT_HAS_EXPIRED'), 'tls_failed'],
    [withCode('SELF_SIGNED_CERT_IN_CHAIN'), 'tls_failed'],
    [withCode('ERR_TLS_CERT_ALTNAME_INVALID'), 'tls_failed'],
    // fetch wraps the socket error: the cause decides
    [new TypeError('fetch failed', { cause: withCode('UNABLE_TO_VERIFY_LEAF_SIGNATURE') }), 'tls_failed'],
    [new DOMException('The operation was aborted due to timeout', 'TimeoutError'), 'timeout'],
    [new ProxyTunnelError(407), 'connect_failed'],
    [
      new TypeError('fetch failed', { cause: new Error('Proxy response (502) !== 200 when HTTP Tunneling') }),
      'connect_failed',
    ],
    [new Error('something else'), 'connect_failed'],
  ] as const)('%s → %s', (error, code) => {
    expect(classifyNetworkError(error, target).code).toBe(code);
  });

  it('says which proxy status refused the tunnel', () => {
    expect(classifyNetworkError(new ProxyTunnelError(407), target).message).toContain('HTTP 407');
  });
});

describe('remedies', () => {
  const appId = '66666666-7777-8888-9999-000000000000';
  const connection = {
    name: 'support-in',
    mailbox: 'support@contoso.com',
    account: 'support@contoso.com',
    profile: 'ews' as const,
    grant: 'authorization_code' as const,
    ewsUrl: undefined,
  };

  it('ews_blocked: reads the allow list, appends this App ID once and writes the whole string back', () => {
    const remedy = remedyFor('ews_blocked', { appId, connection, protocol: 'ews' });
    expect(remedy).not.toContain('@{Add="' + appId);
    expect(remedy).toContain(
      'Get-OrganizationConfig -RetrieveEwsOperationAccessPolicy | Format-List EwsAllowedAppIDs',
    );
    expect(remedy).toContain(allowListSnippet(appId));
    expect(allowListSnippet(appId)).toBe(
      "$ids = @((Get-OrganizationConfig -RetrieveEwsOperationAccessPolicy).EwsAllowedAppIDs -join ',' -split ',' | ForEach-Object { $_.Trim() } | Where-Object { $_ }); " +
        `if ($ids -notcontains '${appId}') { Set-OrganizationConfig -EwsAllowedAppIDs (($ids + '${appId}') -join ',') }`,
    );
    // What the line does to other apps, the User-Agent policy, and the delay.
    expect(remedy).toMatch(/While `EwsEnabled` is `\$true` only the listed apps reach EWS/);
    expect(remedy).toContain(
      'Get-OrganizationConfig | Format-List EwsApplicationAccessPolicy,EwsAllowList,EwsBlockList',
    );
    expect(remedy).toContain(`Set-OrganizationConfig -EwsAllowList @{Add="${USER_AGENT_PATTERN}"}`);
    expect(remedy).toContain(USER_AGENT);
    expect(remedy).toContain('up to 24 hours');
    expect(remedy).toContain('1 April 2027');
    // Unknown whether it has a Graph connection: said conditionally.
    expect(remedy).toContain(
      "If this connection has no Graph connection yet, in the console, this connection's More → Add the Graph connection (API: `POST /api/connections/support-in/graph`) defines support-in-graph",
    );
    const onPremises = remedyFor('ews_blocked', {
      appId,
      connection: { ...connection, ewsUrl: 'https://mail.contoso.com/EWS/Exchange.asmx' },
      protocol: 'ews',
    });
    expect(onPremises).not.toContain('1 April 2027');
  });

  it('ews_disabled: names both EwsEnabled settings, says the tenant-wide one wins, and no allow list helps', () => {
    const remedy = remedyFor('ews_disabled', { appId, connection, protocol: 'ews' });
    expect(remedy).toContain('Get-OrganizationConfig | Format-List EwsEnabled');
    expect(remedy).toContain('Get-CASMailbox -Identity support@contoso.com | Format-List EwsEnabled');
    expect(remedy).toContain('Set-CASMailbox -Identity support@contoso.com -EwsEnabled $true');
    expect(remedy).toContain(
      "The organization's `EwsEnabled` set to `$false` blocks every mailbox, including those set to `$true`.",
    );
    expect(remedy).toMatch(/no allow-list change helps while EWS is disabled/);
    expect(remedy).toContain(allowListSnippet(appId));
    expect(remedy).toContain('1 April 2027');
    expect(remedy).not.toContain('blocked by policy');
  });

  it('regression: PowerShell tokens stood as plain text (a line broke after the hyphen of -EwsEnabled) — every one is a code span', () => {
    for (const code of ['ews_blocked', 'ews_disabled'] as const) {
      const remedy = remedyFor(code, { appId, connection, protocol: 'ews', graph: null });
      // Outside the code spans no parameter, switch value or setting name is left.
      const plain = remedy
        .split('`')
        .filter((_piece, index) => index % 2 === 0)
        .join(' ');
      expect({
        code,
        tokens: plain.match(/(?:^|\s)-[A-Z]\w+|\$(?:true|false)|\bEws[A-Z]\w+|\bEnforce\w+/g),
      }).toEqual({
        code,
        tokens: null,
      });
    }
  });

  it.each([
    [
      'none yet',
      null,
      " EWS in Exchange Online ends on 1 April 2027: move this consumer to Microsoft Graph — in the console, this connection's More → Add the Graph connection (API: `POST /api/connections/support-in/graph`) defines support-in-graph for the same mailbox with profile graph-mail, signing in through the same sign-in, and tests it at once.",
    ],
    [
      'an authorized one',
      { name: 'support-in-graph', status: 'authorized' as const },
      ' EWS in Exchange Online ends on 1 April 2027: support-in-graph, the Microsoft Graph connection of the same mailbox, exists: move this consumer to it.',
    ],
    [
      'one not authorized yet',
      { name: 'support-graph', status: 'new' as const },
      ' EWS in Exchange Online ends on 1 April 2027: support-graph, the Microsoft Graph connection of the same mailbox, exists: move this consumer to it once it is authorized (its status is `new`).',
    ],
  ])('the move to Graph, with %s: names what to do about it', (_label, graph, move) => {
    for (const code of ['ews_blocked', 'ews_disabled'] as const) {
      const remedy = remedyFor(code, { appId, connection, protocol: 'ews', graph });
      expect(remedy.endsWith(move)).toBe(true);
    }
  });

  it('the console first, the API call in brackets (token_expired, token_unavailable)', () => {
    expect(remedyFor('token_expired', { appId, connection, protocol: 'ews' })).toContain(
      'refresh the connection and test again: in the console, its More → Refresh (API: `POST /api/connections/support-in/refresh`).',
    );
    expect(remedyFor('token_unavailable', { appId, connection, protocol: 'ews' })).toContain(
      "The connection's last error says why: in the console, on its row (API: `GET /api/connections/support-in`).",
    );
  });

  it('ews_forbidden: claims no cause it cannot see', () => {
    const remedy = remedyFor('ews_forbidden', { appId, connection, protocol: 'ews' });
    expect(remedy).toContain('no X-EWS-Policy-Reason');
    expect(remedy).not.toMatch(/EwsAllowedAppIDs|EwsEnabled/);
  });

  it.each([
    ['imap', 'Set-CASMailbox support@contoso.com -ImapEnabled $true'],
    ['pop', 'Set-CASMailbox support@contoso.com -PopEnabled $true'],
    ['smtp', 'Set-CASMailbox support@contoso.com -SmtpClientAuthenticationDisabled $false'],
  ] as const)('names the %s switch when XOAUTH2 is refused', (protocol, command) => {
    expect(remedyFor('mail_auth_failed', { appId, connection, protocol })).toContain(command);
  });

  it('adds the service-principal steps for app-only mail access', () => {
    const remedy = remedyFor('mail_auth_failed', {
      appId,
      connection: { ...connection, grant: 'client_credentials' },
      protocol: 'imap',
    });
    expect(remedy).toContain(`New-ServicePrincipal -AppId ${appId}`);
  });
});

describe('the User-Agent', () => {
  it('names the package version, so an EwsAllowList entry can name the broker', () => {
    expect(USER_AGENT).toBe(`ews-oauth-broker/${version}`);
    expect(USER_AGENT.startsWith(USER_AGENT_PATTERN.slice(0, -1))).toBe(true);
  });
});
