import { accountMismatch } from '../../../shared/oauth/authorization';

describe('accountMismatch', () => {
  it('a recreated account (another object id): reset in the console (More → Reset), the API call in brackets', () => {
    const connection = { name: 'support-in', account: 'support@contoso.test', homeAccountId: 'oid-1.tid' };
    const mismatch = accountMismatch(connection, 'support@contoso.test', 'oid-2.tid');
    expect(mismatch?.code).toBe('account_mismatch');
    expect(mismatch?.remedy).toBe(
      "If the account was recreated, reset the connection and authorize it again: in the console, the connection's More → Reset, then Authorize (API: `PUT /api/connections/support-in?reset=true` with its definition).",
    );
  });
});
