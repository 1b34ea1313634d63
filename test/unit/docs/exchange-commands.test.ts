import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { allowListSnippet } from '../../../shared/probes/remedies';

/**
 * The Exchange commands the broker prints and documents, against what Microsoft documents:
 * `-EwsAllowedAppIDs` takes one comma-separated string and replaces the whole list (no `@{Add=…}`).
 */
const root = join(__dirname, '..', '..', '..');
const tracked = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' })
  .split('\n')
  .filter((path) => /\.(ts|md|bicep|json|ps1|sh)$/.test(path) && existsSync(join(root, path)));
const text = (path: string) => readFileSync(join(root, path), 'utf8');

describe('Exchange commands in the repository', () => {
  it('never writes EwsAllowedAppIDs with @{Add=…}, nor turns EwsEnabled on in the same line', () => {
    const offending = tracked.filter(
      (path) =>
        path !== 'test/unit/docs/exchange-commands.test.ts' &&
        /EwsAllowedAppIDs\s+@\{|EwsEnabled:?\s*\$true\s+-EwsAllowedAppIDs/i.test(text(path)),
    );
    expect(offending).toEqual([]);
  });

  it('gives in the README the same read-append-write line the remedy prints', () => {
    expect(text('README.md')).toContain(allowListSnippet('<ENTRA_CLIENT_ID>'));
  });

  it('cites, in docs/microsoft-behaviours.md, only files that exist', () => {
    const table = text('docs/microsoft-behaviours.md');
    const cited = [...table.matchAll(/`((?:test|sandbox|shared|infra)\/[\w./*-]+)`/g)].map((m) => m[1]!);
    expect(cited.length).toBeGreaterThan(15);
    const missing = cited.filter((path) =>
      path.includes('*')
        ? !tracked.some((file) => new RegExp(`^${path.replace(/\*/g, '[^/]*')}$`).test(file))
        : !existsSync(join(root, path)),
    );
    expect(missing).toEqual([]);
  });
});

describe('problem types', () => {
  it('point at a README anchor for every broker error code and every Test connection code', () => {
    const readme = text('README.md');
    const errors = text('shared/errors.ts');
    const brokerCodes = [
      ...errors.slice(errors.indexOf('export type BrokerErrorCode')).matchAll(/^\s+\| '(\w+)'/gm),
    ].map((m) => m[1]!);
    expect(brokerCodes).toContain('internal_error');
    const result = text('shared/probes/result.ts');
    const probeCodes = [
      ...result.slice(result.indexOf('export type ProbeCode')).matchAll(/^\s+\| '(\w+)'/gm),
    ].map((m) => m[1]!);
    expect(probeCodes).toEqual(expect.arrayContaining(['ews_blocked', 'ews_disabled', 'ews_forbidden']));
    const missing = [...brokerCodes, 'ews_blocked', 'ews_disabled', 'ews_forbidden'].filter(
      (code) => !readme.includes(`<a id="error-${code}"></a>`),
    );
    expect(missing).toEqual([]);
  });
});
