import type { CloudEndpoints } from '../clouds';
import type { Connection } from '../connections/connection';
import type { Outbound } from '../net/outbound';
import type { ProbeDetails, ProbeProtocol } from './result';

/** What a probe needs: the connection, its current token, and the network it must use. */
export interface ProbeTarget {
  connection: Pick<Connection, 'name' | 'mailbox' | 'account' | 'profile' | 'grant' | 'ewsUrl'>;
  accessToken: string;
  /** The SASL XOAUTH2 string exactly as the token route hands it to consumers. */
  xoauth2: string;
  cloud: CloudEndpoints;
  outbound: Pick<Outbound, 'fetch' | 'connect'>;
  /** Aborts every socket and request of the probe when its time is up. */
  signal: AbortSignal;
  timeoutSeconds: number;
}

/**
 * One protocol's "does this token open the mailbox": resolves with what the mailbox showed, or
 * throws a ProbeFailure with a stable code. Probes only read; none changes a mailbox.
 */
export type Probe = (target: ProbeTarget) => Promise<ProbeDetails>;

export interface ProbeModule {
  protocol: ProbeProtocol;
  run: Probe;
}
