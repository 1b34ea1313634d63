import { secretNames } from '../../../../shared/secrets/secret-store';
import {
  authorizeConnection,
  startHarness,
  storedRefreshToken,
  type Harness,
} from '../../../support/harness';

/** A vault does not keep years of readable refresh tokens: only the newest two cache versions stay enabled. */
let harness: Harness;

beforeAll(async () => {
  // Every refresh writes a cache version here: old versions pile up fastest this way.
  harness = await startHarness({ keyVault: true, env: { REFRESH_CACHE_WRITE_HOURS: '0' } });
}, 60_000);

afterAll(() => harness.close());

it('disables cache versions beyond the last two as refreshes write new ones', async () => {
  expect(await authorizeConnection(harness, 'rotating')).toBe(200);
  for (let i = 0; i < 4; i++) {
    const outcome = await harness.broker.refresher.refresh('rotating', { actor: 'test', force: true });
    expect(outcome.result).toBe('refreshed');
  }
  const versions = harness.keyVault!.secrets.versions(secretNames.cache('rotating'));
  expect(versions).toHaveLength(5);
  expect(versions.filter((version) => version.enabled)).toHaveLength(2);
  // The newest holds a usable refresh token: a refresh still works.
  expect(await storedRefreshToken(harness, 'rotating')).toBeDefined();
  expect((await harness.broker.refresher.refresh('rotating', { actor: 'test', force: true })).result).toBe(
    'refreshed',
  );
});
