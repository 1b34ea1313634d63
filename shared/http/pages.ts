import type { BrokerError } from '../errors';
import { remedyParts } from './console/text';
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

/**
 * One style for every page. Colours are custom properties with a dark set under
 * prefers-color-scheme; each text colour has at least 4.5:1 against the background it sits on
 * (the e2e tests run axe-core on every page in both schemes).
 */
const STYLE = `
  :root { color-scheme: light dark; font-family: system-ui, -apple-system, "Segoe UI", sans-serif;
    --bg: #ffffff; --fg: #1b1b1f; --muted: #52525b; --border: #c4c4cc; --surface: #f4f4f6;
    --ok: #0a6b2d; --fail: #a4161a; --warn: #7a4b00; --accent: #0b57d0; --on-accent: #ffffff; --focus: #0b57d0; }
  @media (prefers-color-scheme: dark) {
    :root { --bg: #121316; --fg: #e8e8ec; --muted: #a9a9b3; --border: #4a4b53; --surface: #1d1e23;
      --ok: #6fdc8c; --fail: #ff8f86; --warn: #f5c26b; --accent: #8ab4f8; --on-accent: #0b1d3a; --focus: #8ab4f8; }
  }
  body { margin: 0; padding: 1.5rem 2rem 3rem; line-height: 1.5; max-width: 60rem; background: var(--bg); color: var(--fg); }
  body.wide { max-width: 84rem; margin: 0 auto; }
  h1 { font-size: 1.4rem; margin: 0 0 1rem; } h2 { font-size: 1.15rem; margin: 2rem 0 .5rem; }
  a { color: var(--accent); }
  .ok { color: var(--ok); } .fail { color: var(--fail); }
  .box { border: 1px solid var(--border); border-radius: .5rem; padding: 1rem 1.25rem; margin: 1rem 0; overflow-wrap: anywhere; }
  code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .9em; }
  code { background: var(--surface); border: 1px solid var(--border); border-radius: .25rem; padding: 0 .25rem; overflow-wrap: anywhere; }
  .sandbox { background: #ffd54f; color: #000; padding: .5rem 1rem; font-weight: 600; border-radius: .5rem; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--border); vertical-align: middle; }
  thead th { font-size: .85em; color: var(--muted); font-weight: 600; }
  caption { text-align: left; color: var(--muted); font-size: .9em; padding: .25rem 0 .5rem; }
  button { font: inherit; padding: .3rem .8rem; cursor: pointer; color: var(--fg); background: var(--surface);
    border: 1px solid var(--border); border-radius: .375rem; }
  button:hover { border-color: var(--fg); }
  button.primary { background: var(--accent); color: var(--on-accent); border-color: var(--accent); }
  button.danger { color: var(--fail); }
  button:disabled, button[aria-disabled=true] { cursor: progress; opacity: .8; }
  :focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
  input, select { font: inherit; padding: .3rem .45rem; width: 100%; box-sizing: border-box; color: var(--fg);
    background: var(--bg); border: 1px solid var(--muted); border-radius: .375rem; }
  .muted { color: var(--muted); font-size: .9em; }
  .sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
  @media (max-width: 30rem) { body { padding: 1rem; } }
`;

/** What only the console needs: the header, the rows, their menu, cards on narrow screens. */
const CONSOLE_STYLE = `
  header.top { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; justify-content: space-between;
    padding: .75rem 0; border-bottom: 1px solid var(--border); margin-bottom: 1rem; }
  .brand { display: flex; align-items: baseline; gap: .6rem; flex-wrap: wrap; }
  .product { font-weight: 700; font-size: 1.1rem; } .deployment { color: var(--muted); }
  .badge { display: inline-flex; align-items: center; gap: .3rem; border: 1px solid currentColor; border-radius: 1rem;
    padding: 0 .55rem; font-size: .85em; white-space: nowrap; line-height: 1.6; max-width: 100%; box-sizing: border-box; }
  .badge-text { overflow: hidden; text-overflow: ellipsis; min-width: 0; }
  .env { color: var(--fg); white-space: normal; border-radius: .75rem; } .env .mono { overflow-wrap: anywhere; } .env-sandbox { background: #ffd54f; color: #000; border-color: #000; }
  .status-authorized { color: var(--ok); } .status-degraded { color: var(--warn); }
  .status-reauthorization_required { color: var(--fail); } .status-new, .status-disabled { color: var(--muted); }
  .table-wrap { overflow-x: auto; }
  /* Fixed columns: a result arriving never widens a column and moves the others. */
  /* Dense, as admin tables are: names and mailboxes fit a 1280 px screen whole. */
  table.connections { table-layout: fixed; min-width: 56rem; font-size: .9rem; }
  /* Shares of what the actions leave (976 px at 1280): each fits its usual longest value whole —
     a 16-character name, support@contoso.test, graph-mail-shared, reauth required, expires in 60 min. */
  col.c-name { width: 16%; } col.c-mailbox { width: 18.5%; } col.c-profile { width: 15%; } col.c-status { width: 15%; }
  col.c-token { width: 15.5%; } col.c-test { width: 20%; } col.c-actions { width: 15rem; }
  table.connections tr.connection > * { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  table.graph-move { table-layout: fixed; min-width: 40rem; }
  col.g-ews { width: 18%; } col.g-mailbox { width: 24%; } col.g-test { width: 24%; } col.g-graph { width: 22%; } col.g-ready { width: 12%; }
  table.graph-move td { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .clip, .test-summary { display: block; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  td.profile .clip { line-height: 1.25; } td.profile .how { font-size: .8em; color: var(--muted); }
  table.connections td.actions { text-align: right; overflow: visible; }
  td.actions button { margin-left: .25rem; }
  /* The next step's button keeps its width whatever it says, so a new status moves no button. */
  td.actions button.primary { min-width: 9.75em; }
  td.actions button.placeholder { visibility: hidden; }
  tr.row-detail td { white-space: normal; max-width: none; padding-top: 0; overflow: visible; }
  tr.connection:has(+ tr.row-detail:not([hidden])) > * { border-bottom: 0; }
  /* A row's line is one line high whatever it says: an answer takes the place of the "…" line its
     click opened and nothing below moves. Only the admin's clicks open its extras. */
  .row-feedback { border-left: 3px solid currentColor; padding: 0 .25rem 0 .75rem; margin: .25rem 0 .5rem; }
  .row-feedback.pending { color: var(--muted); }
  .feedback-head { display: flex; align-items: center; gap: .5rem; height: 2rem; }
  .feedback-text { flex: 1 1 auto; min-width: 0; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; color: var(--fg); }
  .feedback-head button { flex: none; padding: 0 .5rem; font-size: .9em; line-height: 1.6; }
  .feedback-more { padding: 0 0 .4rem; font-size: .95em; } .feedback-more p { margin: .2rem 0; color: var(--fg); }
  .remedy { overflow-wrap: anywhere; }
  .row-feedback.question { display: grid; gap: .4rem; padding: .4rem .75rem .6rem; color: var(--fg); border-left-color: var(--accent); }
  .question-text { margin: 0; } .row-feedback.question input { max-width: 28rem; }
  .question-actions { display: flex; gap: .5rem; }
  tr.deleted > *, tr.arriving > * { color: var(--muted); } .status-deleted, .status-saving, .status-not_saved { color: var(--muted); }
  /* Every row is as high as one with buttons, so a row being saved or deleted keeps the height it will have. */
  table.connections tr.connection { height: 3.1rem; }
  .invitation { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .25rem 0; }
  .invitation input { flex: 1 1 20rem; }
  /* For what concerns no row: over the page at the bottom, so it pushes nothing down. */
  #notice { position: fixed; left: 0; right: 0; bottom: 1rem; margin: 0 auto; width: min(40rem, calc(100vw - 2rem));
    box-sizing: border-box; z-index: 5; background: var(--bg); box-shadow: 0 .5rem 1.5rem #0004; display: flex; align-items: center; gap: .5rem; }
  #notice[hidden] { display: none; } #notice .dismiss { margin-left: auto; padding: 0 .5rem; }
  .menu { position: fixed; inset: auto; margin: 0; padding: .35rem; min-width: 15rem; color: var(--fg);
    background: var(--bg); border: 1px solid var(--border); border-radius: .5rem; box-shadow: 0 .5rem 1.5rem #0004; }
  .menu button { display: block; width: 100%; text-align: left; margin: 0 0 .2rem; border-color: transparent; background: transparent; }
  .menu button:hover { background: var(--surface); }
  .empty { white-space: normal !important; padding: 1.5rem 1rem; } .empty-title { font-weight: 600; margin: 0 0 .25rem; }
  form.define { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(19rem, 100%), 1fr)); gap: .75rem 1rem; align-items: start; }
  form.define label { display: block; font-weight: 600; font-size: .95em; }
  form.define input, form.define select { font-weight: 400; }
  header.top .sandbox { flex-basis: 100%; margin: 0; }
  form.define .hint { display: block; font-weight: 400; color: var(--muted); font-size: .85em; margin: .1rem 0 .25rem; }
  .form-actions { align-self: end; }
  .form-result { min-height: 1.5em; margin: .5rem 0; }
  /* Until the rows are drawn, what sits below them is not shown: it would jump down when they come. */
  html:not(.drawn) .below-rows { visibility: hidden; }
  dialog { max-width: min(42rem, calc(100vw - 2rem)); width: 100%; color: var(--fg); background: var(--bg);
    border: 1px solid var(--border); border-radius: .5rem; padding: 1rem 1.25rem; }
  dialog::backdrop { background: #0008; }
  .dialog-head { display: flex; justify-content: space-between; align-items: center; gap: 1rem; }
  .dialog-head h2 { margin: 0; }
  ol.events { list-style: none; padding: 0; margin: .5rem 0 0; max-height: 60vh; overflow-y: auto; }
  ol.events li { padding: .4rem 0; border-bottom: 1px solid var(--border); }
  .event-reason { font-size: .9em; overflow-wrap: anywhere; }
  @media (max-width: 45rem) {
    /* Both tables become cards: a row is a card, a cell one line with its label. */
    table.cards, table.cards tbody, table.cards tr, table.cards th, table.cards td { display: block; }
    table.cards { min-width: 0; } table.cards colgroup { display: none; } table.connections tr.connection { height: auto; }
    table.cards caption { display: block; }
    table.cards thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
    table.cards tbody > tr:not(.row-detail) { border: 1px solid var(--border); border-radius: .5rem; padding: .5rem .75rem; margin-top: .75rem; }
    /* One line per field, cut with an ellipsis (whole on hover), so a card keeps its height as answers arrive. */
    table.cards tbody > tr:not(.row-detail) > * { border: 0; padding: .15rem 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
    table.cards .clip, table.cards .test-summary { display: inline; }
    table.cards td.profile .how { font-size: inherit; } table.cards td.profile .how::before { content: " · "; }
    table.cards tbody > tr > [data-label]:not(th)::before { content: attr(data-label); display: inline-block; min-width: 6.5rem; color: var(--muted); font-size: .85em; }
    table.graph-move tbody > tr > [data-label]:not(th)::before { min-width: 8.5rem; }
    table.cards tbody > tr > th { font-size: 1.05rem; }
    /* Two lines for a row's answer: a phone has room for few words beside its buttons. */
    .feedback-head { height: 3rem; }
    .feedback-text { white-space: normal; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; line-height: 1.4; }
    table.connections td.actions { text-align: left; padding-top: .5rem; }
    table.connections td.actions::before { display: none !important; }
    td.actions button { margin: 0 .25rem 0 0; }
    table.connections tr.row-detail td { border: 0; padding: 0 .25rem; }
  }
`;

/** JSON inside a <script> element: `<` escaped so the data can never close the element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function page(
  title: string,
  nonce: string,
  body: string,
  script = '',
  options: { header?: string; scriptUrl?: string; extraStyle?: string } = {},
): string {
  const scripts = [
    script ? `<script nonce="${nonce}">${script}</script>` : '',
    options.scriptUrl
      ? `<script nonce="${nonce}" src="${escapeHtml(options.scriptUrl)}" defer></script>`
      : '',
  ].join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><link rel="icon" href="data:,"><title>${escapeHtml(title)} · ews-oauth-broker</title>
<style nonce="${nonce}">${STYLE}${options.extraStyle ?? ''}</style></head>
<body${options.header ? ' class="wide"' : ''}>${options.header ?? ''}<main>${body}</main>${scripts}</body></html>`;
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

/** A remedy as markup made only of escaped text, <code> for its backtick spans and <a> for https links. */
function remedyHtml(remedy: string): string {
  return remedyParts(remedy)
    .map((part) =>
      part.kind === 'code'
        ? `<code>${escapeHtml(part.text)}</code>`
        : part.kind === 'link'
          ? `<a href="${escapeHtml(part.href)}" rel="noreferrer" target="_blank">${escapeHtml(part.text)}</a>`
          : escapeHtml(part.text),
    )
    .join('');
}

function errorBody(error: BrokerError, correlationId: string): string {
  const aadsts = error.aadsts !== undefined ? ` <span class="mono">(AADSTS${error.aadsts})</span>` : '';
  const action = error.actionUrl
    ? `<p>Link for the administrator: <a class="mono" href="${escapeHtml(error.actionUrl)}" rel="noreferrer" target="_blank">${escapeHtml(error.actionUrl)}</a></p>`
    : '';
  return `<h1 class="fail">${escapeHtml(headlineFor(error))}</h1>
    <div class="box"><p>${escapeHtml(error.message)}${aadsts}</p>
    ${error.remedy ? `<p><strong>What to do:</strong> ${remedyHtml(error.remedy)}</p>` : ''}${action}</div>
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
    <p class="muted">Microsoft shows the same permissions when you sign in and asks you to accept them. The link works once, until <span id="expires"></span>.</p>
  </div>
  <form method="post" action="/api/invitation" id="sign-in-form"><input type="hidden" name="token" id="token"><button type="submit" id="sign-in" class="primary">Sign in with Microsoft</button></form>
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
        document.getElementById('expires').textContent = new Date(v.expiresOn).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
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

/** The admin console: connections, their status and every action on them (script: ./console/console.ts). */
export function consolePage(options: {
  sandbox: boolean;
  secretStore: string;
  redirectUri: string;
  /** This deployment's address and tenant, for the header. */
  publicBaseUrl: string;
  tenantId: string;
  /** Where the browser script is served, with its content hash (`/api/console.js?v=…`). */
  scriptUrl: string;
}): BrokerResponse {
  const host = (() => {
    try {
      return new URL(options.publicBaseUrl).host;
    } catch {
      return options.publicBaseUrl;
    }
  })();
  const environment = options.sandbox
    ? `<span class="badge env env-sandbox"><span aria-hidden="true">⚠</span> Sandbox</span>`
    : `<span class="badge env" title="Entra tenant"><span aria-hidden="true">⌂</span> Tenant <span class="mono">${escapeHtml(options.tenantId)}</span></span>`;
  const header = `<header class="top">
  <div class="brand"><span class="product">ews-oauth-broker</span><span class="deployment" id="deployment">${escapeHtml(host)}</span></div>
  ${environment}${
    options.sandbox
      ? `<p class="sandbox">SANDBOX — sign-in, mailboxes and tokens here are simulated on this machine. Nothing reaches Microsoft.</p>`
      : ''
  }
  </header>`;
  const devStore =
    options.secretStore === 'local-file'
      ? `<p class="muted">Secrets are kept in the local encrypted development store, not Key Vault.</p>`
      : '';
  const NAME_RULE =
    'Lowercase letters, digits and hyphens, 1–48 characters, starting and ending with a letter or digit.';
  const body = `<h1>Connections</h1>${devStore}
  <div id="live" class="sr-only" role="status" aria-live="polite" aria-atomic="true"></div>
  <div id="notice" class="box" hidden></div>
  <noscript><div class="box fail">The console needs JavaScript.</div></noscript>
  <div class="table-wrap" tabindex="0" role="region" aria-labelledby="connections-caption">
  <table class="connections cards"><caption id="connections-caption">Mailbox connections: status, token expiry, last test and actions</caption>
  <colgroup><col class="c-name"><col class="c-mailbox"><col class="c-profile"><col class="c-status"><col class="c-token"><col class="c-test"><col class="c-actions"></colgroup>
  <thead><tr><th scope="col">Connection</th><th scope="col">Mailbox</th><th scope="col">Profile</th><th scope="col">Status</th><th scope="col">Token</th><th scope="col">Last test</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
  <tbody id="rows"><tr><td colspan="7" class="muted">Loading…</td></tr></tbody></table></div>
  <section id="graph-move" aria-labelledby="graph-move-title" hidden><h2 id="graph-move-title">Moving to Microsoft Graph</h2><p id="graph-move-summary"></p>
  <div class="table-wrap" tabindex="0" role="region" aria-labelledby="graph-move-caption">
  <table class="graph-move cards"><caption id="graph-move-caption">EWS connections and their Microsoft Graph connections</caption>
  <colgroup><col class="g-ews"><col class="g-mailbox"><col class="g-test"><col class="g-graph"><col class="g-ready"></colgroup>
  <thead><tr><th scope="col">EWS connection</th><th scope="col">Mailbox</th><th scope="col">Last EWS test</th><th scope="col">Graph connection</th><th scope="col">Ready</th></tr></thead><tbody id="graph-move-rows"></tbody></table></div></section>
  <section aria-labelledby="define-title" class="below-rows">
  <h2 id="define-title">Define a connection</h2>
  <p class="muted">Redirect URI to register on the App Registration: <span class="mono">${escapeHtml(options.redirectUri)}</span></p>
  <form class="define" id="define">
    <label>Name<span class="hint" id="name-rule">${NAME_RULE}</span><input name="name" required pattern="[a-z0-9](?:[a-z0-9\\-]{0,46}[a-z0-9])?" maxlength="48" placeholder="support-in" aria-describedby="name-rule" autocomplete="off"></label>
    <label>Mailbox<span class="hint" id="mailbox-hint">The mailbox the consumer opens.</span><input name="mailbox" type="email" required placeholder="support@contoso.com" aria-describedby="mailbox-hint"></label>
    <label>Signs in (if not the mailbox)<span class="hint" id="account-hint">A delegate with Full Access to a shared mailbox.</span><input name="account" type="email" placeholder="delegate@contoso.com" aria-describedby="account-hint"></label>
    <label>Profile<span class="hint" id="profile-hint">The protocol the consumer speaks.</span><select name="profile" aria-describedby="profile-hint"><option value="ews">ews (Exchange Web Services)</option><option value="ews-shared">ews-shared (EWS, shared)</option><option value="imap">imap</option><option value="pop">pop</option><option value="smtp">smtp</option><option value="graph-mail">graph-mail (Microsoft Graph)</option><option value="graph-mail-shared">graph-mail-shared (shared)</option></select></label>
    <label>Grant<span class="hint" id="grant-hint">How the broker gets its first token: delegated is a person signing in once.</span><select name="grant" aria-describedby="grant-hint grant-warning"><option value="authorization_code">authorization_code (delegated)</option><option value="client_credentials">client_credentials (app-only)</option><option value="password">password (legacy)</option></select></label>
    <label>Signs in through<span class="hint" id="sign-in-from-hint">Optional: reuse another connection's sign-in for the same account (one consent, several protocols).</span><select name="signInFrom" aria-describedby="sign-in-from-hint"><option value="">None: it signs in itself</option></select></label>
    <label>EWS URL<span class="hint" id="ews-url-hint">Exchange Server on-premises only.</span><input name="ewsUrl" type="url" placeholder="https://mail.contoso.com/EWS/Exchange.asmx" aria-describedby="ews-url-hint"></label>
    <div class="form-actions"><button type="submit" class="primary">Save</button></div>
  </form>
  <p class="muted" id="grant-warning"></p>
  <!-- Last on the page: an answer of several lines here pushes nothing down. -->
  <p class="form-result" id="define-result"></p>
  </section>
  <dialog id="events" aria-labelledby="events-title">
    <div class="dialog-head"><h2 id="events-title">Events</h2><button type="button" id="events-close">Close</button></div>
    <p class="muted" id="events-state"></p>
    <ol class="events" id="events-list" tabindex="0" aria-labelledby="events-title"></ol>
  </dialog>`;
  return html(200, (nonce) =>
    page('Console', nonce, body, '', { header, scriptUrl: options.scriptUrl, extraStyle: CONSOLE_STYLE }),
  );
}
