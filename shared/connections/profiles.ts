import type { CloudEndpoints } from '../config';
import type { ConnectionDefinition, Profile } from './connection';

/**
 * Scopes per profile (SPEC §2), built from the configured cloud's resource hosts. MSAL adds
 * `openid profile offline_access` to every interactive request itself, so they are not listed.
 */
export function delegatedScopes(
  definition: Pick<ConnectionDefinition, 'profile' | 'scopes'> & { ewsUrl?: string | undefined },
  cloud: CloudEndpoints,
): string[] {
  const ewsResource = definition.ewsUrl ? new URL(definition.ewsUrl).origin : cloud.exchangeResource;
  const byProfile: Record<Exclude<Profile, 'custom'>, string[]> = {
    ews: [`${ewsResource}/EWS.AccessAsUser.All`],
    'ews-shared': [`${ewsResource}/EWS.AccessAsUser.All`],
    imap: [`${cloud.outlookResource}/IMAP.AccessAsUser.All`],
    pop: [`${cloud.outlookResource}/POP.AccessAsUser.All`],
    smtp: [`${cloud.outlookResource}/SMTP.Send`],
    'graph-mail': [`${cloud.graphResource}/Mail.ReadWrite`, `${cloud.graphResource}/Mail.Send`],
  };
  if (definition.profile === 'custom') return [...(definition.scopes ?? [])];
  return byProfile[definition.profile];
}

/** Scopes MSAL adds to every interactive request; not part of what a profile asks for. */
export const OIDC_SCOPES = ['openid', 'profile', 'offline_access'] as const;
