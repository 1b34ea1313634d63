import {
  EWS_POLICY_REASON,
  ewsPolicyRefusal,
  OPEN_EWS_POLICY,
  type EwsAccessPolicy,
} from '../../../sandbox/ews-access-policy';

/**
 * Exchange Online's EWS access controls as "Control access to EWS in Exchange" documents them: both
 * EwsEnabled settings must allow (null counts as true, the organization's false wins), then the App ID
 * list and the User-Agent policy must both pass; the header names only disabled vs blocked by policy.
 */
const APP = '6a4c1f1e-0000-4000-8000-000000000001';
const OTHER = '6a4c1f1e-0000-4000-8000-000000000002';
const caller = { appId: APP, mailbox: 'alice@contoso.test', userAgent: 'ews-oauth-broker/0.1.0' };
const { disabled, blocked } = EWS_POLICY_REASON;

describe('ewsPolicyRefusal', () => {
  it.each<[string, Partial<EwsAccessPolicy>, string | undefined]>([
    ['everything default (null)', {}, undefined],
    ['organization EwsEnabled $true, no list', { organizationEwsEnabled: true }, undefined],
    ['organization EwsEnabled $false', { organizationEwsEnabled: false }, disabled],
    ['mailbox EwsEnabled $false', { mailboxEwsEnabled: { 'ALICE@contoso.test': false } }, disabled],
    [
      'organization $false beats mailbox $true',
      { organizationEwsEnabled: false, mailboxEwsEnabled: { 'alice@contoso.test': true } },
      disabled,
    ],
    ['another mailbox disabled', { mailboxEwsEnabled: { 'bob@contoso.test': false } }, undefined],
    [
      'app on EwsAllowedAppIDs',
      { organizationEwsEnabled: true, allowedAppIds: [OTHER, APP.toUpperCase()] },
      undefined,
    ],
    ['app not on EwsAllowedAppIDs', { organizationEwsEnabled: true, allowedAppIds: [OTHER] }, blocked],
    ['an empty EwsAllowedAppIDs', { allowedAppIds: [] }, blocked],
    [
      'disabled is reported before the allow list',
      { organizationEwsEnabled: false, allowedAppIds: [OTHER] },
      disabled,
    ],
    [
      'EnforceAllowList without the User-Agent',
      { applicationAccessPolicy: 'EnforceAllowList', allowList: ['OWA/*'] },
      blocked,
    ],
    [
      'EnforceAllowList with a matching pattern',
      { applicationAccessPolicy: 'EnforceAllowList', allowList: ['OWA/*', 'ews-oauth-broker/*'] },
      undefined,
    ],
    ['EnforceAllowList with an empty list', { applicationAccessPolicy: 'EnforceAllowList' }, blocked],
    [
      'EnforceBlockList naming the broker',
      { applicationAccessPolicy: 'EnforceBlockList', blockList: ['ews-*'] },
      blocked,
    ],
    [
      'EnforceBlockList naming others',
      { applicationAccessPolicy: 'EnforceBlockList', blockList: ['OWA/*'] },
      undefined,
    ],
    [
      'App ID allowed but the User-Agent refused: both must pass',
      { allowedAppIds: [APP], applicationAccessPolicy: 'EnforceAllowList', allowList: ['OWA/*'] },
      blocked,
    ],
  ])('%s', (_name, policy, expected) => {
    expect(ewsPolicyRefusal({ ...OPEN_EWS_POLICY, ...policy }, caller)).toBe(expected);
  });

  it('has exactly the two documented header values', () => {
    expect(Object.values(EWS_POLICY_REASON)).toEqual([
      'EWS is disabled for this user or tenant',
      'EWS is blocked by policy for this user or tenant',
    ]);
  });

  it('treats pattern characters other than * literally', () => {
    const policy: EwsAccessPolicy = {
      ...OPEN_EWS_POLICY,
      applicationAccessPolicy: 'EnforceAllowList',
      allowList: ['a.b'],
    };
    expect(ewsPolicyRefusal(policy, { ...caller, userAgent: 'a.b' })).toBeUndefined();
    expect(ewsPolicyRefusal(policy, { ...caller, userAgent: 'axb' })).toBe(blocked);
  });
});
