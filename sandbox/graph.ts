/**
 * Microsoft Graph stand-in for the broker's Graph probe: reads of a mailbox's Inbox
 * (`GET /v1.0/me/mailFolders/inbox`, `GET /v1.0/users/{id | userPrincipalName}/mailFolders/inbox`)
 * on loopback HTTPS, with Graph's status codes, error codes, messages and headers.
 *
 * Tokens are checked as Graph does (sandbox/bearer.ts: signature from the issuer's JWKS, lifetime,
 * audience), then authorized as the Outlook workload does: delegated `Mail.ReadBasic`/`Mail.Read`/
 * `Mail.ReadWrite` for the signed-in user's mailbox, `Mail.Read.Shared`/`Mail.ReadWrite.Shared` plus
 * the owner's delegation (`fullAccess`) for another user's, application `Mail.ReadBasic.All`/
 * `Mail.Read`/`Mail.ReadWrite` for any. Only the Inbox is modelled. Tokens are never logged or echoed.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BearerValidator } from './bearer';
import { closeServer, listenOnLoopback } from './listen';

export interface GraphMailbox {
  /** Object id; default a random GUID. */
  id?: string;
  userPrincipalName: string;
  displayName: string;
  inbox: { total: number; unread: number };
  /** Delegates (userPrincipalName or object id) with Full Access / folder permission. */
  fullAccess?: string[];
  /** false: a directory user without an Exchange Online mailbox (MailboxNotEnabledForRESTAPI). Default true. */
  hasMailbox?: boolean;
}

export interface GraphStandInOptions {
  pki: { serverCertPem: string; serverKeyPem: string };
  validator: BearerValidator;
  mailboxes: GraphMailbox[];
  /** Default 0 (ephemeral); always bound to 127.0.0.1. */
  port?: number;
}

export interface GraphStandIn {
  /** https://127.0.0.1:PORT (no trailing slash; paths start with /v1.0). */
  url: string;
  port: number;
  /** The next `n` requests are answered 429 with `Retry-After: retryAfterSeconds` (default 1). */
  throttleNext(n: number, retryAfterSeconds?: number): void;
  /** Every request answered: path (without query) and status. */
  requests: { path: string; status: number }[];
  close(): Promise<void>;
}

const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';
const AUDIENCES = ['https://graph.microsoft.com', 'https://graph.microsoft.com/', GRAPH_APP_ID];
const OWN_SCOPES = [
  'Mail.ReadBasic',
  'Mail.Read',
  'Mail.ReadWrite',
  'Mail.Read.Shared',
  'Mail.ReadWrite.Shared',
];
const SHARED_SCOPES = ['Mail.Read.Shared', 'Mail.ReadWrite.Shared'];
const APP_ROLES = ['Mail.ReadBasic.All', 'Mail.Read', 'Mail.ReadWrite'];
const WELL_KNOWN_FOLDERS = new Set(
  'archive clutter conflicts conversationhistory deleteditems drafts junkemail localfailures msgfolderroot outbox recoverableitemsdeletions scheduled searchfolders sentitems serverfailures syncissues'.split(
    ' ',
  ),
);
const FOLDER_PROPERTIES = [
  'id',
  'displayName',
  'parentFolderId',
  'childFolderCount',
  'unreadItemCount',
  'totalItemCount',
  'sizeInBytes',
  'isHidden',
] as const;
const WWW_AUTHENTICATE = `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="${GRAPH_APP_ID}"`;
const ACCESS_DENIED = 'Access is denied. Check credentials and try again.';
const MALFORMED_TOKEN =
  "IDX14100: JWT is not well formed, there are no dots (.).\nThe token needs to be in JWS or JWE Compact Serialization Format. (JWS): 'EncodedHeader.EncodedPayload.EncodedSignature'. (JWE): 'EncodedProtectedHeader.EncodedEncryptedKey.EncodedInitializationVector.EncodedCiphertext.EncodedAuthenticationTag'.";
const TOKEN_MESSAGES = {
  malformed: MALFORMED_TOKEN,
  bad_signature: 'Signature is invalid.',
  expired: 'Lifetime validation failed, the token is expired.',
  not_yet_valid: 'Lifetime validation failed, the token is not yet valid.',
  audience: 'Access token validation failure. Invalid audience.',
} as const;

class GraphError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface Route {
  version: string;
  /** undefined: /me. */
  user: string | undefined;
  folder: string;
  select: (typeof FOLDER_PROPERTIES)[number][] | undefined;
}

function parseRoute(url: URL): Route {
  let segments: string[];
  try {
    segments = url.pathname.split('/').slice(1).map(decodeURIComponent);
  } catch {
    throw new GraphError(400, 'BadRequest', 'Invalid request URI.');
  }
  const [version = '', ...rest] = segments;
  if (version !== 'v1.0' && version !== 'beta')
    throw new GraphError(400, 'BadRequest', `Invalid version: ${version}`);
  const unknown = (segment: string | undefined) =>
    new GraphError(400, 'BadRequest', `Resource not found for the segment '${segment ?? version}'.`);
  // OData key syntax `users('x')` / `mailFolders('inbox')` is the same as a path segment.
  const keyed = (segment: string | undefined, name: string): string | undefined =>
    new RegExp(`^${name}\\('(.*)'\\)$`, 'i').exec(segment ?? '')?.[1];
  let i = 0;
  let user: string | undefined;
  const first = rest[0]?.toLowerCase();
  if (first === 'me') i = 1;
  else if (first === 'users' && rest[1]) [user, i] = [rest[1], 2];
  else if ((user = keyed(rest[0], 'users')) !== undefined) i = 1;
  else throw unknown(rest[0]);
  let folder: string | undefined;
  if (rest[i]?.toLowerCase() === 'mailfolders' && rest[i + 1]) [folder, i] = [rest[i + 1], i + 2];
  else if ((folder = keyed(rest[i], 'mailFolders')) !== undefined) i += 1;
  if (folder === undefined || i < rest.length) throw unknown(rest[i] ?? rest[i - 1]);

  const selectParam = url.searchParams.get('$select') ?? url.searchParams.get('select');
  const select = selectParam?.split(',').map((raw) => {
    const name = raw.trim();
    const property = FOLDER_PROPERTIES.find((p) => p.toLowerCase() === name.toLowerCase());
    if (!property)
      throw new GraphError(
        400,
        'RequestBroker--ParseUri',
        `Could not find a property named '${name}' on type 'microsoft.graph.mailFolder'.`,
      );
    return property;
  });
  return { version, user, folder, select };
}

/** An Exchange-looking folder id, stable per mailbox. */
function folderId(mailboxId: string, folder: string): string {
  return `AAMkA${Buffer.from(`${mailboxId}/${folder}`).toString('base64url')}AAA=`;
}

const sameText = (a: unknown, b: string): boolean =>
  typeof a === 'string' && a.toLowerCase() === b.toLowerCase();

export async function startGraphStandIn(options: GraphStandInOptions): Promise<GraphStandIn> {
  const mailboxes = options.mailboxes.map((m) => ({ ...m, id: m.id ?? randomUUID() }));
  type Mailbox = (typeof mailboxes)[number];
  const requests: { path: string; status: number }[] = [];
  let throttle = { remaining: 0, retryAfterSeconds: 1 };

  const findMailbox = (key: string): Mailbox | undefined =>
    mailboxes.find((m) => sameText(m.id, key) || sameText(m.userPrincipalName, key));

  async function answer(req: IncomingMessage, url: URL): Promise<{ status: number; body: object }> {
    if (throttle.remaining > 0) {
      throttle.remaining--;
      throw new GraphError(429, 'ApplicationThrottled', 'Application is over its MailboxConcurrency limit.', {
        'retry-after': String(throttle.retryAfterSeconds),
      });
    }
    const route = parseRoute(url);

    const authorization = req.headers.authorization;
    if (!authorization || !/^bearer\s+\S/i.test(authorization.trim()))
      throw new GraphError(401, 'InvalidAuthenticationToken', 'Access token is empty.', {
        'www-authenticate': WWW_AUTHENTICATE,
      });
    const checked = await options.validator.check(authorization, {
      audiences: AUDIENCES,
      scopes: OWN_SCOPES,
      roles: APP_ROLES,
    });
    // A token lacking the permission is still authentic: authorization is decided below.
    const claims = checked.ok ? checked.claims : checked.reason === 'scope' ? checked.claims : undefined;
    if (!checked.ok && checked.reason !== 'scope')
      throw new GraphError(401, 'InvalidAuthenticationToken', TOKEN_MESSAGES[checked.reason], {
        'www-authenticate': WWW_AUTHENTICATE,
      });
    if (!claims) throw new GraphError(403, 'ErrorAccessDenied', ACCESS_DENIED);

    if (req.method !== 'GET')
      throw new GraphError(405, 'ErrorInvalidRequest', 'The OData request is not supported.');

    const scopes = typeof claims.scp === 'string' ? claims.scp.split(' ') : undefined;
    const roles = Array.isArray(claims.roles) ? claims.roles.map(String) : [];
    let mailbox: Mailbox | undefined;
    if (scopes) {
      if (!OWN_SCOPES.some((s) => scopes.includes(s)))
        throw new GraphError(403, 'ErrorAccessDenied', ACCESS_DENIED);
      const callerKeys = [claims.oid, claims.upn, claims.preferred_username].filter(
        (v): v is string => typeof v === 'string',
      );
      const own = mailboxes.find((m) =>
        callerKeys.some((k) => sameText(m.id, k) || sameText(m.userPrincipalName, k)),
      );
      if (route.user === undefined) {
        if (!own)
          throw new GraphError(
            404,
            'MailboxNotEnabledForRESTAPI',
            'The mailbox is either inactive, soft-deleted, or is hosted on-premise.',
          );
        mailbox = own;
      } else {
        mailbox = findMailbox(route.user);
        if (!mailbox)
          throw new GraphError(404, 'ErrorInvalidUser', `The requested user '${route.user}' is invalid.`);
        const delegate = (mailbox.fullAccess ?? []).some((d) => callerKeys.some((k) => sameText(k, d)));
        if (mailbox !== own && !(delegate && SHARED_SCOPES.some((s) => scopes.includes(s))))
          throw new GraphError(403, 'ErrorAccessDenied', ACCESS_DENIED);
      }
    } else {
      if (route.user === undefined)
        throw new GraphError(
          400,
          'BadRequest',
          '/me request is only valid with delegated authentication flow.',
        );
      if (!APP_ROLES.some((r) => roles.includes(r)))
        throw new GraphError(403, 'ErrorAccessDenied', ACCESS_DENIED);
      mailbox = findMailbox(route.user);
      if (!mailbox)
        throw new GraphError(404, 'ErrorInvalidUser', `The requested user '${route.user}' is invalid.`);
    }
    if (mailbox.hasMailbox === false)
      throw new GraphError(
        404,
        'MailboxNotEnabledForRESTAPI',
        'The mailbox is either inactive, soft-deleted, or is hosted on-premise.',
      );

    const inboxId = folderId(mailbox.id, 'inbox');
    if (route.folder.toLowerCase() !== 'inbox' && route.folder !== inboxId) {
      if (WELL_KNOWN_FOLDERS.has(route.folder.toLowerCase()) || /^A[AQ]Mk/.test(route.folder))
        throw new GraphError(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
      throw new GraphError(400, 'ErrorInvalidIdMalformed', 'Id is malformed.');
    }
    const folder: Record<(typeof FOLDER_PROPERTIES)[number], unknown> = {
      id: inboxId,
      displayName: 'Inbox',
      parentFolderId: folderId(mailbox.id, 'msgfolderroot'),
      childFolderCount: 0,
      unreadItemCount: mailbox.inbox.unread,
      totalItemCount: mailbox.inbox.total,
      sizeInBytes: mailbox.inbox.total * 8192,
      isHidden: false,
    };
    // As Graph: /me resolves to the user's id; /users/{x} keeps the segment as given.
    const owner = encodeURIComponent(route.user ?? mailbox.id);
    const selected = route.select ? ['id', ...route.select.filter((p) => p !== 'id')] : FOLDER_PROPERTIES;
    const selectPart = route.select ? `(${route.select.join(',')})` : '';
    const body: Record<string, unknown> = {
      '@odata.context': `https://graph.microsoft.com/${route.version}/$metadata#users('${owner}')/mailFolders${selectPart}/$entity`,
    };
    for (const p of selected) body[p] = folder[p as keyof typeof folder];
    return { status: 200, body };
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    const requestId = randomUUID();
    const clientRequestId = req.headers['client-request-id'];
    const url = new URL(req.url ?? '/', 'https://graph.microsoft.com');
    const send = (status: number, body: object, headers: Record<string, string>) => {
      requests.push({ path: url.pathname, status });
      res.writeHead(status, {
        'cache-control': 'private',
        'request-id': requestId,
        'client-request-id': typeof clientRequestId === 'string' ? clientRequestId : requestId,
        'x-ms-ags-diagnostic': JSON.stringify({
          ServerInfo: {
            DataCenter: 'Sandbox',
            Slice: 'E',
            Ring: '5',
            ScaleUnit: '000',
            RoleInstance: 'SANDBOX',
          },
        }),
        'strict-transport-security': 'max-age=31536000',
        ...headers,
      });
      res.end(JSON.stringify(body));
    };
    answer(req, url).then(
      ({ status, body }) => {
        send(status, body, {
          'content-type':
            'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8',
        });
      },
      (error: unknown) => {
        const e =
          error instanceof GraphError
            ? error
            : new GraphError(500, 'InternalServerError', 'An internal server error occurred.');
        if (!(error instanceof GraphError))
          console.error('Graph stand-in: unhandled error', error instanceof Error ? error.message : error);
        const innerError = {
          date: new Date().toISOString().slice(0, 19),
          'request-id': requestId,
          'client-request-id': typeof clientRequestId === 'string' ? clientRequestId : requestId,
        };
        send(
          e.status,
          { error: { code: e.code, message: e.message, innerError } },
          {
            'content-type': 'application/json',
            ...e.headers,
          },
        );
      },
    );
  }

  const server: Server = createServer(
    { cert: options.pki.serverCertPem, key: options.pki.serverKeyPem },
    handle,
  );
  const port = await listenOnLoopback(server, options.port);

  return {
    url: `https://127.0.0.1:${port}`,
    port,
    throttleNext(n, retryAfterSeconds = 1) {
      throttle = { remaining: n, retryAfterSeconds };
    },
    requests,
    close: () => closeServer(server),
  };
}
