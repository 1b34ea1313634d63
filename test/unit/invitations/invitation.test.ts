import { authorizationBinding, type Connection } from '../../../shared/connections/connection';
import { BrokerError } from '../../../shared/errors';
import { callbackPage, invitationPage } from '../../../shared/http/pages';
import {
  assertInvitationToken,
  capabilityLine,
  invitationBinding,
  invitationId,
  invitationRefusal,
  invitationUrl,
  invitationsUrl,
  newInvitationToken,
  type Invitation,
} from '../../../shared/invitations/invitation';

const NOW = Date.parse('2026-12-01T12:00:00Z');

function connection(overrides: Partial<Connection> = {}): Connection {
  return {
    name: 'alice-in',
    mailbox: 'alice@contoso.com',
    account: 'alice@contoso.com',
    profile: 'ews',
    grant: 'authorization_code',
    scopes: undefined,
    ewsUrl: undefined,
    readers: [],
    description: '',
    status: 'new',
    createdAt: '2026-11-30T00:00:00.000Z',
    updatedAt: '2026-11-30T00:00:00.000Z',
    authorizedAt: undefined,
    authorizedBy: undefined,
    tenantId: undefined,
    homeAccountId: undefined,
    tokenExpiresOn: undefined,
    lastRefreshAt: undefined,
    consecutiveFailures: 0,
    degradedSince: undefined,
    nextAttemptAt: undefined,
    lastError: undefined,
    etag: 'W/"1"',
    ...overrides,
  };
}

const made = connection();
function invitation(overrides: Partial<Invitation> = {}): Invitation {
  return {
    id: invitationId('x'.repeat(43)),
    connection: made.name,
    binding: invitationBinding(made),
    createdBy: 'admin@contoso.com',
    createdAt: new Date(NOW - 3_600_000).toISOString(),
    expiresOn: new Date(NOW + 3_600_000).toISOString(),
    usedAt: undefined,
    usedBy: undefined,
    etag: 'W/"2"',
    ...overrides,
  };
}

describe('invitationRefusal', () => {
  it.each<[string, Invitation | undefined, Connection | undefined, string | undefined]>([
    ['open, for the connection as it was made', invitation(), made, undefined],
    [
      'open, the connection authorized meanwhile (authorizedAt is not bound)',
      invitation(),
      connection({ status: 'authorized', authorizedAt: '2026-12-01T11:00:00.000Z' }),
      undefined,
    ],
    [
      'description and readers changed',
      invitation(),
      connection({ description: 'x', readers: ['r'] }),
      undefined,
    ],
    ['unknown, revoked or forged', undefined, made, 'invitation_invalid'],
    ['used', invitation({ usedAt: new Date(NOW - 1000).toISOString() }), made, 'invitation_invalid'],
    ['expired', invitation({ expiresOn: new Date(NOW - 1).toISOString() }), made, 'invitation_invalid'],
    [
      'expiring right now',
      invitation({ expiresOn: new Date(NOW).toISOString() }),
      made,
      'invitation_invalid',
    ],
    ['unparsable expiry', invitation({ expiresOn: 'soon' }), made, 'invitation_invalid'],
    ['connection deleted', invitation(), undefined, 'invitation_invalid'],
    [
      'connection re-created under the same name',
      invitation(),
      connection({ createdAt: '2026-12-01T11:30:00.000Z' }),
      'invitation_invalid',
    ],
    ['account changed', invitation(), connection({ account: 'bob@contoso.com' }), 'invitation_invalid'],
    ['profile changed', invitation(), connection({ profile: 'graph-mail' }), 'invitation_invalid'],
    ['grant no longer delegated', invitation(), connection({ grant: 'password' }), 'invitation_invalid'],
    ['connection disabled', invitation(), connection({ status: 'disabled' }), 'connection_disabled'],
  ])('%s', (_label, given, current, code) => {
    expect(invitationRefusal(given, current, NOW)?.code).toBe(code);
  });

  it('answers every refused link with the same status, so a guesser learns nothing', () => {
    const statuses = [
      invitationRefusal(undefined, made, NOW),
      invitationRefusal(invitation({ usedAt: 'x' }), made, NOW),
      invitationRefusal(invitation({ expiresOn: new Date(NOW - 1).toISOString() }), made, NOW),
      invitationRefusal(invitation(), undefined, NOW),
    ].map((error) => error?.status);
    expect(statuses).toEqual([410, 410, 410, 410]);
  });

  it('tells the owner what to do in plain words: the invitation page shows a remedy as text', () => {
    // The owner's page (shared/http/pages.ts invitationPage) puts the remedy in as a text node; a
    // code span or a link here would show as raw backticks there. Render it first if one is added.
    const refusals = [
      invitationRefusal(undefined, made, NOW),
      invitationRefusal(invitation({ usedAt: 'x' }), made, NOW),
      invitationRefusal(invitation({ expiresOn: new Date(NOW - 1).toISOString() }), made, NOW),
      invitationRefusal(invitation(), undefined, NOW),
      invitationRefusal(invitation(), connection({ status: 'disabled' }), NOW),
    ];
    for (const refusal of refusals) {
      expect(refusal?.remedy).toMatch(/^Ask the administrator who sent you this link /);
      expect(refusal?.remedy).not.toMatch(/`|https?:|\{name\}|\/api\//);
    }
  });
});

describe('invitation tokens', () => {
  it('are 32 random bytes, base64url, stored only as their SHA-256', () => {
    const token = newInvitationToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    expect(newInvitationToken()).not.toBe(token);
    expect(invitationId(token)).toMatch(/^[0-9a-f]{64}$/);
    expect(invitationId(token)).not.toContain(token);
  });

  it.each(['', 'short', `${'A'.repeat(42)}=`, 'A'.repeat(44), `${'A'.repeat(42)}/`, '../../etc/passwd', 7])(
    'refuses the shape %p before any lookup',
    (token) => {
      expect(() => assertInvitationToken(token)).toThrow(BrokerError);
    },
  );

  it('builds absolute links under the public base URL', () => {
    expect(invitationUrl('https://broker.contoso.com', 'T')).toBe(
      'https://broker.contoso.com/api/invitation#T',
    );
    expect(invitationsUrl('https://broker.contoso.com', 'alice-in')).toBe(
      'https://broker.contoso.com/api/connections/alice-in/invitations',
    );
  });

  it('binds to the row and the grant fields, not to the last authorization', () => {
    const authorized = connection({ authorizedAt: '2026-12-01T00:00:00.000Z' });
    expect(invitationBinding(authorized)).toEqual(invitationBinding(made));
    expect(authorizationBinding(authorized)).not.toEqual(authorizationBinding(made));
  });
});

describe('capabilityLine', () => {
  it.each<[Partial<Connection>, string]>([
    [{ profile: 'ews' }, 'Read and send mail in alice@contoso.com over Exchange Web Services (EWS).'],
    [
      { profile: 'ews', ewsUrl: 'https://mail.contoso.com/EWS/Exchange.asmx' },
      'Read and send mail in alice@contoso.com over Exchange Web Services (EWS) at mail.contoso.com.',
    ],
    [
      { profile: 'ews-shared', mailbox: 'shared@contoso.com' },
      'Read and send mail in the shared mailbox shared@contoso.com (as alice@contoso.com, a delegate) over Exchange Web Services (EWS).',
    ],
    [{ profile: 'imap' }, 'Read mail in alice@contoso.com over IMAP.'],
    [{ profile: 'pop' }, 'Download mail from alice@contoso.com over POP.'],
    [{ profile: 'smtp' }, 'Send mail as alice@contoso.com over SMTP.'],
    [{ profile: 'graph-mail' }, 'Read, change and send mail in alice@contoso.com through Microsoft Graph.'],
    [
      { profile: 'custom', scopes: ['https://graph.microsoft.com/Mail.Read', 'offline_access'] },
      'Use these permissions: https://graph.microsoft.com/Mail.Read, offline_access.',
    ],
  ])('%p', (overrides, line) => {
    expect(capabilityLine(connection(overrides))).toBe(line);
  });
});

describe('invitation pages', () => {
  const options = {
    clientId: '11111111-2222-3333-4444-555555555555',
    appOrigin: 'https://broker.contoso.com',
    signInOrigin: 'https://login.microsoftonline.com',
  };

  it('is the same page for every link: it names the app, reads the secret from the fragment, posts it in a form', () => {
    const response = invitationPage(options);
    const body = String(response.body);
    expect(response.status).toBe(200);
    expect(body).toContain(options.clientId);
    expect(body).toContain('https://broker.contoso.com');
    expect(body).toContain('window.location.hash.slice(1)');
    expect(body).toContain("fetch('/api/invitation/details'");
    expect(body).toContain(
      '<form method="post" action="/api/invitation" id="sign-in-form"><input type="hidden" name="token" id="token"><button type="submit" id="sign-in" class="primary">Sign in with Microsoft</button>',
    );
    const csp = response.headers['Content-Security-Policy'] ?? '';
    expect(csp).toContain("default-src 'none'");
    // The script runs by its nonce only; the form's answer redirects to Entra: form-action allows it, and nothing else.
    expect(csp).toMatch(/script-src 'nonce-[A-Za-z0-9+/=_-]+'/);
    expect(csp).toContain("form-action 'self' https://login.microsoftonline.com;");
    expect(response.headers['Referrer-Policy']).toBe('same-origin');
  });

  it('puts the secret in the fragment of the link, never in its path or query', () => {
    const url = new URL(invitationUrl('https://broker.contoso.com', 'A'.repeat(43)));
    expect(url.pathname).toBe('/api/invitation');
    expect(url.search).toBe('');
    expect(url.hash).toBe(`#${'A'.repeat(43)}`);
  });

  it('ends an invitation sign-in with a page that needs no console', () => {
    const body = String(
      callbackPage('https://broker.contoso.com', {
        ok: true,
        connection: 'alice-in',
        status: 'authorized',
        signedInAs: 'alice@contoso.com',
        invitation: { mailbox: 'alice@contoso.com' },
      }).body,
    );
    expect(body).toContain(
      'Done — <strong>alice@contoso.com</strong> is connected. You can close this window.',
    );
    expect(body).not.toContain('>Authorized<');
  });
});
