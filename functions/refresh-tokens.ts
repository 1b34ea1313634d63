import type { InvocationContext, Timer } from '@azure/functions';
import type { Broker } from '../shared/broker';

/**
 * The `refreshTokens` timer. Azure runs it on `%REFRESH_SCHEDULE%` (an app setting, NCRONTAB) as a
 * singleton across instances; the local host runs the same handler on the same schedule.
 */
export const refreshTokensTimer = {
  name: 'refreshTokens',
  schedule: '%REFRESH_SCHEDULE%',
  async run(broker: Broker, context?: InvocationContext, timer?: Timer): Promise<void> {
    if (timer?.isPastDue)
      context?.log('refreshTokens: running late (the previous run overran or the host was idle)');
    const summary = await broker.refresher.refreshDue({ actor: 'timer' });
    context?.log(
      `refreshTokens: ${summary.due} due, ${summary.refreshed} refreshed, ${summary.failed} failed, ${summary.deferred} deferred in ${summary.durationMs} ms`,
    );
    // Sign-ins that were started and never finished hold a PKCE verifier: gone once they expire.
    const purged = await broker.sessions.purgeExpired(broker.now()).catch((error: unknown) => {
      broker.logger.warn('sessions.purge_failed', { error });
      return 0;
    });
    if (purged > 0) context?.log(`refreshTokens: purged ${purged} expired sign-in sessions`);
  },
};
