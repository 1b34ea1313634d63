import { createLogger, redact } from '../../shared/logging';

const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

describe('redact', () => {
  it.each([
    'access_token',
    'refreshToken',
    'client_secret',
    'codeVerifier',
    'authorization',
    'cookie',
    'client_assertion',
    'password',
    'value',
    'cache',
  ])('hides the value under %s', (key) => {
    expect(redact({ [key]: 'sensitive' })[key]).toBe('[redacted]');
  });
  it('hides an OAuth code under `code` but keeps a stable error code', () => {
    expect(redact({ code: '0.AXoA-abc.def_ghi' }).code).toBe('[redacted]');
    expect(redact({ code: 'account_mismatch' }).code).toBe('account_mismatch');
  });
  it('leaves out a field with no value rather than calling it redacted', () => {
    expect(redact({ code: undefined, ok: true, token: undefined })).toEqual({ ok: true });
  });

  it('cuts JWTs out of any string, however deep', () => {
    const out = JSON.stringify(redact({ message: `bearer ${JWT} failed`, nested: { list: [`x ${JWT}`] } }));
    expect(out).not.toContain(JWT);
    expect(out).toContain('[redacted-jwt]');
  });
  it('keeps an error message but not its stack', () => {
    const out = redact({ error: new Error(`upstream said ${JWT}`) });
    expect(out.error).toEqual({ name: 'Error', message: 'upstream said [redacted-jwt]' });
  });
});

describe('createLogger', () => {
  it('writes one JSON line per event with a stable event name', () => {
    const lines: string[] = [];
    const logger = createLogger((_level, line) => lines.push(line), { app: 'broker' });
    logger.warn('connection.status_changed', { connection: 'a', access_token: JWT });
    expect(lines).toHaveLength(1);
    const parsed = JSON.parse(lines[0] ?? '');
    expect(parsed).toMatchObject({
      level: 'warn',
      event: 'connection.status_changed',
      app: 'broker',
      connection: 'a',
      access_token: '[redacted]',
    });
  });
});
