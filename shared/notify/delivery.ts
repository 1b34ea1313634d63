import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Outbound } from '../net/outbound';
import { parseRetryAfter } from '../net/retry-after';
import type { StatusNotification } from './notifier';
import { USER_AGENT } from '../net/user-agent';

/**
 * One webhook delivery attempt, with no state of its own: the body and its signature, the POST
 * through `Outbound`, and what the answer means (delivered, retry, give up). When to try again,
 * and how many events wait, is the queue's business (queue.ts).
 */

/** The JSON body POSTed to the webhook (every key always present). */
export interface WebhookPayload {
  /** UUID of this event; identical on every retry. */
  id: string;
  type: StatusNotification['type'];
  connection: string;
  mailbox: string;
  status: string;
  previousStatus: string;
  reason: string | null;
  aadsts: number | null;
  remedy: string | null;
  /** Invitation events: who made, used or revoked it. */
  actor?: string;
  /** A delegated connection's `reauthorization_required`: where to `POST` for a fresh invitation. */
  invitationsUrl?: string;
  /** ISO 8601 UTC time of the status change. */
  at: string;
  /** ISO 8601 UTC time the broker queued the delivery; identical on every retry. */
  sentAt: string;
}

export const SIGNATURE_HEADER = 'X-Broker-Signature';
export const EVENT_HEADER = 'X-Broker-Event';
export const EVENT_ID_HEADER = 'X-Broker-Event-Id';

/** How far a receiver accepts a signature's timestamp from its own clock, by default (5 minutes). */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

function hmacHex(secret: string, timestamp: number, body: string | Buffer): string {
  return createHmac('sha256', secret)
    .update(`${String(timestamp)}.`)
    .update(body)
    .digest('hex');
}

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." followed by the body bytes>`: the value of
 * X-Broker-Signature. The timestamp is signed with the body, so a captured request cannot be
 * replayed later with a fresh one: receivers refuse a `t` more than the tolerance from their clock.
 */
export function signBody(body: string | Buffer, secret: string, timestamp: number): string {
  return `t=${String(timestamp)},v1=${hmacHex(secret, timestamp, body)}`;
}

/**
 * What a receiver does: checks X-Broker-Signature against the raw request body (the exact bytes
 * received, not re-serialized JSON) in constant time, and that its timestamp is within
 * `toleranceSeconds` of `nowMs`. False for a missing or malformed header, an empty secret, a stale
 * or future timestamp. Receivers also remember X-Broker-Event-Id for the tolerance window and
 * drop a second delivery of the same id (a retry after a lost answer, or a replay within it).
 */
export function verifySignature(
  body: string | Buffer,
  header: string | null,
  secret: string,
  options: { nowMs?: number; toleranceSeconds?: number } = {},
): boolean {
  if (!header || !secret) return false;
  const parts = header.split(',').map((part) => part.trim().split('='));
  const timestamps = parts.filter(([key]) => key === 't').map(([, value]) => value ?? '');
  const signatures = parts.filter(([key]) => key === 'v1').map(([, value]) => value ?? '');
  if (timestamps.length !== 1 || !/^\d{1,12}$/.test(timestamps[0] ?? '')) return false;
  const timestamp = Number(timestamps[0]);
  const nowSeconds = Math.floor((options.nowMs ?? Date.now()) / 1000);
  if (Math.abs(nowSeconds - timestamp) > (options.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS))
    return false;
  const expected = Buffer.from(hmacHex(secret, timestamp, body), 'hex');
  return signatures.some((signature) => {
    if (!/^[0-9a-f]{64}$/i.test(signature)) return false;
    const received = Buffer.from(signature, 'hex');
    return received.length === expected.length && timingSafeEqual(received, expected);
  });
}

/** The webhook body for `event`; `id` and `sentAt` are fixed here, once, for every retry. */
export function toPayload(event: StatusNotification, id: string, sentAt: string): WebhookPayload {
  return {
    id,
    type: event.type,
    connection: event.connection,
    mailbox: event.mailbox,
    status: event.status,
    previousStatus: event.previousStatus,
    reason: event.reason ?? null,
    aadsts: typeof event.aadsts === 'number' && Number.isFinite(event.aadsts) ? event.aadsts : null,
    remedy: event.remedy ?? null,
    ...(event.actor ? { actor: event.actor } : {}),
    ...(event.invitationsUrl ? { invitationsUrl: event.invitationsUrl } : {}),
    at: event.at,
    sentAt,
  };
}

/** A payload with its exact bytes: what every attempt sends, unchanged (each attempt signs anew). */
export interface QueuedEvent {
  payload: WebhookPayload;
  body: string;
}

export function queuedEvent(payload: WebhookPayload): QueuedEvent {
  return { payload, body: JSON.stringify(payload) };
}

/** The request headers of one attempt for `event`, signed at `timestamp` (unix seconds). */
export function webhookHeaders(
  event: QueuedEvent,
  secret: string,
  timestamp: number,
): Record<string, string> {
  return {
    'Content-Type': 'application/json',
    'User-Agent': USER_AGENT,
    [EVENT_HEADER]: event.payload.type,
    [EVENT_ID_HEADER]: event.payload.id,
    [SIGNATURE_HEADER]: signBody(event.body, secret, timestamp),
  };
}

/** What one attempt came to. `error` is a log-safe description (no URL path, no secret). */
export type AttemptOutcome =
  | { kind: 'delivered'; status: number }
  | { kind: 'retry'; status?: number; error: string; retryAfterMs?: number }
  | { kind: 'give_up'; status: number; reason: 'refused' | 'redirect_not_followed' };

/**
 * The meaning of the receiver's answer: 2xx delivered; 408, 429 and 5xx worth retrying, after
 * the Retry-After if one is readable; anything else (other 4xx, 3xx since redirects are not
 * followed) given up. `nowMs` (for a Retry-After date) is read only for a retryable answer.
 */
export function classifyAnswer(
  status: number,
  retryAfter: string | null,
  nowMs: () => number,
): AttemptOutcome {
  if (status >= 200 && status < 300) return { kind: 'delivered', status };
  if (status === 408 || status === 429 || status >= 500) {
    const seconds = parseRetryAfter(retryAfter, nowMs());
    return {
      kind: 'retry',
      status,
      error: `http_${status}`,
      ...(seconds !== undefined ? { retryAfterMs: seconds * 1000 } : {}),
    };
  }
  return {
    kind: 'give_up',
    status,
    reason: status >= 300 && status < 400 ? 'redirect_not_followed' : 'refused',
  };
}

/** Origin only: a webhook URL's path may itself be a credential (many services put one there). */
export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '[invalid url]';
  }
}

/** `Name: message (CODE: cause)`, with every occurrence of `url` replaced by `target` (its origin). */
export function describeError(error: unknown, url: string, target: string): string {
  let text: string;
  if (error instanceof Error) {
    const cause: unknown = error.cause;
    let causeText: string | undefined;
    if (cause instanceof Error) {
      const code: unknown = (cause as Error & { code?: unknown }).code;
      causeText = `${typeof code === 'string' ? code : cause.name}: ${cause.message}`;
    }
    text = `${error.name}: ${error.message}${causeText ? ` (${causeText})` : ''}`;
  } else {
    text = String(error);
  }
  return text.split(url).join(target);
}

/** AbortSignal.timeout's DOMException (by name: it may come from another realm). */
function isTimeout(error: unknown): boolean {
  const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  return name === 'TimeoutError' || name === 'AbortError';
}

/** Where and how to POST. */
export interface WebhookEndpoint {
  url: string;
  /** The HMAC key (NOTIFY_WEBHOOK_SECRET). */
  secret: string;
  /** `originOf(url)`: what logs and error texts show instead of the URL. */
  target: string;
  /** Per-attempt timeout. */
  timeoutMs: number;
  outbound: Pick<Outbound, 'fetch'>;
  now: () => Date;
}

/**
 * One attempt: POSTs `event` to the endpoint and classifies the answer. Never rejects for a
 * network failure or a timeout (those are `retry`); a fetch that throws synchronously counts as
 * a network failure too.
 */
export async function deliver(endpoint: WebhookEndpoint, event: QueuedEvent): Promise<AttemptOutcome> {
  const { url, target } = endpoint;
  let response: Awaited<ReturnType<Outbound['fetch']>>;
  try {
    response = await endpoint.outbound.fetch(url, {
      method: 'POST',
      // Signed per attempt: a retry an hour later carries a timestamp receivers still accept.
      headers: webhookHeaders(event, endpoint.secret, Math.floor(endpoint.now().getTime() / 1000)),
      body: event.body,
      timeoutMs: endpoint.timeoutMs,
    });
  } catch (error) {
    return { kind: 'retry', error: isTimeout(error) ? 'timeout' : describeError(error, url, target) };
  }
  // The answer's body is of no interest; release the connection.
  try {
    void response.body?.cancel().catch(() => undefined);
  } catch {
    // ignore
  }
  return classifyAnswer(response.status, response.headers.get('retry-after'), () => endpoint.now().getTime());
}
