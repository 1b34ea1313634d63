import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySignature } from '../../../../shared/notify/webhook-notifier';
import { authorizeConnection, startHarness, TestClock, type Harness } from '../../../support/harness';

const MINUTE = 60_000;
const SECRET = 'webhook-signing-secret-for-tests';

interface Received {
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** Status changes reach the operator's webhook, signed, without holding up the refresh. */
describe('notifications', () => {
  const clock = new TestClock();
  const received: Received[] = [];
  let receiver: Server;
  let harness: Harness;

  beforeAll(async () => {
    receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: request.headers });
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const { port } = receiver.address() as AddressInfo;
    harness = await startHarness({
      clock,
      env: {
        NOTIFY_WEBHOOK_URL: `http://127.0.0.1:${String(port)}/hooks/broker`,
        NOTIFY_WEBHOOK_SECRET: SECRET,
        NOTIFY_DEGRADED_AFTER_MINUTES: '30',
      },
    });
  });
  afterAll(async () => {
    await harness.close();
    await new Promise((resolve) => receiver.close(resolve));
  });

  function events(): { type: string; connection: string; [key: string]: unknown }[] {
    return received.map((r) => JSON.parse(r.body) as { type: string; connection: string });
  }

  it('signs every event with HMAC-SHA256 of the body', async () => {
    expect(await authorizeConnection(harness, 'hooked')).toBe(200);
    harness.entra.faults.revokeConsent('support@contoso.test');
    await harness.broker.refresher.refresh('hooked', { actor: 'test', force: true });
    await harness.broker.notifier.drain();
    const event = received.find(
      (r) => (JSON.parse(r.body) as { type: string }).type === 'connection.reauthorization_required',
    );
    expect(event).toBeDefined();
    const signature = event?.headers['x-broker-signature'];
    expect(typeof signature).toBe('string');
    expect(verifySignature(event!.body, signature as string, SECRET)).toBe(true);
    expect(verifySignature(event!.body.replace('hooked', 'hooker'), signature as string, SECRET)).toBe(false);
    expect(JSON.parse(event!.body)).toMatchObject({
      type: 'connection.reauthorization_required',
      connection: 'hooked',
      mailbox: 'support@contoso.test',
      status: 'reauthorization_required',
      previousStatus: 'authorized',
      aadsts: 65001,
    });
  });

  it('tells when a connection stays degraded past the threshold, once, and when it recovers', async () => {
    harness.entra.addUser({
      username: 'flaky@contoso.test',
      password: 'Flaky-1',
      tenantId: harness.entra.tenants.primary.tenantId,
    });
    expect(
      await authorizeConnection(harness, 'flaky', { username: 'flaky@contoso.test', password: 'Flaky-1' }),
    ).toBe(200);
    harness.entra.faults.failNext(1000, { status: 503, endpoint: 'token' });
    for (let i = 0; i < 8; i++) {
      await harness.broker.refresher.refresh('flaky', { actor: 'timer', force: true });
      clock.advance(10 * MINUTE);
    }
    harness.entra.faults.reset();
    await harness.broker.refresher.refresh('flaky', { actor: 'timer', force: true });
    await harness.broker.notifier.drain();
    const mine = events().filter((e) => e.connection === 'flaky');
    expect(mine.map((e) => e.type)).toEqual([
      'connection.authorized',
      'connection.degraded',
      'connection.recovered',
    ]);
    expect(mine[0]).toMatchObject({ status: 'authorized', previousStatus: 'new' });
    expect(mine[1]).toMatchObject({ status: 'degraded', previousStatus: 'degraded' });
    expect(mine[2]).toMatchObject({ status: 'authorized', previousStatus: 'degraded' });
  });

  it('tells when a connection that needed re-authorization is authorized again', async () => {
    harness.entra.faults.reset();
    const before = received.length;
    expect(await authorizeConnection(harness, 'hooked')).toBe(200);
    await harness.broker.notifier.drain();
    expect(events().slice(before)).toEqual([
      expect.objectContaining({
        type: 'connection.recovered',
        connection: 'hooked',
        previousStatus: 'reauthorization_required',
      }),
    ]);
  });

  it('reports every status change an admin makes: authorized, disabled, enabled, reset, deleted', async () => {
    const { api } = await import('../../../support/harness');
    const before = received.length;
    expect(await authorizeConnection(harness, 'lifecycle')).toBe(200);
    for (const [method, path, body] of [
      ['POST', '/api/connections/lifecycle/disable', undefined],
      ['POST', '/api/connections/lifecycle/enable', undefined],
      ['PUT', '/api/connections/lifecycle?reset=true', { mailbox: 'support@contoso.test', profile: 'imap' }],
      ['DELETE', '/api/connections/lifecycle', undefined],
    ] as const) {
      expect((await api(harness.baseUrl, method, path, body)).status).toBeLessThan(300);
    }
    await harness.broker.notifier.drain();
    const mine = events()
      .slice(before)
      .filter((e) => e.connection === 'lifecycle');
    expect(mine.map((e) => [e.type, e.previousStatus, e.status])).toEqual([
      ['connection.authorized', 'new', 'authorized'],
      ['connection.disabled', 'authorized', 'disabled'],
      ['connection.enabled', 'disabled', 'authorized'],
      ['connection.reset', 'authorized', 'new'],
      ['connection.deleted', 'new', 'deleted'],
    ]);
  });
});
