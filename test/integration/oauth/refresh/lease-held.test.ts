import { secretNames } from '../../../../shared/secrets/secret-store';
import { authorizeConnection, startHarness, type Harness } from '../../../support/harness';

/**
 * Regression: a timed-out refresh released its lease while its redemption still ran, so two
 * refreshes of one connection could overlap and the older refresh token could win.
 */
let harness: Harness;
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

afterEach(async () => {
  harness.entra.faults.reset();
  await harness.close();
});

it('keeps the lease until the timed-out redemption really ends', async () => {
  harness = await startHarness({ brokerOverrides: { refresh: { slotTimeoutMs: 300, leaseMs: 10_000 } } });
  expect(await authorizeConnection(harness, 'slow')).toBe(200);
  harness.entra.faults.latencyMs = 1500;
  const first = await harness.broker.refresher.refresh('slow', { actor: 'admin', force: true });
  expect(first).toMatchObject({ result: 'failed', failure: { error: 'timeout' } });
  // The redemption is still running at Entra: nobody else may start one.
  const second = harness.secondBroker();
  expect(await second.refresher.refresh('slow', { actor: 'admin', force: true })).toMatchObject({
    result: 'busy',
  });
  harness.entra.faults.latencyMs = 0;
  await sleep(2000);
  // It ended (and wrote, within its lease); the lease is free again.
  expect(await second.refresher.refresh('slow', { actor: 'admin', force: true })).toMatchObject({
    result: 'refreshed',
  });
}, 30_000);

it('writes nothing once its lease has lapsed', async () => {
  harness = await startHarness({ brokerOverrides: { refresh: { slotTimeoutMs: 200, leaseMs: 600 } } });
  expect(await authorizeConnection(harness, 'lapsing')).toBe(200);
  const before = await harness.broker.secrets.get(secretNames.cache('lapsing'));
  const tokenBefore = await harness.broker.secrets.get(secretNames.token('lapsing'));
  harness.entra.faults.latencyMs = 1500;
  await harness.broker.refresher.refresh('lapsing', { actor: 'admin', force: true });
  await sleep(2500);
  expect((await harness.broker.secrets.get(secretNames.cache('lapsing')))?.version).toBe(before?.version);
  expect((await harness.broker.secrets.get(secretNames.token('lapsing')))?.version).toBe(
    tokenBefore?.version,
  );
  expect(harness.logs.some((line) => line.includes('refresh.lease_lapsed'))).toBe(true);
}, 30_000);
