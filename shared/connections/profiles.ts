import type { CloudEndpoints } from '../clouds';
import type { ConnectionDefinition, Profile } from './connection';

type ScopeSource = Pick<ConnectionDefinition, 'profile' | 'scopes'> & {
  grant?: ConnectionDefinition['grant'];
  ewsUrl?: string | undefined;
};

/** The EWS resource: Exchange Online's, or the host of an on-premises ewsUrl. */
function ewsResource(definition: ScopeSource, cloud: CloudEndpoints): string {
  return definition.ewsUrl ? new URL(definition.ewsUrl).origin : cloud.exchangeResource;
}

/**
 * Delegated scopes per profile, built from the configured cloud's resource hosts. MSAL adds
 * `openid profile offline_access` to every user request itself, so they are not listed.
 */
export function delegatedScopes(definition: ScopeSource, cloud: CloudEndpoints): string[] {
  const byProfile: Record<Exclude<Profile, 'custom'>, string[]> = {
    ews: [`${ewsResource(definition, cloud)}/EWS.AccessAsUser.All`],
    'ews-shared': [`${ewsResource(definition, cloud)}/EWS.AccessAsUser.All`],
    imap: [`${cloud.outlookResource}/IMAP.AccessAsUser.All`],
    pop: [`${cloud.outlookResource}/POP.AccessAsUser.All`],
    smtp: [`${cloud.outlookResource}/SMTP.Send`],
    'graph-mail': [`${cloud.graphResource}/Mail.ReadWrite`, `${cloud.graphResource}/Mail.Send`],
    'graph-mail-shared': [
      `${cloud.graphResource}/Mail.ReadWrite.Shared`,
      `${cloud.graphResource}/Mail.Send.Shared`,
    ],
  };
  if (definition.profile === 'custom') return [...(definition.scopes ?? [])];
  return byProfile[definition.profile];
}

/**
 * The app-only scope (`client_credentials`): the resource's `/.default`, which carries the
 * application permissions granted to the app (full_access_as_app, IMAP.AccessAsApp,
 * POP.AccessAsApp, SMTP.SendAsApp on Exchange; Mail.ReadWrite, Mail.Send on Graph).
 */
export function appOnlyScopes(definition: ScopeSource, cloud: CloudEndpoints): string[] {
  switch (definition.profile) {
    case 'ews':
    case 'ews-shared':
      return [`${ewsResource(definition, cloud)}/.default`];
    case 'imap':
    case 'pop':
    case 'smtp':
      return [`${cloud.exchangeResource}/.default`];
    case 'graph-mail':
      return [`${cloud.graphResource}/.default`];
    case 'custom':
      return [...(definition.scopes ?? [])];
    default:
      // Refused when the connection is defined; no profile reaches here with another grant.
      throw new RangeError(`profile ${definition.profile} has no app-only scope`);
  }
}

/** The scopes a connection's tokens are requested with, for its grant. */
export function scopesFor(definition: ScopeSource, cloud: CloudEndpoints): string[] {
  return definition.grant === 'client_credentials'
    ? appOnlyScopes(definition, cloud)
    : delegatedScopes(definition, cloud);
}
