import type { BrokerError } from '../errors';
import { escapeHtml, html } from './responses';
import type { BrokerResponse } from './types';

/** The message the callback page posts to the console that opened it. */
export interface AuthorizationMessage {
  type: 'ews-oauth-broker.authorization';
  connection: string | null;
  ok: boolean;
  status?: string;
  code?: string;
  message: string;
  /** What to do, and the link to send (the admin-consent URL): the popup closes, the console shows them. */
  remedy?: string;
  aadsts?: number;
  actionUrl?: string;
}

const STYLE = `
  :root { color-scheme: light dark; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
  body { margin: 0; padding: 2rem; line-height: 1.5; max-width: 60rem; }
  h1 { font-size: 1.4rem; margin: 0 0 1rem; }
  .ok { color: #0a7a33; } .fail { color: #b3261e; }
  .box { border: 1px solid #8886; border-radius: .5rem; padding: 1rem 1.25rem; margin: 1rem 0; }
  code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .9em; }
  .sandbox { background: #ffd54f; color: #000; padding: .5rem 1rem; font-weight: 600; border-radius: .5rem; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid #8884; }
  button { font: inherit; padding: .3rem .8rem; cursor: pointer; }
  input, select { font: inherit; padding: .25rem .4rem; width: 100%; box-sizing: border-box; }
  form.define { display: grid; grid-template-columns: repeat(auto-fit, minmax(11rem, 1fr)); gap: .5rem; align-items: end; }
  .muted { opacity: .75; font-size: .9em; }
  tr.test-detail td { border-bottom: 1px solid #8884; } .test-remedy { font-size: .85em; overflow-wrap: anywhere; }
`;

/** JSON inside a <script> element: `<` escaped so the data can never close the element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function page(title: string, nonce: string, body: string, script = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><link rel="icon" href="data:,"><title>${escapeHtml(title)} · ews-oauth-broker</title>
<style nonce="${nonce}">${STYLE}</style></head>
<body>${body}${script ? `<script nonce="${nonce}">${script}</script>` : ''}</body></html>`;
}

/**
 * The page that ends the popup: it posts the result to the window that opened it (only to the
 * broker's own origin) and closes itself; opened without an opener, it simply shows the result.
 */
export function callbackPage(
  appOrigin: string,
  outcome:
    | {
        ok: true;
        connection: string;
        status: string;
        signedInAs: string;
        /** Started from an invitation link: the owner's window has no console behind it. */
        invitation?: { mailbox: string };
      }
    | { ok: false; connection: string | null; error: BrokerError; correlationId: string },
): BrokerResponse {
  const message: AuthorizationMessage = outcome.ok
    ? {
        type: 'ews-oauth-broker.authorization',
        connection: outcome.connection,
        ok: true,
        status: outcome.status,
        message: `Connection ${outcome.connection} is authorized.`,
      }
    : {
        type: 'ews-oauth-broker.authorization',
        connection: outcome.connection,
        ok: false,
        code: outcome.error.code,
        message: outcome.error.message,
        ...(outcome.error.remedy ? { remedy: outcome.error.remedy } : {}),
        ...(outcome.error.aadsts !== undefined ? { aadsts: outcome.error.aadsts } : {}),
        ...(outcome.error.actionUrl ? { actionUrl: outcome.error.actionUrl } : {}),
      };
  const body = outcome.ok
    ? outcome.invitation
      ? `<h1 class="ok">Done</h1>
       <div class="box"><p>Done — <strong>${escapeHtml(outcome.invitation.mailbox)}</strong> is connected. You can close this window.</p>
       <p class="muted">You signed in as ${escapeHtml(outcome.signedInAs)}. The link you used is spent; nothing else is needed from you.</p></div>`
      : `<h1 class="ok">Authorized</h1>
       <div class="box"><p>Connection <strong>${escapeHtml(outcome.connection)}</strong> is authorized as
       <strong>${escapeHtml(outcome.signedInAs)}</strong>. Its tokens are stored and will be kept fresh.</p></div>
       <p class="muted" id="closing">You can close this window.</p>`
    : errorBody(outcome.error, outcome.correlationId);
  const script = `(function () {
    var message = ${scriptJson(message)};
    if (window.opener && !window.opener.closed) {
      try { window.opener.postMessage(message, ${scriptJson(appOrigin)}); } catch (e) {}
      window.close();
    }
  })();`;
  return html(outcome.ok ? 200 : outcome.error.status, (nonce) =>
    page(outcome.ok ? 'Authorized' : 'Authorization failed', nonce, body, script),
  );
}

const GUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Where Entra's admin-consent endpoint returns (`admin_consent=True&tenant=…`, or `error=…`): a
 * page that says what happened and what comes next, rather than a sign-in state error.
 */
export function adminConsentPage(
  adminConsent: string | undefined,
  tenant: string | undefined,
  error: string | undefined,
  description: string | undefined,
): BrokerResponse {
  const granted = error === undefined && adminConsent?.toLowerCase() === 'true';
  const tenantText =
    tenant && GUID_SHAPE.test(tenant) ? ` for tenant <span class="mono">${escapeHtml(tenant)}</span>` : '';
  const aadsts = /AADSTS(\d{4,8})/.exec(description ?? '')?.[1];
  const body = granted
    ? `<h1 class="ok">Admin consent granted</h1>
       <div class="box"><p>A Global Administrator approved the broker's permissions${tenantText}.</p>
       <p><strong>What to do:</strong> go back to the console and click Authorize on the connection again.</p></div>`
    : `<h1 class="fail">Admin consent was not granted</h1>
       <div class="box"><p>Entra ID answered <span class="mono">${escapeHtml((error ?? 'no consent').slice(0, 64))}</span>${aadsts ? ` (AADSTS${aadsts})` : ''}.</p>
       <p><strong>What to do:</strong> a Global Administrator (or Privileged Role Administrator) opens the admin-consent link again and accepts; or grant consent in the Entra admin center under Enterprise applications → the broker → Permissions.</p></div>`;
  return html(granted ? 200 : 403, (nonce) =>
    page(granted ? 'Admin consent granted' : 'Admin consent not granted', nonce, body),
  );
}

function errorBody(error: BrokerError, correlationId: string): string {
  const aadsts = error.aadsts !== undefined ? ` <span class="mono">(AADSTS${error.aadsts})</span>` : '';
  const action = error.actionUrl
    ? `<p>Link for the administrator: <a class="mono" href="${escapeHtml(error.actionUrl)}" rel="noreferrer" target="_blank">${escapeHtml(error.actionUrl)}</a></p>`
    : '';
  return `<h1 class="fail">${escapeHtml(headlineFor(error))}</h1>
    <div class="box"><p>${escapeHtml(error.message)}${aadsts}</p>
    ${error.remedy ? `<p><strong>What to do:</strong> ${escapeHtml(error.remedy)}</p>` : ''}${action}</div>
    <p class="muted">Error code <span class="mono">${escapeHtml(error.code)}</span> · correlation id <span class="mono">${escapeHtml(correlationId)}</span></p>`;
}

function headlineFor(error: BrokerError): string {
  switch (error.code) {
    case 'access_denied':
      return 'Sign-in was cancelled';
    case 'consent_required':
    case 'admin_consent_required':
      return 'An administrator must approve this app';
    case 'account_mismatch':
      return 'Signed in with the wrong account';
    case 'tenant_not_allowed':
      return 'This organisation is not allowed';
    case 'state_expired':
      return 'The sign-in expired';
    case 'state_invalid':
      return 'This sign-in cannot be finished here';
    case 'unauthenticated':
    case 'forbidden':
      return 'Not allowed';
    case 'invitation_invalid':
      return 'This invitation link cannot be used';
    default:
      return 'Authorization failed';
  }
}

/** A readable error page for browser routes (README "HTTP API"). */
export function errorPage(error: BrokerError, correlationId: string): BrokerResponse {
  return html(error.status, (nonce) => page('Error', nonce, errorBody(error, correlationId)));
}

/**
 * The owner's page for an invitation link. The link's secret is its fragment (`…/api/invitation#…`),
 * which a browser never sends in a request line: request logs and Application Insights request
 * telemetry see only `/api/invitation`. So the page is the same for every link and reads nothing;
 * its script reads the fragment, asks `POST /api/invitation/details` what the link is for (which
 * consumes nothing: mail scanners open every link), and puts the secret in the Sign in form's body.
 */
export function invitationPage(options: {
  /** The broker's public origin and the app's id: the application the owner lets in. */
  appOrigin: string;
  clientId: string;
  signInOrigin: string;
}): BrokerResponse {
  const body = `<h1 id="title">Connect a mailbox</h1>
  <noscript><div class="box fail">This page needs JavaScript to read the invitation link.</div></noscript>
  <div id="checking" class="muted">Checking the invitation…</div>
  <div id="refused" class="box fail" hidden><p id="refused-detail"></p><p id="refused-remedy"></p></div>
  <div id="invitation" hidden>
  <div class="box">
    <p>An administrator asks you to let the mail connector <strong>ews-oauth-broker</strong>
    (<span class="mono">${escapeHtml(options.appOrigin)}</span>, application id <span class="mono">${escapeHtml(options.clientId)}</span>)
    use the mailbox <strong id="mailbox"></strong>.</p>
    <p><strong>It will be able to:</strong> <span id="capability"></span></p>
    <p><strong>Sign in as:</strong> <span class="mono" id="account"></span>. Another account is refused and changes nothing.</p>
    <p class="muted">Microsoft shows the same permissions when you sign in and asks you to accept them. The link works once, until <span id="expires"></span> (UTC).</p>
  </div>
  <form method="post" action="/api/invitation" id="sign-in-form"><input type="hidden" name="token" id="token"><button type="submit" id="sign-in">Sign in with Microsoft</button></form>
  </div>`;
  const script = `(function () {
    var token = window.location.hash.slice(1);
    function refuse(detail, remedy) {
      document.getElementById('title').textContent = 'This invitation link cannot be used';
      document.getElementById('checking').hidden = true;
      document.getElementById('refused').hidden = false;
      document.getElementById('refused-detail').textContent = detail;
      document.getElementById('refused-remedy').textContent = remedy ? 'What to do: ' + remedy : '';
    }
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) {
      refuse('This invitation link is incomplete.', 'Open the whole link from the message you received, or ask the administrator for a new one.');
      return;
    }
    fetch('/api/invitation/details', { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify({ token: token }) })
      .then(function (response) { return response.json().then(function (body) { return { ok: response.ok, body: body }; }); })
      .then(function (answer) {
        var v = answer.body;
        if (!answer.ok) { refuse(v.detail || 'This invitation cannot be used.', v.remedy); return; }
        document.title = 'Connect ' + v.mailbox;
        document.getElementById('title').textContent = 'Connect ' + v.mailbox;
        document.getElementById('mailbox').textContent = v.mailbox;
        document.getElementById('capability').textContent = v.capability;
        document.getElementById('account').textContent = v.account;
        document.getElementById('expires').textContent = v.expiresOn;
        // Into the form only as it is sent: the page itself never holds the secret.
        document.getElementById('sign-in-form').addEventListener('submit', function () { document.getElementById('token').value = token; });
        document.getElementById('checking').hidden = true;
        document.getElementById('invitation').hidden = false;
      })
      .catch(function () { refuse('The broker could not be reached.', 'Try again in a moment.'); });
  })();`;
  // same-origin, not no-referrer: under no-referrer a browser sends \`Origin: null\` with the form's
  // POST, which the cross-site check refuses. (A Referer never carries a URL's fragment.)
  return html(
    200,
    (nonce) => page('Connect a mailbox', nonce, body, script),
    { 'Referrer-Policy': 'same-origin' },
    [options.signInOrigin],
  );
}

/**
 * The console's browser script, kept whole: one IIFE whose parts (the notice, test results, the
 * rows and their buttons, the popup's message, the define form) share `show`, `tests` and `load`.
 * Nothing per request goes into it (the page's nonce goes on its <script> element).
 */
const CONSOLE_SCRIPT = `(function () {
    var rows = document.getElementById('rows');
    var notice = document.getElementById('notice');
    function show(text, ok, remedy, link) {
      notice.hidden = false; notice.textContent = text; notice.className = 'box ' + (ok ? 'ok' : 'fail');
      if (remedy) { var what = document.createElement('p'); what.className = 'notice-remedy'; what.textContent = 'What to do: ' + remedy; notice.appendChild(what); }
      if (link && link.indexOf('https://') === 0) {
        var p = document.createElement('p'); p.appendChild(document.createTextNode('Link for the administrator: '));
        var a = document.createElement('a'); a.href = link; a.textContent = link; a.rel = 'noreferrer'; a.target = '_blank'; a.className = 'mono notice-link';
        p.appendChild(a); notice.appendChild(p);
      }
    }
    function cell(text) { var td = document.createElement('td'); td.textContent = text == null ? '' : String(text); return td; }
    // The last test of each connection outlives a reload: Exchange applies allow-list changes up to
    // 24 hours later, so the admin comes back to see when the last test ran and what it said.
    var tests = {};
    try { tests = JSON.parse(localStorage.getItem('broker.tests') || '{}') || {}; } catch (e) { tests = {}; }
    function keepTests() { try { localStorage.setItem('broker.tests', JSON.stringify(tests)); } catch (e) { /* private mode */ } }
    function testedAt(result) { return result.testedAt ? ' · tested ' + new Date(result.testedAt).toLocaleString() : ''; }
    function testSummary(result) {
      var d = result.details || {};
      if (result.ok) {
        var count = d.totalCount == null ? '' : ' · ' + d.totalCount + (d.totalCount === 1 ? ' item' : ' items');
        var unread = d.unreadCount == null ? '' : ' (' + d.unreadCount + ' unread)';
        var what = d.folder ? d.folder + count + unread : 'Authenticated';
        return '✓ ' + result.protocol.toUpperCase() + ': ' + what + (d.serverVersion ? ' · Exchange ' + d.serverVersion : '');
      }
      return '✗ ' + result.code + ': ' + (result.detail || '');
    }
    function renderTest(td, detailRow, result) {
      td.textContent = ''; detailRow.hidden = true; detailRow.firstChild.textContent = '';
      if (!result) return;
      var line = document.createElement('div'); line.className = 'test-summary ' + (result.ok ? 'ok' : 'fail');
      line.textContent = result.pending ? 'Testing…' : (result.ok ? testSummary(result) : '✗ ' + result.code) + testedAt(result); td.appendChild(line);
      if (result.pending || result.ok) return;
      var cell = detailRow.firstChild; detailRow.hidden = false;
      var what = document.createElement('div'); what.className = 'test-detail-text fail'; what.textContent = testSummary(result); cell.appendChild(what);
      if (result.remedy) { var remedy = document.createElement('div'); remedy.className = 'test-remedy'; remedy.textContent = 'What to do: ' + result.remedy; cell.appendChild(remedy); }
    }
    // An invitation for the mailbox owner: the link (with Copy), when it expires, and Revoke.
    function showInvitation(c, invitation) {
      show('Invitation for ' + c.account + ' to authorize ' + c.name + ': single use, valid until ' + new Date(invitation.expiresOn).toLocaleString() + '. Send them this link:', true);
      var line = document.createElement('p');
      var link = document.createElement('input'); link.readOnly = true; link.value = invitation.url; link.className = 'mono invitation-url';
      line.appendChild(link); notice.appendChild(line);
      var tools = document.createElement('p');
      tools.appendChild(button('Copy', async function (event) {
        try { await navigator.clipboard.writeText(invitation.url); event.target.textContent = 'Copied'; }
        catch (e) { link.select(); event.target.textContent = 'Press Ctrl+C to copy'; }
      }));
      tools.appendChild(button('Revoke', async function () {
        var response = await fetch('/api/connections/' + encodeURIComponent(c.name) + '/invitations', { method: 'DELETE' });
        if (response.ok) { show('Open invitations for ' + c.name + ' are revoked: their links no longer work.', true); return; }
        var problem = await response.json(); show(problem.detail || 'Could not revoke', false);
      }));
      notice.appendChild(tools);
    }
    // Moving to Microsoft Graph: which EWS connections have a working Graph connection, their last
    // EWS test, and the days left before Exchange Online turns EWS off.
    async function loadReadiness() {
      var section = document.getElementById('graph-move');
      var response = await fetch('/api/graph-readiness', { headers: { Accept: 'application/json' } });
      if (!response.ok) { section.hidden = true; return; }
      var data = await response.json();
      section.hidden = data.total === 0;
      document.getElementById('graph-move-summary').textContent = data.ready + ' of ' + data.total +
        ' EWS connection' + (data.total === 1 ? '' : 's') + ' have a working Microsoft Graph connection · ' +
        data.daysLeft + ' day' + (data.daysLeft === 1 ? '' : 's') + ' until Exchange Online turns EWS off (' + data.ewsRetirement + ').';
      var body = document.getElementById('graph-move-rows'); body.textContent = '';
      data.connections.forEach(function (r) {
        var tr = document.createElement('tr'); tr.dataset.ews = r.ews;
        tr.appendChild(cell(r.ews)); tr.appendChild(cell(r.mailbox));
        tr.appendChild(cell(r.lastTest ? (r.lastTest.ok ? '✓ ok' : '✗ ' + r.lastTest.code) + ' · ' + new Date(r.lastTest.testedAt).toLocaleString() : 'not tested'));
        tr.appendChild(cell(r.graph ? r.graph.name + ' (' + r.graph.status + ')' : 'none: use Add the Graph connection'));
        var ready = cell(r.ready ? '✓ ready' : '✗ not yet'); ready.className = 'graph-ready ' + (r.ready ? 'ok' : 'fail'); tr.appendChild(ready);
        body.appendChild(tr);
      });
    }
    function button(label, handler) { var b = document.createElement('button'); b.type = 'button'; b.textContent = label; b.addEventListener('click', handler); return b; }
    async function load() {
      var response = await fetch('/api/connections', { headers: { Accept: 'application/json' } });
      var data = await response.json();
      if (!response.ok) { show(data.detail || 'Could not load connections', false); return; }
      rows.textContent = '';
      loadReadiness();
      if (data.connections.length === 0) { var tr0 = document.createElement('tr'); var td0 = cell('No connections yet: define one below.'); td0.colSpan = 8; tr0.appendChild(td0); rows.appendChild(tr0); }
      data.connections.forEach(function (c) {
        var tr = document.createElement('tr');
        tr.dataset.connection = c.name;
        tr.appendChild(cell(c.name)); tr.appendChild(cell(c.mailbox)); tr.appendChild(cell(c.profile + (c.grant === 'authorization_code' ? '' : ' · ' + c.grant) + (c.signInFrom ? ' · signs in through ' + c.signInFrom : '')));
        var status = cell(c.status); status.className = 'status'; tr.appendChild(status);
        tr.appendChild(cell(c.tokenExpiresOn ? new Date(c.tokenExpiresOn).toLocaleString() : ''));
        tr.appendChild(cell(c.lastError ? c.lastError.message : ''));
        var actions = document.createElement('td');
        if (c.grant === 'password') {
          actions.appendChild(button('Set password', async function () {
            var password = window.prompt('Password of ' + c.account + ' (kept only in the secret store; never shown again)');
            if (!password) return;
            var response = await fetch('/api/connections/' + encodeURIComponent(c.name) + '/password', {
              method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ password: password }) });
            if (response.ok) { show('Password set for ' + c.name + '. Click Authorize.', true); }
            else { var problem = await response.json(); show(problem.detail + (problem.remedy ? ' ' + problem.remedy : ''), false); }
          }));
        }
        actions.appendChild(button('Authorize', async function () {
          if (c.grant === 'authorization_code') {
            window.open('/api/connections/' + encodeURIComponent(c.name) + '/authorize', 'broker-authorize', 'popup,width=520,height=700');
            return;
          }
          var response = await fetch('/api/connections/' + encodeURIComponent(c.name) + '/authorize', { method: 'POST' });
          var body = await response.json();
          show(response.ok ? c.name + ' is authorized (' + body.signedInAs + ').' : (body.detail || 'Authorization failed') + (body.remedy ? ' ' + body.remedy : ''), response.ok);
          load();
        }));
        if (c.grant === 'authorization_code' && !c.signInFrom) {
          actions.appendChild(button('Invite', async function () {
            var response = await fetch('/api/connections/' + encodeURIComponent(c.name) + '/invitations', { method: 'POST' });
            var body = await response.json();
            if (!response.ok) { show((body.detail || 'Could not make the invitation') + (body.remedy ? ' ' + body.remedy : ''), false); return; }
            showInvitation(c, body);
          }));
        }
        if (c.profile === 'ews' || c.profile === 'ews-shared') {
          actions.appendChild(button('Add the Graph connection', async function () {
            var name = window.prompt('Name of the Graph connection for ' + c.mailbox + ' (it signs in through the same sign-in and is tested at once)', c.name + '-graph');
            if (!name) return;
            var response = await fetch('/api/connections/' + encodeURIComponent(c.name) + '/graph', {
              method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: name }) });
            var body = await response.json();
            if (!response.ok) { show((body.detail || 'Could not add the Graph connection') + (body.remedy ? ' ' + body.remedy : ''), false); return; }
            if (body.test) { tests[name] = body.test; keepTests(); }
            var added = body.connection;
            show(added.status === 'authorized'
              ? 'Added ' + name + ' (Microsoft Graph) for ' + added.mailbox + (body.test ? ': ' + testSummary(body.test) : '.')
              : 'Added ' + name + ', but it has no token yet: ' + (added.lastError ? added.lastError.message : added.status) + '.',
              added.status === 'authorized' && (!body.test || body.test.ok), added.lastError ? added.lastError.remedy : undefined);
            load();
          }));
        }
        actions.appendChild(button('Refresh', async function () {
          var response = await fetch('/api/connections/' + encodeURIComponent(c.name) + '/refresh', { method: 'POST' });
          var body = await response.json();
          show(response.ok ? c.name + ': ' + body.result + ' (' + body.reason + ')' : (body.detail || 'Refresh failed') + (body.remedy ? ' ' + body.remedy : ''), response.ok);
          load();
        }));
        var testCell = document.createElement('td'); testCell.className = 'test';
        var detailRow = document.createElement('tr'); detailRow.className = 'test-detail'; detailRow.dataset.testFor = c.name;
        var detailCell = document.createElement('td'); detailCell.colSpan = 8; detailRow.appendChild(detailCell);
        actions.appendChild(button('Test connection', async function () {
          tests[c.name] = { pending: true, ok: true }; renderTest(testCell, detailRow, tests[c.name]);
          var response = await fetch('/api/connections/' + encodeURIComponent(c.name) + '/test', { method: 'POST' });
          var result = await response.json();
          tests[c.name] = response.ok ? result : { ok: false, code: result.code, detail: result.detail, remedy: result.remedy, testedAt: new Date().toISOString() };
          keepTests(); renderTest(testCell, detailRow, tests[c.name]);
        }));
        actions.appendChild(button('Delete', async function () {
          if (!confirm('Delete ' + c.name + ' and its tokens?')) return;
          await fetch('/api/connections/' + encodeURIComponent(c.name), { method: 'DELETE' });
          delete tests[c.name]; keepTests();
          load();
        }));
        tr.appendChild(actions);
        tr.appendChild(testCell);
        rows.appendChild(tr);
        rows.appendChild(detailRow);
        var local = tests[c.name] && !tests[c.name].pending ? tests[c.name] : undefined;
        // The row keeps the last verdict for every admin; this browser's own result has the details.
        var kept = c.lastTest && (!local || !local.testedAt || local.testedAt < c.lastTest.testedAt)
          ? { ok: c.lastTest.ok, code: c.lastTest.code, protocol: c.lastTest.protocol || '', testedAt: c.lastTest.testedAt, details: {} }
          : local;
        renderTest(testCell, detailRow, kept);
      });
    }
    window.addEventListener('message', function (event) {
      if (event.origin !== window.location.origin) return;
      var data = event.data;
      if (!data || data.type !== 'ews-oauth-broker.authorization') return;
      show(data.message + (data.aadsts ? ' (AADSTS' + data.aadsts + ')' : ''), data.ok, data.remedy, data.actionUrl);
      load();
    });
    var warnings = {
      authorization_code: '',
      client_credentials: 'App-only: the app acts on mailboxes without anyone signing in. Without an Exchange scope (RBAC for Applications or an application access policy) it can read EVERY mailbox in the tenant — limit it to the mailboxes it needs (see the README).',
      password: 'Legacy password grant: Microsoft discourages it; it fails with MFA, federated accounts and most Conditional Access, and the password is stored (in the secret store only). Use it only for products that can do nothing else, and drop it first.'
    };
    var grantSelect = document.querySelector('select[name=grant]');
    function showGrantWarning() { document.getElementById('grant-warning').textContent = warnings[grantSelect.value] || ''; }
    grantSelect.addEventListener('change', showGrantWarning);
    showGrantWarning();
    document.getElementById('define').addEventListener('submit', async function (event) {
      event.preventDefault();
      var form = new FormData(event.target);
      var body = { mailbox: form.get('mailbox'), profile: form.get('profile'), grant: form.get('grant') };
      if (form.get('account')) body.account = form.get('account');
      if (form.get('ewsUrl')) body.ewsUrl = form.get('ewsUrl');
      if (form.get('signInFrom')) body.signInFrom = form.get('signInFrom');
      var response = await fetch('/api/connections/' + encodeURIComponent(form.get('name')), {
        method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      if (!response.ok) { var problem = await response.json(); show(problem.detail, false); return; }
      show('Saved ' + form.get('name') + '. ' + (form.get('grant') === 'password' ? 'Set its password, then click Authorize.' : 'Click Authorize.'), true);
      load();
    });
    load();
  })();`;

/** The admin console: connections, their status, define/authorize/delete. */
export function consolePage(options: {
  sandbox: boolean;
  secretStore: string;
  redirectUri: string;
}): BrokerResponse {
  const banner = options.sandbox
    ? `<p class="sandbox">SANDBOX — sign-in, mailboxes and tokens here are simulated on this machine. Nothing reaches Microsoft.</p>`
    : '';
  const devStore =
    options.secretStore === 'local-file'
      ? `<p class="muted">Secrets are kept in the local encrypted development store, not Key Vault.</p>`
      : '';
  const body = `${banner}<h1>ews-oauth-broker</h1>${devStore}
  <div id="notice" class="box" hidden></div>
  <table><thead><tr><th>Connection</th><th>Mailbox</th><th>Profile</th><th>Status</th><th>Token expires</th><th>Last error</th><th></th><th>Test</th></tr></thead>
  <tbody id="rows"><tr><td colspan="8" class="muted">Loading…</td></tr></tbody></table>
  <section id="graph-move" hidden><h2>Moving to Microsoft Graph</h2><p id="graph-move-summary"></p>
  <table><thead><tr><th>EWS connection</th><th>Mailbox</th><th>Last EWS test</th><th>Graph connection</th><th>Ready</th></tr></thead><tbody id="graph-move-rows"></tbody></table></section>
  <h2>Define a connection</h2>
  <form class="define" id="define">
    <label>Name<br><input name="name" required pattern="[a-z0-9](?:[a-z0-9\\-]{0,46}[a-z0-9])?" placeholder="support-in"></label>
    <label>Mailbox<br><input name="mailbox" type="email" required placeholder="support@contoso.com"></label>
    <label>Signs in (if not the mailbox)<br><input name="account" type="email" placeholder="delegate@contoso.com"></label>
    <label>Profile<br><select name="profile"><option>ews</option><option>ews-shared</option><option>imap</option><option>pop</option><option>smtp</option><option>graph-mail</option><option>graph-mail-shared</option></select></label>
    <label>Grant<br><select name="grant"><option value="authorization_code">authorization_code (sign in once)</option><option value="client_credentials">client_credentials (app-only)</option><option value="password">password (legacy)</option></select></label>
    <label>Signs in through (another connection for the same account; optional)<br><input name="signInFrom" pattern="[a-z0-9](?:[a-z0-9\\-]{0,46}[a-z0-9])?" placeholder="support-in"></label>
    <label>EWS URL (Exchange Server on-premises only)<br><input name="ewsUrl" type="url" placeholder="https://mail.contoso.com/EWS/Exchange.asmx"></label>
    <button type="submit">Save</button>
  </form>
  <p class="muted" id="grant-warning"></p>
  <p class="muted">Redirect URI to register on the App Registration: <span class="mono">${escapeHtml(options.redirectUri)}</span></p>`;
  return html(200, (nonce) => page('Console', nonce, body, CONSOLE_SCRIPT));
}
