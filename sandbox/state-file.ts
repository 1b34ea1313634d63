/**
 * The sandbox's memory across restarts of `npm start`: its sign-in service's tenant, app
 * registration, signing key, users, consents and refresh tokens, in one JSON file under
 * `.broker-local/` (git-ignored, mode 0600: it holds the app's secret, the demo passwords and
 * refresh tokens). Deleting the file starts the sandbox over.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { isEntraSnapshot, type EntraSnapshot } from './entra';

export interface SandboxState {
  version: 1;
  /** The sandbox's App Registration (application (client) id), kept in `entra`. */
  clientId: string;
  entra: EntraSnapshot;
}

/** The saved state, or undefined when there is none or it cannot be read (then the sandbox starts over). */
export function readSandboxState(file: string): SandboxState | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<SandboxState> | null;
    if (parsed?.version === 1 && typeof parsed.clientId === 'string' && isEntraSnapshot(parsed.entra))
      return parsed as SandboxState;
  } catch {
    // A damaged file: start over (the next save replaces it).
  }
  return undefined;
}

/** Writes `text` to `file` all at once (a reader sees the old file or the new one, never half), mode 0600. */
export function writeFileAtomic(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600 });
  renameSync(temporary, file);
}

/**
 * Saves what `current()` returns to `file` shortly after each `changed()` (sign-ins and refreshes
 * come in bursts), and at once on `flush()`.
 */
export function keepSandboxState(
  file: string,
  current: () => SandboxState,
  delayMs = 200,
): { changed(): void; flush(): void } {
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    writeFileAtomic(file, JSON.stringify(current()));
  };
  return {
    changed() {
      timer ??= setTimeout(flush, delayMs);
    },
    flush,
  };
}
