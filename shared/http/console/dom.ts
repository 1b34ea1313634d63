/**
 * The console's DOM and fetch helpers: they hold no state of the console, so every part of it
 * uses them alike. Text from the server only ever becomes text nodes, <code> and <a> (remedyNodes).
 */
import type { Feedback, Problem } from './model';
import { expiryText, relativeTime, remedyParts } from './text';

export function element<K extends keyof HTMLElementTagNameMap>(
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
export function byId<T extends HTMLElement>(id: string, kind: new () => T): T {
  const node = document.getElementById(id);
  if (!(node instanceof kind)) throw new Error(`#${id} is missing from the page`);
  return node;
}

export const api = (name: string, path = '') => `/api/connections/${encodeURIComponent(name)}${path}`;

/** A fetch whose answer is JSON (or nothing): the body, or the problem when it failed. */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the JSON it expects
export async function call<T>(
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

export function problemFeedback(problem: Problem, fallback: string): Feedback {
  const aadsts = problem.aadsts ? ` (${problem.aadsts})` : '';
  return {
    ok: false,
    text: (problem.detail ?? fallback) + aadsts,
    remedy: problem.remedy,
    link: problem.actionUrl,
    docs: problem.type,
  };
}

/** A remedy as DOM nodes: text, <code> for backticks, <a> for https links. */
export function remedyNodes(remedy: string, name?: string): Node[] {
  return remedyParts(remedy, name).map((part) => {
    if (part.kind === 'code') return element('code', { text: part.text });
    if (part.kind === 'link') return externalLink(part.href, part.text);
    return document.createTextNode(part.text);
  });
}

export function externalLink(href: string, text: string): HTMLAnchorElement {
  const link = element('a', { text, attrs: { href, rel: 'noreferrer', target: '_blank' } });
  return link;
}

/** A relative time with the exact time on hover; `data-at` lets the clock tick it on. */
export function timeNode(
  iso: string,
  format: (at: string) => string = (at) => relativeTime(at),
): HTMLTimeElement {
  const node = element('time', {
    text: format(iso),
    attrs: { datetime: iso, title: exactTime(iso) },
  });
  node.dataset.at = iso;
  node.dataset.format = format === expiryFormat ? 'expiry' : 'relative';
  return node;
}
export const expiryFormat = (at: string) => expiryText(at);

export function tick(): void {
  document.querySelectorAll<HTMLTimeElement>('time[data-at]').forEach((node) => {
    const at = node.dataset.at ?? '';
    node.textContent = node.dataset.format === 'expiry' ? expiryText(at) : relativeTime(at);
  });
}

/** A date and time no reader can take for another ("6 Dec 2026, 22:07" or "Dec 6, 2026, 10:07 PM"). */
export function exactTime(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
