/**
 * Optional CPU profile of one measured phase: with BENCH_PROFILE_DIR set, `profiled` writes a
 * `.cpuprofile` (open it in Chrome DevTools or VS Code) of just that phase of the broker process.
 */
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function post(session: Session, method: string, params?: object): Promise<unknown> {
  return new Promise((resolve, reject) => {
    session.post(method, params, (error, result) => {
      if (error) reject(error);
      else resolve(result);
    });
  });
}

export async function profiled<T>(label: string, work: () => Promise<T>): Promise<T> {
  const dir = process.env.BENCH_PROFILE_DIR;
  if (!dir) return work();
  const session = new Session();
  session.connect();
  await post(session, 'Profiler.enable');
  await post(session, 'Profiler.start');
  try {
    return await work();
  } finally {
    const { profile } = (await post(session, 'Profiler.stop')) as { profile: unknown };
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${label}-${process.pid}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    console.log(`CPU profile of ${label}: ${file}`);
    session.disconnect();
  }
}
