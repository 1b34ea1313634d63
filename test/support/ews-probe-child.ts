/**
 * Runs the EWS probe, as the broker's worker would, against each bad answer named in argv and
 * prints one JSON line per answer: what the probe made of it. No unhandledRejection handler is set,
 * so a rejection the library leaves unhandled ends this process as it would end the Functions worker.
 */
import { cloudFor } from '../../shared/clouds';
import { probeEws } from '../../shared/probes/ews';
import { ProbeFailure } from '../../shared/probes/result';

async function main(): Promise<void> {
  const [url, ...cases] = process.argv.slice(2);
  for (const name of cases) {
    const target = {
      connection: {
        name: 'crash',
        mailbox: 'support@contoso.test',
        account: 'support@contoso.test',
        profile: 'ews' as const,
        grant: 'authorization_code' as const,
        ewsUrl: `${url}/${name}/EWS/Exchange.asmx`,
      },
      accessToken: 'not-a-real-token',
      xoauth2: '',
      cloud: cloudFor('https://login.microsoftonline.com'),
      outbound: {
        fetch: (input: string, init?: RequestInit) => fetch(input, init),
        connect: () => Promise.reject(new Error('unused')),
      },
      signal: AbortSignal.timeout(5000),
      timeoutSeconds: 5,
    } as unknown as Parameters<typeof probeEws>[0];
    try {
      await probeEws(target);
      console.log(JSON.stringify({ name, ok: true }));
    } catch (error) {
      const code = error instanceof ProbeFailure ? error.code : `thrown:${String(error)}`;
      console.log(JSON.stringify({ name, ok: false, code }));
    }
  }
  // A rejection left unhandled surfaces on a later tick: give it the chance to end the process.
  await new Promise((resolve) => setTimeout(resolve, 300));
  console.log(JSON.stringify({ done: true }));
}

void main();
