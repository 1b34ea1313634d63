/**
 * Retry-After in whole seconds (rounded up), from delta-seconds (integer or, as some services send,
 * fractional) or an HTTP date; undefined when absent or unreadable. The one reader of the header.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text));
  // An HTTP date names its day and month; anything else (a negative number, a bare year) is not one.
  if (!/[a-z]/i.test(text)) return undefined;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - nowMs) / 1000));
}
