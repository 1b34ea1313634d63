import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BROKER_ERROR_CODES, BrokerError } from '../../../shared/errors';
import { problem } from '../../../shared/http/responses';

/** Every problem's `type` is `…#error-{code}`: the README must hold that anchor for every code. */
describe('README anchors of error codes', () => {
  const readme = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const anchors = new Set([...readme.matchAll(/<a id="([^"]+)"><\/a>/g)].map((match) => match[1]));

  it('knows the codes (the list is not empty)', () => {
    expect(BROKER_ERROR_CODES).toContain('internal_error');
    expect(BROKER_ERROR_CODES.length).toBeGreaterThan(20);
  });

  it.each(BROKER_ERROR_CODES)('%s has the anchor its problem type points to', (code) => {
    const body = JSON.parse(String(problem(new BrokerError(code, 'x'), 'c').body)) as { type: string };
    const fragment = new URL(body.type).hash.slice(1);
    expect(fragment).toBe(`error-${code}`);
    expect(anchors.has(fragment)).toBe(true);
  });
});
