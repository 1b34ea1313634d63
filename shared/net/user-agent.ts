/**
 * The one User-Agent the broker sends on every outbound HTTP call it makes itself (EWS, Graph, the
 * webhook). Exchange Online evaluates it against `EwsAllowList` / `EwsBlockList` when the tenant sets
 * `EwsApplicationAccessPolicy` ("Control access to EWS in Exchange"), so an admin can allow it by name:
 * `ews-oauth-broker/*`. Kept equal to package.json's version by a unit test.
 */
export const USER_AGENT = 'ews-oauth-broker/0.1.0';

/** The pattern an Exchange admin adds to `EwsAllowList` so any version of the broker passes. */
export const USER_AGENT_PATTERN = 'ews-oauth-broker/*';
