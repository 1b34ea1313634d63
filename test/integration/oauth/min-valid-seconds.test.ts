import { api, authorizeConnection, startHarness, TestClock, type Harness } from '../../support/harness';

/**
 * `GET /connections/{name}/token?min_valid_seconds=N`: a consumer with its own expiry margin
 * (Genesys' token-expiry-margin-time) gets a token that lives at least N seconds, refreshed first
 * when needed — once however many callers ask — and a bad N is a 400 that changes nothing.
 */
const clock = new TestClock();
let harness: Harness;
const refreshes = () => harness.entra.stats.requests['token:refresh_token'] ?? 0;
const read = (query = '') => api(harness.baseUrl, 'GET', `/api/connections/support-in/token${query}`);

beforeAll(async () => {
  harness = await startHarness({ clock });
  expect(await authorizeConnection(harness, 'support-in')).toBe(200);
}, 60_000);

afterAll(() => harness.close());

it('serves the token as it is while it lives long enough', async () => {
  const before = refreshes();
  const { status, json } = await read('?min_valid_seconds=3000');
  expect(status).toBe(200);
  expect(json.expires_in).toBeGreaterThanOrEqual(3000);
  expect(refreshes()).toBe(before);
});

it('refreshes first, once for 20 callers, when the token would live less than N', async () => {
  clock.advance(20 * 60 * 1000); // 40 minutes left: more than the 15-minute margin, less than N
  const before = refreshes();
  expect((await read()).json.expires_in).toBeLessThan(3000);
  expect(refreshes()).toBe(before);
  const answers = await Promise.all(Array.from({ length: 20 }, () => read('?min_valid_seconds=3000')));
  for (const answer of answers) {
    expect(answer.status).toBe(200);
    expect(answer.json.expires_in).toBeGreaterThanOrEqual(3000);
  }
  expect(refreshes()).toBe(before + 1);
});

it('regression: asking for 59 minutes forced a refresh on every read — now at most one per 5 minutes', async () => {
  // A token fresh from Entra lives about an hour: right after a refresh it already lives less than 3540 s.
  clock.advance(50 * 60 * 1000);
  const before = refreshes();
  const first = await read('?min_valid_seconds=3540');
  expect(first.status).toBe(200);
  expect(refreshes()).toBe(before + 1);
  clock.advance(2 * 60 * 1000);
  for (let i = 0; i < 5; i++) {
    const again = await read('?min_valid_seconds=3540');
    expect(again.status).toBe(200);
    // Served as it is, with its true remaining life.
    expect(again.json.expires_in).toBeLessThan(3540);
    expect(again.json.expires_in).toBeGreaterThan(3000);
  }
  expect(refreshes()).toBe(before + 1);
  clock.advance(4 * 60 * 1000); // 6 minutes after the refresh
  await read('?min_valid_seconds=3540');
  expect(refreshes()).toBe(before + 2);
});

it.each([
  '?min_valid_seconds=59',
  '?min_valid_seconds=3541',
  '?min_valid_seconds=abc',
  '?min_valid_seconds=1&min_valid_seconds=2',
  '?min_valid_seconds=-5',
  '?min_valid_seconds=1e3',
])('refuses %s with a 400 and no refresh', async (query) => {
  const before = refreshes();
  const { status, json } = await read(query);
  expect(status).toBe(400);
  expect(json).toMatchObject({ code: 'invalid_request' });
  expect(String(json.detail)).toContain('min_valid_seconds');
  expect(refreshes()).toBe(before);
});

it('regression: a read that refreshes read the row three times and the token secret twice — now twice and once', async () => {
  clock.advance(50 * 60 * 1000); // inside the refresh margin
  const rowReads = jest.spyOn(harness.broker.registry, 'get');
  const secretReads = jest.spyOn(harness.broker.secrets, 'get');
  try {
    harness.broker.tokenReader.forget('support-in');
    const before = refreshes();
    expect((await read()).status).toBe(200);
    expect(refreshes()).toBe(before + 1);
    const tokenReads = secretReads.mock.calls.filter(([name]) => name === 'conn-support-in-token').length;
    // The serve's row read and the refresh's own under its lease; the refresh hands back both its
    // row and what it published. The one token read is the serve's, before it knew a refresh was due.
    expect(rowReads.mock.calls.filter(([name]) => name === 'support-in')).toHaveLength(2);
    expect(tokenReads).toBe(1);
  } finally {
    rowReads.mockRestore();
    secretReads.mockRestore();
  }
});
