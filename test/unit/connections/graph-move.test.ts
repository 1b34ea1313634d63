import type { Connection } from '../../../shared/connections/connection';
import {
  daysUntilEwsRetirement,
  graphReadiness,
  graphSiblingDefinition,
} from '../../../shared/connections/graph-move';

function connection(name: string, fields: Partial<Connection> = {}): Connection {
  return {
    name,
    mailbox: 'support@contoso.test',
    account: 'support@contoso.test',
    profile: 'ews',
    grant: 'authorization_code',
    scopes: undefined,
    ewsUrl: undefined,
    readers: [],
    description: '',
    status: 'authorized',
    createdAt: '2026-12-01T00:00:00.000Z',
    updatedAt: '2026-12-01T00:00:00.000Z',
    authorizedAt: '2026-12-01T00:00:00.000Z',
    authorizedBy: 'support@contoso.test',
    tenantId: 't',
    homeAccountId: 'h',
    tokenExpiresOn: undefined,
    lastRefreshAt: undefined,
    consecutiveFailures: 0,
    degradedSince: undefined,
    nextAttemptAt: undefined,
    lastError: undefined,
    etag: '*',
    ...fields,
  };
}

describe('days until EWS retires (1 April 2027)', () => {
  it.each([
    ['2026-12-03T12:00:00Z', 119],
    ['2027-03-31T00:00:00Z', 1],
    ['2027-03-31T23:59:59Z', 1],
    ['2027-04-01T00:00:00Z', 0],
    ['2027-06-01T00:00:00Z', 0],
  ])('%s: %i', (now, days) => {
    expect(daysUntilEwsRetirement(new Date(now))).toBe(days);
  });
});

describe('Graph readiness', () => {
  const now = new Date('2026-12-03T12:00:00Z');

  it('pairs each EWS connection with the Graph connection of its mailbox and sign-in', () => {
    const all = [
      connection('support-in', {
        lastTest: { ok: false, code: 'ews_blocked', protocol: 'ews', testedAt: 'x' },
      }),
      connection('support-graph', { profile: 'graph-mail', signInFrom: 'support-in' }),
      connection('sales-in', { mailbox: 'sales@contoso.test', account: 'sales@contoso.test' }),
      connection('sales-smtp', {
        mailbox: 'sales@contoso.test',
        account: 'sales@contoso.test',
        profile: 'smtp',
      }),
    ];
    const readiness = graphReadiness(all, now);
    expect(readiness).toMatchObject({ ewsRetirement: '2027-04-01', daysLeft: 119, ready: 1, total: 2 });
    // Not ready first: what still needs doing leads.
    expect(readiness.connections.map((row) => [row.ews, row.graph?.name ?? null, row.ready])).toEqual([
      ['sales-in', null, false],
      ['support-in', 'support-graph', true],
    ]);
    expect(readiness.connections[1]?.lastTest).toMatchObject({ code: 'ews_blocked' });
  });

  it.each<[string, Partial<Connection>, boolean]>([
    ['authorized, never tested', {}, true],
    [
      'authorized, last test ok',
      { lastTest: { ok: true, code: undefined, protocol: 'graph', testedAt: 'x' } },
      true,
    ],
    [
      'authorized, last test failed',
      { lastTest: { ok: false, code: 'forbidden', protocol: 'graph', testedAt: 'x' } },
      false,
    ],
    ['reauthorization_required', { status: 'reauthorization_required' }, false],
    ['new', { status: 'new' }, false],
  ])('a Graph sibling that is %s counts as ready: %s', (_, fields, ready) => {
    const all = [
      connection('ews'),
      connection('ews-graph', { profile: 'graph-mail', signInFrom: 'ews', ...fields }),
    ];
    expect(graphReadiness(all, now).connections[0]?.ready).toBe(ready);
  });

  it('does not take another account or an app-only Graph connection for a delegated EWS one', () => {
    const all = [
      connection('ews'),
      connection('other-account', { profile: 'graph-mail', account: 'agent@contoso.test' }),
      connection('app', { profile: 'graph-mail', grant: 'client_credentials' }),
    ];
    expect(graphReadiness(all, now).connections[0]?.graph).toBeNull();
  });
});

describe('the Graph sibling of an EWS connection', () => {
  it('is graph-mail, signing in through the EWS sign-in, with the same mailbox, account and readers', () => {
    const ews = connection('support-in', { readers: ['0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9'] });
    expect(graphSiblingDefinition(ews, undefined)).toMatchObject({
      name: 'support-in-graph',
      definition: {
        profile: 'graph-mail',
        grant: 'authorization_code',
        signInFrom: 'support-in',
        mailbox: 'support@contoso.test',
        account: 'support@contoso.test',
        readers: ['0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9'],
      },
    });
  });

  it('is graph-mail-shared for ews-shared, and borrows the same sign-in as a dependant EWS connection (no chains)', () => {
    const ews = connection('shared-in', {
      profile: 'ews-shared',
      mailbox: 'shared@contoso.test',
      signInFrom: 'support-in',
    });
    expect(graphSiblingDefinition(ews, 'shared-graph').definition).toMatchObject({
      profile: 'graph-mail-shared',
      signInFrom: 'support-in',
    });
  });

  it('is app-only graph-mail for an app-only EWS connection', () => {
    const { definition } = graphSiblingDefinition(
      connection('app-ews', { grant: 'client_credentials' }),
      undefined,
    );
    expect(definition).toMatchObject({ profile: 'graph-mail', grant: 'client_credentials' });
    expect(definition.signInFrom).toBeUndefined();
  });

  it.each<[string, Partial<Connection>, string | undefined, string]>([
    ['not EWS', { profile: 'imap' }, undefined, 'invalid_request'],
    ['a bad name', {}, 'Bad Name', 'invalid_connection_name'],
    ['a default name over 48 characters', { name: 'x'.repeat(44) }, undefined, 'invalid_connection_name'],
  ])('is refused for %s', (_, fields, name, code) => {
    expect(() => graphSiblingDefinition(connection('ews', fields), name)).toThrow(
      expect.objectContaining({ code }),
    );
  });
});
