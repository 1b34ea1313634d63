import { assertConnectionName, parseConnectionDefinition } from '../../../shared/connections/connection';
import { delegatedScopes, scopesFor } from '../../../shared/connections/profiles';
import { cloudFor } from '../../../shared/clouds';
import { BrokerError } from '../../../shared/errors';

describe('connection names', () => {
  it.each(['a', 'support-in', 'a1', 'x'.repeat(48), '0-0'])('accepts %s', (name) => {
    expect(assertConnectionName(name)).toBe(name);
  });
  it.each(['', '-a', 'a-', 'Support', 'a_b', 'a/b', 'x'.repeat(49), 'a.b', '../x', undefined, 42])(
    'rejects %p',
    (name) => {
      expect(() => assertConnectionName(name)).toThrow(
        expect.objectContaining({ code: 'invalid_connection_name' }),
      );
    },
  );
});

describe('connection definitions', () => {
  it('defaults the account to the mailbox and the grant to authorization_code', () => {
    expect(parseConnectionDefinition({ mailbox: 'Support@Contoso.test', profile: 'ews' })).toEqual({
      mailbox: 'support@contoso.test',
      account: 'support@contoso.test',
      profile: 'ews',
      grant: 'authorization_code',
      scopes: undefined,
      ewsUrl: undefined,
      readers: [],
      description: '',
    });
  });

  it.each([
    ['client_credentials', 'ews'],
    ['client_credentials', 'imap'],
    ['client_credentials', 'pop'],
    ['client_credentials', 'smtp'],
    ['client_credentials', 'graph-mail'],
    ['password', 'imap'],
    ['password', 'smtp'],
    ['password', 'ews'],
    ['authorization_code', 'graph-mail-shared'],
  ] as const)('accepts grant %s with profile %s', (grant, profile) => {
    expect(parseConnectionDefinition({ mailbox: 'a@b.test', profile, grant })).toMatchObject({
      grant,
      profile,
    });
  });

  it('keeps signInFrom, the name of the connection whose sign-in it uses', () => {
    expect(
      parseConnectionDefinition({ mailbox: 'a@b.test', profile: 'smtp', signInFrom: 'support-in' }),
    ).toMatchObject({ signInFrom: 'support-in', grant: 'authorization_code' });
    expect(parseConnectionDefinition({ mailbox: 'a@b.test', profile: 'smtp' })).not.toHaveProperty(
      'signInFrom',
    );
  });

  it('keeps a delegate account for a shared mailbox', () => {
    const definition = parseConnectionDefinition({
      mailbox: 'shared@contoso.test',
      account: 'agent@contoso.test',
      profile: 'ews-shared',
    });
    expect(definition.account).toBe('agent@contoso.test');
  });

  it.each<[string, unknown, RegExp]>([
    ['not an object', 'ews', /body/],
    ['null', null, /body/],
    ['missing mailbox', { profile: 'ews' }, /mailbox/],
    ['bad mailbox', { mailbox: 'not-an-address', profile: 'ews' }, /mailbox: expected an SMTP address/],
    ['unknown profile', { mailbox: 'a@b.test', profile: 'exchange' }, /profile: expected one of/],
    ['unknown field', { mailbox: 'a@b.test', profile: 'ews', password: 'x' }, /password|Unrecognized/i],
    ['custom without scopes', { mailbox: 'a@b.test', profile: 'custom' }, /scopes: required/],
    [
      'signInFrom not a name',
      { mailbox: 'a@b.test', profile: 'smtp', signInFrom: 'Bad Name' },
      /signInFrom: expected the name/,
    ],
    [
      'signInFrom with an app-only grant',
      { mailbox: 'a@b.test', profile: 'smtp', grant: 'client_credentials', signInFrom: 'support-in' },
      /signInFrom: an app-only connection has no sign-in to share/,
    ],
    ['scopes without custom', { mailbox: 'a@b.test', profile: 'ews', scopes: ['x'] }, /scopes: only allowed/],
    [
      'graph-mail-shared app-only',
      { mailbox: 'a@b.test', profile: 'graph-mail-shared', grant: 'client_credentials' },
      /grant: profile graph-mail-shared has no app-only permission/,
    ],
    [
      'ewsUrl over http',
      { mailbox: 'a@b.test', profile: 'ews', ewsUrl: 'http://mail.b.test/EWS/Exchange.asmx' },
      /ewsUrl: expected an https/,
    ],
    [
      'ewsUrl with credentials',
      { mailbox: 'a@b.test', profile: 'ews', ewsUrl: 'https://u:p@mail.b.test/EWS/Exchange.asmx' },
      /ewsUrl: must not carry credentials/,
    ],
    [
      'ewsUrl with a fragment',
      { mailbox: 'a@b.test', profile: 'ews', ewsUrl: 'https://mail.b.test/EWS/Exchange.asmx#x' },
      /ewsUrl: must not carry a query or fragment/,
    ],
    [
      'ewsUrl with a query',
      { mailbox: 'a@b.test', profile: 'ews', ewsUrl: 'https://mail.b.test/EWS/Exchange.asmx?a=1' },
      /ewsUrl: must not carry a query or fragment/,
    ],
    [
      'ewsUrl on an IP address',
      { mailbox: 'a@b.test', profile: 'ews', ewsUrl: 'https://10.0.0.5/EWS/Exchange.asmx' },
      /ewsUrl: expected a DNS host name/,
    ],
    [
      'ewsUrl not a URL',
      { mailbox: 'a@b.test', profile: 'ews', ewsUrl: 'mail.b.test' },
      /ewsUrl: expected an absolute URL/,
    ],
    [
      'ewsUrl with another profile',
      { mailbox: 'a@b.test', profile: 'imap', ewsUrl: 'https://mail.b.test/EWS/Exchange.asmx' },
      /ewsUrl: only allowed with profiles ews/,
    ],
    [
      'a shared Graph mailbox app-only',
      { mailbox: 'a@b.test', profile: 'graph-mail-shared', grant: 'client_credentials' },
      /grant: profile graph-mail-shared has no app-only permission/,
    ],
    [
      'an app-only connection with a signing-in account',
      { mailbox: 'a@b.test', account: 'c@b.test', profile: 'imap', grant: 'client_credentials' },
      /account: an app-only connection has no signing-in account/,
    ],
    [
      'the device-code grant',
      { mailbox: 'a@b.test', profile: 'imap', grant: 'device_code' },
      /grant: device_code is not supported .*no device-code flow/,
    ],
    [
      'an unknown grant',
      { mailbox: 'a@b.test', profile: 'imap', grant: 'implicit' },
      /grant: expected one of/,
    ],
    [
      'long description',
      { mailbox: 'a@b.test', profile: 'ews', description: 'x'.repeat(501) },
      /description/,
    ],
  ])('rejects %s', (_label, input, expected) => {
    try {
      parseConnectionDefinition(input);
      throw new Error('accepted');
    } catch (error) {
      expect(error).toBeInstanceOf(BrokerError);
      expect((error as BrokerError).code).toBe('invalid_connection');
      expect((error as BrokerError).message).toMatch(expected);
    }
  });
});

describe('custom scopes the broker refuses', () => {
  const own = '66666666-7777-8888-9999-000000000000';
  it.each([
    ['Key Vault', 'https://vault.azure.net/user_impersonation'],
    ['Key Vault (US Gov)', 'https://vault.usgovcloudapi.net/.default'],
    ['Managed HSM', 'https://managedhsm.azure.net/user_impersonation'],
    ['a vault by its own host', 'https://contoso-broker.vault.azure.net/.default'],
    ['ARM', 'https://management.azure.com/user_impersonation'],
    ['ARM (classic audience)', 'https://management.core.windows.net//.default'],
    ['ARM (China)', 'https://management.chinacloudapi.cn/.default'],
    ['the broker itself by app id', `${own}/.default`],
    ['the broker itself by its api:// URI', `api://${own}/user_impersonation`],
  ])('regression: a custom connection could hold tokens for %s', (_what, scope) => {
    expect(() =>
      parseConnectionDefinition(
        { mailbox: 'a@b.test', profile: 'custom', scopes: [scope] },
        { ownClientId: own },
      ),
    ).toThrow(/scopes: .*not (a resource|resources) a connection may hold tokens for/);
  });

  it('still takes a mailbox resource of its own choosing', () => {
    expect(
      parseConnectionDefinition(
        {
          mailbox: 'a@b.test',
          profile: 'custom',
          scopes: ['https://outlook.office.com/EAS.AccessAsUser.All'],
        },
        { ownClientId: own },
      ).scopes,
    ).toEqual(['https://outlook.office.com/EAS.AccessAsUser.All']);
  });
});

describe('profile scopes', () => {
  const global = cloudFor('https://login.microsoftonline.com');
  it.each([
    ['ews', ['https://outlook.office365.com/EWS.AccessAsUser.All']],
    ['ews-shared', ['https://outlook.office365.com/EWS.AccessAsUser.All']],
    ['imap', ['https://outlook.office.com/IMAP.AccessAsUser.All']],
    ['pop', ['https://outlook.office.com/POP.AccessAsUser.All']],
    ['smtp', ['https://outlook.office.com/SMTP.Send']],
    ['graph-mail', ['https://graph.microsoft.com/Mail.ReadWrite', 'https://graph.microsoft.com/Mail.Send']],
  ] as const)('%s asks for %j', (profile, scopes) => {
    expect(delegatedScopes({ profile, scopes: undefined }, global)).toEqual(scopes);
  });
  it.each([
    ['ews', ['https://outlook.office365.com/.default']],
    ['imap', ['https://outlook.office365.com/.default']],
    ['pop', ['https://outlook.office365.com/.default']],
    ['smtp', ['https://outlook.office365.com/.default']],
    ['graph-mail', ['https://graph.microsoft.com/.default']],
  ] as const)('app-only %s asks for %j', (profile, scopes) => {
    expect(scopesFor({ profile, scopes: undefined, grant: 'client_credentials' }, global)).toEqual(scopes);
  });
  it('asks for the .Shared Graph permissions for a shared mailbox', () => {
    expect(delegatedScopes({ profile: 'graph-mail-shared', scopes: undefined }, global)).toEqual([
      'https://graph.microsoft.com/Mail.ReadWrite.Shared',
      'https://graph.microsoft.com/Mail.Send.Shared',
    ]);
  });
  it('takes the EWS resource from an on-premises ewsUrl', () => {
    const definition = parseConnectionDefinition({
      mailbox: 'a@b.test',
      profile: 'ews',
      ewsUrl: 'https://Mail.B.test/EWS/Exchange.asmx',
    });
    expect(definition.ewsUrl).toBe('https://mail.b.test/EWS/Exchange.asmx');
    expect(delegatedScopes(definition, global)).toEqual(['https://mail.b.test/EWS.AccessAsUser.All']);
  });
  it('follows the US Government cloud', () => {
    expect(
      delegatedScopes({ profile: 'ews', scopes: undefined }, cloudFor('https://login.microsoftonline.us')),
    ).toEqual(['https://outlook.office365.us/EWS.AccessAsUser.All']);
  });
});
