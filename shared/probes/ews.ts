/**
 * EWS probe on ews-javascript-api: binds the Inbox with OAuthCredentials, X-AnchorMailbox and,
 * for a shared mailbox, the mailbox named in the FolderId. The library is loaded on first use
 * (it costs more to import than the rest of the broker), and its HTTP goes through a recording
 * XHR on the broker's outbound client: the proxy and CA settings apply, and the real status and
 * headers are kept, because the library's errors hide them (a 403 surfaces as a bare SoapFault).
 */
import type { IXHRApi, IXHROptions } from 'ews-javascript-api';
import type { Headers, Response } from 'undici';
import { classifyBearerRefusal } from './bearer-refusal';
import { classifyNetworkError } from './network';
import type { ProbeTarget } from './probe';
import { ProbeFailure, type ProbeDetails } from './result';
import { parseRetryAfter } from '../net/retry-after';
import { USER_AGENT } from '../net/user-agent';

/** The library types its XHR result as a DOM XMLHttpRequest; Node has none, so it is opaque here. */
type XhrResult = Awaited<ReturnType<IXHRApi['xhr']>>;

interface RecordedExchange {
  status: number;
  headers: Headers;
  body: string;
}

interface XhrResponse {
  status: number;
  statusText: string;
  responseText: string;
  headers: Record<string, string>;
  getResponseHeader(name: string): string | null;
  getAllResponseHeaders(): string;
}

/** The XHR the library calls: one POST per operation, through the broker's outbound fetch. */
class RecordingXhr implements IXHRApi {
  readonly apiName = 'ews-oauth-broker';
  last: RecordedExchange | undefined;
  networkError: unknown;

  constructor(private readonly target: ProbeTarget) {}

  async xhr(options: IXHROptions): Promise<XhrResult> {
    let response: Response;
    try {
      response = await this.target.outbound.fetch(options.url, {
        method: options.type ?? 'POST',
        // One deliberate User-Agent: Exchange matches it against EwsAllowList / EwsBlockList.
        headers: { ...(options.headers as Record<string, string>), 'User-Agent': USER_AGENT },
        body: options.data as string,
        signal: this.target.signal,
      });
    } catch (error) {
      this.networkError = error;
      throw error;
    }
    const body = await response.text();
    this.last = { status: response.status, headers: response.headers, body };
    const headers: Record<string, string> = {};
    response.headers.forEach((value, key) => {
      headers[key] = value;
    });
    const result: XhrResponse = {
      status: response.status,
      statusText: response.statusText,
      responseText: body,
      headers,
      getResponseHeader: (name) => response.headers.get(name),
      getAllResponseHeaders: () =>
        Object.entries(headers)
          .map(([key, value]) => `${key}: ${value}`)
          .join('\r\n'),
    };
    // Anything but 200 rejects with a plain error, never the response itself: handed a response,
    // the library parses its body inside its own promise callback, and an empty or non-XML body
    // (a bare HTTP 500) throws there unhandled and ends the process. What Exchange sent is in `last`.
    if (response.status !== 200) throw new Error(`EWS answered HTTP ${String(response.status)}`);
    return result;
  }

  xhrStream(): Promise<XhrResult> {
    return Promise.reject(new Error('streaming notifications are not used by the probe'));
  }

  disconnect(): void {
    // Nothing is held open between requests.
  }
}

/** The first EWS ResponseCode in a SOAP body (a ResponseMessage or a fault's detail). */
function responseCodeOf(body: string): string | undefined {
  return (
    /<(?:\w+:)?ResponseCode\b[^>]*>\s*(\w+)\s*</.exec(body)?.[1] ??
    /<faultcode>\s*(?:\w+:)?(Error\w+)\s*</.exec(body)?.[1]
  );
}

function messageTextOf(body: string): string | undefined {
  const text =
    /<(?:\w+:)?MessageText\b[^>]*>([^<]{1,300})</.exec(body)?.[1] ??
    /<faultstring[^>]*>([^<]{1,300})</.exec(body)?.[1];
  return text?.trim();
}

function backOffSecondsOf(body: string): number | undefined {
  const ms = /Name="BackOffMilliseconds"[^>]*>\s*(\d+)\s*</.exec(body)?.[1];
  return ms === undefined ? undefined : Math.max(1, Math.ceil(Number(ms) / 1000));
}

function classifyResponseCode(code: string, body: string): ProbeFailure {
  const said = messageTextOf(body);
  const detail = `Exchange answered ${code}${said ? `: "${said}"` : '.'}`;
  switch (code) {
    case 'ErrorNonExistentMailbox':
    case 'ErrorInvalidSmtpAddress':
      return new ProbeFailure('mailbox_not_found', detail);
    case 'ErrorAccessDenied':
    case 'ErrorItemNotFound':
    case 'ErrorFolderNotFound':
      return new ProbeFailure('mailbox_access_denied', detail);
    case 'ErrorImpersonateUserDenied':
    case 'ErrorImpersonationDenied':
    case 'ErrorInvalidExchangeImpersonationHeaderData':
      return new ProbeFailure('impersonation_denied', detail);
    case 'ErrorServerBusy':
      return new ProbeFailure('throttled', detail, { retryAfterSeconds: backOffSecondsOf(body) });
    default:
      return new ProbeFailure('upstream_error', detail);
  }
}

/** The two values of X-EWS-Policy-Reason ("Control access to EWS in Exchange"), by the code each means. */
const EWS_POLICY_REASONS = {
  ews_disabled: 'EWS is disabled for this user or tenant',
  ews_blocked: 'EWS is blocked by policy for this user or tenant',
} as const;

/**
 * A 403 from EWS. Exchange Online names its EWS access controls in X-EWS-Policy-Reason, with exactly
 * two values ("Control access to EWS in Exchange"); a 403 without it proves neither, so the answer is
 * reported as it came. A valid token without the EWS scope also gets 403, with x-ms-diagnostics
 * saying so (2000008, "not enough scope").
 */
function classifyForbidden(headers: Headers): ProbeFailure {
  const policyReason = headers.get('x-ews-policy-reason')?.trim();
  const known = Object.entries(EWS_POLICY_REASONS).find(
    ([, value]) => value.toLowerCase() === policyReason?.toLowerCase(),
  );
  if (known) {
    const [code, value] = known;
    return new ProbeFailure(
      code as keyof typeof EWS_POLICY_REASONS,
      `Exchange answered HTTP 403, X-EWS-Policy-Reason: "${value}".`,
    );
  }
  const diagnostics = headers.get('x-ms-diagnostics');
  if (diagnostics) {
    const refusal = classifyBearerRefusal({ wwwAuthenticate: headers.get('www-authenticate'), diagnostics });
    if (refusal.code !== 'token_invalid') return refusal;
  }
  const requestId = headers.get('request-id');
  const details = [
    policyReason ? `X-EWS-Policy-Reason: "${policyReason.slice(0, 200)}"` : 'no X-EWS-Policy-Reason',
    diagnostics ? `x-ms-diagnostics: ${diagnostics.slice(0, 200)}` : undefined,
    requestId ? `request-id: ${requestId.slice(0, 64)}` : undefined,
  ].filter((part) => part !== undefined);
  return new ProbeFailure('ews_forbidden', `Exchange answered HTTP 403 (${details.join('; ')}).`);
}

/** Classifies by what Exchange really sent, not by what the library made of it. */
function classifyEwsFailure(xhr: RecordingXhr, thrown: unknown, target: ProbeTarget, url: URL): ProbeFailure {
  const network = {
    host: url.hostname,
    port: Number(url.port || 443),
    timeoutSeconds: target.timeoutSeconds,
  };
  if (target.signal.aborted || xhr.networkError !== undefined) {
    return classifyNetworkError(xhr.networkError ?? target.signal.reason, network);
  }
  const last = xhr.last;
  if (!last)
    return new ProbeFailure('upstream_error', `The EWS client failed before sending: ${String(thrown)}`);
  if (last.status === 401) {
    return classifyBearerRefusal({
      wwwAuthenticate: last.headers.get('www-authenticate'),
      diagnostics: last.headers.get('x-ms-diagnostics'),
    });
  }
  if (last.status === 403) return classifyForbidden(last.headers);
  if (last.status === 429 || last.status === 503) {
    const retryAfterSeconds = parseRetryAfter(last.headers.get('retry-after'));
    return new ProbeFailure('throttled', `Exchange answered HTTP ${last.status}.`, { retryAfterSeconds });
  }
  const code = responseCodeOf(last.body);
  if (code && code !== 'NoError') return classifyResponseCode(code, last.body);
  return new ProbeFailure(
    'upstream_error',
    `Exchange answered HTTP ${last.status} without an EWS response code.`,
  );
}

export async function probeEws(target: ProbeTarget): Promise<ProbeDetails> {
  const ews = await import('ews-javascript-api');
  const { connection } = target;
  const url = new URL(connection.ewsUrl ?? target.cloud.ewsUrl);
  const service = new ews.ExchangeService(ews.ExchangeVersion.Exchange2016);
  const xhr = new RecordingXhr(target);
  service.XHRApi = xhr;
  service.Url = new ews.Uri(url.href);
  // verbatim: the library's own token pattern would reject a valid token that is not a JWT.
  service.Credentials = new ews.OAuthCredentials(target.accessToken, true);
  // Routes the request to the mailbox's server in Exchange Online (required for shared mailboxes).
  service.HttpHeaders.Add('X-AnchorMailbox', connection.mailbox);
  if (connection.grant === 'client_credentials') {
    service.ImpersonatedUserId = new ews.ImpersonatedUserId(
      ews.ConnectingIdType.SmtpAddress,
      connection.mailbox,
    );
  }
  const inbox =
    connection.profile === 'ews-shared'
      ? new ews.FolderId(ews.WellKnownFolderName.Inbox, new ews.Mailbox(connection.mailbox))
      : new ews.FolderId(ews.WellKnownFolderName.Inbox);
  let folder: InstanceType<typeof ews.Folder>;
  try {
    folder = await ews.Folder.Bind(service, inbox);
  } catch (thrown) {
    throw classifyEwsFailure(xhr, thrown, target, url);
  }
  const server = service.ServerInfo as InstanceType<typeof ews.ExchangeServerInfo> | null | undefined;
  return {
    folder: folder.DisplayName,
    totalCount: folder.TotalCount,
    unreadCount: folder.UnreadCount,
    serverVersion: server
      ? `${server.MajorVersion}.${server.MinorVersion}.${server.MajorBuildNumber}.${server.MinorBuildNumber}`
      : null,
    serverVersionName: server?.VersionString ?? null,
    url: url.href,
  };
}
