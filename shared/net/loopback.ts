/** Host names that always mean this machine: `localhost`, 127.0.0.1 and ::1 (bracketed in URLs or not). */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** Whether a host name (as `URL.hostname` gives it) is this machine's loopback. */
export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname.toLowerCase());
}
