/**
 * Exchange Online's EWS access controls, as "Control access to EWS in Exchange" (Exchange developer
 * docs, how-to-control-access-to-ews-in-exchange.md, 2025 revision) describes them:
 *
 * - `EwsEnabled` of the organization (Set-OrganizationConfig) and of the mailbox (Set-CASMailbox):
 *   EWS is allowed only when neither is `$false`; `$null` counts as `$true`, and an organization-wide
 *   `$false` also blocks mailboxes set to `$true` (the same page; Message center MC1015893).
 * - `EwsAllowedAppIDs`: when set, only the listed application ids reach EWS.
 * - `EwsApplicationAccessPolicy` with `EwsAllowList` / `EwsBlockList`: User-Agent patterns (`OWA/*`).
 *   The App ID list and the User-Agent lists are both evaluated and both must pass.
 * - A blocked request is answered `403 Forbidden` with `X-EWS-Policy-Reason` holding one of exactly two
 *   values: `EWS is disabled for this user or tenant` (EwsEnabled) or `EWS is blocked by policy for this
 *   user or tenant` (the App ID list or a User-Agent policy; the header does not say which).
 */

export const EWS_POLICY_REASON = {
  disabled: 'EWS is disabled for this user or tenant',
  blocked: 'EWS is blocked by policy for this user or tenant',
} as const;

export interface EwsAccessPolicy {
  /** Set-OrganizationConfig -EwsEnabled; null is the default and counts as true. */
  organizationEwsEnabled: boolean | null;
  /** Set-CASMailbox -EwsEnabled per mailbox (SMTP address, any case); absent counts as null. */
  mailboxEwsEnabled: Record<string, boolean | null>;
  /** Set-OrganizationConfig -EwsAllowedAppIDs; null: no App ID restriction. */
  allowedAppIds: string[] | null;
  /** Set-OrganizationConfig -EwsApplicationAccessPolicy; null: no User-Agent policy. */
  applicationAccessPolicy: 'EnforceAllowList' | 'EnforceBlockList' | null;
  /** -EwsAllowList / -EwsBlockList: User-Agent patterns, `*` matching any run of characters. */
  allowList: string[];
  blockList: string[];
}

export const OPEN_EWS_POLICY: EwsAccessPolicy = {
  organizationEwsEnabled: null,
  mailboxEwsEnabled: {},
  allowedAppIds: null,
  applicationAccessPolicy: null,
  allowList: [],
  blockList: [],
};

/** Who is asking, as the front end sees it before the SOAP body is read. */
export interface EwsCallerFacts {
  appId: string | undefined;
  /** The mailbox whose EwsEnabled applies: the token's user, or the anchor of an app-only call. */
  mailbox: string | undefined;
  userAgent: string | undefined;
}

function userAgentMatches(pattern: string, userAgent: string): boolean {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`, 'i').test(userAgent);
}

/** The X-EWS-Policy-Reason a request gets, or undefined when the access controls let it through. */
export function ewsPolicyRefusal(
  policy: EwsAccessPolicy,
  caller: EwsCallerFacts,
): (typeof EWS_POLICY_REASON)[keyof typeof EWS_POLICY_REASON] | undefined {
  const mailboxSetting = Object.entries(policy.mailboxEwsEnabled).find(
    ([smtp]) => caller.mailbox !== undefined && smtp.toLowerCase() === caller.mailbox.toLowerCase(),
  )?.[1];
  if (policy.organizationEwsEnabled === false || mailboxSetting === false) return EWS_POLICY_REASON.disabled;
  if (
    policy.allowedAppIds !== null &&
    !policy.allowedAppIds.some((id) => id.toLowerCase() === caller.appId?.toLowerCase())
  ) {
    return EWS_POLICY_REASON.blocked;
  }
  const userAgent = caller.userAgent ?? '';
  if (
    policy.applicationAccessPolicy === 'EnforceAllowList' &&
    !policy.allowList.some((pattern) => userAgentMatches(pattern, userAgent))
  ) {
    return EWS_POLICY_REASON.blocked;
  }
  if (
    policy.applicationAccessPolicy === 'EnforceBlockList' &&
    policy.blockList.some((pattern) => userAgentMatches(pattern, userAgent))
  ) {
    return EWS_POLICY_REASON.blocked;
  }
  return undefined;
}
