/**
 * The admin console's browser script (served as `GET /api/console.js`, see ../console-asset.ts).
 * It reads the page `consolePage` renders (shared/http/pages.ts) and talks to `/api` only. Every
 * text the server sends goes into the page as text nodes: remedies become text, <code> and <a>
 * nodes through `remedyParts`, never markup.
 *
 * Where results go: next to the row they concern (the row's detail line) and, as plain text, into
 * one polite live region (`#live`) that screen readers announce. `#notice` at the top is for what
 * concerns no row (the list could not load, a connection was deleted).
 */
import { CONNECTION_NAME, expiryText, relativeTime, remedyParts } from './text';

interface LastError {
  code?: string;
  message: string;
  remedy?: string;
  aadsts?: number;
}

interface LastTest {
  ok: boolean;
  code?: string;
  protocol?: string | null;
  testedAt: string;
}

interface ConnectionView {
  name: string;
  mailbox: string;
  account: string;
  profile: string;
  grant: string;
  scopes?: string[];
  ewsUrl?: string;
  signInFrom?: string;
  readers: string[];
  description: string;
  status: string;
  tokenExpiresOn: string | null;
  lastError: LastError | null;
  lastTest: LastTest | null;
}

interface TestResult {
  ok: boolean;
  pending?: boolean;
  protocol?: string;
  code?: string;
  detail?: string;
  remedy?: string;
  testedAt?: string;
  details?: { folder?: string; totalCount?: number; unreadCount?: number; serverVersion?: string };
}

/** RFC 9457 problem details as the broker answers them (shared/http/responses.ts). */
interface Problem {
  type?: string;
  code?: string;
  detail?: string;
  remedy?: string;
  actionUrl?: string;
  aadsts?: string;
}

interface Invitation {
  url: string;
  expiresOn: string;
}

/** One result shown beside its row. */
interface Feedback {
  ok: boolean;
  /** Under way: no icon, no dismiss. */
  pending?: boolean;
  text: string;
  remedy?: string | undefined;
  /** A link for the administrator (the admin-consent URL). */
  link?: string | undefined;
  /** The README section about the error (the problem's `type`). */
  docs?: string | undefined;
  invitation?: Invitation;
}

interface AuditEvent {
  type: string;
  actor: string;
  fromStatus?: string;
  toStatus?: string;
  reason?: string;
  aadsts?: number;
  at: string;
}

interface AuthorizationMessage {
  type: string;
  connection: string | null;
  ok: boolean;
  message: string;
  remedy?: string;
  aadsts?: number;
  actionUrl?: string;
}

const COLUMNS = 7;

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  options: { className?: string; text?: string; attrs?: Record<string, string> } = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (options.className) node.className = options.className;
  if (options.text !== undefined) node.textContent = options.text;
  for (const [key, value] of Object.entries(options.attrs ?? {})) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

/** The page's element of that id and kind (consolePage renders them); a missing one is a bug. */
function byId<T extends HTMLElement>(id: string, kind: new () => T): T {
  const node = document.getElementById(id);
  if (!(node instanceof kind)) throw new Error(`#${id} is missing from the page`);
  return node;
}

function inForm<T extends HTMLElement>(selector: string, kind: new () => T): T {
  const node = form.querySelector(selector);
  if (!(node instanceof kind)) throw new Error(`${selector} is missing from the form`);
  return node;
}

const rows = byId('rows', HTMLTableSectionElement);
const notice = byId('notice', HTMLDivElement);
const live = byId('live', HTMLDivElement);
const form = byId('define', HTMLFormElement);

const api = (name: string, path = '') => `/api/connections/${encodeURIComponent(name)}${path}`;

/** A fetch whose answer is JSON (or nothing): the body, or the problem when it failed. */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the JSON it expects
async function call<T>(
  url: string,
  init: RequestInit & { json?: unknown } = {},
): Promise<{ ok: true; body: T } | { ok: false; problem: Problem; status: number }> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (init.json !== undefined) headers['Content-Type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(url, {
      ...init,
      headers,
      ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
    });
  } catch {
    return { ok: false, status: 0, problem: { detail: 'The broker could not be reached.' } };
  }
  const text = await response.text();
  let body: unknown = undefined;
  try {
    body = text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    body = undefined;
  }
  if (response.ok) return { ok: true, body: body as T };
  const problem = typeof body === 'object' && body !== null ? (body as Problem) : {};
  return { ok: false, status: response.status, problem };
}

function problemFeedback(problem: Problem, fallback: string): Feedback {
  const aadsts = problem.aadsts ? ` (${problem.aadsts})` : '';
  return {
    ok: false,
    text: (problem.detail ?? fallback) + aadsts,
    remedy: problem.remedy,
    link: problem.actionUrl,
    docs: problem.type,
  };
}

// ---------------------------------------------------------------------------------------------
// Text with code spans and links, and times

/** A remedy as DOM nodes: text, <code> for backticks, <a> for https links. */
function remedyNodes(remedy: string, name?: string): Node[] {
  return remedyParts(remedy, name).map((part) => {
    if (part.kind === 'code') return element('code', { text: part.text });
    if (part.kind === 'link') return externalLink(part.href, part.text);
    return document.createTextNode(part.text);
  });
}

function externalLink(href: string, text: string): HTMLAnchorElement {
  const link = element('a', { text, attrs: { href, rel: 'noreferrer', target: '_blank' } });
  return link;
}

/** A relative time with the exact time on hover; `data-at` lets the clock tick it on. */
function timeNode(iso: string, format: (at: string) => string = (at) => relativeTime(at)): HTMLTimeElement {
  const node = element('time', {
    text: format(iso),
    attrs: { datetime: iso, title: new Date(iso).toLocaleString() },
  });
  node.dataset.at = iso;
  node.dataset.format = format === expiryFormat ? 'expiry' : 'relative';
  return node;
}
const expiryFormat = (at: string) => expiryText(at);

function tick(): void {
  document.querySelectorAll<HTMLTimeElement>('time[data-at]').forEach((node) => {
    const at = node.dataset.at ?? '';
    node.textContent = node.dataset.format === 'expiry' ? expiryText(at) : relativeTime(at);
  });
}

// ---------------------------------------------------------------------------------------------
// State kept across reloads of the list

// The last test of each connection outlives a reload: Exchange applies allow-list changes up to
// 24 hours later, so the admin comes back to see when the last test ran and what it said.
let tests: Record<string, TestResult> = {};
try {
  tests = (JSON.parse(localStorage.getItem('broker.tests') ?? '{}') ?? {}) as Record<string, TestResult>;
} catch {
  tests = {};
}
function keepTests(): void {
  try {
    localStorage.setItem('broker.tests', JSON.stringify(tests));
  } catch {
    /* private mode */
  }
}
const feedback: Record<string, Feedback> = {};
let connections: ConnectionView[] = [];

/** Says it next to the row (kept across reloads until the next result) and to screen readers. */
function tell(name: string, result: Feedback): void {
  feedback[name] = result;
  announce(result.text + (result.remedy ? ` What to do: ${result.remedy}` : ''));
  const detail = rows.querySelector<HTMLTableRowElement>(`tr[data-detail-for="${CSS.escape(name)}"]`);
  if (detail) renderDetail(detail, name);
}

function announce(text: string): void {
  // Emptied first so the same words twice are announced twice.
  live.textContent = '';
  window.setTimeout(() => {
    live.textContent = text;
  }, 50);
}

/** For what concerns no row: the box at the top, and the live region. */
function showNotice(text: string, ok: boolean): void {
  notice.hidden = false;
  notice.className = `box ${ok ? 'ok' : 'fail'}`;
  notice.replaceChildren(
    element('span', { className: 'icon', text: ok ? '✓ ' : '✗ ', attrs: { 'aria-hidden': 'true' } }),
    text,
  );
  announce(text);
}

// ---------------------------------------------------------------------------------------------
// Test results

function testSummary(result: TestResult): string {
  const d = result.details ?? {};
  if (result.ok) {
    const count = d.totalCount == null ? '' : ` · ${d.totalCount} ${d.totalCount === 1 ? 'item' : 'items'}`;
    const unread = d.unreadCount == null ? '' : ` (${d.unreadCount} unread)`;
    const what = d.folder ? d.folder + count + unread : 'Authenticated';
    return `✓ ${(result.protocol ?? '').toUpperCase()}: ${what}${d.serverVersion ? ` · Exchange ${d.serverVersion}` : ''}`;
  }
  return `✗ ${result.code ?? 'failed'}: ${result.detail ?? ''}`;
}

function renderTestCell(cell: HTMLTableCellElement, result: TestResult | undefined): void {
  cell.replaceChildren();
  if (!result) {
    cell.append(element('span', { className: 'muted', text: 'not tested' }));
    return;
  }
  const line = element('div', { className: `test-summary ${result.ok ? 'ok' : 'fail'}` });
  if (result.pending) {
    line.textContent = 'Testing…';
  } else {
    const text = result.ok ? testSummary(result) : `✗ ${result.code ?? 'failed'}`;
    line.title = result.ok ? text : testSummary(result);
    line.append(text);
    if (result.testedAt) line.append(' · tested ', timeNode(result.testedAt));
  }
  cell.append(line);
}

// ---------------------------------------------------------------------------------------------
// The rows

function badge(status: string): HTMLSpanElement {
  const icons: Record<string, string> = {
    new: '○',
    authorized: '✓',
    degraded: '!',
    reauthorization_required: '✗',
    disabled: '‖',
  };
  return element(
    'span',
    { className: `badge status status-${status}` },
    element('span', { className: 'icon', text: icons[status] ?? '•', attrs: { 'aria-hidden': 'true' } }),
    status.replace(/_/g, ' '),
  );
}

function profileText(c: ConnectionView): string {
  return (
    c.profile +
    (c.grant === 'authorization_code' ? '' : ` · ${c.grant}`) +
    (c.signInFrom ? ` · signs in through ${c.signInFrom}` : '')
  );
}

/** A cell of one line: long text is cut with an ellipsis (a table cell ignores max-width), whole on hover. */
function cell(text: string, label: string, className = ''): HTMLTableCellElement {
  const td = element(
    'td',
    { className, attrs: { 'data-label': label } },
    element('span', { className: 'clip', text }),
  );
  if (text) td.title = text;
  return td;
}

interface Action {
  label: string;
  run: (c: ConnectionView, button: HTMLButtonElement) => Promise<void>;
  danger?: boolean;
}

/** A button named after its connection ("Test connection support-in") for screen readers. */
function actionButton(c: ConnectionView, action: Action, className = ''): HTMLButtonElement {
  const button = element('button', {
    text: action.label,
    className: `${className}${action.danger ? ' danger' : ''}`.trim(),
    attrs: { type: 'button', 'aria-label': `${action.label} ${c.name}` },
  });
  button.dataset.focusKey = `${c.name}|${action.label}`;
  button.addEventListener('click', () => {
    const menu = button.closest<HTMLElement>('[popover]');
    if (menu?.matches(':popover-open')) {
      // Keyboard users keep their place: on the row's More button, which a re-render restores.
      document.querySelector<HTMLElement>(`[popovertarget="${CSS.escape(menu.id)}"]`)?.focus();
      menu.hidePopover();
    }
    button.disabled = true;
    void action.run(c, button).finally(() => {
      button.disabled = false;
    });
  });
  return button;
}

function actionsFor(c: ConnectionView): { primary: Action; more: Action[] } {
  const delegated = c.grant === 'authorization_code' && !c.signInFrom;
  const all: Action[] = [];
  if (c.status === 'disabled') all.push({ label: 'Enable', run: enable });
  else {
    if (c.grant === 'password') all.push({ label: 'Set password', run: setPassword });
    all.push({ label: 'Authorize', run: authorize });
    all.push({ label: 'Test connection', run: testConnection });
    if (delegated) all.push({ label: 'Invite', run: invite });
    if (c.profile === 'ews' || c.profile === 'ews-shared')
      all.push({ label: 'Add the Graph connection', run: addGraph });
    all.push({ label: 'Refresh', run: refresh });
    all.push({ label: 'Disable', run: disable });
  }
  const events: Action = { label: 'Events', run: showEvents };
  all.push(events);
  all.push({ label: 'Reset', run: reset, danger: true });
  all.push({ label: 'Delete', run: remove, danger: true });
  // The one thing the row needs next stays in sight; the rest is one click away.
  const next =
    c.status === 'disabled'
      ? 'Enable'
      : c.status === 'authorized' || c.status === 'degraded'
        ? 'Test connection'
        : 'Authorize';
  const primary = all.find((action) => action.label === next) ?? events;
  return { primary, more: all.filter((action) => action !== primary) };
}

function actionsCell(c: ConnectionView): HTMLTableCellElement {
  const { primary, more } = actionsFor(c);
  const td = element('td', { className: 'actions', attrs: { 'data-label': 'Actions' } });
  const menuId = `menu-${c.name}`;
  const menu = element('div', {
    className: 'menu',
    attrs: { id: menuId, popover: 'auto', role: 'group', 'aria-label': `Actions for ${c.name}` },
  });
  menu.append(...more.map((action) => actionButton(c, action)));
  const opener = element('button', {
    className: 'more',
    attrs: { type: 'button', popovertarget: menuId, 'aria-label': `More actions for ${c.name}` },
  });
  opener.append(
    element('span', { text: 'More', attrs: { 'aria-hidden': 'true' } }),
    element('span', { className: 'caret', text: ' ▾', attrs: { 'aria-hidden': 'true' } }),
  );
  opener.dataset.focusKey = `${c.name}|More`;
  menu.addEventListener('toggle', (event) => {
    if (event.newState !== 'open') return;
    placeMenu(menu, opener);
    menu.querySelector('button')?.focus();
  });
  menu.addEventListener('keydown', (event) => {
    moveFocus(menu, event);
  });
  td.append(actionButton(c, primary, 'primary'), opener, menu);
  return td;
}

/** Under its button, right-aligned, flipped above when there is no room below. */
function placeMenu(menu: HTMLElement, opener: HTMLElement): void {
  const anchor = opener.getBoundingClientRect();
  const width = menu.offsetWidth;
  const height = menu.offsetHeight;
  const left = Math.max(8, Math.min(anchor.right - width, window.innerWidth - width - 8));
  const below = anchor.bottom + 4;
  const top = below + height > window.innerHeight - 8 ? Math.max(8, anchor.top - height - 4) : below;
  menu.style.left = `${left}px`;
  menu.style.top = `${top}px`;
}

// An open menu is fixed to the screen: it follows its button when the page scrolls or resizes.
function followOpenMenus(): void {
  document.querySelectorAll<HTMLElement>('.menu:popover-open').forEach((menu) => {
    const opener = document.querySelector<HTMLElement>(`[popovertarget="${CSS.escape(menu.id)}"]`);
    if (opener) placeMenu(menu, opener);
  });
}
window.addEventListener('scroll', followOpenMenus, { passive: true, capture: true });
window.addEventListener('resize', followOpenMenus);

/** Up and down arrows move through the menu's buttons (Escape closes it: the popover does that). */
function moveFocus(menu: HTMLElement, event: KeyboardEvent): void {
  if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
  const buttons = [...menu.querySelectorAll('button')];
  const at = buttons.indexOf(document.activeElement as HTMLButtonElement);
  const next = (at + (event.key === 'ArrowDown' ? 1 : -1) + buttons.length) % buttons.length;
  buttons[next]?.focus();
  event.preventDefault();
}

function renderDetail(detail: HTMLTableRowElement, name: string): void {
  const td = detail.firstElementChild as HTMLTableCellElement;
  td.replaceChildren();
  const c = connections.find((candidate) => candidate.name === name);
  const result = feedback[name];
  if (result) td.append(feedbackNode(result, name));
  const test = tests[name];
  if (test && !test.pending && !test.ok) {
    const box = element('div', { className: 'test-detail-box' });
    box.append(element('div', { className: 'test-detail-text fail', text: testSummary(test) }));
    if (test.remedy) {
      box.append(
        element(
          'div',
          { className: 'test-remedy' },
          element('strong', { text: 'What to do: ' }),
          ...remedyNodes(test.remedy, name),
        ),
      );
    }
    td.append(box);
  }
  if (c?.lastError && (c.status === 'degraded' || c.status === 'reauthorization_required') && !result) {
    const last = element(
      'div',
      { className: 'last-error fail' },
      element('strong', { text: 'Last error: ' }),
      c.lastError.message,
    );
    if (c.lastError.remedy)
      last.append(
        ' ',
        element(
          'span',
          {},
          element('strong', { text: 'What to do: ' }),
          ...remedyNodes(c.lastError.remedy, name),
        ),
      );
    td.append(last);
  }
  detail.hidden = td.childNodes.length === 0;
}

function feedbackNode(result: Feedback, name: string): HTMLElement {
  const box = element('div', {
    className: `row-feedback ${result.pending ? 'pending' : result.ok ? 'ok' : 'fail'}`,
  });
  const icon = result.pending ? '… ' : result.ok ? '✓ ' : '✗ ';
  box.append(
    element(
      'p',
      { className: 'feedback-text' },
      element('span', { className: 'icon', text: icon, attrs: { 'aria-hidden': 'true' } }),
      result.text,
    ),
  );
  if (result.pending) return box;
  if (result.remedy) {
    box.append(
      element(
        'p',
        { className: 'remedy' },
        element('strong', { text: 'What to do: ' }),
        ...remedyNodes(result.remedy, name),
      ),
    );
  }
  // https, or the sandbox's sign-in pages on plain http://localhost (no certificate to trust).
  if (result.link && /^(?:https:\/\/|http:\/\/localhost[:/])/.test(result.link)) {
    box.append(element('p', {}, 'Link for the administrator: ', externalLink(result.link, result.link)));
  }
  if (result.docs?.startsWith('https://')) {
    box.append(element('p', { className: 'docs' }, externalLink(result.docs, 'About this error')));
  }
  if (result.invitation) box.append(invitationNode(name, result.invitation));
  const dismiss = element('button', {
    className: 'dismiss',
    text: '×',
    attrs: { type: 'button', 'aria-label': `Dismiss the message about ${name}` },
  });
  dismiss.addEventListener('click', () => {
    Reflect.deleteProperty(feedback, name);
    const detail = dismiss.closest('tr');
    if (detail) renderDetail(detail, name);
  });
  box.append(dismiss);
  return box;
}

/** An invitation's link with Copy, and Revoke. */
function invitationNode(name: string, invitation: Invitation): HTMLElement {
  const link = element('input', {
    className: 'mono invitation-url',
    attrs: { readonly: '', 'aria-label': `Invitation link for ${name}` },
  });
  link.value = invitation.url;
  const copy = element('button', {
    text: 'Copy',
    attrs: { type: 'button', 'aria-label': `Copy the invitation link for ${name}` },
  });
  copy.addEventListener('click', () => {
    navigator.clipboard.writeText(invitation.url).then(
      () => {
        copy.textContent = 'Copied';
        announce('Copied');
      },
      () => {
        link.select();
        copy.textContent = 'Press Ctrl+C to copy';
      },
    );
  });
  const revoke = element('button', {
    text: 'Revoke',
    className: 'danger',
    attrs: { type: 'button', 'aria-label': `Revoke the invitations for ${name}` },
  });
  revoke.addEventListener('click', () => {
    void (async () => {
      const answer = await call(api(name, '/invitations'), { method: 'DELETE' });
      tell(
        name,
        answer.ok
          ? { ok: true, text: `Open invitations for ${name} are revoked: their links no longer work.` }
          : problemFeedback(answer.problem, 'Could not revoke'),
      );
    })();
  });
  return element('div', { className: 'invitation' }, link, copy, revoke);
}

function connectionRow(c: ConnectionView): HTMLTableRowElement {
  const tr = element('tr', { className: `connection status-row-${c.status}` });
  tr.dataset.connection = c.name;
  const name = element('th', { attrs: { scope: 'row', 'data-label': 'Connection' } }, c.name);
  tr.append(name, cell(c.mailbox, 'Mailbox'), cell(profileText(c), 'Profile'));
  tr.append(element('td', { attrs: { 'data-label': 'Status' } }, badge(c.status)));
  const expiry = element('td', { attrs: { 'data-label': 'Token' } });
  if (c.tokenExpiresOn) expiry.append(timeNode(c.tokenExpiresOn, expiryFormat));
  else
    expiry.append(
      element('span', { className: 'muted', text: c.status === 'disabled' ? 'disabled' : 'none yet' }),
    );
  tr.append(expiry);
  const test = element('td', { className: 'test', attrs: { 'data-label': 'Last test' } });
  const own = tests[c.name];
  const local = own && !own.pending ? own : undefined;
  // The row keeps the last verdict for every admin; this browser's own result has the details.
  const kept =
    c.lastTest && (!local?.testedAt || local.testedAt < c.lastTest.testedAt)
      ? {
          ok: c.lastTest.ok,
          code: c.lastTest.code,
          protocol: c.lastTest.protocol ?? '',
          testedAt: c.lastTest.testedAt,
          details: {},
        }
      : local;
  if (kept) tests[c.name] = kept;
  renderTestCell(test, kept);
  tr.append(test, actionsCell(c));
  return tr;
}

function detailRow(c: ConnectionView): HTMLTableRowElement {
  const detail = element('tr', { className: 'row-detail' });
  detail.dataset.detailFor = c.name;
  detail.append(element('td', { attrs: { colspan: String(COLUMNS) } }));
  return detail;
}

function emptyState(): HTMLTableRowElement {
  const td = element('td', { className: 'empty', attrs: { colspan: String(COLUMNS) } });
  const start = element('a', { text: 'Define your first connection', attrs: { href: '#define-title' } });
  start.addEventListener('click', (event) => {
    event.preventDefault();
    form.querySelector<HTMLInputElement>('input[name=name]')?.focus();
  });
  td.append(
    element('p', { className: 'empty-title', text: 'No connections yet.' }),
    element(
      'p',
      {},
      'A connection is one mailbox the broker keeps a token for. ',
      start,
      ': give it a name, the mailbox and a profile (',
      element('code', { text: 'ews' }),
      ' for Exchange Web Services), save, then click Authorize and sign in as the mailbox.',
    ),
  );
  return element('tr', {}, td);
}

async function load(): Promise<void> {
  const answer = await call<{ connections: ConnectionView[] }>('/api/connections');
  if (!answer.ok) {
    showNotice(answer.problem.detail ?? 'Could not load connections', false);
    return;
  }
  connections = answer.body.connections;
  // Re-rendering the rows must not drop the keyboard user's place.
  const focused = (document.activeElement as HTMLElement | null)?.dataset.focusKey;
  const fresh: Node[] = [];
  if (connections.length === 0) fresh.push(emptyState());
  for (const c of connections) fresh.push(connectionRow(c), detailRow(c));
  rows.replaceChildren(...fresh);
  rows.querySelectorAll<HTMLTableRowElement>('tr.row-detail').forEach((detail) => {
    renderDetail(detail, detail.dataset.detailFor ?? '');
  });
  if (focused) rows.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
  fillSignInFrom();
  void loadReadiness();
}

// ---------------------------------------------------------------------------------------------
// The actions

async function authorize(c: ConnectionView): Promise<void> {
  if (c.grant === 'authorization_code' && !c.signInFrom) {
    window.open(api(c.name, '/authorize'), 'broker-authorize', 'popup,width=520,height=700');
    return;
  }
  const answer = await call<{ signedInAs: string }>(api(c.name, '/authorize'), { method: 'POST' });
  tell(
    c.name,
    answer.ok
      ? { ok: true, text: `${c.name} is authorized (${answer.body.signedInAs}).` }
      : problemFeedback(answer.problem, 'Authorization failed'),
  );
  await load();
}

async function setPassword(c: ConnectionView): Promise<void> {
  const password = window.prompt(
    `Password of ${c.account} (kept only in the secret store; never shown again)`,
  );
  if (!password) return;
  const answer = await call(api(c.name, '/password'), { method: 'PUT', json: { password } });
  tell(
    c.name,
    answer.ok
      ? { ok: true, text: `Password set for ${c.name}. Click Authorize.` }
      : problemFeedback(answer.problem, 'Could not set the password'),
  );
}

async function invite(c: ConnectionView): Promise<void> {
  const answer = await call<Invitation>(api(c.name, '/invitations'), { method: 'POST' });
  if (!answer.ok) {
    tell(c.name, problemFeedback(answer.problem, 'Could not make the invitation'));
    return;
  }
  tell(c.name, {
    ok: true,
    text: `Invitation for ${c.account} to authorize ${c.name}: single use, valid until ${new Date(answer.body.expiresOn).toLocaleString()}. Send them this link:`,
    invitation: answer.body,
  });
}

async function addGraph(c: ConnectionView): Promise<void> {
  const name = window.prompt(
    `Name of the Graph connection for ${c.mailbox} (it signs in through the same sign-in and is tested at once)`,
    `${c.name}-graph`,
  );
  if (!name) return;
  const answer = await call<{ connection: ConnectionView; test?: TestResult }>(api(c.name, '/graph'), {
    method: 'POST',
    json: { name },
  });
  if (!answer.ok) {
    tell(c.name, problemFeedback(answer.problem, 'Could not add the Graph connection'));
    return;
  }
  const { connection: added, test } = answer.body;
  if (test) {
    tests[name] = test;
    keepTests();
  }
  tell(
    c.name,
    added.status === 'authorized'
      ? {
          ok: !test || test.ok,
          text: `Added ${name} (Microsoft Graph) for ${added.mailbox}${test ? `: ${testSummary(test)}` : '.'}`,
        }
      : {
          ok: false,
          text: `Added ${name}, but it has no token yet: ${added.lastError ? added.lastError.message : added.status}.`,
          remedy: added.lastError?.remedy,
        },
  );
  await load();
}

async function refresh(c: ConnectionView): Promise<void> {
  const answer = await call<{ result: string; reason: string }>(api(c.name, '/refresh'), { method: 'POST' });
  tell(
    c.name,
    answer.ok
      ? { ok: true, text: `${c.name}: ${answer.body.result} (${answer.body.reason})` }
      : problemFeedback(answer.problem, 'Refresh failed'),
  );
  await load();
}

async function testConnection(c: ConnectionView): Promise<void> {
  const testCell = rows.querySelector<HTMLTableCellElement>(
    `tr[data-connection="${CSS.escape(c.name)}"] td.test`,
  );
  tests[c.name] = { pending: true, ok: true };
  if (testCell) renderTestCell(testCell, tests[c.name]);
  // The line under the row opens now, while the click is fresh, so the answer fills it in place.
  tell(c.name, { ok: true, pending: true, text: `Testing ${c.name}…` });
  const answer = await call<TestResult>(api(c.name, '/test'), { method: 'POST' });
  const result: TestResult = answer.ok
    ? answer.body
    : {
        ok: false,
        code: answer.problem.code,
        detail: answer.problem.detail,
        remedy: answer.problem.remedy,
        testedAt: new Date().toISOString(),
      };
  tests[c.name] = result;
  keepTests();
  // A failure shows its detail and remedy in that place instead (renderDetail).
  if (result.ok) feedback[c.name] = { ok: true, text: `Tested ${c.name}: ${testSummary(result)}` };
  else Reflect.deleteProperty(feedback, c.name);
  announce(`${c.name}: ${testSummary(result)}${result.remedy ? ` What to do: ${result.remedy}` : ''}`);
  const row = rows.querySelector<HTMLTableRowElement>(`tr[data-connection="${CSS.escape(c.name)}"]`);
  const cellNow = row?.querySelector<HTMLTableCellElement>('td.test');
  if (cellNow) renderTestCell(cellNow, result);
  const detail = rows.querySelector<HTMLTableRowElement>(`tr[data-detail-for="${CSS.escape(c.name)}"]`);
  if (detail) renderDetail(detail, c.name);
}

async function statusChange(c: ConnectionView, action: 'disable' | 'enable'): Promise<void> {
  const answer = await call<ConnectionView>(api(c.name, `/${action}`), { method: 'POST' });
  tell(
    c.name,
    answer.ok
      ? action === 'disable'
        ? {
            ok: true,
            text: `${c.name} is disabled: its token is no longer refreshed or served. Enable turns it back on.`,
          }
        : { ok: true, text: `${c.name} is enabled again (${answer.body.status.replace(/_/g, ' ')}).` }
      : problemFeedback(answer.problem, `Could not ${action} ${c.name}`),
  );
  await load();
}
const disable = (c: ConnectionView) => statusChange(c, 'disable');
const enable = (c: ConnectionView) => statusChange(c, 'enable');

/** The same definition again with `?reset=true`: its secrets go, it returns to `new`. */
function definitionOf(c: ConnectionView): Record<string, unknown> {
  return {
    mailbox: c.mailbox,
    account: c.account,
    profile: c.profile,
    grant: c.grant,
    readers: c.readers,
    description: c.description,
    ...(c.scopes ? { scopes: c.scopes } : {}),
    ...(c.ewsUrl ? { ewsUrl: c.ewsUrl } : {}),
    ...(c.signInFrom ? { signInFrom: c.signInFrom } : {}),
  };
}

async function reset(c: ConnectionView): Promise<void> {
  if (
    !window.confirm(
      `Reset ${c.name}? Its tokens and stored sign-in are deleted, open invitation links stop working, and it must be authorized again.`,
    )
  )
    return;
  const answer = await call(`${api(c.name)}?reset=true`, { method: 'PUT', json: definitionOf(c) });
  Reflect.deleteProperty(tests, c.name);
  keepTests();
  tell(
    c.name,
    answer.ok
      ? { ok: true, text: `${c.name} is reset: it holds no token now. Click Authorize to sign in again.` }
      : problemFeedback(answer.problem, 'Reset failed'),
  );
  await load();
}

async function remove(c: ConnectionView): Promise<void> {
  if (!window.confirm(`Delete ${c.name} and its tokens?`)) return;
  let answer = await call(api(c.name), { method: 'DELETE' });
  if (!answer.ok && answer.problem.code === 'connection_in_use') {
    if (!window.confirm(`${answer.problem.detail ?? ''} Delete them together with ${c.name}?`)) return;
    answer = await call(`${api(c.name)}?withDependants=true`, { method: 'DELETE' });
  }
  if (!answer.ok) {
    tell(c.name, problemFeedback(answer.problem, 'Could not delete'));
    return;
  }
  Reflect.deleteProperty(tests, c.name);
  Reflect.deleteProperty(feedback, c.name);
  keepTests();
  showNotice(`Deleted ${c.name} and its tokens.`, true);
  await load();
}

// ---------------------------------------------------------------------------------------------
// Events: the audit trail in a panel

const eventsPanel = byId('events', HTMLDialogElement);
byId('events-close', HTMLButtonElement).addEventListener('click', () => {
  eventsPanel.close();
});

async function showEvents(c: ConnectionView): Promise<void> {
  byId('events-title', HTMLElement).textContent = `Events of ${c.name}`;
  const list = byId('events-list', HTMLOListElement);
  const state = byId('events-state', HTMLParagraphElement);
  list.replaceChildren();
  state.textContent = 'Loading…';
  if (!eventsPanel.open) eventsPanel.showModal();
  const answer = await call<{ events: AuditEvent[] }>(api(c.name, '/events?limit=50'));
  if (!answer.ok) {
    state.textContent = answer.problem.detail ?? 'Could not load the events.';
    return;
  }
  const events = answer.body.events;
  state.textContent = events.length === 0 ? 'No events yet.' : `${events.length} most recent, newest first.`;
  list.append(
    ...events.map((event) => {
      const change =
        event.fromStatus || event.toStatus ? ` · ${event.fromStatus ?? '–'} → ${event.toStatus ?? '–'}` : '';
      const item = element(
        'li',
        { className: 'event' },
        timeNode(event.at),
        ' ',
        element('strong', { text: event.type }),
        element('span', { className: 'muted', text: ` by ${event.actor}${change}` }),
      );
      if (event.reason)
        item.append(
          element('div', {
            className: 'event-reason',
            text: event.reason + (event.aadsts ? ` (AADSTS${event.aadsts})` : ''),
          }),
        );
      return item;
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Moving to Microsoft Graph: which EWS connections have a working Graph connection, their last
// EWS test, and the days left before Exchange Online turns EWS off.

interface Readiness {
  total: number;
  ready: number;
  daysLeft: number;
  ewsRetirement: string;
  connections: {
    ews: string;
    mailbox: string;
    ready: boolean;
    lastTest: { ok: boolean; code?: string; testedAt: string } | null;
    graph: { name: string; status: string } | null;
  }[];
}

async function loadReadiness(): Promise<void> {
  const section = byId('graph-move', HTMLElement);
  const answer = await call<Readiness>('/api/graph-readiness');
  if (!answer.ok) {
    section.hidden = true;
    return;
  }
  const data = answer.body;
  section.hidden = data.total === 0;
  byId('graph-move-summary', HTMLElement).textContent =
    `${data.ready} of ${data.total} EWS connection${data.total === 1 ? '' : 's'} have a working Microsoft Graph connection · ` +
    `${data.daysLeft} day${data.daysLeft === 1 ? '' : 's'} until Exchange Online turns EWS off (${data.ewsRetirement}).`;
  byId('graph-move-rows', HTMLElement).replaceChildren(
    ...data.connections.map((r) => {
      const tr = element('tr');
      tr.dataset.ews = r.ews;
      const lastTest = element('td', { attrs: { 'data-label': 'Last EWS test' } });
      if (r.lastTest)
        lastTest.append(
          r.lastTest.ok ? '✓ ok · ' : `✗ ${r.lastTest.code ?? 'failed'} · `,
          timeNode(r.lastTest.testedAt),
        );
      else lastTest.append('not tested');
      const ready = cell(
        r.ready ? '✓ ready' : '✗ not yet',
        'Ready',
        `graph-ready ${r.ready ? 'ok' : 'fail'}`,
      );
      tr.append(
        element('th', { attrs: { scope: 'row', 'data-label': 'EWS connection' } }, r.ews),
        cell(r.mailbox, 'Mailbox'),
        lastTest,
        cell(
          r.graph ? `${r.graph.name} (${r.graph.status})` : 'none: use Add the Graph connection',
          'Graph connection',
        ),
        ready,
      );
      return tr;
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// The popup's message: the result of a sign-in

window.addEventListener('message', (event: MessageEvent<AuthorizationMessage | null>) => {
  if (event.origin !== window.location.origin) return;
  const data = event.data;
  if (data?.type !== 'ews-oauth-broker.authorization') return;
  const result: Feedback = {
    ok: data.ok,
    text: data.message + (data.aadsts ? ` (AADSTS${data.aadsts})` : ''),
    remedy: data.remedy,
    link: data.actionUrl,
  };
  if (data.connection) tell(data.connection, result);
  else showNotice(result.text, result.ok);
  void load();
});

// ---------------------------------------------------------------------------------------------
// The define form

const warnings: Record<string, string> = {
  authorization_code: '',
  client_credentials:
    'App-only: the app acts on mailboxes without anyone signing in. Without an Exchange scope (RBAC for Applications or an application access policy) it can read EVERY mailbox in the tenant — limit it to the mailboxes it needs (see the README).',
  password:
    'Legacy password grant: Microsoft discourages it; it fails with MFA, federated accounts and most Conditional Access, and the password is stored (in the secret store only). Use it only for products that can do nothing else, and drop it first.',
};
const grantSelect = inForm('select[name=grant]', HTMLSelectElement);
const signInFrom = inForm('select[name=signInFrom]', HTMLSelectElement);
const result = byId('define-result', HTMLParagraphElement);
function showGrantWarning(): void {
  byId('grant-warning', HTMLElement).textContent = warnings[grantSelect.value] ?? '';
}
grantSelect.addEventListener('change', showGrantWarning);
showGrantWarning();

/** The connections another may sign in through: delegated ones that sign in themselves. */
function fillSignInFrom(): void {
  const chosen = signInFrom.value;
  const sources = connections.filter((c) => c.grant === 'authorization_code' && !c.signInFrom);
  signInFrom.replaceChildren(
    element('option', { text: 'None: it signs in itself', attrs: { value: '' } }),
    ...sources.map((c) => element('option', { text: c.name, attrs: { value: c.name, title: c.account } })),
  );
  signInFrom.value = sources.some((c) => c.name === chosen) ? chosen : '';
}

function say(text: string, ok: boolean): void {
  result.className = `form-result ${ok ? 'ok' : 'fail'}`;
  result.textContent = text;
  announce(text);
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  void save();
});

async function save(): Promise<void> {
  const data = new FormData(form);
  const field = (key: string) => {
    const value = data.get(key);
    return typeof value === 'string' ? value.trim() : '';
  };
  const name = field('name');
  if (!CONNECTION_NAME.test(name)) {
    say(`${name || 'The name'} is not a valid connection name: see the rule under the field.`, false);
    return;
  }
  const existing = connections.find((c) => c.name === name);
  if (
    existing &&
    !window.confirm(
      `A connection named ${name} exists (${existing.mailbox}, ${existing.profile}). Replace its definition?`,
    )
  ) {
    say(`Nothing saved: ${name} is unchanged.`, false);
    return;
  }
  const body: Record<string, unknown> = {
    mailbox: field('mailbox'),
    profile: field('profile'),
    grant: field('grant'),
  };
  if (field('account')) body.account = field('account');
  if (field('ewsUrl')) body.ewsUrl = field('ewsUrl');
  if (field('signInFrom')) body.signInFrom = field('signInFrom');
  if (existing) {
    // The form has no fields for these: keep what the connection had.
    body.readers = existing.readers;
    body.description = existing.description;
  }
  let answer = await call(api(name), { method: 'PUT', json: body });
  if (!answer.ok && answer.problem.code === 'connection_authorized') {
    if (
      window.confirm(`${answer.problem.detail ?? ''} Save anyway and reset it (it must be authorized again)?`)
    )
      answer = await call(`${api(name)}?reset=true`, { method: 'PUT', json: body });
  }
  if (!answer.ok) {
    say(
      `${answer.problem.detail ?? 'Could not save'}${answer.problem.remedy ? ` ${answer.problem.remedy}` : ''}`,
      false,
    );
    return;
  }
  const next = field('grant') === 'password' ? 'Set its password, then click Authorize.' : 'Click Authorize.';
  form.reset();
  showGrantWarning();
  say(`Saved ${name}. ${next}`, true);
  feedback[name] = { ok: true, text: `Saved ${name}. ${next}` };
  await load();
}

load().catch(() => {
  showNotice('Could not load connections', false);
});
// Relative times move on by themselves.
window.setInterval(tick, 30_000);
