import { signIn } from '../../../sandbox/entra/sign-in-driver';
import { secretNames } from '../../../shared/secrets/secret-store';
import { accountMismatch, sameSignInName } from '../../../shared/oauth/authorization';
import { api, authorizeConnection, Browser, startHarness, USERS, type Harness } from '../../support/harness';

/** The browser doors of the authorization flow, each named after what it broke. */
let harness: Harness;

beforeAll(async () => {
  harness = await startHarness();
}, 60_000);

afterAll(() => harness.close());

it('regression: one binding cookie per browser — two Authorize popups in one browser both finish', async () => {
  for (const name of ['first-popup', 'second-popup']) {
    await api(harness.baseUrl, 'PUT', `/api/connections/${name}`, {
      mailbox: USERS.support.username,
      profile: 'ews',
    });
  }
  const browser = new Browser();
  const first = await browser.get(`${harness.baseUrl}/api/connections/first-popup/authorize`);
  const second = await browser.get(`${harness.baseUrl}/api/connections/second-popup/authorize`);
  const firstCallback = await signIn(first.headers.get('location') ?? '', {
    ...USERS.support,
    consent: 'accept',
  });
  const secondCallback = await signIn(second.headers.get('location') ?? '', {
    ...USERS.support,
    consent: 'accept',
  });
  // The second popup finishes first: the first one's cookie must still be there.
  expect((await browser.get(secondCallback)).status).toBe(200);
  expect((await browser.get(firstCallback)).status).toBe(200);
  for (const name of ['first-popup', 'second-popup']) {
    expect((await harness.broker.registry.get(name))?.status).toBe('authorized');
  }
});

it('pins the user (object id) on re-authorization: a recreated account with the same name is refused', async () => {
  expect(await authorizeConnection(harness, 'pinned')).toBe(200);
  const connection = (await harness.broker.registry.get('pinned'))!;
  // As if the mailbox's account had been deleted and recreated: another object id, the same UPN.
  await harness.broker.registry.updateState(
    'pinned',
    { homeAccountId: `recreated.${connection.tenantId ?? ''}` },
    connection.etag,
  );
  const cacheBefore = (await harness.broker.secrets.get(secretNames.cache('pinned')))?.version;
  const browser = new Browser();
  const start = await browser.get(`${harness.baseUrl}/api/connections/pinned/authorize`);
  const callback = await browser.get(
    await signIn(start.headers.get('location') ?? '', { ...USERS.support, consent: 'accept' }),
  );
  const page = await callback.text();
  expect(callback.status).toBe(403);
  expect(page).toContain('account_mismatch');
  expect(page).toContain('reset=true');
  expect((await harness.broker.secrets.get(secretNames.cache('pinned')))?.version).toBe(cacheBefore);
});

it('compares sign-in names as Entra does, and never by the email claim', () => {
  expect(sameSignInName('Support@Contoso.test', 'support@contoso.test')).toBe(true);
  expect(sameSignInName('ｓupport@contoso.test', 'support@contoso.test')).toBe(true); // fullwidth s, NFKC
  expect(sameSignInName('support@contoso.test', 'support@contoso.tesT\u0301')).toBe(false);
  const connection = { name: 'x', account: 'support@contoso.test', homeAccountId: 'oid-1.tid' };
  expect(accountMismatch(connection, 'support@contoso.test', 'oid-1.tid')).toBeUndefined();
  expect(accountMismatch(connection, 'support@contoso.test', 'oid-2.tid')?.code).toBe('account_mismatch');
  expect(accountMismatch(connection, 'agent@contoso.test', 'oid-1.tid')?.code).toBe('account_mismatch');
});

describe('regression: the admin-consent return ended in state_invalid', () => {
  it('says consent was granted, and what comes next', async () => {
    const tenant = harness.entra.tenants.primary.tenantId;
    const response = await new Browser().get(
      `${harness.baseUrl}/api/callback?admin_consent=True&tenant=${tenant}`,
    );
    const page = await response.text();
    expect(response.status).toBe(200);
    expect(page).toContain('Admin consent granted');
    expect(page).toContain(tenant);
    expect(page).not.toContain('state_invalid');
  });

  it('says consent was not granted, with what to do', async () => {
    const response = await new Browser().get(
      `${harness.baseUrl}/api/callback?error=access_denied&error_description=AADSTS65004%3A+User+declined`,
    );
    const page = await response.text();
    expect(response.status).toBe(403);
    expect(page).toContain('Admin consent was not granted');
    expect(page).toContain('AADSTS65004');
    expect(page).not.toContain('<script>alert');
  });
});

it('regression: consent_required closed the popup and lost the admin-consent link — the message carries it', async () => {
  harness.entra.faults.consentRequired(true);
  try {
    await api(harness.baseUrl, 'PUT', '/api/connections/needs-consent', {
      mailbox: USERS.agent.username,
      profile: 'ews',
    });
    const browser = new Browser();
    const start = await browser.get(`${harness.baseUrl}/api/connections/needs-consent/authorize`);
    const callbackUrl = await signIn(start.headers.get('location') ?? '', {
      ...USERS.agent,
      consent: 'accept',
    });
    const page = await (await browser.get(callbackUrl)).text();
    // The message the popup posts to the console before closing.
    const message = /var message = (\{.*?\});/s.exec(page)?.[1] ?? '{}';
    const posted = JSON.parse(message) as { code?: string; remedy?: string; actionUrl?: string };
    expect(posted.code).toBe('consent_required');
    expect(posted.remedy).toMatch(/Global Administrator/);
    expect(posted.actionUrl).toMatch(/\/adminconsent\?client_id=/);
  } finally {
    harness.entra.faults.consentRequired(false);
  }
});
