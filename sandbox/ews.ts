/**
 * Exchange Web Services (EWS, SOAP 1.1) stand-in for the broker's EWS probe and the sandbox's
 * "Test connection": `POST /EWS/Exchange.asmx` on loopback HTTPS, answering GetFolder, FindFolder
 * and FindItem over a modelled mailbox (msgfolderroot with Inbox, Drafts, Sent Items, Deleted Items)
 * the way Exchange Online does. Tokens are checked as EXO does (sandbox/bearer.ts), then the caller,
 * impersonation, X-AnchorMailbox and Full Access decide whose mailbox is read. Tokens are never
 * logged, echoed or recorded.
 *
 * Where each answer comes from (V = verified against Microsoft material or captured EXO traffic,
 * C = chosen, consistent with the verified ones):
 * - 401 for a refused token: empty body, `WWW-Authenticate: Bearer client_id=..., trusted_issuers=...,
 *   token_types=..., authorization_uri=..., error="invalid_token"` and `x-ms-diagnostics:
 *   <code>;reason="...";error_category="..."` (V: EXO captures; Exchange's MSDiagnosticsHeader writes
 *   exactly this shape and numbers its categories 2000000 invalid_signature, 2000001 invalid_token,
 *   2000002 token_expired, 2000003 invalid_resource, 2000008 invalid_grant). Reasons are Exchange's
 *   own strings: "The token has an invalid signature.", "The token has expired.", "The audience claim
 *   value is invalid '<aud>'." (V; one 2017 EXO capture printed the claim name, 'aud', in place of the
 *   value, Microsoft's docs show the value). A token EXO cannot read gets 2000001 with Exchange's
 *   "Unable to read or process token" text, one not yet valid 2000001 "The token has invalid value
 *   '<nbf>' for the claim type 'nbf'." (C, from Exchange's message table).
 * - No bearer token at all: 401 with the same challenge but without `error=` and without
 *   x-ms-diagnostics (C: RFC 6750 §3.1, and Exchange adds error= only for a presented token).
 * - A valid token without `EWS.AccessAsUser.All` (delegated) or `full_access_as_app` (app-only): 403,
 *   empty body, the challenge plus `x-ms-diagnostics: 2000008;reason="The token contains not enough
 *   scope to make this call.";error_category="invalid_grant"` (V: EWSAuthorizationManager answers
 *   NotEnoughGrantPresented with 403 and no entity body).
 * - EWS access controls (EwsEnabled, EwsAllowedAppIDs, EwsApplicationAccessPolicy): 403, empty body,
 *   `X-EWS-Policy-Reason` with one of its two values, no x-ms-diagnostics (V: "Control access to EWS in
 *   Exchange", see sandbox/ews-access-policy.ts). Decided after authentication, from the token's app id,
 *   its user (or, app-only, X-AnchorMailbox) and the User-Agent.
 * - Successful answers carry `<h:ServerVersionInfo ... Version="V2018_01_08" xmlns:h=...>` in the SOAP
 *   header (V: captured EXO responses); SOAP faults carry no SOAP header (V: captured EXO faults).
 * - Throttling: HTTP 500 SOAP fault ErrorServerBusy with `<t:Value Name="BackOffMilliseconds">` in
 *   MessageXml (V: captured EXO faults). `http_429`: 429 with `Retry-After: <seconds>` and an empty
 *   body (C: what a front-end rate limiter sends; EWS itself throttles with ErrorServerBusy). Both are
 *   answered after authentication, as EWS budgets are per caller.
 * - App-only token without ExchangeImpersonation: HTTP 500 fault
 *   ErrorInvalidExchangeImpersonationHeaderData "ExchangeImpersonation SOAP header must be present for
 *   this type of OAuth token." (V). Impersonation not allowed: fault ErrorImpersonateUserDenied (V code;
 *   message C). Impersonated or X-AnchorMailbox address without a mailbox: fault
 *   ErrorNonExistentMailbox "The SMTP address has no mailbox associated with it." with
 *   `<t:Value Name="SmtpAddress">` (C for the fault form, V for code, text and MessageXml).
 * - Per folder: ResponseClass="Error" ErrorNonExistentMailbox (as above, V) or ErrorAccessDenied
 *   "Access is denied. Check credentials and try again." (V), HTTP 200.
 * - Malformed XML: fault ErrorSchemaValidation (V shape). Unknown or unmodelled operation: fault
 *   ErrorInvalidRequest "The request is invalid." (C). Invalid RequestServerVersion: fault
 *   ErrorInvalidServerVersion (C). Other paths 404, other methods 405 `Allow: POST` (C), a body over
 *   1 MiB 413, a non-XML content type 415 (C: WCF's answers).
 * Restrictions, sort orders and item bodies are not modelled; FindItem ignores a Restriction.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { BearerCheck, BearerFailure, BearerValidator } from './bearer';
import { closeServer, listenOnLoopback } from './listen';
import { ewsPolicyRefusal, OPEN_EWS_POLICY, type EwsAccessPolicy } from './ews-access-policy';

/** The part of @xmldom/xmldom's (W3C) DOM this file reads. */
interface XmlNode {
  readonly nodeType: number;
  readonly firstChild: XmlNode | null;
  readonly nextSibling: XmlNode | null;
}
interface XmlElement extends XmlNode {
  readonly namespaceURI: string | null;
  readonly localName: string;
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
}
type ParseErrorHandler = (message: unknown) => void;
interface XmlDom {
  DOMParser: new (options: {
    errorHandler: { warning: ParseErrorHandler; error: ParseErrorHandler; fatalError: ParseErrorHandler };
  }) => {
    parseFromString(source: string, mimeType: string): { documentElement: XmlElement | null } | undefined;
  };
}
/**
 * @xmldom/xmldom (a dependency of ews-javascript-api) is loaded untyped on purpose: its typings
 * reference lib "dom", which would retype XMLHttpRequest, Headers and fetch for the whole program.
 */
const { DOMParser } = createRequire(__filename)('@xmldom/xmldom') as XmlDom;

/** A mailbox the stand-in serves. Only the Inbox holds items. */
export interface EwsMailbox {
  smtp: string;
  displayName: string;
  inbox: { total: number; unread: number };
  /** delegates with Full Access (Add-MailboxPermission) */
  fullAccess?: string[];
}

/** What EWS puts in `ServerVersionInfo` (ews-javascript-api reads it into `service.ServerInfo`). */
export interface EwsServerVersion {
  major: number;
  minor: number;
  build: number;
  revision: number;
  version: string;
}

export interface EwsStandInOptions {
  pki: { serverCertPem: string; serverKeyPem: string };
  validator: BearerValidator;
  mailboxes: EwsMailbox[];
  /** Default 0 (ephemeral); always bound to 127.0.0.1. */
  port?: number;
  /** aud values accepted; default ['https://outlook.office365.com'] (also 'https://outlook.office.com' is NOT accepted by EWS) */
  audiences?: string[];
  /** app ids (appid claim) allowed to use impersonation (ApplicationImpersonation / RBAC for Applications); default: any app with role full_access_as_app */
  impersonationAppIds?: string[];
  /** Default an Exchange Online value: 15.20.8722.24, V2018_01_08. */
  serverVersion?: EwsServerVersion;
}

/** One request as received and answered. Headers are lower-cased; the token is never kept. */
export interface EwsRequestRecord {
  method: string;
  path: string;
  /** Request headers; `authorization` keeps only its scheme. */
  headers: Record<string, string>;
  /** The SOAP body's operation element (`GetFolder`...), '' when the body was not read. */
  operation: string;
  soapAction?: string;
  anchorMailbox?: string;
  impersonated?: string;
  /** `appid` of an authentic token. */
  appId?: string;
  status: number;
}

export interface EwsStandIn {
  /** e.g. https://127.0.0.1:PORT/EWS/Exchange.asmx */
  url: string;
  port: number;
  /**
   * Exchange Online's EWS access controls (Set-OrganizationConfig / Set-CASMailbox), merged into the
   * current ones; `undefined` restores the defaults (everything open). A refused request gets 403 with
   * X-EWS-Policy-Reason.
   */
  setAccessPolicy(policy?: Partial<EwsAccessPolicy>): void;
  /** The next `n` authenticated requests are throttled: an ErrorServerBusy fault (BackOffMilliseconds = retryAfterSeconds × 1000) or HTTP 429 with Retry-After. Default 30 s. */
  throttleNext(n: number, kind: 'server_busy' | 'http_429', retryAfterSeconds?: number): void;
  /** every request received, for assertions; never the token itself */
  requests: EwsRequestRecord[];
  close(): Promise<void>;
}

const NS = {
  soap: 'http://schemas.xmlsoap.org/soap/envelope/',
  t: 'http://schemas.microsoft.com/exchange/services/2006/types',
  m: 'http://schemas.microsoft.com/exchange/services/2006/messages',
  e: 'http://schemas.microsoft.com/exchange/services/2006/errors',
} as const;
const XSD_XSI =
  'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';
const EWS_PATH = '/ews/exchange.asmx';
const BODY_LIMIT = 1024 * 1024;
const MAX_PAGE = 1000;
const DEFAULT_VERSION: EwsServerVersion = {
  major: 15,
  minor: 20,
  build: 8722,
  revision: 24,
  version: 'V2018_01_08',
};
/** Exchange Online's bearer challenge (its service principal, the ACS trusted issuer, both token profiles). */
const CHALLENGE =
  'Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="00000001-0000-0000-c000-000000000000@*", token_types="app_asserted_user_v1 service_asserted_app_v1", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"';
const SERVER_VERSIONS = new Set(
  'Exchange2007 Exchange2007_SP1 Exchange2010 Exchange2010_SP1 Exchange2010_SP2 Exchange2013 Exchange2013_SP1 Exchange2015 Exchange2016 V2015_10_05 V2016_01_06 V2016_04_13 V2016_07_13 V2016_10_10 V2017_01_07 V2017_04_14 V2017_07_11 V2017_10_09 V2018_01_08'.split(
    ' ',
  ),
);
const NO_MAILBOX = 'The SMTP address has no mailbox associated with it.';
const ACCESS_DENIED = 'Access is denied. Check credentials and try again.';
const SERVER_BUSY = 'The server cannot service this request right now. Try again later.';

interface FolderDef {
  key: string;
  name: string;
  folderClass?: string;
  parent?: string;
}
/** The folders modelled in every mailbox, keyed by their DistinguishedFolderId. */
const FOLDERS: FolderDef[] = [
  { key: 'root', name: '' },
  { key: 'msgfolderroot', name: 'Top of Information Store', parent: 'root' },
  { key: 'inbox', name: 'Inbox', folderClass: 'IPF.Note', parent: 'msgfolderroot' },
  { key: 'drafts', name: 'Drafts', folderClass: 'IPF.Note', parent: 'msgfolderroot' },
  { key: 'sentitems', name: 'Sent Items', folderClass: 'IPF.Note', parent: 'msgfolderroot' },
  { key: 'deleteditems', name: 'Deleted Items', folderClass: 'IPF.Note', parent: 'msgfolderroot' },
];

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** A SOAP fault (HTTP 500): the request as a whole failed. */
class EwsFault extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly values: Record<string, string> = {},
    readonly faultString = message,
  ) {
    super(message);
  }
}

/** A ResponseClass="Error" message: one folder of the request failed. */
class MessageError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly values: Record<string, string> = {},
  ) {
    super(message);
  }
}

const XML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};
const esc = (value: string): string => value.replace(/[&<>"']/g, (c) => XML_ESCAPES[c] ?? c);
const same = (a: string | undefined, b: string | undefined): boolean =>
  a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase();
const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' ? value : undefined;
/** The signed-in user of a delegated token. */
const userOf = (claims: Record<string, unknown>): string | undefined =>
  str(claims.upn) ?? str(claims.preferred_username) ?? str(claims.unique_name);
/** x-ms-diagnostics is a quoted-string list: no quotes or line breaks inside a value. */
const headerSafe = (value: string): string => value.replace(/["\r\n]/g, '');

function values(map: Record<string, string>, prefix: 'm' | 't', declare = false): string {
  const entries = Object.entries(map);
  if (entries.length === 0) return '';
  const xmlns = declare ? ` xmlns:t="${NS.t}"` : '';
  const inner = entries.map(([k, v]) => `<t:Value Name="${esc(k)}">${esc(v)}</t:Value>`).join('');
  return `<${prefix}:MessageXml${xmlns}>${inner}</${prefix}:MessageXml>`;
}

function faultAnswer(fault: EwsFault): Answer {
  const e = `xmlns:e="${NS.e}"`;
  const body =
    `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="${NS.soap}"><s:Body><s:Fault>` +
    `<faultcode xmlns:a="${NS.t}">a:${fault.code}</faultcode>` +
    `<faultstring xml:lang="en-US">${esc(fault.faultString)}</faultstring><detail>` +
    `<e:ResponseCode ${e}>${fault.code}</e:ResponseCode><e:Message ${e}>${esc(fault.message)}</e:Message>` +
    `${values(fault.values, 't', true)}</detail></s:Fault></s:Body></s:Envelope>`;
  return { status: 500, headers: { 'content-type': 'text/xml; charset=utf-8' }, body };
}

/** What EXO answers for a token it refuses (see the file comment for the sources). */
function refusal(check: Extract<BearerCheck, { ok: false }>): Answer {
  const aud = str(check.claims?.aud) ?? '';
  const nbf = typeof check.claims?.nbf === 'number' ? String(check.claims.nbf) : '';
  const table: Record<BearerFailure, [number, number, string, string]> = {
    malformed: [
      401,
      2000001,
      'invalid_token',
      "Unable to read or process token, additional details: 'The token is not a well-formed JWS.'.",
    ],
    bad_signature: [401, 2000000, 'invalid_signature', 'The token has an invalid signature.'],
    expired: [401, 2000002, 'token_expired', 'The token has expired.'],
    not_yet_valid: [
      401,
      2000001,
      'invalid_token',
      `The token has invalid value '${nbf}' for the claim type 'nbf'.`,
    ],
    audience: [401, 2000003, 'invalid_resource', `The audience claim value is invalid '${aud}'.`],
    scope: [403, 2000008, 'invalid_grant', 'The token contains not enough scope to make this call.'],
  };
  const [status, code, category, reason] = table[check.reason];
  return {
    status,
    headers: {
      'www-authenticate': `${CHALLENGE}, error="invalid_token"`,
      'x-ms-diagnostics': `${String(code)};reason="${headerSafe(reason)}";error_category="${category}"`,
    },
  };
}

// ---- request XML ---------------------------------------------------------------------------------

function elements(parent: XmlElement | undefined, ns?: string, name?: string): XmlElement[] {
  const found: XmlElement[] = [];
  for (let node = parent?.firstChild ?? null; node; node = node.nextSibling) {
    if (node.nodeType !== 1) continue;
    const element = node as XmlElement; // nodeType 1: ELEMENT_NODE
    if ((!ns || element.namespaceURI === ns) && (!name || element.localName === name)) found.push(element);
  }
  return found;
}
const child = (parent: XmlElement | undefined, ns: string, name: string): XmlElement | undefined =>
  elements(parent, ns, name)[0];
const text = (element: XmlElement | undefined): string => element?.textContent?.trim() ?? '';

function schemaFault(violation: string): EwsFault {
  return new EwsFault(
    'ErrorSchemaValidation',
    'The request failed schema validation.',
    { LineNumber: '0', LinePosition: '0', Violation: violation },
    `The request failed schema validation: ${violation}`,
  );
}

interface SoapRequest {
  operation: XmlElement;
  version: string | undefined;
  /** SMTP address (or UPN) from ExchangeImpersonation/ConnectingSID. */
  impersonation: string | undefined;
}

function parseEnvelope(xml: string): SoapRequest {
  const fail = (message: unknown): never => {
    throw schemaFault(String(message).replace(/\s+/g, ' ').trim());
  };
  const parser = new DOMParser({ errorHandler: { warning: () => undefined, error: fail, fatalError: fail } });
  const envelope = parser.parseFromString(xml, 'text/xml')?.documentElement;
  if (envelope?.namespaceURI !== NS.soap || envelope.localName !== 'Envelope')
    throw schemaFault(`The root element must be 'Envelope' from namespace '${NS.soap}'.`);
  const header = child(envelope, NS.soap, 'Header');
  const operation = elements(child(envelope, NS.soap, 'Body'))[0];
  if (!operation) throw schemaFault(`The element 'Body' in namespace '${NS.soap}' has incomplete content.`);
  const version = child(header, NS.t, 'RequestServerVersion')?.getAttribute('Version') ?? undefined;
  const impersonationHeader = child(header, NS.t, 'ExchangeImpersonation');
  let impersonation: string | undefined;
  if (impersonationHeader) {
    const sid = child(impersonationHeader, NS.t, 'ConnectingSID');
    const id = elements(sid, NS.t).find((e) =>
      ['SmtpAddress', 'PrimarySmtpAddress', 'PrincipalName'].includes(e.localName),
    );
    impersonation = text(id);
    if (!impersonation)
      throw new EwsFault(
        'ErrorInvalidExchangeImpersonationHeaderData',
        'The ExchangeImpersonation SOAP header must contain a ConnectingSID with an SMTP address or a principal name.',
      );
  }
  return { operation, version, impersonation };
}

interface Shape {
  base: string;
  extra: Set<string>;
}

function parseShape(element: XmlElement | undefined): Shape {
  const extra = elements(child(element, NS.t, 'AdditionalProperties'), NS.t, 'FieldURI').map(
    (e) => e.getAttribute('FieldURI') ?? '',
  );
  return { base: text(child(element, NS.t, 'BaseShape')) || 'Default', extra: new Set(extra) };
}

interface Page {
  start: number;
  end: number;
  /** IndexedPagingOffset of the answer. */
  next: number;
  last: boolean;
}

/** IndexedPage{Item,Folder}View paging: Offset from the Beginning or the End of the view. */
function paginate(total: number, view: XmlElement | undefined): Page {
  const int = (name: string, fallback: number) => {
    const value = Number.parseInt(view?.getAttribute(name) ?? '', 10);
    return Number.isFinite(value) && value >= 0 ? value : fallback;
  };
  const max = Math.min(int('MaxEntriesReturned', MAX_PAGE), MAX_PAGE);
  const offset = Math.min(int('Offset', 0), total);
  if (view?.getAttribute('BasePoint') === 'End') {
    const end = total - offset;
    const start = Math.max(0, end - max);
    return { start, end, next: offset + (end - start), last: start === 0 };
  }
  const end = Math.min(total, offset + max);
  return { start: offset, end, next: end, last: end >= total };
}

// ---- response XML --------------------------------------------------------------------------------

/** Opaque Exchange-looking ids; the stand-in maps them back through `ids`. */
const opaqueId = (seed: string): string =>
  `AAMkA${Buffer.from(seed).toString('base64').replace(/=+$/, '')}AAA=`;
const changeKey = (seed: string): string => `AQAAABYAAAA${Buffer.from(seed).toString('base64').slice(0, 12)}`;

function responseElement(operation: string, messages: string[]): string {
  return (
    `<m:${operation}Response xmlns:m="${NS.m}" ${XSD_XSI} xmlns:t="${NS.t}">` +
    `<m:ResponseMessages>${messages.join('')}</m:ResponseMessages></m:${operation}Response>`
  );
}

/** One ResponseMessage: Success with `build()`'s content, or Error from a MessageError it throws. */
function responseMessage(operation: string, build: () => string, errorTail = ''): string {
  const tag = `m:${operation}ResponseMessage`;
  try {
    return `<${tag} ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>${build()}</${tag}>`;
  } catch (error) {
    if (!(error instanceof MessageError)) throw error;
    return (
      `<${tag} ResponseClass="Error"><m:MessageText>${esc(error.message)}</m:MessageText>` +
      `<m:ResponseCode>${error.code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>` +
      `${values(error.values, 'm')}${errorTail}</${tag}>`
    );
  }
}

const FOLDER_DEFAULT = ['FolderId', 'DisplayName', 'TotalCount', 'ChildFolderCount', 'UnreadCount'];
const FOLDER_ALL = [
  'FolderId',
  'ParentFolderId',
  'FolderClass',
  'DisplayName',
  'TotalCount',
  'ChildFolderCount',
  'EffectiveRights',
  'UnreadCount',
];
const ITEM_DEFAULT = ['ItemId', 'Subject', 'DateTimeReceived', 'Size', 'HasAttachments', 'From', 'IsRead'];
const ITEM_ALL = [
  'ItemId',
  'ParentFolderId',
  'ItemClass',
  'Subject',
  'Sensitivity',
  'DateTimeReceived',
  'Size',
  'Importance',
  'IsDraft',
  'DateTimeSent',
  'DateTimeCreated',
  'DisplayTo',
  'HasAttachments',
  'From',
  'IsRead',
];
const EFFECTIVE_RIGHTS =
  '<t:EffectiveRights><t:CreateAssociated>true</t:CreateAssociated><t:CreateContents>true</t:CreateContents><t:CreateHierarchy>true</t:CreateHierarchy><t:Delete>true</t:Delete><t:Modify>true</t:Modify><t:Read>true</t:Read><t:ViewPrivateItems>true</t:ViewPrivateItems></t:EffectiveRights>';

/** The properties a shape asks for, in schema order (`all` is that order). */
function selected(shape: Shape, defaults: string[], all: string[], prefix: string): string[] {
  const base = shape.base === 'IdOnly' ? all.slice(0, 1) : shape.base === 'AllProperties' ? all : defaults;
  return all.filter((p) => base.includes(p) || shape.extra.has(`${prefix}:${p}`));
}

interface FolderRef {
  mailbox: EwsMailbox;
  folder: FolderDef;
}

const folderSeed = (ref: FolderRef, key = ref.folder.key) => `${ref.mailbox.smtp.toLowerCase()}/${key}`;

function folderCounts(ref: FolderRef): { total: number; unread: number; children: number } {
  const inbox = ref.folder.key === 'inbox';
  return {
    total: inbox ? ref.mailbox.inbox.total : 0,
    unread: inbox ? ref.mailbox.inbox.unread : 0,
    children: FOLDERS.filter((f) => f.parent === ref.folder.key).length,
  };
}

function folderXml(ref: FolderRef, shape: Shape): string {
  const counts = folderCounts(ref);
  const seed = folderSeed(ref);
  const parent = ref.folder.parent ?? ref.folder.key;
  const parts: Record<string, string> = {
    FolderId: `<t:FolderId Id="${opaqueId(seed)}" ChangeKey="${changeKey(seed)}"/>`,
    ParentFolderId: `<t:ParentFolderId Id="${opaqueId(folderSeed(ref, parent))}" ChangeKey="AQAAAA=="/>`,
    FolderClass: ref.folder.folderClass ? `<t:FolderClass>${ref.folder.folderClass}</t:FolderClass>` : '',
    DisplayName: `<t:DisplayName>${esc(ref.folder.name)}</t:DisplayName>`,
    TotalCount: `<t:TotalCount>${String(counts.total)}</t:TotalCount>`,
    ChildFolderCount: `<t:ChildFolderCount>${String(counts.children)}</t:ChildFolderCount>`,
    EffectiveRights: EFFECTIVE_RIGHTS,
    UnreadCount: `<t:UnreadCount>${String(counts.unread)}</t:UnreadCount>`,
  };
  const properties = selected(shape, FOLDER_DEFAULT, FOLDER_ALL, 'folder');
  return `<t:Folder>${properties.map((p) => parts[p] ?? '').join('')}</t:Folder>`;
}

/** Item `index` of a folder (0 is the newest); the newest `unread` items are unread. */
function itemXml(ref: FolderRef, index: number, shape: Shape, epoch: number): string {
  const seed = `${folderSeed(ref)}/item/${String(index)}`;
  const received = new Date(epoch - (index + 1) * 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const sender = `<t:Mailbox><t:Name>Sandbox Sender</t:Name><t:EmailAddress>sender@sandbox.test</t:EmailAddress><t:RoutingType>SMTP</t:RoutingType></t:Mailbox>`;
  const parts: Record<string, string> = {
    ItemId: `<t:ItemId Id="${opaqueId(seed)}" ChangeKey="${changeKey(seed)}"/>`,
    ParentFolderId: `<t:ParentFolderId Id="${opaqueId(folderSeed(ref))}" ChangeKey="AQAAAA=="/>`,
    ItemClass: '<t:ItemClass>IPM.Note</t:ItemClass>',
    Subject: `<t:Subject>Sandbox message ${String(index + 1)}</t:Subject>`,
    Sensitivity: '<t:Sensitivity>Normal</t:Sensitivity>',
    DateTimeReceived: `<t:DateTimeReceived>${received}</t:DateTimeReceived>`,
    Size: '<t:Size>8192</t:Size>',
    Importance: '<t:Importance>Normal</t:Importance>',
    IsDraft: '<t:IsDraft>false</t:IsDraft>',
    DateTimeSent: `<t:DateTimeSent>${received}</t:DateTimeSent>`,
    DateTimeCreated: `<t:DateTimeCreated>${received}</t:DateTimeCreated>`,
    DisplayTo: `<t:DisplayTo>${esc(ref.mailbox.displayName)}</t:DisplayTo>`,
    HasAttachments: '<t:HasAttachments>false</t:HasAttachments>',
    From: `<t:From>${sender}</t:From>`,
    IsRead: `<t:IsRead>${String(index >= ref.mailbox.inbox.unread)}</t:IsRead>`,
  };
  const properties = selected(shape, ITEM_DEFAULT, ITEM_ALL, 'item');
  return `<t:Message>${properties.map((p) => parts[p] ?? '').join('')}</t:Message>`;
}

// ---- the server ----------------------------------------------------------------------------------

interface Caller {
  appId: string;
  /** The mailbox whose rights apply: the signed-in user, or the impersonated one. */
  principal: string;
}

/** Everything that answers a request, over the stand-in's mutable state. */
class Exchange {
  accessPolicy: EwsAccessPolicy = OPEN_EWS_POLICY;
  throttle: { remaining: number; kind: 'server_busy' | 'http_429'; seconds: number } = {
    remaining: 0,
    kind: 'server_busy',
    seconds: 30,
  };
  private readonly ids = new Map<string, FolderRef>();
  private readonly epoch = Math.floor(Date.now() / 3_600_000) * 3_600_000;
  private readonly version: EwsServerVersion;

  constructor(private readonly options: EwsStandInOptions) {
    this.version = options.serverVersion ?? DEFAULT_VERSION;
    for (const mailbox of options.mailboxes)
      for (const folder of FOLDERS)
        this.ids.set(opaqueId(folderSeed({ mailbox, folder })), { mailbox, folder });
  }

  mailbox(smtp: string | undefined): EwsMailbox | undefined {
    return this.options.mailboxes.find((m) => same(m.smtp, smtp));
  }

  /** The SOAP envelope of a successful answer, with EXO's ServerVersionInfo header. */
  envelope(body: string): Answer {
    const v = this.version;
    const info =
      `<h:ServerVersionInfo MajorVersion="${String(v.major)}" MinorVersion="${String(v.minor)}" ` +
      `MajorBuildNumber="${String(v.build)}" MinorBuildNumber="${String(v.revision)}" Version="${esc(v.version)}" ` +
      `xmlns:h="${NS.t}" ${XSD_XSI}/>`;
    return {
      status: 200,
      headers: { 'content-type': 'text/xml; charset=utf-8' },
      body: `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="${NS.soap}"><s:Header>${info}</s:Header><s:Body>${body}</s:Body></s:Envelope>`,
    };
  }

  /** Authentication first, as EXO's front end does: 401/403 answers, or the token's claims. */
  async authenticate(
    req: IncomingMessage,
  ): Promise<{ refused: Answer } | { claims: Record<string, unknown> }> {
    const authorization = req.headers.authorization;
    if (!authorization || !/^bearer\s/i.test(authorization.trim()))
      return { refused: { status: 401, headers: { 'www-authenticate': CHALLENGE } } };
    const check = await this.options.validator.check(authorization, {
      audiences: this.options.audiences ?? ['https://outlook.office365.com'],
      scopes: ['EWS.AccessAsUser.All'],
      roles: ['full_access_as_app'],
    });
    return check.ok ? { claims: check.claims } : { refused: refusal(check) };
  }

  /** A throttling answer when one is queued (see EwsStandIn.throttleNext). */
  throttled(): Answer | undefined {
    if (this.throttle.remaining <= 0) return undefined;
    this.throttle.remaining--;
    const seconds = this.throttle.seconds;
    if (this.throttle.kind === 'http_429')
      return { status: 429, headers: { 'retry-after': String(seconds) } };
    return faultAnswer(
      new EwsFault('ErrorServerBusy', SERVER_BUSY, { BackOffMilliseconds: String(seconds * 1000) }),
    );
  }

  /** Who is asking and whose rights apply: token kind, ExchangeImpersonation and X-AnchorMailbox. */
  caller(claims: Record<string, unknown>, request: SoapRequest, anchor: string | undefined): Caller {
    const appId = str(claims.appid) ?? str(claims.azp) ?? '';
    const user = typeof claims.scp === 'string' ? userOf(claims) : undefined;
    const nonExistent = (smtp: string) =>
      new EwsFault('ErrorNonExistentMailbox', NO_MAILBOX, { SmtpAddress: smtp });
    let principal: string;
    if (request.impersonation === undefined) {
      if (user === undefined)
        throw new EwsFault(
          'ErrorInvalidExchangeImpersonationHeaderData',
          'ExchangeImpersonation SOAP header must be present for this type of OAuth token.',
        );
      principal = user;
    } else {
      if (!this.mailbox(request.impersonation)) throw nonExistent(request.impersonation);
      const roles = Array.isArray(claims.roles) ? claims.roles.map(String) : [];
      const allowList = this.options.impersonationAppIds;
      const allowed =
        user === undefined &&
        (allowList ? allowList.some((id) => same(id, appId)) : roles.includes('full_access_as_app'));
      if (!allowed)
        throw new EwsFault(
          'ErrorImpersonateUserDenied',
          'The account does not have permission to impersonate the requested user.',
        );
      principal = request.impersonation;
    }
    const anchored = anchor ?? principal;
    if (!this.mailbox(anchored)) throw nonExistent(anchored);
    return { appId, principal };
  }

  /** A DistinguishedFolderId (optionally with a Mailbox) or FolderId, checked against the caller's rights. */
  folder(element: XmlElement, caller: Caller): FolderRef {
    let ref: FolderRef | undefined;
    let smtp: string;
    if (element.localName === 'FolderId') {
      ref = this.ids.get(element.getAttribute('Id') ?? '');
      if (!ref) throw new MessageError('ErrorInvalidIdMalformed', 'Id is malformed.');
      smtp = ref.mailbox.smtp;
    } else {
      smtp = text(child(child(element, NS.t, 'Mailbox'), NS.t, 'EmailAddress')) || caller.principal;
    }
    const mailbox = this.mailbox(smtp);
    if (!mailbox) throw new MessageError('ErrorNonExistentMailbox', NO_MAILBOX, { SmtpAddress: smtp });
    const delegate = (mailbox.fullAccess ?? []).some((d) => same(d, caller.principal));
    if (!same(mailbox.smtp, caller.principal) && !delegate)
      throw new MessageError('ErrorAccessDenied', ACCESS_DENIED);
    if (ref) return ref;
    const key = element.getAttribute('Id') ?? '';
    const folder = FOLDERS.find((f) => f.key === key);
    if (!folder)
      throw new MessageError('ErrorFolderNotFound', 'The specified folder could not be found in the store.');
    return { mailbox, folder };
  }

  /** The folder ids under `container` (FolderIds / ParentFolderIds); none is a schema violation. */
  private targets(operation: XmlElement, container: string): XmlElement[] {
    const found = elements(child(operation, NS.m, container), NS.t).filter((e) =>
      ['DistinguishedFolderId', 'FolderId'].includes(e.localName),
    );
    if (found.length === 0)
      throw schemaFault(
        `The element '${operation.localName}' in namespace '${NS.m}' has incomplete content.`,
      );
    return found;
  }

  getFolder(operation: XmlElement, caller: Caller): string {
    const shape = parseShape(child(operation, NS.m, 'FolderShape'));
    const messages = this.targets(operation, 'FolderIds').map((id) =>
      responseMessage(
        'GetFolder',
        () => `<m:Folders>${folderXml(this.folder(id, caller), shape)}</m:Folders>`,
        '<m:Folders/>',
      ),
    );
    return responseElement('GetFolder', messages);
  }

  findFolder(operation: XmlElement, caller: Caller): string {
    const shape = parseShape(child(operation, NS.m, 'FolderShape'));
    const view = child(operation, NS.m, 'IndexedPageFolderView');
    const messages = this.targets(operation, 'ParentFolderIds').map((id) =>
      responseMessage('FindFolder', () => {
        const parent = this.folder(id, caller);
        const children = FOLDERS.filter((f) => f.parent === parent.folder.key);
        const page = paginate(children.length, view);
        const folders = children
          .slice(page.start, page.end)
          .map((folder) => folderXml({ mailbox: parent.mailbox, folder }, shape));
        return (
          `<m:RootFolder IndexedPagingOffset="${String(page.next)}" TotalItemsInView="${String(children.length)}" ` +
          `IncludesLastItemInRange="${String(page.last)}"><t:Folders>${folders.join('')}</t:Folders></m:RootFolder>`
        );
      }),
    );
    return responseElement('FindFolder', messages);
  }

  findItem(operation: XmlElement, caller: Caller): string {
    const shape = parseShape(child(operation, NS.m, 'ItemShape'));
    const view = child(operation, NS.m, 'IndexedPageItemView');
    // Soft-deleted and associated (FAI) items are not modelled: those views are empty.
    const shallow = (operation.getAttribute('Traversal') ?? 'Shallow') === 'Shallow';
    const messages = this.targets(operation, 'ParentFolderIds').map((id) =>
      responseMessage('FindItem', () => {
        const ref = this.folder(id, caller);
        const total = shallow ? folderCounts(ref).total : 0;
        const page = paginate(total, view);
        const items: string[] = [];
        for (let i = page.start; i < page.end; i++) items.push(itemXml(ref, i, shape, this.epoch));
        return (
          `<m:RootFolder IndexedPagingOffset="${String(page.next)}" TotalItemsInView="${String(total)}" ` +
          `IncludesLastItemInRange="${String(page.last)}"><t:Items>${items.join('')}</t:Items></m:RootFolder>`
        );
      }),
    );
    return responseElement('FindItem', messages);
  }

  /** Runs the operation of an authenticated, parsed request. */
  operate(op: XmlElement, caller: Caller): Answer {
    if (op.namespaceURI === NS.m && op.localName === 'GetFolder')
      return this.envelope(this.getFolder(op, caller));
    if (op.namespaceURI === NS.m && op.localName === 'FindFolder')
      return this.envelope(this.findFolder(op, caller));
    if (op.namespaceURI === NS.m && op.localName === 'FindItem')
      return this.envelope(this.findItem(op, caller));
    throw new EwsFault('ErrorInvalidRequest', 'The request is invalid.');
  }
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > BODY_LIMIT) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function headerRecord(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  // The scheme says how the caller authenticated; the credential itself is never kept.
  if (headers.authorization !== undefined) headers.authorization = headers.authorization.split(/\s/)[0] ?? '';
  return headers;
}

function policyRefusal(reason: string): Answer {
  return { status: 403, headers: { 'x-ews-policy-reason': reason } };
}

/** The pipeline of one request: path, token, method, EwsAllowedAppIDs, throttling, SOAP. */
async function answer(exchange: Exchange, req: IncomingMessage, record: EwsRequestRecord): Promise<Answer> {
  if (record.path.toLowerCase() !== EWS_PATH) return { status: 404 };
  const authenticated = await exchange.authenticate(req);
  if ('refused' in authenticated) return authenticated.refused;
  const { claims } = authenticated;
  record.appId = str(claims.appid) ?? str(claims.azp);
  if (req.method !== 'POST') return { status: 405, headers: { allow: 'POST' } };
  // The access controls as the front end applies them: the app id, the User-Agent, and the EwsEnabled
  // of the organization and of the token's user (or, app-only, the anchor mailbox)...
  const facts = { appId: record.appId, userAgent: record.headers['user-agent'] };
  const refusedUpFront = ewsPolicyRefusal(exchange.accessPolicy, {
    ...facts,
    mailbox: typeof claims.scp === 'string' ? userOf(claims) : record.anchorMailbox,
  });
  if (refusedUpFront) return policyRefusal(refusedUpFront);
  const throttled = exchange.throttled();
  if (throttled) return throttled;
  const contentType = record.headers['content-type'] ?? '';
  if (!/^(text|application)\/(soap\+)?xml\b/i.test(contentType)) return { status: 415 };
  const xml = await readBody(req);
  if (xml === undefined) return { status: 413 };
  try {
    const request = parseEnvelope(xml);
    record.operation = request.operation.localName;
    record.impersonated = request.impersonation;
    if (request.version !== undefined && !SERVER_VERSIONS.has(request.version))
      throw new EwsFault('ErrorInvalidServerVersion', 'The specified server version is invalid.');
    const caller = exchange.caller(claims, request, record.anchorMailbox);
    // ...and the EwsEnabled of the mailbox acted on once ExchangeImpersonation names it.
    const refused = ewsPolicyRefusal(exchange.accessPolicy, { ...facts, mailbox: caller.principal });
    if (refused) return policyRefusal(refused);
    return exchange.operate(request.operation, caller);
  } catch (error) {
    if (error instanceof EwsFault) return faultAnswer(error);
    throw error;
  }
}

/** The request listener: records each request, answers it, and never lets the token out. */
function listener(exchange: Exchange, requests: EwsRequestRecord[]) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'https://outlook.office365.com');
    const headers = headerRecord(req);
    const anchor = headers['x-anchormailbox']?.replace(/^(smtp|upn):/i, '');
    const soapAction = headers.soapaction?.replace(/^"|"$/g, '');
    const record: EwsRequestRecord = {
      method: req.method ?? 'GET',
      path: url.pathname,
      headers,
      operation: '',
      ...(soapAction ? { soapAction } : {}),
      ...(anchor ? { anchorMailbox: anchor } : {}),
      status: 0,
    };
    const send = (a: Answer) => {
      req.resume(); // an unread body (early answers) is drained so the connection can be reused
      record.status = a.status;
      requests.push(record);
      const body = a.body ?? '';
      res.writeHead(a.status, {
        'cache-control': 'private',
        'request-id': randomUUID(),
        'x-calculatedbetarget': 'SANDBOX01MB0001.sandbox.prod.outlook.com',
        'x-backendhttpstatus': String(a.status),
        'content-length': String(Buffer.byteLength(body)),
        ...a.headers,
      });
      res.end(body);
    };
    answer(exchange, req, record).then(send, (error: unknown) => {
      // Never the request or its headers: they hold the token.
      console.error('EWS stand-in: unhandled error', error instanceof Error ? error.message : error);
      send(
        faultAnswer(
          new EwsFault(
            'ErrorInternalServerError',
            'An internal server error occurred. The operation failed.',
          ),
        ),
      );
    });
  };
}

/** Starts the EWS stand-in on 127.0.0.1 (see the file comment for what it answers, and why). */
export async function startEwsStandIn(options: EwsStandInOptions): Promise<EwsStandIn> {
  const exchange = new Exchange(options);
  const requests: EwsRequestRecord[] = [];

  const server: Server = createServer(
    { cert: options.pki.serverCertPem, key: options.pki.serverKeyPem },
    listener(exchange, requests),
  );
  const port = await listenOnLoopback(server, options.port);

  return {
    url: `https://127.0.0.1:${String(port)}/EWS/Exchange.asmx`,
    port,
    setAccessPolicy(policy) {
      exchange.accessPolicy = policy ? { ...exchange.accessPolicy, ...policy } : OPEN_EWS_POLICY;
    },
    throttleNext(n, kind, retryAfterSeconds = 30) {
      exchange.throttle = { remaining: n, kind, seconds: retryAfterSeconds };
    },
    requests,
    close: () => closeServer(server),
  };
}
