import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkPrereqs, missingPackages, REQUIREMENTS } from '../../../scripts/test-prereqs';

const ROOT = join(__dirname, '..', '..', '..');
const all = REQUIREMENTS.flatMap((requirement) => requirement.files);

describe("npm test's system packages", () => {
  it('names the Debian packages whose files are missing', () => {
    expect(missingPackages(() => true)).toEqual([]);
    expect(missingPackages((file) => file !== '/usr/bin/chromium')).toEqual(['chromium']);
    expect(missingPackages((file) => !file.includes('dovecot'))).toEqual([
      'dovecot-core',
      'dovecot-imapd',
      'dovecot-pop3d',
      'dovecot-submissiond',
    ]);
  });

  it('as another user stops with one line naming the packages, installing nothing', () => {
    const lines: string[] = [];
    const install = jest.fn();
    const code = checkPrereqs({
      exists: (file) => file !== '/usr/lib/dovecot/pop3' && file !== '/usr/bin/chromium',
      isRoot: false,
      install,
      report: (line) => lines.push(line),
    });
    expect(code).toBe(1);
    expect(install).not.toHaveBeenCalled();
    expect(lines).toEqual([
      'npm test needs Debian packages that are not installed: chromium dovecot-pop3d — run: sudo apt-get install -y chromium dovecot-pop3d',
    ]);
  });

  it('as root installs exactly what is missing, then goes on', () => {
    const present = new Set(all.filter((file) => !file.includes('dovecot')));
    const install = jest.fn((packages: string[]) => {
      for (const requirement of REQUIREMENTS)
        if (packages.includes(requirement.pkg)) requirement.files.forEach((file) => present.add(file));
    });
    const lines: string[] = [];
    expect(
      checkPrereqs({
        exists: (file) => present.has(file),
        isRoot: true,
        install,
        report: (l) => lines.push(l),
      }),
    ).toBe(0);
    expect(install).toHaveBeenCalledWith([
      'dovecot-core',
      'dovecot-imapd',
      'dovecot-pop3d',
      'dovecot-submissiond',
    ]);
    expect(lines).toEqual([]);
  });

  it('as root says so when apt-get did not provide a package', () => {
    const lines: string[] = [];
    const code = checkPrereqs({
      exists: (file) => file !== '/usr/bin/chromium',
      isRoot: true,
      install: () => undefined,
      report: (l) => lines.push(l),
    });
    expect(code).toBe(1);
    expect(lines).toEqual(['npm test: apt-get did not provide chromium']);
  });

  it("is the first step of the README's test command, which .ci/run calls", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.test?.startsWith('tsx scripts/test-prereqs.ts && ')).toBe(true);
    expect(readFileSync(join(ROOT, '.ci', 'run'), 'utf8')).toMatch(/\nnpm test\n/);
  });
});
