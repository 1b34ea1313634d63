/** Graph probe: reads the Inbox's mailFolder resource and reports its counts. */
import { randomUUID } from 'node:crypto';
import { parseRetryAfter } from '../net/retry-after';
import { classifyBearerRefusal } from './bearer-refusal';
import { classifyNetworkError } from './network';
import type { ProbeTarget } from './probe';
import { ProbeFailure, type ProbeDetails } from './result';

interface GraphError {
  code: string;
  message: string;
}

function graphErrorOf(body: unknown): GraphError {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return {
    code: typeof error?.code === 'string' ? error.code.slice(0, 100) : 'unknown',
    message: typeof error?.message === 'string' ? error.message.replace(/\s+/g, ' ').slice(0, 300) : '',
  };
}

function classifyGraphError(
  status: number,
  error: GraphError,
  headers: { get(name: string): string | null },
): ProbeFailure {
  const detail = `Graph answered HTTP ${status} ${error.code}${error.message ? `: "${error.message}"` : '.'}`;
  if (status === 401) {
    return classifyBearerRefusal({
      wwwAuthenticate: headers.get('www-authenticate'),
      message: error.message,
    });
  }
  if (status === 429 || status === 503) {
    return new ProbeFailure('throttled', detail, {
      retryAfterSeconds: parseRetryAfter(headers.get('retry-after')),
    });
  }
  switch (error.code) {
    case 'ErrorInvalidUser':
    case 'ResourceNotFound':
    case 'MailboxNotEnabledForRESTAPI':
    case 'MailboxNotSupportedForRESTAPI':
      return new ProbeFailure('mailbox_not_found', detail);
    case 'ErrorAccessDenied':
    case 'AccessDenied':
    case 'Authorization_RequestDenied':
      return new ProbeFailure('mailbox_access_denied', detail);
    default:
      return new ProbeFailure('upstream_error', detail);
  }
}

/** `/me` for the signed-in user's own mailbox; `/users/{mailbox}` for a shared one or app-only. */
export function inboxPath(connection: ProbeTarget['connection']): string {
  const own =
    connection.grant !== 'client_credentials' &&
    connection.profile !== 'graph-mail-shared' &&
    connection.account === connection.mailbox;
  const owner = own ? 'me' : `users/${encodeURIComponent(connection.mailbox)}`;
  return `/v1.0/${owner}/mailFolders/inbox?$select=displayName,totalItemCount,unreadItemCount`;
}

export async function probeGraph(target: ProbeTarget): Promise<ProbeDetails> {
  const url = `${target.cloud.graphResource}${inboxPath(target.connection)}`;
  const host = new URL(url).hostname;
  const requestId = randomUUID();
  let status: number;
  let headers: { get(name: string): string | null };
  let body: unknown;
  try {
    const response = await target.outbound.fetch(url, {
      headers: {
        Authorization: `Bearer ${target.accessToken}`,
        Accept: 'application/json',
        'client-request-id': requestId,
      },
      signal: target.signal,
    });
    status = response.status;
    headers = response.headers;
    const text = await response.text();
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      body = undefined;
    }
  } catch (error) {
    throw classifyNetworkError(error, { host, port: 443, timeoutSeconds: target.timeoutSeconds });
  }
  if (status !== 200) throw classifyGraphError(status, graphErrorOf(body), headers);
  const folder = body as
    { displayName?: unknown; totalItemCount?: unknown; unreadItemCount?: unknown } | undefined;
  if (typeof folder?.totalItemCount !== 'number') {
    throw new ProbeFailure('upstream_error', 'Graph answered 200 without a mail folder.');
  }
  return {
    folder: typeof folder.displayName === 'string' ? folder.displayName.slice(0, 100) : 'Inbox',
    totalCount: folder.totalItemCount,
    unreadCount: typeof folder.unreadItemCount === 'number' ? folder.unreadItemCount : null,
    url: url.replace(/\?.*$/, ''),
    requestId,
  };
}
