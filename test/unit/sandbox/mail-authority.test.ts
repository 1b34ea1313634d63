import type { BearerCheck, BearerValidator } from '../../../sandbox/bearer';
import { createMailAuthority, parseXoauth2, type MailProtocol } from '../../../sandbox/mail/authority';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const MAILBOXES = [
  { smtp: 'alice@contoso.test', inbox: { total: 3, unread: 1 } },
  { smtp: 'shared@contoso.test', inbox: { total: 7, unread: 0 }, fullAccess: ['Alice@contoso.test'] },
];

/** A validator that reads the "token" as JSON claims (signature and lifetime are bearer.ts's own tests). */
const claimsValidator = (): BearerValidator => ({
  check(authorization, requirements): Promise<BearerCheck> {
    const claims = JSON.parse(
      Buffer.from(authorization?.replace(/^Bearer /, '') ?? '', 'base64url').toString(),
    ) as Record<string, unknown>;
    const scopes = typeof claims.scp === 'string' ? claims.scp.split(' ') : [];
    const roles = Array.isArray(claims.roles) ? claims.roles.map(String) : [];
    if (!requirements.audiences.includes(String(claims.aud)))
      return Promise.resolve({ ok: false, reason: 'audience', claims, detail: '' });
    if (
      !requirements.scopes.some((s) => scopes.includes(s)) &&
      !requirements.roles.some((r) => roles.includes(r))
    )
      return Promise.resolve({ ok: false, reason: 'scope', claims, detail: '' });
    return Promise.resolve({ ok: true, claims });
  },
});
const token = (claims: Record<string, unknown>) => Buffer.from(JSON.stringify(claims)).toString('base64url');
const alice = (scp: string, aud = 'https://outlook.office.com') =>
  token({ aud, scp, upn: 'alice@contoso.test' });
const app = (roles: string[]) => token({ aud: 'https://outlook.office365.com', roles });

describe('parseXoauth2', () => {
  it.each([
    [
      'the documented form',
      b64('user=a@b.test\x01auth=Bearer x.y.z\x01\x01'),
      { user: 'a@b.test', token: 'x.y.z' },
    ],
    [
      '"bearer" in any case',
      b64('user=a@b.test\x01auth=bearer x.y.z\x01\x01'),
      { user: 'a@b.test', token: 'x.y.z' },
    ],
    ['no closing ^A^A', b64('user=a@b.test\x01auth=Bearer x.y.z'), undefined],
    ['no user', b64('user=\x01auth=Bearer x.y.z\x01\x01'), undefined],
    ['another scheme', b64('user=a@b.test\x01auth=Basic eHl6\x01\x01'), undefined],
    ['not base64', 'user=a@b.test', undefined],
  ])('%s', (_name, response, expected) => {
    expect(parseXoauth2(response)).toEqual(expected);
  });
});

describe('createMailAuthority', () => {
  it.each<[string, MailProtocol, string, string, string | undefined]>([
    ['own mailbox, IMAP scope', 'imap', 'alice@contoso.test', alice('IMAP.AccessAsUser.All'), undefined],
    ['user= in another case', 'pop', 'ALICE@contoso.test', alice('POP.AccessAsUser.All'), undefined],
    ['SMTP.Send for SMTP', 'smtp', 'alice@contoso.test', alice('SMTP.Send'), undefined],
    [
      'the office365 audience too',
      'imap',
      'alice@contoso.test',
      alice('IMAP.AccessAsUser.All', 'https://outlook.office365.com'),
      undefined,
    ],
    ['a Full Access delegate', 'imap', 'shared@contoso.test', alice('IMAP.AccessAsUser.All'), undefined],
    [
      'Graph audience',
      'imap',
      'alice@contoso.test',
      alice('IMAP.AccessAsUser.All', 'https://graph.microsoft.com'),
      'audience',
    ],
    ["another protocol's scope", 'imap', 'alice@contoso.test', alice('POP.AccessAsUser.All'), 'scope'],
    ['no mailbox', 'imap', 'nobody@contoso.test', alice('IMAP.AccessAsUser.All'), 'unknown_mailbox'],
    ['app role for the protocol', 'smtp', 'alice@contoso.test', app(['SMTP.SendAsApp']), undefined],
    ['app role of another protocol', 'smtp', 'alice@contoso.test', app(['IMAP.AccessAsApp']), 'scope'],
  ])('%s', async (_name, protocol, user, accessToken, reason) => {
    const authority = createMailAuthority({ validator: claimsValidator(), mailboxes: MAILBOXES });
    const verdict = await authority.authenticate(
      protocol,
      b64(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`),
    );
    expect(verdict.ok ? undefined : verdict.reason).toBe(reason);
    expect(authority.checks).toEqual([
      { protocol, user, ok: reason === undefined, ...(reason ? { reason } : {}) },
    ]);
  });

  it("refuses a delegated token for a mailbox whose owner gave no Full Access, and an app's ungranted mailbox", async () => {
    const authority = createMailAuthority({
      validator: claimsValidator(),
      mailboxes: [...MAILBOXES, { smtp: 'bob@contoso.test', inbox: { total: 0, unread: 0 } }],
      appMailboxes: ['shared@contoso.test'],
    });
    const respond = (user: string, accessToken: string) =>
      authority.authenticate('imap', b64(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`));
    expect(await respond('bob@contoso.test', alice('IMAP.AccessAsUser.All'))).toEqual({
      ok: false,
      reason: 'not_delegate',
    });
    expect(await respond('bob@contoso.test', app(['IMAP.AccessAsApp']))).toEqual({
      ok: false,
      reason: 'app_not_granted',
    });
    expect(await respond('shared@contoso.test', app(['IMAP.AccessAsApp']))).toMatchObject({ ok: true });
  });

  it('a protocol turned off for the mailbox is refused until turned on again', async () => {
    const authority = createMailAuthority({ validator: claimsValidator(), mailboxes: MAILBOXES });
    const respond = () =>
      authority.authenticate(
        'imap',
        b64(`user=alice@contoso.test\x01auth=Bearer ${alice('IMAP.AccessAsUser.All')}\x01\x01`),
      );
    authority.setProtocolEnabled('Alice@contoso.test', 'imap', false);
    expect(await respond()).toEqual({ ok: false, reason: 'protocol_disabled' });
    authority.setProtocolEnabled('alice@contoso.test', 'imap', true);
    expect(await respond()).toMatchObject({ ok: true, mailbox: { smtp: 'alice@contoso.test' } });
  });
});
