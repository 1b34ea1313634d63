/**
 * Test connection: reads the connection's current token the way a consumer does, runs the probe
 * for its protocol under a time limit, and answers one shape whatever happened. A test only
 * reads: it never changes the connection's status or tokens, and an upstream failure is a
 * result (`ok: false` with a stable code and remedy), not an HTTP error.
 */
import { performance } from 'node:perf_hooks';
import type { BrokerConfig } from '../config';
import type { Connection, Profile } from '../connections/connection';
import { scopesFor } from '../connections/profiles';
import { graphSiblingOf } from '../connections/graph-move';
import { requireConnection, type ConnectionRegistry } from '../connections/registry';
import { isBrokerError } from '../errors';
import type { Logger } from '../logging';
import type { Outbound } from '../net/outbound';
import type { TokenReader } from '../oauth/token-reader';
import type { ConnectionStateWriter } from '../connections/state';
import type { PublishedToken } from '../oauth/token-reader';
import { probeEws } from './ews';
import { probeGraph } from './graph';
import { probeImap, probePop, probeSmtp } from './mail';
import type { Probe, ProbeTarget } from './probe';
import { remedyFor, type RemedyContext } from './remedies';
import { ProbeFailure, type ProbeProtocol, type ProbeResult } from './result';

const PROBES: Record<Exclude<Profile, 'custom'>, { protocol: ProbeProtocol; run: Probe }> = {
  ews: { protocol: 'ews', run: probeEws },
  'ews-shared': { protocol: 'ews', run: probeEws },
  'graph-mail': { protocol: 'graph', run: probeGraph },
  'graph-mail-shared': { protocol: 'graph', run: probeGraph },
  imap: { protocol: 'imap', run: probeImap },
  pop: { protocol: 'pop', run: probePop },
  smtp: { protocol: 'smtp', run: probeSmtp },
};

/** The resource (scheme and host) of a scope such as `https://outlook.office365.com/EWS.AccessAsUser.All`. */
function resourceOf(scope: string): string | undefined {
  if (!/^https:\/\//i.test(scope)) return undefined;
  try {
    return new URL(scope).origin.toLowerCase();
  } catch {
    return undefined;
  }
}

/** Grace after the probe's own timeout before the tester stops waiting for it regardless. */
const HARD_STOP_GRACE_MS = 1000;

export interface ConnectionTesterOptions {
  config: Pick<BrokerConfig, 'clientId' | 'cloud' | 'probeTimeoutSeconds'>;
  /** `list` only when EWS refused: the remedy names the mailbox's Graph connection, if there is one. */
  registry: Pick<ConnectionRegistry, 'get' | 'list'>;
  tokenReader: Pick<TokenReader, 'read'>;
  outbound: Pick<Outbound, 'fetch' | 'connect'>;
  logger: Logger;
  /** Keeps the verdict in the row, for every admin and the Graph readiness view. */
  state?: Pick<ConnectionStateWriter, 'recordTest'>;
}

export class ConnectionTester {
  constructor(private readonly options: ConnectionTesterOptions) {}

  /** Throws BrokerError only for what is wrong with the request (unknown, new or disabled connection). */
  async test(name: string, correlationId: string): Promise<ProbeResult> {
    const connection = await requireConnection(this.options.registry, name);
    const started = performance.now();
    const probe = connection.profile === 'custom' ? undefined : PROBES[connection.profile];
    const protocol = probe?.protocol ?? null;
    let result: ProbeResult;
    try {
      if (!probe) throw new ProbeFailure('not_supported', 'Custom connections cannot be tested.');
      const token = await this.token(name);
      this.refuseOtherResource(connection, token);
      const details = await this.runWithDeadline(probe.run, connection, token);
      result = this.shape(connection, protocol, started, { ok: true, details });
    } catch (error) {
      if (!(error instanceof ProbeFailure)) throw error;
      result = await this.failed(connection, protocol, started, error);
    }
    this.options.logger.info('connection.tested', {
      connection: name,
      protocol,
      ok: result.ok,
      code: result.code,
      durationMs: result.durationMs,
      correlationId,
    });
    const lastTest = { ok: result.ok, code: result.code, protocol, testedAt: result.testedAt };
    await this.options.state?.recordTest(connection, lastTest).catch((error: unknown) => {
      this.options.logger.warn('connection.test_not_recorded', { connection: name, error });
    });
    return result;
  }

  /** The token as consumers get it; a dead or unreachable grant is a result, a bad request is not. */
  private async token(name: string): Promise<PublishedToken> {
    try {
      return await this.options.tokenReader.read(name);
    } catch (error) {
      if (
        isBrokerError(error) &&
        (error.code === 'reauthorization_required' || error.code === 'token_unavailable')
      ) {
        throw new ProbeFailure(error.code, error.message, {
          remedy: error.remedy,
          retryAfterSeconds: error.retryAfterSeconds,
        });
      }
      throw error;
    }
  }

  /**
   * A token is only ever sent to the resource it was issued for: after a reset that points ewsUrl
   * at another host, a token for the old resource must not go to the new one (or the reverse).
   */
  private refuseOtherResource(connection: Connection, token: PublishedToken): void {
    const expected = resourceOf(scopesFor(connection, this.options.config.cloud)[0] ?? '');
    const issuedFor = resourceOf(
      token.scope.split(' ').find((scope) => resourceOf(scope) !== undefined) ?? '',
    );
    if (expected !== undefined && issuedFor !== undefined && issuedFor !== expected) {
      throw new ProbeFailure(
        'token_wrong_audience',
        `The published token was issued for ${issuedFor}, but the connection now uses ${expected}; it was not sent.`,
        {
          remedy:
            'Authorize the connection again (or refresh it) so its token is issued for its current resource.',
        },
      );
    }
  }

  private async runWithDeadline(run: Probe, connection: Connection, token: PublishedToken) {
    const timeoutSeconds = this.options.config.probeTimeoutSeconds;
    const target: ProbeTarget = {
      connection,
      accessToken: token.access_token,
      xoauth2: token.xoauth2,
      cloud: this.options.config.cloud,
      outbound: this.options.outbound,
      signal: AbortSignal.timeout(timeoutSeconds * 1000),
      timeoutSeconds,
    };
    // The signal stops every socket; the race guarantees the invocation returns even if a library ignores it.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => {
          reject(new ProbeFailure('timeout', `No answer within ${timeoutSeconds} s.`));
        },
        timeoutSeconds * 1000 + HARD_STOP_GRACE_MS,
      );
    });
    try {
      return await Promise.race([run(target), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async failed(
    connection: Connection,
    protocol: ProbeProtocol | null,
    started: number,
    failure: ProbeFailure,
  ) {
    const retryAfterSeconds = failure.options.retryAfterSeconds;
    // Read only when the remedy is ours to write and it is about EWS.
    const ewsRefused =
      failure.options.remedy === undefined &&
      (failure.code === 'ews_blocked' || failure.code === 'ews_disabled');
    const context: RemedyContext = {
      appId: this.options.config.clientId,
      connection,
      protocol,
      retryAfterSeconds,
      ...(ewsRefused ? { graph: await this.graphConnectionOf(connection) } : {}),
    };
    return this.shape(connection, protocol, started, {
      ok: false,
      details: {},
      code: failure.code,
      detail: failure.message,
      remedy: failure.options.remedy ?? remedyFor(failure.code, context),
      ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
    });
  }

  /**
   * The Graph connection of the EWS connection's mailbox, for the remedy's move to Graph (one read
   * of the registry, only after EWS refused); undefined when the registry cannot say.
   */
  private async graphConnectionOf(connection: Connection): Promise<RemedyContext['graph']> {
    try {
      const graph = graphSiblingOf(connection, await this.options.registry.list());
      return graph ? { name: graph.name, status: graph.status } : null;
    } catch (error) {
      this.options.logger.warn('connection.graph_lookup_failed', { connection: connection.name, error });
      return undefined;
    }
  }

  private shape(
    connection: Connection,
    protocol: ProbeProtocol | null,
    started: number,
    outcome: Omit<ProbeResult, 'protocol' | 'mailbox' | 'testedAt' | 'durationMs'>,
  ): ProbeResult {
    return {
      ok: outcome.ok,
      protocol,
      mailbox: connection.mailbox,
      testedAt: new Date().toISOString(),
      durationMs: Math.round(performance.now() - started),
      details: outcome.details,
      ...(outcome.code ? { code: outcome.code, detail: outcome.detail, remedy: outcome.remedy } : {}),
      ...(outcome.retryAfterSeconds !== undefined ? { retryAfterSeconds: outcome.retryAfterSeconds } : {}),
    };
  }
}
