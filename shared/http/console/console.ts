/**
 * The admin console's browser script (served as `GET /api/console.js`, see ../console-asset.ts).
 * It reads the page `consolePage` renders (shared/http/pages.ts) and talks to `/api` only. Every
 * text the server sends goes into the page as text nodes: remedies become text, <code> and <a>
 * nodes through `remedyParts`, never markup.
 *
 * Where results go: the one line under the row they concern (see `lineOf`) and, as plain text,
 * one polite live region (`#live`) that screen readers announce. `#notice`, floating at the bottom,
 * is for what concerns no row (the list could not load). Nothing an answer changes may move the
 * page (test/e2e/console-design.test.ts measures it).
 *
 * Beside it: model.ts (the JSON shapes it reads), dom.ts (stateless DOM and fetch helpers),
 * text.ts (pure text, also used by the server's pages).
 */
import {
  api,
  byId,
  call,
  element,
  exactTime,
  expiryFormat,
  externalLink,
  problemFeedback,
  remedyNodes,
  tick,
  timeNode,
} from './dom';
import type {
  AuditEvent,
  AuthorizationMessage,
  ConnectionView,
  Feedback,
  Invitation,
  Question,
  Readiness,
  TestResult,
} from './model';
import { CONNECTION_NAME, spokenText } from './text';

const COLUMNS = 7;

function inForm<T extends HTMLElement>(selector: string, kind: new () => T): T {
  const node = form.querySelector(selector);
  if (!(node instanceof kind)) throw new Error(`${selector} is missing from the form`);
  return node;
}

const rows = byId('rows', HTMLTableSectionElement);
const notice = byId('notice', HTMLDivElement);
const live = byId('live', HTMLDivElement);
const form = byId('define', HTMLFormElement);

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
/** Lines the admin opened with "What to do" or "Details": name → the line's signature. */
const expanded = new Map<string, string>();
/** Lines the admin dismissed that are not a result (a failed test kept from before, a last error). */
const dismissed = new Set<string>();
/**
 * Whether a row may show a kept line (a failed test, a last error): decided when the row is first
 * drawn, and turned on when the admin acts on it. A row whose status another action changed (a
 * source's reset turns its dependants `reauthorization_required`) shows that in its status, and
 * its line at the next page load, instead of growing under rows the admin is reading.
 */
const keptLines = new Map<string, boolean>();
/**
 * Deleted connections keep their place as a struck-out row until dismissed, so the rows below
 * do not jump when the answer arrives: name → the row as it was and its place in the list.
 */
const gone = new Map<string, { view: ConnectionView; index: number }>();
/**
 * Connections being defined (Save, Add the Graph connection) are drawn at the click, in their
 * place, so the answer fills them in instead of pushing the page down. `failed`: the answer was
 * no; the row stays, struck out, with the reason in its line until dismissed.
 */
const arriving = new Map<string, ConnectionView & { failed?: boolean }>();

/** Says it next to the row (kept across reloads until the next result) and to screen readers. */
function tell(name: string, result: Feedback): void {
  feedback[name] = result;
  keptLines.set(name, true);
  expanded.delete(name);
  // Read aloud: the row's line, not a remedy of a dozen lines of PowerShell; "What to do" opens it.
  if (!result.question) {
    announce(spoken(result.text, name, result.remedy));
  }
  redrawLine(name);
}

/**
 * Opens the row's line at the click, while the input is fresh: the answer then takes its place at
 * the same height, so nothing on the page moves when it arrives (layout shift).
 */
function pending(name: string, text: string): void {
  tell(name, { ok: true, pending: true, text });
}

function redrawLine(name: string): void {
  const detail = rows.querySelector<HTMLTableRowElement>(`tr[data-detail-for="${CSS.escape(name)}"]`);
  if (detail) renderDetail(detail, name);
}

/** A line as read aloud: its words, and where the remedy is (never its commands). */
function spoken(text: string, name: string, remedy: string | undefined): string {
  return spokenText(text, name) + (remedy ? ' What to do is under the row.' : '');
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
  // Fixed at the bottom of the window (CONSOLE_STYLE): it covers, it does not push the page down.
  notice.hidden = false;
  notice.className = `box ${ok ? 'ok' : 'fail'}`;
  const close = element('button', {
    className: 'dismiss',
    text: '×',
    attrs: { type: 'button', 'aria-label': 'Dismiss the message' },
  });
  close.addEventListener('click', () => {
    notice.hidden = true;
  });
  notice.replaceChildren(
    element('span', { className: 'icon', text: ok ? '✓ ' : '✗ ', attrs: { 'aria-hidden': 'true' } }),
    text,
    close,
  );
  announce(text);
}

// ---------------------------------------------------------------------------------------------
// Test results

/** A test's verdict in words; in the row's own Last test cell the Profile beside it names the protocol. */
function testSummary(result: TestResult, inCell = false): string {
  const d = result.details ?? {};
  if (result.ok) {
    const count = d.totalCount == null ? '' : ` · ${d.totalCount} ${d.totalCount === 1 ? 'item' : 'items'}`;
    const unread = d.unreadCount == null ? '' : ` (${d.unreadCount} unread)`;
    // A verdict kept in the registry row has no details: it says that the test passed, and when.
    const what = d.folder ? d.folder + count + unread : result.details ? 'Authenticated' : 'passed';
    const protocol = inCell ? '' : `${(result.protocol ?? '').toUpperCase()}: `;
    return `✓ ${protocol}${what}${d.serverVersion && !inCell ? ` · Exchange ${d.serverVersion}` : ''}`;
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
    const text = result.ok ? testSummary(result, true) : `✗ ${result.code ?? 'failed'}`;
    line.title = testSummary(result);
    line.append(text);
    if (result.testedAt) line.append(' · ', timeNode(result.testedAt));
  }
  cell.append(line);
}

// ---------------------------------------------------------------------------------------------
// The rows

/** A status as words: `reauthorization_required` → "reauthorization required". */
function statusWords(status: string): string {
  return status.replace(/_/g, ' ');
}

function badge(status: string): HTMLSpanElement {
  const icons: Record<string, string> = {
    new: '○',
    authorized: '✓',
    degraded: '!',
    reauthorization_required: '✗',
    disabled: '‖',
    deleted: '–',
    saving: '…',
    'not saved': '✗',
  };
  return element(
    'span',
    { className: `badge status status-${status.replace(/\W/g, '_')}` },
    element('span', { className: 'icon', text: icons[status] ?? '•', attrs: { 'aria-hidden': 'true' } }),
    // The one long status, shortened to fit its column; the cell's title has the whole word.
    element('span', {
      className: 'badge-text',
      text: status === 'reauthorization_required' ? 'reauth required' : statusWords(status),
    }),
  );
}

function profileText(c: ConnectionView): string {
  return (
    c.profile +
    (c.grant === 'authorization_code' ? '' : ` · ${c.grant}`) +
    (c.signInFrom ? ` · signs in through ${c.signInFrom}` : '')
  );
}

/**
 * The profile, and under it in smaller type how the connection gets its tokens (a grant other
 * than delegated, the connection it signs in through): both in sight at 1280 px, whole on hover.
 */
function profileCell(c: ConnectionView): HTMLTableCellElement {
  const how = [
    c.grant === 'authorization_code' ? '' : c.grant,
    c.signInFrom ? `via ${c.signInFrom}` : '',
  ].filter(Boolean);
  const td = element(
    'td',
    { className: 'profile', attrs: { 'data-label': 'Profile' } },
    element('span', { className: 'clip', text: c.profile }),
  );
  if (how.length > 0) td.append(element('span', { className: 'clip how', text: how.join(' · ') }));
  td.title = profileText(c);
  return td;
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
  /** Its name for screen readers when "{label} {connection}" would not say it. */
  ariaLabel?: string;
  run: (c: ConnectionView, button: HTMLButtonElement) => Promise<void>;
  danger?: boolean;
}

/** A button named after its connection ("Test connection support-in") for screen readers. */
function actionButton(c: ConnectionView, action: Action, className = ''): HTMLButtonElement {
  const primary = className.includes('primary');
  const button = element('button', {
    text: action.label,
    className: `${className}${action.danger ? ' danger' : ''}`.trim(),
    attrs: { type: 'button', 'aria-label': action.ariaLabel ?? `${action.label} ${c.name}` },
  });
  // The row's main button keeps the keyboard's place when a new status renames it.
  button.dataset.focusKey = primary ? `${c.name}|primary` : `${c.name}|${action.label}`;
  button.addEventListener('click', () => {
    // Busy, not disabled: a disabled button drops the keyboard's focus to the page.
    if (button.getAttribute('aria-disabled') === 'true') return;
    const menu = button.closest<HTMLElement>('[popover]');
    if (menu?.matches(':popover-open')) {
      // Keyboard users keep their place: on the row's More button, which a re-render restores.
      document.querySelector<HTMLElement>(`[popovertarget="${CSS.escape(menu.id)}"]`)?.focus();
      menu.hidePopover();
    }
    button.setAttribute('aria-disabled', 'true');
    void action.run(c, button).finally(() => {
      button.removeAttribute('aria-disabled');
    });
  });
  return button;
}

/** Where the keyboard goes when the element it was on leaves: the row's More button. */
function focusRowMenu(name: string): void {
  rows.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(`${name}|More`)}"]`)?.focus();
}

function actionsFor(c: ConnectionView): { primary: Action; more: Action[] } {
  const delegated = c.grant === 'authorization_code' && !c.signInFrom;
  const all: Action[] = [];
  if (c.status === 'disabled') all.push({ label: 'Enable', run: enable });
  else {
    if (c.grant === 'password') all.push({ label: 'Set password', run: setPassword });
    const source = connections.find((other) => other.name === c.signInFrom);
    if (source && (source.status === 'new' || source.status === 'reauthorization_required'))
      // Its sign-in is the source's: Authorize here signs the source in, which brings this one back.
      all.push({
        label: 'Authorize',
        ariaLabel: `Authorize ${source.name}, which ${c.name} signs in through`,
        run: () => authorizeThroughSource(c, source),
      });
    else all.push({ label: 'Authorize', run: authorize });
    all.push({ label: 'Test connection', run: testConnection });
    if (delegated) all.push({ label: 'Invite', run: invite });
    // Offered until the EWS connection has its Graph connection (the Graph view names it).
    const graph = readiness?.connections.find((entry) => entry.ews === c.name)?.graph;
    if ((c.profile === 'ews' || c.profile === 'ews-shared') && !graph)
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

/**
 * The one line under a row: the latest result, else a failed test kept from before, else the last
 * error of a connection that needs attention. One line high whatever it says (its extras open
 * with "What to do" or "Details"), so an answer replacing the "…" line its click opened moves
 * nothing; only the admin's own clicks make it taller.
 */
function lineOf(name: string): Feedback | undefined {
  const result = feedback[name];
  if (result) return result;
  if (!keptLines.get(name)) return undefined;
  const test = tests[name];
  if (test && !test.pending && !test.ok) {
    // A verdict from the registry row (another browser's test) has its code but not its words.
    const text = test.detail
      ? `Test failed: ${testSummary(test).slice(2)}`
      : `Test failed: ${test.code ?? 'failed'}. Test connection again to see why and what to do.`;
    const line = { ok: false, text, remedy: test.remedy };
    if (!dismissed.has(`${name}|${line.text}`)) return line;
  }
  const c = connections.find((candidate) => candidate.name === name);
  if (c?.lastError && (c.status === 'degraded' || c.status === 'reauthorization_required')) {
    const line = { ok: false, text: `Last error: ${c.lastError.message}`, remedy: c.lastError.remedy };
    if (!dismissed.has(`${name}|${line.text}`)) return line;
  }
  return undefined;
}

function renderDetail(detail: HTMLTableRowElement, name: string): void {
  const td = detail.firstElementChild as HTMLTableCellElement;
  const line = lineOf(name);
  if (!line) td.replaceChildren();
  else td.replaceChildren(line.question ? questionNode(line, line.question, name) : feedbackNode(line, name));
  detail.hidden = !line;
}

const signature = (line: Feedback) => `${line.text}|${line.remedy ?? ''}`;

function feedbackNode(line: Feedback, name: string): HTMLElement {
  const box = element('div', {
    className: `row-feedback ${line.pending ? 'pending' : line.ok ? 'ok' : 'fail'}`,
  });
  const head = element(
    'div',
    { className: 'feedback-head' },
    element('span', {
      className: 'icon',
      text: line.pending ? '…' : line.ok ? '✓' : '✗',
      attrs: { 'aria-hidden': 'true' },
    }),
    element('span', { className: 'feedback-text', text: line.text, attrs: { title: line.text } }),
  );
  box.append(head);
  if (line.pending) return box;

  const more = element('div', { className: 'feedback-more', attrs: { id: `more-${name}` } });
  const whole = () => element('p', { className: 'feedback-full', text: line.text });
  if (line.remedy) {
    more.append(
      element(
        'p',
        { className: 'remedy' },
        element('strong', { text: 'What to do: ' }),
        ...remedyNodes(line.remedy, name),
      ),
    );
  }
  // https, or the sandbox's sign-in pages on plain http://localhost (no certificate to trust).
  if (line.link && /^(?:https:\/\/|http:\/\/localhost[:/])/.test(line.link)) {
    more.append(element('p', {}, 'Link for the administrator: ', externalLink(line.link, line.link)));
  }
  if (line.docs?.startsWith('https://')) {
    more.append(element('p', { className: 'docs' }, externalLink(line.docs, 'About this error')));
  }
  if (line.invitation) {
    head.append(copyButton(name, line.invitation));
    more.append(invitationNode(name, line.invitation));
  }
  if (line.offer) {
    const offer = line.offer;
    const button = element('button', {
      text: offer.text,
      className: 'danger',
      attrs: { type: 'button', 'aria-label': offer.label },
    });
    button.addEventListener('click', () => void offer.run());
    head.append(button);
  }
  const addToggle = () => {
    const open = expanded.get(name) === signature(line);
    const label = line.remedy ? 'What to do' : 'Details';
    const toggle = element('button', {
      className: 'toggle',
      text: `${label} ${open ? '▴' : '▾'}`,
      attrs: {
        type: 'button',
        'aria-expanded': String(open),
        'aria-controls': more.id,
        'aria-label': `${label} about ${name}`,
      },
    });
    toggle.addEventListener('click', () => {
      if (expanded.get(name) === signature(line)) expanded.delete(name);
      else expanded.set(name, signature(line));
      redrawLine(name);
      rows
        .querySelector<HTMLElement>(`#${CSS.escape(more.id)}`)
        ?.previousElementSibling?.querySelector<HTMLElement>('button.toggle')
        ?.focus();
    });
    head.insertBefore(toggle, dismiss);
    more.hidden = !open;
    box.append(more);
  };
  const dismiss = element('button', {
    className: 'dismiss',
    text: '×',
    attrs: { type: 'button', 'aria-label': `Dismiss the message about ${name}` },
  });
  dismiss.addEventListener('click', () => {
    if (feedback[name] === line) Reflect.deleteProperty(feedback, name);
    else dismissed.add(`${name}|${line.text}`);
    expanded.delete(name);
    if (gone.delete(name) || arriving.delete(name)) {
      drawRows();
      drawReadiness();
    } else {
      redrawLine(name);
      focusRowMenu(name);
    }
  });
  head.append(dismiss);
  const extras = more.childNodes.length > 0;
  if (extras) {
    more.prepend(whole());
    addToggle();
  }
  // The whole text under the line only when the line cuts it, and "Details" only when there is
  // more to say: known once laid out, before it is painted.
  const text = head.querySelector<HTMLElement>('.feedback-text');
  window.requestAnimationFrame(() => {
    if (!box.isConnected || !text) return;
    const cut = text.scrollWidth > text.clientWidth || text.scrollHeight > text.clientHeight;
    if (extras && !cut) more.querySelector('.feedback-full')?.remove();
    if (!extras && cut && !more.isConnected) {
      more.append(whole());
      addToggle();
    }
  });
  return box;
}

/** A question in the row's line: its words whole, a field if it needs a value, then OK or Cancel. */
function questionNode(line: Feedback, question: Question, name: string): HTMLElement {
  const box = element('form', { className: 'row-feedback question' });
  box.append(element('p', { className: 'question-text', text: line.text }));
  let input: HTMLInputElement | undefined;
  if (question.field) {
    const id = `question-${name}`;
    input = element('input', {
      attrs: {
        id,
        name: 'answer',
        type: question.field.type,
        required: '',
        autocomplete: question.field.autocomplete,
        spellcheck: 'false',
      },
    });
    input.value = question.field.value ?? '';
    box.append(element('label', { text: question.field.label, attrs: { for: id } }), input);
  }
  const confirm = element('button', {
    text: question.confirm.text,
    className: question.confirm.danger ? 'danger' : 'primary',
    attrs: { type: 'submit', 'aria-label': question.confirm.label },
  });
  const cancel = element('button', {
    text: 'Cancel',
    attrs: { type: 'button', 'aria-label': question.cancelLabel },
  });
  const withdraw = () => {
    Reflect.deleteProperty(feedback, name);
    redrawLine(name);
    focusRowMenu(name);
  };
  cancel.addEventListener('click', withdraw);
  // Escape cancels, as it closes the menu the question came from.
  box.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') withdraw();
  });
  box.addEventListener('submit', (event) => {
    event.preventDefault();
    // The question's line is about to give way to the answer's: the keyboard waits on the row.
    focusRowMenu(name);
    void question.run(input?.value ?? '');
  });
  box.append(element('div', { className: 'question-actions' }, confirm, cancel));
  // Where the keyboard goes next: after the browser has drawn the line.
  window.setTimeout(() => {
    (input ?? confirm).focus();
  }, 0);
  return box;
}

function copyButton(name: string, invitation: Invitation): HTMLButtonElement {
  const copy = element('button', {
    text: 'Copy link',
    attrs: { type: 'button', 'aria-label': `Copy the invitation link for ${name}` },
  });
  copy.addEventListener('click', () => {
    navigator.clipboard.writeText(invitation.url).then(
      () => {
        copy.textContent = 'Copied';
        announce('Copied');
      },
      () => {
        // No clipboard (plain http, or refused): the link shows, selected for Ctrl+C.
        expanded.set(name, signature(feedback[name] ?? { ok: true, text: '' }));
        redrawLine(name);
        rows
          .querySelector<HTMLInputElement>(`tr[data-detail-for="${CSS.escape(name)}"] input.invitation-url`)
          ?.select();
        announce('Press Ctrl+C to copy the selected link');
      },
    );
  });
  return copy;
}

/** An invitation's link, to read or select, and Revoke. */
function invitationNode(name: string, invitation: Invitation): HTMLElement {
  const link = element('input', {
    className: 'mono invitation-url',
    attrs: { readonly: '', 'aria-label': `Invitation link for ${name}` },
  });
  link.value = invitation.url;
  const revoke = element('button', {
    text: 'Revoke',
    className: 'danger',
    attrs: { type: 'button', 'aria-label': `Revoke the invitations for ${name}` },
  });
  revoke.addEventListener('click', () => {
    void (async () => {
      pending(name, `Revoking the invitations for ${name}…`);
      const answer = await call(api(name, '/invitations'), { method: 'DELETE' });
      tell(
        name,
        answer.ok
          ? { ok: true, text: `Open invitations for ${name} are revoked: their links no longer work.` }
          : problemFeedback(answer.problem, 'Could not revoke'),
      );
    })();
  });
  return element('div', { className: 'invitation' }, link, revoke);
}

function connectionRow(c: ConnectionView): HTMLTableRowElement {
  const tr = element('tr', { className: `connection status-row-${c.status}` });
  tr.dataset.connection = c.name;
  const name = element(
    'th',
    { attrs: { scope: 'row', 'data-label': 'Connection', title: c.name } },
    element('span', { className: 'clip', text: c.name }),
  );
  tr.append(name, cell(c.mailbox, 'Mailbox'), profileCell(c));
  const status = element('td', { attrs: { 'data-label': 'Status' } }, badge(c.status));
  status.title = statusWords(c.status) + (c.lastError ? `. Last error: ${c.lastError.message}` : '');
  tr.append(status);
  const expiry = element('td', { attrs: { 'data-label': 'Token' } });
  if (c.tokenExpiresOn) expiry.append(timeNode(c.tokenExpiresOn, expiryFormat));
  else
    expiry.append(
      element('span', { className: 'muted', text: c.status === 'disabled' ? 'disabled' : 'none yet' }),
    );
  tr.append(expiry);
  const test = element('td', { className: 'test', attrs: { 'data-label': 'Last test' } });
  const own = tests[c.name];
  // The row's verdict is the truth for every admin: none means never tested, or a reset threw the
  // tokens and their verdict away. This browser's own copy of the same test adds its details (the
  // Inbox figures); the two are written a moment apart.
  const same =
    own?.testedAt !== undefined &&
    c.lastTest !== null &&
    own.ok === c.lastTest.ok &&
    Math.abs(Date.parse(own.testedAt) - Date.parse(c.lastTest.testedAt)) < 60_000;
  const kept: TestResult | undefined = own?.pending
    ? own
    : !c.lastTest
      ? undefined
      : same
        ? own
        : {
            ok: c.lastTest.ok,
            code: c.lastTest.code,
            protocol: c.lastTest.protocol ?? '',
            testedAt: c.lastTest.testedAt,
          };
  if (kept) tests[c.name] = kept;
  else Reflect.deleteProperty(tests, c.name);
  renderTestCell(test, kept);
  tr.append(test, actionsCell(c));
  return tr;
}

/**
 * A row that is not a listed connection: one being saved (no actions yet), one the broker refused
 * to save, or one deleted; the last two struck out until the admin dismisses them.
 */
function placeholderRow(c: ConnectionView, state: 'arriving' | 'not saved' | 'deleted'): HTMLTableRowElement {
  const tr = element('tr', { className: `connection ${state === 'arriving' ? 'arriving' : 'deleted'}` });
  if (state === 'deleted') tr.dataset.deleted = c.name;
  else tr.dataset.arriving = c.name;
  tr.append(
    element(
      'th',
      { attrs: { scope: 'row', 'data-label': 'Connection' } },
      state === 'arriving' ? c.name : element('s', { text: c.name }),
    ),
    cell(c.mailbox, 'Mailbox'),
    profileCell(c),
    element('td', { attrs: { 'data-label': 'Status' } }, badge(state === 'arriving' ? 'saving' : state)),
    cell(state === 'arriving' ? '' : 'none', 'Token', 'muted'),
    cell('', 'Last test'),
  );
  const actions = element('td', { className: 'actions', attrs: { 'data-label': 'Actions' } });
  if (state === 'arriving') {
    // Holds the height the row's buttons will have (a card on a phone grows by it otherwise).
    actions.append(
      element('button', {
        text: 'Authorize',
        className: 'primary placeholder',
        attrs: { type: 'button', disabled: '', tabindex: '-1', 'aria-hidden': 'true' },
      }),
    );
  } else {
    const dismiss = element('button', {
      text: 'Dismiss',
      attrs: { type: 'button', 'aria-label': `Dismiss ${state} ${c.name}` },
    });
    dismiss.dataset.focusKey = `${c.name}|Dismiss`;
    dismiss.addEventListener('click', () => {
      const at = [...rows.querySelectorAll('tr.connection')].indexOf(tr);
      gone.delete(c.name);
      arriving.delete(c.name);
      Reflect.deleteProperty(feedback, c.name);
      drawRows();
      drawReadiness();
      // The keyboard goes on to the row that took its place, or the one before, or the table.
      const left = [...rows.querySelectorAll<HTMLElement>('tr.connection')];
      const next = left[Math.min(at, left.length - 1)];
      (
        next?.querySelector<HTMLElement>('[data-focus-key$="|More"], [data-focus-key$="|Dismiss"]') ??
        rows.closest<HTMLElement>('.table-wrap')
      )?.focus();
    });
    actions.append(dismiss);
  }
  tr.append(actions);
  return tr;
}

/** Draws a connection being defined in its place now, at the click (see `arriving`). */
function arrive(view: ConnectionView): void {
  arriving.set(view.name, view);
  if (!keptLines.has(view.name)) keptLines.set(view.name, false);
  drawRows();
  drawReadiness();
}

/** The broker said no: the arriving row stays, struck out, until dismissed. */
function refused(name: string): void {
  const view = arriving.get(name);
  if (!view) return;
  arriving.set(name, { ...view, failed: true });
  drawRows();
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

/** `keepGone`: a connection that is no longer listed keeps its place, struck out (see `gone`). */
async function load(keepGone = false): Promise<void> {
  // Both at once, drawn in the same frame: the Graph view appearing later would push the form down.
  const [answer, ready] = await Promise.all([
    call<{ connections: ConnectionView[] }>('/api/connections'),
    call<Readiness>('/api/graph-readiness'),
  ]);
  readiness = ready.ok ? ready.body : undefined;
  if (!answer.ok) {
    document.documentElement.classList.add('drawn');
    // Says what the page could not do; a row's line already says what its own action met.
    showNotice(
      `The list of connections was not updated: ${answer.problem.detail ?? 'the broker answered with an error.'}`,
      false,
    );
    return;
  }
  const listed = new Set(answer.body.connections.map((c) => c.name));
  if (keepGone)
    connections.forEach((c, index) => {
      if (!listed.has(c.name) && !gone.has(c.name)) gone.set(c.name, { view: c, index });
    });
  connections = answer.body.connections;
  settleNextSteps();
  drawRows();
  drawReadiness();
}

function drawRows(): void {
  // Re-rendering the rows must not drop the keyboard user's place.
  const focused = (document.activeElement as HTMLElement | null)?.dataset.focusKey;
  type Shown = { view: ConnectionView; state: 'listed' | 'arriving' | 'not saved' | 'deleted' };
  const shown: Shown[] = connections.map((view) => ({ view, state: 'listed' }));
  for (const [name, view] of arriving) {
    if (connections.some((c) => c.name === name)) {
      if (!view.failed) arriving.delete(name);
      continue;
    }
    // In the broker's order (by name), where the answer will put it.
    const at = shown.findIndex((s) => s.view.name.localeCompare(name) > 0);
    shown.splice(at === -1 ? shown.length : at, 0, { view, state: view.failed ? 'not saved' : 'arriving' });
  }
  for (const [name, { view, index }] of gone) {
    if (connections.some((c) => c.name === name)) gone.delete(name);
    else shown.splice(Math.min(index, shown.length), 0, { view, state: 'deleted' });
  }
  for (const c of connections) {
    if (keptLines.has(c.name)) continue;
    keptLines.set(c.name, true);
    keptLines.set(c.name, lineOf(c.name) !== undefined);
  }
  const fresh: Node[] = [];
  if (shown.length === 0) fresh.push(emptyState());
  for (const { view, state } of shown)
    fresh.push(state === 'listed' ? connectionRow(view) : placeholderRow(view, state), detailRow(view));
  rows.replaceChildren(...fresh);
  rows.querySelectorAll<HTMLTableRowElement>('tr.row-detail').forEach((detail) => {
    renderDetail(detail, detail.dataset.detailFor ?? '');
  });
  if (focused) rows.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
  fillSignInFrom();
  document.documentElement.classList.add('drawn');
}

// ---------------------------------------------------------------------------------------------
// The actions

async function authorize(c: ConnectionView): Promise<void> {
  if (c.grant === 'authorization_code' && !c.signInFrom) {
    const popup = window.open(api(c.name, '/authorize'), 'broker-authorize', 'popup,width=520,height=700');
    if (!popup) {
      tell(c.name, {
        ok: false,
        text: `The browser blocked the sign-in window for ${c.name}.`,
        remedy: 'Allow pop-ups for this page in the address bar, then click Authorize again.',
      });
      return;
    }
    pending(c.name, `Signing in ${c.name} in the sign-in window…`);
    signingIn = c.name;
    watchSignIn(popup, c.name);
    return;
  }
  pending(c.name, `Authorizing ${c.name}…`);
  const answer = await call<{ signedInAs: string }>(api(c.name, '/authorize'), { method: 'POST' });
  tell(
    c.name,
    answer.ok
      ? { ok: true, text: `${c.name} is authorized (${answer.body.signedInAs}).` }
      : problemFeedback(answer.problem, 'Authorization failed'),
  );
  await load();
}

/** Dependants waiting for their source's sign-in in the window: dependant → source. */
const waitingOn = new Map<string, string>();

async function authorizeThroughSource(c: ConnectionView, source: ConnectionView): Promise<void> {
  waitingOn.set(c.name, source.name);
  pending(c.name, `Authorizing ${source.name}, which ${c.name} signs in through…`);
  await authorize(source);
  // A source that signs in without a window (password) has answered by now.
  if (source.grant !== 'authorization_code') settleDependants(source.name);
}

/** The source's answer, told to the dependants that waited for it. */
function settleDependants(source: string): void {
  const answer = feedback[source];
  if (!answer || answer.pending) return;
  for (const [dependant, waitedOn] of waitingOn) {
    if (waitedOn !== source) continue;
    waitingOn.delete(dependant);
    tell(
      dependant,
      answer.ok
        ? { ok: true, text: `${source} is authorized: ${dependant} signs in through it again.` }
        : { ...answer, text: `${source} was not authorized: ${answer.text}` },
    );
  }
}

/** The connection whose sign-in the window shows now (one window, named `broker-authorize`). */
let signingIn: string | undefined;

/** A sign-in window closed without an answer (the admin closed it) ends its "…" line. */
function watchSignIn(popup: Window, name: string): void {
  const timer = window.setInterval(() => {
    if (!popup.closed) return;
    window.clearInterval(timer);
    // The callback page posts its message, then closes: give the message time to land first.
    window.setTimeout(() => {
      if (feedback[name]?.pending) {
        tell(name, {
          ok: false,
          text: `The sign-in window was closed before ${name} was authorized. Click Authorize to try again.`,
        });
        settleDependants(name);
      }
    }, 1000);
  }, 500);
}

async function setPassword(c: ConnectionView): Promise<void> {
  tell(c.name, {
    ok: true,
    text: `The password of ${c.account} for the legacy password grant: kept only in the secret store, never shown again.`,
    question: {
      field: { label: `Password of ${c.account}`, type: 'password', autocomplete: 'new-password' },
      confirm: { text: 'Set password', label: `Set the password of ${c.name}` },
      cancelLabel: `Cancel setting the password of ${c.name}`,
      run: async (password) => {
        pending(c.name, `Setting the password of ${c.name}…`);
        const answer = await call(api(c.name, '/password'), { method: 'PUT', json: { password } });
        tell(
          c.name,
          answer.ok
            ? c.status === 'new'
              ? { ok: true, text: `Password set for ${c.name}. Click Authorize.`, nextStep: true }
              : { ok: true, text: `Password set for ${c.name}.` }
            : problemFeedback(answer.problem, 'Could not set the password'),
        );
      },
    },
  });
  return Promise.resolve();
}

async function invite(c: ConnectionView): Promise<void> {
  pending(c.name, `Making an invitation link for ${c.name}…`);
  const answer = await call<Invitation>(api(c.name, '/invitations'), { method: 'POST' });
  if (!answer.ok) {
    tell(c.name, problemFeedback(answer.problem, 'Could not make the invitation'));
    return;
  }
  tell(c.name, {
    ok: true,
    text: `Invitation for ${c.account} to authorize ${c.name}: single use, valid until ${exactTime(answer.body.expiresOn)}. Copy the link and send it to them.`,
    invitation: answer.body,
  });
}

/** `wanted` within the 48 characters a name may have, or with `-2`, `-3`… when it is taken. */
function freeName(wanted: string): string {
  const taken = new Set(connections.map((c) => c.name));
  const within = (text: string, room: number) => text.slice(0, room).replace(/-+$/, '');
  if (!taken.has(within(wanted, 48))) return within(wanted, 48);
  for (let suffix = 2; ; suffix++) {
    const candidate = `${within(wanted, 47 - String(suffix).length)}-${String(suffix)}`;
    if (!taken.has(candidate)) return candidate;
  }
}

async function addGraph(c: ConnectionView): Promise<void> {
  tell(c.name, {
    ok: true,
    text: `A Microsoft Graph connection for ${c.mailbox}: it signs in through the same sign-in as ${c.name} and is tested at once.`,
    question: {
      field: {
        label: 'Name of the Graph connection',
        type: 'text',
        value: freeName(`${c.name}-graph`),
        autocomplete: 'off',
      },
      confirm: { text: 'Add', label: `Add the Graph connection of ${c.name}` },
      cancelLabel: `Cancel adding a Graph connection for ${c.name}`,
      run: (name) => addGraphNamed(c, name.trim()),
    },
  });
  return Promise.resolve();
}

async function addGraphNamed(c: ConnectionView, name: string): Promise<void> {
  const appOnly = c.grant === 'client_credentials';
  arrive({
    ...c,
    name,
    profile: c.profile === 'ews-shared' ? 'graph-mail-shared' : 'graph-mail',
    grant: appOnly ? c.grant : 'authorization_code',
    signInFrom: appOnly ? undefined : (c.signInFrom ?? c.name),
  });
  pending(c.name, `Adding ${name} and testing it…`);
  const answer = await call<{ connection: ConnectionView; test?: TestResult }>(api(c.name, '/graph'), {
    method: 'POST',
    json: { name },
  });
  if (!answer.ok) {
    refused(name);
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
      : added.status === 'new'
        ? {
            ok: true,
            text: `Added ${name} (Microsoft Graph). It signs in through ${c.name}: authorize ${c.name} and ${name} gets its token.`,
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
  pending(c.name, `Refreshing ${c.name}…`);
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
  const cellOf = () =>
    rows.querySelector<HTMLTableCellElement>(`tr[data-connection="${CSS.escape(c.name)}"] td.test`);
  const before = tests[c.name];
  tests[c.name] = { pending: true, ok: true };
  const testCell = cellOf();
  if (testCell) renderTestCell(testCell, tests[c.name]);
  // The line under the row opens now, while the click is fresh, so the answer fills it in place.
  tell(c.name, { ok: true, pending: true, text: `Testing ${c.name}…` });
  const answer = await call<TestResult>(api(c.name, '/test'), { method: 'POST' });
  if (!answer.ok) {
    // No verdict on the mailbox (the broker refused to test, or could not be reached): the last
    // verdict stays in its column, and the line says why nothing was tested.
    if (before) tests[c.name] = before;
    else Reflect.deleteProperty(tests, c.name);
    const cell = cellOf();
    if (cell) renderTestCell(cell, before);
    tell(c.name, problemFeedback(answer.problem, `Could not test ${c.name}`));
    return;
  }
  const result = answer.body;
  tests[c.name] = result;
  keepTests();
  // A failure shows its detail and remedy in that place instead (lineOf), even if the admin
  // dismissed the same failure before.
  if (result.ok) feedback[c.name] = { ok: true, text: `Tested ${c.name}: ${testSummary(result)}` };
  else Reflect.deleteProperty(feedback, c.name);
  for (const key of dismissed) if (key.startsWith(`${c.name}|`)) dismissed.delete(key);
  expanded.delete(c.name);
  announce(`${c.name}: ${spoken(testSummary(result), c.name, result.remedy)}`);
  const cellNow = cellOf();
  if (cellNow) renderTestCell(cellNow, result);
  redrawLine(c.name);
  // The Graph view shows each EWS connection's last test.
  const ready = await call<Readiness>('/api/graph-readiness');
  if (ready.ok) {
    readiness = ready.body;
    drawReadiness();
  }
}

async function statusChange(c: ConnectionView, action: 'disable' | 'enable'): Promise<void> {
  pending(c.name, `${action === 'disable' ? 'Disabling' : 'Enabling'} ${c.name}…`);
  const answer = await call<ConnectionView>(api(c.name, `/${action}`), { method: 'POST' });
  tell(
    c.name,
    answer.ok
      ? action === 'disable'
        ? {
            ok: true,
            text: `${c.name} is disabled: its token is no longer refreshed or served. Enable turns it back on.`,
          }
        : { ok: true, text: `${c.name} is enabled again (${statusWords(answer.body.status)}).` }
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

/** The connections that sign in through this one, as the admin last loaded them. */
function dependantsOf(c: ConnectionView): string[] {
  return connections.filter((other) => other.signInFrom === c.name).map((other) => other.name);
}

const andList = (names: string[]) =>
  names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} and ${names.at(-1) ?? ''}`;

async function reset(c: ConnectionView): Promise<void> {
  const dependants = dependantsOf(c);
  const withThem =
    dependants.length === 0
      ? ''
      : ` ${andList(dependants)} ${dependants.length === 1 ? 'signs' : 'sign'} in through it and ${dependants.length === 1 ? 'loses its token' : 'lose their tokens'} until it is.`;
  const password = c.grant === 'password';
  tell(c.name, {
    ok: false,
    text: `Reset ${c.name}? Its tokens and stored sign-in${password ? ', its stored password too,' : ''} are deleted, open invitation links stop working, and it must be authorized again.${withThem}`,
    question: {
      confirm: { text: 'Reset', label: `Reset ${c.name} now`, danger: true },
      cancelLabel: `Cancel the reset of ${c.name}`,
      run: async () => {
        pending(c.name, `Resetting ${c.name}…`);
        const answer = await call(`${api(c.name)}?reset=true`, { method: 'PUT', json: definitionOf(c) });
        Reflect.deleteProperty(tests, c.name);
        keepTests();
        tell(
          c.name,
          answer.ok
            ? {
                ok: true,
                text: `${c.name} is reset: it holds no token now. ${password ? 'Set its password, then click Authorize.' : 'Click Authorize to sign in again.'}`,
              }
            : problemFeedback(answer.problem, 'Reset failed'),
        );
        // A dependant's line from before (a passed test) would contradict its new status; a line
        // that is there already changes its words at the same height, none is added.
        if (answer.ok)
          for (const dependant of dependants)
            if (feedback[dependant])
              tell(dependant, {
                ok: false,
                text: `${dependant} needs ${c.name} authorized again: ${c.name} was reset.`,
              });
        await load();
      },
    },
  });
  return Promise.resolve();
}

async function remove(c: ConnectionView): Promise<void> {
  // The broker deletes a connection others sign in through only together with them: say so first.
  const dependants = dependantsOf(c);
  tell(c.name, {
    ok: false,
    text:
      dependants.length === 0
        ? `Delete ${c.name} and its tokens? Consumers reading its token lose it now.`
        : `Delete ${c.name} and its tokens? ${andList(dependants)} ${dependants.length === 1 ? 'signs' : 'sign'} in through it and ${dependants.length === 1 ? 'is' : 'are'} deleted with it; consumers reading their tokens lose them now.`,
    question: {
      confirm:
        dependants.length === 0
          ? { text: 'Delete', label: `Delete ${c.name} now`, danger: true }
          : {
              text: `Delete all ${dependants.length + 1}`,
              label: `Delete ${c.name} and ${andList(dependants)} now`,
              danger: true,
            },
      cancelLabel: `Cancel deleting ${c.name}`,
      run: () => deleteConnection(c, dependants.length > 0),
    },
  });
  return Promise.resolve();
}

async function deleteConnection(c: ConnectionView, withDependants: boolean): Promise<void> {
  pending(c.name, `Deleting ${c.name}…`);
  const answer = await call(`${api(c.name)}${withDependants ? '?withDependants=true' : ''}`, {
    method: 'DELETE',
  });
  if (!answer.ok) {
    const inUse = answer.problem.code === 'connection_in_use';
    tell(c.name, {
      ...problemFeedback(answer.problem, 'Could not delete'),
      ...(inUse
        ? {
            offer: {
              text: 'Delete them too',
              label: `Delete ${c.name} and the connections that sign in through it`,
              run: () => deleteConnection(c, true),
            },
          }
        : {}),
    });
    return;
  }
  Reflect.deleteProperty(tests, c.name);
  keepTests();
  tell(c.name, {
    ok: true,
    text: `Deleted ${c.name} and its tokens${withDependants ? ', and the connections that signed in through it' : ''}.`,
  });
  // Their lines say so too, in place of what they said before (a line is never added: see lineOf).
  for (const dependant of withDependants ? dependantsOf(c) : [])
    if (feedback[dependant]) tell(dependant, { ok: true, text: `Deleted ${dependant} with ${c.name}.` });
  await load(true);
  rows.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(`${c.name}|Dismiss`)}"]`)?.focus();
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

type ReadinessRow = Readiness['connections'][number];
let readiness: Readiness | undefined;
/** The rows last drawn, so a deleted connection keeps its place there too. */
let readinessShown: ReadinessRow[] = [];

const isEws = (profile: string) => profile === 'ews' || profile === 'ews-shared';

/** Like the rows above it: a connection being defined is drawn at once, a deleted one stays put. */
function drawReadiness(): void {
  const section = byId('graph-move', HTMLElement);
  const data = readiness;
  if (!data) {
    section.hidden = true;
    return;
  }
  const shown: (ReadinessRow & { deleted?: boolean })[] = [...data.connections];
  for (const [name, view] of arriving) {
    if (!isEws(view.profile) || shown.some((r) => r.ews === name)) continue;
    // The broker lists those not ready first, by name (shared/connections/graph-move.ts).
    const at = shown.findIndex((r) => r.ready || r.ews.localeCompare(name) > 0);
    const row = { ews: name, mailbox: view.mailbox, ready: false, lastTest: null, graph: null };
    shown.splice(at === -1 ? shown.length : at, 0, row);
  }
  readinessShown.forEach((row, index) => {
    if (gone.has(row.ews) && !shown.some((r) => r.ews === row.ews))
      shown.splice(Math.min(index, shown.length), 0, { ...row, deleted: true });
  });
  readinessShown = shown;
  section.hidden = shown.length === 0;
  byId('graph-move-summary', HTMLElement).textContent =
    `${data.ready} of ${data.total} EWS connection${data.total === 1 ? ' has' : 's have'} a working Microsoft Graph connection · ` +
    `${data.daysLeft} day${data.daysLeft === 1 ? '' : 's'} until Exchange Online turns EWS off (${data.ewsRetirement}). ` +
    'Add the Graph connection, in an EWS row’s More menu, makes one that signs in through it.';
  byId('graph-move-rows', HTMLElement).replaceChildren(
    ...shown.map((r) => {
      const tr = element('tr', { className: r.deleted ? 'deleted' : '' });
      tr.dataset.ews = r.ews;
      const lastTest = element('td', { attrs: { 'data-label': 'Last EWS test' } });
      if (r.lastTest)
        lastTest.append(
          r.lastTest.ok ? '✓ ok · ' : `✗ ${r.lastTest.code ?? 'failed'} · `,
          timeNode(r.lastTest.testedAt),
        );
      else lastTest.append('not tested');
      const ready = r.deleted
        ? cell('deleted', 'Ready')
        : cell(r.ready ? '✓ ready' : '✗ not yet', 'Ready', `graph-ready ${r.ready ? 'ok' : 'fail'}`);
      tr.append(
        element('th', { attrs: { scope: 'row', 'data-label': 'EWS connection' } }, r.ews),
        cell(r.mailbox, 'Mailbox'),
        lastTest,
        cell(r.graph ? `${r.graph.name} (${r.graph.status})` : 'none yet', 'Graph connection'),
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
  // A refusal the broker cannot tie to a connection (its sign-in state was not valid) still ends
  // the sign-in this console started: the window is shared, so there is one at a time.
  const name = data.connection ?? signingIn;
  signingIn = undefined;
  if (name) {
    tell(name, result);
    settleDependants(name);
  } else showNotice(result.text, result.ok);
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
  // Delegated and password connections that sign in themselves (README "One sign-in, several connections").
  const sources = connections.filter(
    (c) => (c.grant === 'authorization_code' || c.grant === 'password') && !c.signInFrom,
  );
  signInFrom.replaceChildren(
    element('option', { text: 'None: it signs in itself', attrs: { value: '' } }),
    ...sources.map((c) => element('option', { text: c.name, attrs: { value: c.name, title: c.account } })),
  );
  signInFrom.value = sources.some((c) => c.name === chosen) ? chosen : '';
}

/** The connection whose next step ("Click Authorize") the form's answer names, while it is new. */
let formNextStepFor: string | undefined;

function say(text: string, ok: boolean, nextStepFor?: string): void {
  result.className = `form-result ${ok ? 'ok' : 'fail'}`;
  result.textContent = text;
  formNextStepFor = nextStepFor;
  announce(text);
  // The page grew above the form (a new row): the answer stays where the eye is, by Save.
  result.scrollIntoView({ block: 'nearest' });
}

/**
 * "Click Authorize" is a next step only while the connection is new: once it is authorized (its
 * source signed in, say) or gone, the line says so in place, at the same height.
 */
function settleNextSteps(): void {
  for (const [name, line] of Object.entries(feedback)) {
    if (!line.nextStep) continue;
    const c = connections.find((candidate) => candidate.name === name);
    if (!c || c.status === 'new') continue;
    feedback[name] =
      c.status === 'authorized'
        ? { ok: true, text: `${name} is authorized${c.signInFrom ? ` through ${c.signInFrom}` : ''}.` }
        : { ok: false, text: `${name} is ${statusWords(c.status)}.` };
  }
  if (formNextStepFor !== undefined) {
    const named = formNextStepFor;
    const c = connections.find((candidate) => candidate.name === named);
    if (!c) {
      result.textContent = '';
      formNextStepFor = undefined;
    } else if (c.status !== 'new') {
      result.textContent = `Saved ${named}. It is ${statusWords(c.status)} now.`;
      result.className = `form-result ${c.status === 'authorized' ? 'ok' : 'fail'}`;
      formNextStepFor = undefined;
    }
  }
}

/** Asks under the form, the last thing on the page (so it moves nothing): true when confirmed. */
function askUnderForm(
  text: string,
  name: string,
  confirm: { text: string; label: string },
): Promise<boolean> {
  return new Promise((resolve) => {
    const yes = element('button', {
      text: confirm.text,
      className: 'primary',
      attrs: { type: 'button', 'aria-label': confirm.label },
    });
    const no = element('button', {
      text: 'Cancel',
      attrs: { type: 'button', 'aria-label': `Cancel saving ${name}` },
    });
    const answer = (value: boolean) => {
      result.onkeydown = null;
      result.replaceChildren();
      resolve(value);
    };
    yes.addEventListener('click', () => {
      answer(true);
    });
    no.addEventListener('click', () => {
      answer(false);
    });
    result.onkeydown = (event) => {
      if (event.key === 'Escape') answer(false);
    };
    result.className = 'form-result';
    result.replaceChildren(`${text} `, yes, ' ', no);
    announce(text);
    yes.focus();
  });
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  void save();
});

/** The grant fields the form changes on `existing` (the broker decides; this only words the question). */
function retargetedFields(existing: ConnectionView, field: (key: string) => string): string[] {
  const compared: [string, string, string][] = [
    ['mailbox', field('mailbox'), existing.mailbox],
    ['account', field('account') || field('mailbox'), existing.account],
    ['profile', field('profile'), existing.profile],
    ['grant', field('grant'), existing.grant],
    ['ewsUrl', field('ewsUrl'), existing.ewsUrl ?? ''],
    ['signInFrom', field('signInFrom'), existing.signInFrom ?? ''],
  ];
  return compared.filter(([, next, now]) => next.toLowerCase() !== now.toLowerCase()).map(([key]) => key);
}

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
  // Whose grant it is changes (the broker's grant fields the form shows): on a connection that
  // holds tokens that is a reset, and the one question says so, instead of a second one after.
  const retargeted = existing && existing.status !== 'new' ? retargetedFields(existing, field) : [];
  if (
    existing &&
    !(await askUnderForm(
      retargeted.length > 0
        ? `${name} holds tokens for ${existing.account}: changing its ${retargeted.join(', ')} deletes them, and it must be authorized again. Replace its definition and reset it?`
        : `A connection named ${name} exists (${existing.mailbox}, ${existing.profile}). Replace its definition?`,
      name,
      retargeted.length > 0
        ? { text: 'Replace and reset', label: `Replace the definition of ${name} and reset it` }
        : { text: 'Replace', label: `Replace the definition of ${name}` },
    ))
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
  if (!existing) {
    arrive({
      name,
      mailbox: field('mailbox'),
      account: field('account') || field('mailbox'),
      profile: field('profile'),
      grant: field('grant'),
      signInFrom: field('signInFrom') || undefined,
      readers: [],
      description: '',
      status: 'new',
      tokenExpiresOn: null,
      lastError: null,
      lastTest: null,
    });
    pending(name, `Saving ${name}…`);
  }
  let answer = await call<ConnectionView>(`${api(name)}${retargeted.length > 0 ? '?reset=true' : ''}`, {
    method: 'PUT',
    json: body,
  });
  if (!answer.ok && answer.problem.code === 'connection_authorized') {
    const reset = await askUnderForm(
      `${answer.problem.detail ?? ''} Save anyway and reset it (it must be authorized again)?`,
      name,
      { text: 'Save and reset', label: `Save ${name} and reset it` },
    );
    if (reset) answer = await call<ConnectionView>(`${api(name)}?reset=true`, { method: 'PUT', json: body });
  }
  if (!answer.ok) {
    say(
      `${answer.problem.detail ?? 'Could not save'}${answer.problem.remedy ? ` ${answer.problem.remedy}` : ''}`,
      false,
    );
    if (!existing) {
      refused(name);
      tell(name, problemFeedback(answer.problem, `Could not save ${name}`));
    }
    return;
  }
  // A connection that signs in through an authorized one has its token already.
  const next =
    answer.body.status === 'authorized'
      ? `It is authorized through ${field('signInFrom') || 'its sign-in'}.`
      : field('grant') === 'password'
        ? 'Set its password, then click Authorize.'
        : 'Click Authorize.';
  // The next connection is often another of the same kind: profile and grant stay (and with the
  // grant its warning, so nothing under the form moves as the answer arrives).
  for (const input of ['name', 'mailbox', 'account', 'ewsUrl'])
    inForm(`input[name=${input}]`, HTMLInputElement).value = '';
  signInFrom.value = '';
  const nextStep = answer.body.status === 'new';
  say(`Saved ${name}. ${next}`, true, nextStep ? name : undefined);
  // A new row's line was opened at the click ("Saving…"); a changed row gets none, so it keeps its height.
  if (!existing) feedback[name] = { ok: true, text: `Saved ${name}. ${next}`, nextStep };
  await load();
}

load().catch(() => {
  showNotice('Could not load connections', false);
});
// Relative times move on by themselves.
window.setInterval(tick, 30_000);
