import { isLoopbackHost } from '../../../shared/net/loopback';
import { parseRetryAfter } from '../../../shared/net/retry-after';

const NOW = Date.parse('2026-11-26T12:00:00Z');

describe('parseRetryAfter (Key Vault, Entra, Graph, Exchange and webhooks all go through it)', () => {
  it.each<[string | null | undefined, number | undefined]>([
    ['120', 120],
    [' 7 ', 7],
    ['0', 0],
    ['1.5', 2], // fractional delta-seconds round up
    ['Thu, 26 Nov 2026 12:00:30 GMT', 30],
    ['Thu, 26 Nov 2026 11:59:00 GMT', 0], // a date in the past: now
    ['soon', undefined],
    ['-5', undefined],
    ['', undefined],
    [null, undefined],
    [undefined, undefined],
  ])('%p → %p', (value, seconds) => {
    expect(parseRetryAfter(value, NOW)).toBe(seconds);
  });
});

describe('isLoopbackHost (one answer for config, the Key Vault client and the local host)', () => {
  it.each<[string, boolean]>([
    ['localhost', true],
    ['LOCALHOST', true],
    ['127.0.0.1', true],
    ['[::1]', true],
    ['::1', true],
    ['127.0.0.2', false],
    ['localhost.contoso.test', false],
    ['0.0.0.0', false],
    ['contoso-broker.vault.azure.net', false],
  ])('%s → %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });
});
