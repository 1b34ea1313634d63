import { bypassesProxy } from '../../../shared/net/outbound';

describe('NO_PROXY', () => {
  it.each([
    ['outlook.office365.com', 993, ['*'], true],
    ['outlook.office365.com', 993, ['office365.com'], true],
    ['outlook.office365.com', 993, ['.office365.com'], true],
    ['outlook.office365.com', 993, ['*.office365.com'], true],
    ['office365.com', 443, ['.office365.com'], true],
    ['outlook.office365.com', 993, ['outlook.office365.com:993'], true],
    ['outlook.office365.com', 995, ['outlook.office365.com:993'], false],
    ['outlook.office365.com', 993, ['365.com'], false],
    ['notoffice365.com', 443, ['office365.com'], false],
    ['127.0.0.1', 7071, ['localhost', '127.0.0.1'], true],
    ['::1', 443, ['[::1]'], true],
    ['graph.microsoft.com', 443, [], false],
  ] as const)('%s:%s with %j → %s', (host, port, noProxy, expected) => {
    expect(bypassesProxy(host, port, [...noProxy])).toBe(expected);
  });
});
