/** Host names that always mean this machine: `localhost`, 127.0.0.1 and ::1 (bracketed in URLs or not). */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** Whether a host name (as `URL.hostname` gives it) is this machine's loopback. */
export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname.toLowerCase());
}

/** A Host header's name (lower case, IPv6 bracketed) and port; undefined when it is malformed. */
export function parseHostHeader(host: string): { name: string; port: number | undefined } | undefined {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(host);
  if (!match) return undefined;
  return {
    name: (match[1] ?? '').toLowerCase(),
    port: match[2] === undefined ? undefined : Number(match[2]),
  };
}
