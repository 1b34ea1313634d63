/**
 * The EWS stand-in (sandbox/ews.ts) driven by the real ews-javascript-api with real tokens from the
 * Entra emulator: Inbox binding as the broker's probe does it, EXO's token refusals, mailbox errors,
 * impersonation, EwsAllowedAppIDs and throttling. Raw statuses and headers are checked with fetch,
 * because the library hides them.
 */
import {
  ConnectingIdType,
  EmailMessage,
  ExchangeService,
  ExchangeVersion,
  Folder,
  FolderId,
  FolderView,
  ImpersonatedUserId,
  ItemView,
  Mailbox,
  OAuthCredentials,
  ServiceError,
  ServiceResponseException,
  SoapFaultDetails,
  Uri,
  WellKnownFolderName,
} from 'ews-javascript-api';
import { createBearerValidator } from '../../../sandbox/bearer';
import { startEwsStandIn, type EwsStandIn } from '../../../sandbox/ews';
import { startEntraEmulator, type EntraEmulator } from '../../../sandbox/entra';
import { testPki } from '../../support/pki';

const SECRET = 'ews-stand-in-secret';
const ALICE = 'alice@contoso.test';
const BOB = 'bob@contoso.test';
const CAROL = 'carol@contoso.test';
const NOBODY = 'nobody@contoso.test';
const EWS_SCOPE = 'https://outlook.office365.com/EWS.AccessAsUser.All';
const CHALLENGE =
  'Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="00000001-0000-0000-c000-000000000000@*", token_types="app_asserted_user_v1 service_asserted_app_v1", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"';
const T = 'http://schemas.microsoft.com/exchange/services/2006/types';
const M = 'http://schemas.microsoft.com/exchange/services/2006/messages';
const GET_INBOX =
  '<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>';

let entra: EntraEmulator;
let standIn: EwsStandIn;
let clientId: string;
let daemonId: string;
let rogueId: string;
let rolelessId: string;
let clockOffset = 0;
const tokensSeen: string[] = [];

beforeAll(async () => {
  const pki = testPki();
  entra = await startEntraEmulator({ pki });
  for (const username of [ALICE, BOB, CAROL]) entra.addUser({ username, password: 'Pw-1' });
  const register = (roles: string[]) =>
    entra.registerApp({ clientSecret: SECRET, redirectUris: ['http://localhost/cb'], roles }).clientId;
  clientId = register([]);
  daemonId = register(['full_access_as_app']);
  rogueId = register(['full_access_as_app']);
  rolelessId = register([]);
  standIn = await startEwsStandIn({
    pki,
    validator: createBearerValidator({
      jwksUrl: `${entra.url}/common/discovery/v2.0/keys`,
      now: () => Date.now() + clockOffset,
    }),
    impersonationAppIds: [daemonId],
    mailboxes: [
      { smtp: ALICE, displayName: 'Alice', inbox: { total: 42, unread: 7 } },
      { smtp: BOB, displayName: 'Shared Support', inbox: { total: 3, unread: 1 }, fullAccess: [ALICE] },
      { smtp: CAROL, displayName: 'Carol', inbox: { total: 0, unread: 0 } },
    ],
  });
});

afterAll(async () => {
  // Whatever happened, no request record holds a token.
  const recorded = JSON.stringify(standIn.requests);
  for (const token of tokensSeen) expect(recorded).not.toContain(token.split('.')[2]);
  await standIn.close();
  await entra.close();
});

afterEach(() => {
  clockOffset = 0;
  standIn.setAccessPolicy();
  standIn.throttleNext(0, 'server_busy');
});

async function token(form: Record<string, string>): Promise<string> {
  const response = await fetch(`${entra.url}/${entra.tenants.primary.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_secret: SECRET, ...form }),
  });
  const body = (await response.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`token endpoint answered ${String(response.status)}`);
  tokensSeen.push(body.access_token);
  return body.access_token;
}

const delegated = (scopes: string[] = [EWS_SCOPE], username = ALICE, app = clientId) =>
  token({
    grant_type: 'refresh_token',
    client_id: app,
    refresh_token: entra.mintRefreshToken({ username, clientId: app, scopes: [...scopes, 'offline_access'] }),
  });

const appOnly = (app = daemonId) =>
  token({
    grant_type: 'client_credentials',
    client_id: app,
    scope: 'https://outlook.office365.com/.default',
  });

/** An ExchangeService as the broker's probe builds it, on the library's default XHR. */
function service(accessToken: string, options: { anchor?: string; impersonate?: string } = {}) {
  const ews = new ExchangeService(ExchangeVersion.Exchange2016);
  ews.Url = new Uri(standIn.url);
  ews.Credentials = new OAuthCredentials(accessToken);
  if (options.anchor) ews.HttpHeaders.Add('X-AnchorMailbox', options.anchor);
  if (options.impersonate)
    ews.ImpersonatedUserId = new ImpersonatedUserId(ConnectingIdType.SmtpAddress, options.impersonate);
  return ews;
}

const inboxOf = (smtp: string) => new FolderId(WellKnownFolderName.Inbox, new Mailbox(smtp));

/** What a rejected promise of the library rejected with (it rejects with non-Error objects). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: unknown) => error,
  );
}

async function fault(promise: Promise<unknown>): Promise<SoapFaultDetails> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(SoapFaultDetails);
  return error as SoapFaultDetails;
}

function envelope(body = GET_INBOX, header = '<t:RequestServerVersion Version="Exchange2016"/>'): string {
  return `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="${M}" xmlns:t="${T}"><soap:Header>${header}</soap:Header><soap:Body>${body}</soap:Body></soap:Envelope>`;
}

async function post(accessToken: string | undefined, body = envelope(), init: RequestInit = {}) {
  const headers = new Headers(init.headers);
  if (!headers.has('content-type')) headers.set('content-type', 'text/xml; charset=utf-8');
  if (accessToken !== undefined) headers.set('authorization', `Bearer ${accessToken}`);
  const response = await fetch(standIn.url, { method: 'POST', body, ...init, headers });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

describe('EWS stand-in', () => {
  it("binds the signed-in user's Inbox and reports Exchange Online's version", async () => {
    const ews = service(await delegated(), { anchor: ALICE });
    const inbox = await Folder.Bind(ews, WellKnownFolderName.Inbox);
    expect([inbox.DisplayName, inbox.TotalCount, inbox.UnreadCount, inbox.ChildFolderCount]).toEqual([
      'Inbox',
      42,
      7,
      0,
    ]);
    expect(ews.ServerInfo.ToString()).toBe('15.20.8722.24');
    expect(ews.ServerInfo.VersionString).toBe('V2018_01_08');
    expect(standIn.requests.at(-1)).toMatchObject({
      method: 'POST',
      path: '/EWS/Exchange.asmx',
      operation: 'GetFolder',
      anchorMailbox: ALICE,
      appId: clientId,
      status: 200,
      headers: { authorization: 'Bearer', 'x-anchormailbox': ALICE },
    });
  });

  it('pages the Inbox with FindItem and lists folders with FindFolder', async () => {
    const ews = service(await delegated());
    const first = await ews.FindItems(WellKnownFolderName.Inbox, new ItemView(10));
    expect([first.TotalCount, first.Items.length, first.MoreAvailable, first.NextPageOffset]).toEqual([
      42,
      10,
      true,
      10,
    ]);
    const read = first.Items.map((item) => (item instanceof EmailMessage ? item.IsRead : undefined));
    expect(read).toEqual([false, false, false, false, false, false, false, true, true, true]);
    const last = await ews.FindItems(WellKnownFolderName.Inbox, new ItemView(10, 40));
    expect([last.Items.length, last.MoreAvailable]).toEqual([2, false]);
    expect(last.Items[1]?.Subject).toBe('Sandbox message 42');

    const folders = await ews.FindFolders(WellKnownFolderName.MsgFolderRoot, new FolderView(10));
    expect(folders.TotalCount).toBe(4);
    expect(folders.Folders.map((f) => f.DisplayName)).toEqual([
      'Inbox',
      'Drafts',
      'Sent Items',
      'Deleted Items',
    ]);
  });

  it('reads a shared mailbox with Full Access and answers ErrorAccessDenied without', async () => {
    const accessToken = await delegated();
    const shared = await Folder.Bind(service(accessToken, { anchor: BOB }), inboxOf(BOB));
    expect([shared.TotalCount, shared.UnreadCount]).toEqual([3, 1]);

    const denied = await rejection(Folder.Bind(service(accessToken, { anchor: CAROL }), inboxOf(CAROL)));
    expect(denied).toBeInstanceOf(ServiceResponseException);
    const e = denied as ServiceResponseException;
    expect([e.ErrorCode, e.Message]).toEqual([
      ServiceError.ErrorAccessDenied,
      'Access is denied. Check credentials and try again.',
    ]);

    // As EWS writes it: HTTP 200, ResponseClass="Error" in the GetFolderResponseMessage.
    const body = GET_INBOX.replace(
      'Id="inbox"/>',
      `Id="inbox"><t:Mailbox><t:EmailAddress>${CAROL}</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>`,
    );
    const raw = await post(accessToken, envelope(body));
    expect(raw.status).toBe(200);
    expect(raw.text).toContain(
      '<m:GetFolderResponseMessage ResponseClass="Error"><m:MessageText>Access is denied. Check credentials and try again.</m:MessageText><m:ResponseCode>ErrorAccessDenied</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:Folders/>',
    );
    expect(raw.text).toContain('<h:ServerVersionInfo MajorVersion="15" MinorVersion="20"');
  });

  it('answers ErrorNonExistentMailbox per folder, and as a fault for an unknown anchor', async () => {
    const accessToken = await delegated();
    const missing = (await rejection(
      Folder.Bind(service(accessToken), inboxOf(NOBODY)),
    )) as ServiceResponseException;
    expect(missing).toBeInstanceOf(ServiceResponseException);
    expect([missing.ErrorCode, missing.Message]).toEqual([
      ServiceError.ErrorNonExistentMailbox,
      'The SMTP address has no mailbox associated with it.',
    ]);
    expect(missing.Response.ErrorDetails.get('SmtpAddress')).toBe(NOBODY);

    const anchored = await fault(Folder.Bind(service(accessToken, { anchor: NOBODY }), inboxOf(NOBODY)));
    expect([anchored.HttpStatusCode, anchored.ResponseCode]).toEqual([
      500,
      ServiceError.ErrorNonExistentMailbox,
    ]);
  });

  it('requires ExchangeImpersonation for app-only tokens and lets only allowed apps impersonate', async () => {
    const daemon = await appOnly();
    const bare = await fault(Folder.Bind(service(daemon), WellKnownFolderName.Inbox));
    expect([bare.HttpStatusCode, bare.ResponseCode, bare.Message]).toEqual([
      500,
      ServiceError.ErrorInvalidExchangeImpersonationHeaderData,
      'ExchangeImpersonation SOAP header must be present for this type of OAuth token.',
    ]);

    const inbox = await Folder.Bind(service(daemon, { anchor: BOB, impersonate: BOB }), inboxOf(BOB));
    expect(inbox.TotalCount).toBe(3);
    expect(standIn.requests.at(-1)).toMatchObject({ impersonated: BOB, anchorMailbox: BOB, status: 200 });

    const unknown = await fault(
      Folder.Bind(service(daemon, { impersonate: NOBODY }), WellKnownFolderName.Inbox),
    );
    expect(unknown.ResponseCode).toBe(ServiceError.ErrorNonExistentMailbox);
    const rogue = await fault(
      Folder.Bind(service(await appOnly(rogueId), { impersonate: ALICE }), WellKnownFolderName.Inbox),
    );
    expect([rogue.HttpStatusCode, rogue.ResponseCode]).toEqual([
      500,
      ServiceError.ErrorImpersonateUserDenied,
    ]);
    const raw = await post(
      await delegated(),
      envelope(
        GET_INBOX,
        `<t:ExchangeImpersonation><t:ConnectingSID><t:SmtpAddress>${BOB}</t:SmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>`,
      ),
    );
    expect(raw.status).toBe(500);
    expect(raw.text).toContain(
      '<faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorImpersonateUserDenied</faultcode>',
    );
    expect(raw.text).toContain(
      '<e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorImpersonateUserDenied</e:ResponseCode>',
    );
  });

  it('refuses tokens with EXO status codes, challenge and x-ms-diagnostics', async () => {
    const none = await post(undefined);
    expect([
      none.status,
      none.text,
      none.headers.get('www-authenticate'),
      none.headers.get('x-ms-diagnostics'),
    ]).toEqual([401, '', CHALLENGE, null]);

    const refused = async (accessToken: string, status: number, diagnostics: string) => {
      const answer = await post(accessToken);
      expect([answer.status, answer.text]).toEqual([status, '']);
      expect(answer.headers.get('www-authenticate')).toBe(`${CHALLENGE}, error="invalid_token"`);
      expect(answer.headers.get('x-ms-diagnostics')).toBe(diagnostics);
    };
    const valid = await delegated();
    await refused(
      `${valid.slice(0, -8)}AAAAAAAA`,
      401,
      '2000000;reason="The token has an invalid signature.";error_category="invalid_signature"',
    );
    await refused(
      await delegated(['https://graph.microsoft.com/Mail.Read']),
      401,
      `2000003;reason="The audience claim value is invalid 'https://graph.microsoft.com'.";error_category="invalid_resource"`,
    );
    const scope =
      '2000008;reason="The token contains not enough scope to make this call.";error_category="invalid_grant"';
    await refused(await delegated(['https://outlook.office365.com/Mail.Read']), 403, scope);
    await refused(await appOnly(rolelessId), 403, scope);
    clockOffset = 2 * 60 * 60 * 1000;
    await refused(valid, 401, '2000002;reason="The token has expired.";error_category="token_expired"');

    // The library: a SoapFaultDetails with the status, x-ms-diagnostics as its message.
    const e = await fault(Folder.Bind(service(valid), WellKnownFolderName.Inbox));
    expect([e.HttpStatusCode, e.Message, e.Exception.constructor.name]).toEqual([
      401,
      '2000002;reason="The token has expired.";error_category="token_expired"',
      'ServiceRequestUnauthorizedException',
    ]);
  });

  it('blocks apps outside EwsAllowedAppIDs with 403 and X-EWS-Policy-Reason "blocked by policy"', async () => {
    standIn.setAccessPolicy({ organizationEwsEnabled: true, allowedAppIds: [daemonId] });
    const blocked = await post(await delegated());
    expect([
      blocked.status,
      blocked.text,
      blocked.headers.get('x-ms-diagnostics'),
      blocked.headers.get('x-ews-policy-reason'),
    ]).toEqual([403, '', null, 'EWS is blocked by policy for this user or tenant']);
    const e = await fault(Folder.Bind(service(await delegated()), WellKnownFolderName.Inbox));
    expect([e.HttpStatusCode, e.Message]).toEqual([403, '']);

    const allowed = await Folder.Bind(
      service(await appOnly(), { impersonate: ALICE }),
      WellKnownFolderName.Inbox,
    );
    expect(allowed.TotalCount).toBe(42);
    expect(standIn.requests.at(-1)).toMatchObject({ appId: daemonId, status: 200 });
  });

  it('answers "EWS is disabled" for EwsEnabled off (organization or mailbox), before any allow list', async () => {
    standIn.setAccessPolicy({ organizationEwsEnabled: false, allowedAppIds: [] });
    const disabled = await post(await delegated());
    expect([disabled.status, disabled.headers.get('x-ews-policy-reason')]).toEqual([
      403,
      'EWS is disabled for this user or tenant',
    ]);
    // A mailbox's own $false; an app-only call is judged by the mailbox it anchors on.
    standIn.setAccessPolicy({
      organizationEwsEnabled: null,
      allowedAppIds: null,
      mailboxEwsEnabled: { [ALICE]: false },
    });
    expect((await post(await delegated())).headers.get('x-ews-policy-reason')).toBe(
      'EWS is disabled for this user or tenant',
    );
    const e = await fault(
      Folder.Bind(service(await appOnly(), { impersonate: ALICE }), WellKnownFolderName.Inbox),
    );
    expect(e.HttpStatusCode).toBe(403);
    expect(standIn.requests.at(-1)).toMatchObject({ status: 403 });
  });

  it('applies EwsApplicationAccessPolicy to the User-Agent (allow list and block list, with wildcards)', async () => {
    const token = await delegated();
    standIn.setAccessPolicy({ applicationAccessPolicy: 'EnforceAllowList', allowList: ['OWA/*'] });
    expect((await post(token, envelope(), { headers: { 'user-agent': 'OWA/15.20' } })).status).toBe(200);
    const refused = await post(token, envelope(), { headers: { 'user-agent': 'curl/8.0' } });
    expect([refused.status, refused.headers.get('x-ews-policy-reason')]).toEqual([
      403,
      'EWS is blocked by policy for this user or tenant',
    ]);
    standIn.setAccessPolicy({ applicationAccessPolicy: 'EnforceBlockList', blockList: ['curl/*'] });
    expect((await post(token, envelope(), { headers: { 'user-agent': 'curl/8.0' } })).status).toBe(403);
    expect((await post(token, envelope(), { headers: { 'user-agent': 'OWA/15.20' } })).status).toBe(200);
  });

  it('throttles with an ErrorServerBusy fault or HTTP 429', async () => {
    const accessToken = await delegated();
    standIn.throttleNext(1, 'server_busy', 5);
    const busy = await fault(Folder.Bind(service(accessToken), WellKnownFolderName.Inbox));
    expect([busy.HttpStatusCode, busy.ResponseCode, busy.ErrorDetails.get('BackOffMilliseconds')]).toEqual([
      500,
      ServiceError.ErrorServerBusy,
      '5000',
    ]);
    standIn.throttleNext(1, 'server_busy', 2);
    expect((await post(accessToken)).text).toContain(
      '<t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:Value Name="BackOffMilliseconds">2000</t:Value></t:MessageXml>',
    );

    standIn.throttleNext(2, 'http_429', 7);
    const limited = await post(accessToken);
    expect([limited.status, limited.headers.get('retry-after')]).toEqual([429, '7']);
    const e = await fault(Folder.Bind(service(accessToken), WellKnownFolderName.Inbox));
    expect(e.HttpStatusCode).toBe(429);
    expect((await post(accessToken)).status).toBe(200);
  });

  it('speaks SOAP over HTTP as EWS does', async () => {
    const accessToken = await delegated();
    expect((await post(accessToken, envelope(), { method: 'GET', body: null })).status).toBe(405);
    const elsewhere = await fetch(standIn.url.replace('/EWS/Exchange.asmx', '/EWS/Other.asmx'), {
      method: 'POST',
    });
    expect(elsewhere.status).toBe(404);
    expect(
      (await post(accessToken, envelope(), { headers: { 'content-type': 'application/json' } })).status,
    ).toBe(415);

    const malformed = await post(
      accessToken,
      '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>',
    );
    expect(malformed.status).toBe(500);
    expect(malformed.text).toContain('a:ErrorSchemaValidation</faultcode>');
    const unknown = await post(accessToken, envelope('<m:ResolveNames ReturnFullContactData="true"/>'));
    expect(unknown.status).toBe(500);
    expect(unknown.text).toContain(
      '<e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">The request is invalid.</e:Message>',
    );
    const version = await post(
      accessToken,
      envelope(GET_INBOX, '<t:RequestServerVersion Version="Exchange2099"/>'),
    );
    expect(version.text).toContain('a:ErrorInvalidServerVersion</faultcode>');
    expect(standIn.requests.at(-1)).toMatchObject({ operation: 'GetFolder', status: 500 });
  });
});
