/**
 * First step of `npm test`: the system programs the browser and mail-protocol tests run — Debian's
 * Chromium (test/e2e) and Dovecot's IMAP, POP3 and submission servers (test/support/dovecot.ts).
 * As root it installs what is missing with apt-get, as .ci/run always did; as anyone else it stops
 * at once with one line naming the packages, instead of a run that spends minutes failing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

interface Requirement {
  /** Debian package that provides it. */
  pkg: string;
  /** The files the tests run. */
  files: string[];
}

export const REQUIREMENTS: Requirement[] = [
  { pkg: 'chromium', files: ['/usr/bin/chromium'] },
  { pkg: 'dovecot-core', files: ['/usr/sbin/dovecot'] },
  { pkg: 'dovecot-imapd', files: ['/usr/lib/dovecot/imap'] },
  { pkg: 'dovecot-pop3d', files: ['/usr/lib/dovecot/pop3'] },
  { pkg: 'dovecot-submissiond', files: ['/usr/lib/dovecot/submission'] },
];

/** The packages whose files are missing (pure over `exists`). */
export function missingPackages(exists: (file: string) => boolean = existsSync): string[] {
  return REQUIREMENTS.filter((requirement) => !requirement.files.every(exists)).map((r) => r.pkg);
}

function install(packages: string[]): void {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  console.log(`npm test: installing ${packages.join(' ')} (apt-get)…`);
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', ...packages], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env,
  });
  // The package may start the system's own Dovecot; the tests run their own instances.
  if (packages.some((pkg) => pkg.startsWith('dovecot')) && existsSync('/run/dovecot/master.pid')) {
    try {
      execFileSync('doveadm', ['stop'], { stdio: 'ignore' });
    } catch {
      // Not running after all.
    }
  }
}

/**
 * What `npm test` does about missing packages: nothing when none is missing; as root, install them;
 * otherwise one line naming them and exit code 1.
 */
export function checkPrereqs(options: {
  exists?: (file: string) => boolean;
  isRoot: boolean;
  install: (packages: string[]) => void;
  report: (line: string) => void;
}): number {
  const exists = options.exists ?? existsSync;
  const missing = missingPackages(exists);
  if (missing.length === 0) return 0;
  if (!options.isRoot) {
    options.report(
      `npm test needs Debian packages that are not installed: ${missing.join(' ')} — run: sudo apt-get install -y ${missing.join(' ')}`,
    );
    return 1;
  }
  options.install(missing);
  const still = missingPackages(exists);
  if (still.length === 0) return 0;
  options.report(`npm test: apt-get did not provide ${still.join(' ')}`);
  return 1;
}

if (require.main === module) {
  process.exitCode = checkPrereqs({
    isRoot: process.getuid?.() === 0,
    install,
    report: (line) => {
      console.error(line);
    },
  });
}
