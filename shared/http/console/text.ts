/**
 * The console's pure text helpers: no DOM, so the unit tests run them under Node. The console turns
 * their parts into DOM nodes (text nodes, <code>, <a>); nothing here produces HTML.
 */

/** One piece of a server's remedy: plain text, a code span (between backticks) or an https link. */
export type RemedyPart =
  | { kind: 'text'; text: string }
  | { kind: 'code'; text: string }
  | { kind: 'link'; text: string; href: string };

/** A remedy written for "the connection" with a literal `{name}` placeholder, filled in. */
export function fillName(text: string, name: string | undefined): string {
  return name ? text.split('{name}').join(name) : text;
}

const LINK = /https:\/\/[^\s<>"'`]+/g;
/** Punctuation that ends a sentence rather than a URL. */
const TRAILING = /[.,;:!?)\]]+$/;

function linkParts(text: string, into: RemedyPart[]): void {
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    const start = match.index;
    let href = match[0];
    const trailing = TRAILING.exec(href)?.[0] ?? '';
    href = href.slice(0, href.length - trailing.length);
    if (href.length <= 'https://'.length) continue;
    if (start > last) into.push({ kind: 'text', text: text.slice(last, start) });
    into.push({ kind: 'link', text: href, href });
    last = start + href.length;
  }
  if (last < text.length) into.push({ kind: 'text', text: text.slice(last) });
}

/**
 * A remedy split into text, code spans and https links. A backtick without its pair stays text;
 * links are found only outside code spans (a command line keeps its URL as code).
 */
export function remedyParts(remedy: string, name?: string): RemedyPart[] {
  const text = fillName(remedy, name);
  const parts: RemedyPart[] = [];
  const pieces = text.split('`');
  // An odd count of backticks: the last one has no pair, so it and what follows are text.
  const paired = pieces.length % 2 === 1 ? pieces : [...pieces.slice(0, -2), pieces.slice(-2).join('`')];
  paired.forEach((piece, index) => {
    if (piece === '') return;
    if (index % 2 === 1) parts.push({ kind: 'code', text: piece });
    else linkParts(piece, parts);
  });
  return parts;
}

/** A remedy or message as words to be read aloud: the name filled in, no backticks. */
export function spokenText(text: string, name?: string): string {
  return remedyParts(text, name)
    .map((part) => part.text)
    .join('');
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** "in 42 min", "3 h ago", "just now": how far `at` is from `now`, in the largest whole unit. */
export function relativeTime(at: string | number | Date, now: number = Date.now()): string {
  const time = new Date(at).getTime();
  if (Number.isNaN(time)) return '';
  const delta = time - now;
  const size = Math.abs(delta);
  if (size < MINUTE) return 'just now';
  const amount =
    size < HOUR
      ? `${Math.round(size / MINUTE)} min`
      : size < DAY
        ? `${Math.round(size / HOUR)} h`
        : `${Math.round(size / DAY)} day${Math.round(size / DAY) === 1 ? '' : 's'}`;
  return delta > 0 ? `in ${amount}` : `${amount} ago`;
}

/** A token's expiry in words: "expires in 42 min", "expired 3 min ago". */
export function expiryText(expiresOn: string, now: number = Date.now()): string {
  const when = relativeTime(expiresOn, now);
  if (when === '') return '';
  return new Date(expiresOn).getTime() > now ? `expires ${when}` : `expired ${when}`;
}

/** What a connection name must look like (the server's rule, README "Connections"). */
export const CONNECTION_NAME = /^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$/;
