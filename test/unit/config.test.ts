import { ConfigError, loadConfig } from '../../shared/config';

const TENANT = '11111111-2222-3333-4444-555555555555';
const CLIENT = '66666666-7777-8888-9999-000000000000';
const base = {
  ENTRA_TENANT_ID: TENANT,
  ENTRA_CLIENT_ID: CLIENT,
  ENTRA_CLIENT_SECRET: 'local-secret',
  BROKER_LOCAL_SECRET_KEY: Buffer.alloc(32, 7).toString('base64'),
};

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('loadConfig', () => {
  it('applies the documented defaults locally', () => {
    const config = loadConfig(base);
    expect(config.clientCredential).toEqual({ kind: 'secret', secret: 'local-secret' });
    expect(config.cloud.authorityHost).toBe('https://login.microsoftonline.com');
    expect(config.cloud.exchangeResource).toBe('https://outlook.office365.com');
    expect(config.publicBaseUrl).toBe('http://localhost:7071');
    expect(config.redirectUri).toBe('http://localhost:7071/api/callback');
    expect(config.storage).toEqual({
      kind: 'connection-string',
      connectionString: 'UseDevelopmentStorage=true',
    });
    expect(config.authSessionTtlSeconds).toBe(600);
    expect(config.invitationTtlMs).toBe(72 * 3_600_000);
    expect(config.refresh).toEqual({
      schedule: '0 */10 * * * *',
      marginMs: 15 * 60_000,
      keepaliveMs: 7 * 86_400_000,
      concurrency: 8,
      budgetSeconds: 540,
      cacheWriteHours: 24,
    });
    expect(config.localAdmin).toBe(false);
    expect(config.keyVaultUrls).toEqual([]);
  });

  it.each([
    [
      'Flex Consumption (no WEBSITE_INSTANCE_ID)',
      { CONTAINER_NAME: 'broker-abc', WEBSITE_SKU: 'FlexConsumption' },
    ],
    ['any App Service plan', { WEBSITE_SITE_NAME: 'broker-abc' }],
    ['a plan that only says its owner', { WEBSITE_OWNER_NAME: 'sub+rg-webspace' }],
    ['Windows App Service', { WEBSITE_INSTANCE_ID: 'abc' }],
  ])(
    'regression: anonymous callers became admin on %s — BROKER_LOCAL_ADMIN is refused there',
    (_plan, platform) => {
      expect(() =>
        loadConfig({
          ENTRA_TENANT_ID: TENANT,
          ENTRA_CLIENT_ID: CLIENT,
          MANAGED_IDENTITY_CLIENT_ID: CLIENT,
          KEY_VAULT_URL: 'https://contoso-broker.vault.azure.net/',
          PUBLIC_BASE_URL: 'https://broker.contoso.com',
          AzureWebJobsStorage__accountName: 'contosobroker',
          AzureWebJobsStorage__clientId: CLIENT,
          BROKER_LOCAL_ADMIN: 'true',
          ...platform,
        }),
      ).toThrow(/BROKER_LOCAL_ADMIN: must not be true in Azure/);
    },
  );

  it('takes a workstation container (CONTAINER_NAME alone) for a workstation', () => {
    const config = loadConfig({
      ENTRA_TENANT_ID: TENANT,
      ENTRA_CLIENT_ID: CLIENT,
      ENTRA_CLIENT_SECRET: 's',
      BROKER_LOCAL_SECRET_KEY: Buffer.alloc(32).toString('base64'),
      CONTAINER_NAME: 'devcontainer',
      BROKER_LOCAL_ADMIN: 'true',
    });
    expect(config.localAdmin).toBe(true);
  });

  it('defaults to the managed identity and the platform host name in Azure', () => {
    const config = loadConfig({
      ENTRA_TENANT_ID: TENANT,
      ENTRA_CLIENT_ID: CLIENT,
      MANAGED_IDENTITY_CLIENT_ID: CLIENT,
      KEY_VAULT_URL: 'https://contoso-broker.vault.azure.net/',
      WEBSITE_INSTANCE_ID: 'abc',
      WEBSITE_HOSTNAME: 'broker-abc.westeurope-01.azurewebsites.net',
      AzureWebJobsStorage__accountName: 'contosobroker',
      AzureWebJobsStorage__clientId: CLIENT,
    });
    expect(config.clientCredential.kind).toBe('managed-identity');
    expect(config.redirectUri).toBe('https://broker-abc.westeurope-01.azurewebsites.net/api/callback');
    expect(config.keyVaultUrls).toEqual(['https://contoso-broker.vault.azure.net']);
    expect(config.storage).toEqual({
      kind: 'identity',
      tableServiceUrl: 'https://contosobroker.table.core.windows.net',
      managedIdentityClientId: CLIENT,
    });
  });

  it.each([
    ['https://login.microsoftonline.us', 'https://outlook.office365.us', 'https://graph.microsoft.us'],
    [
      'https://login.partner.microsoftonline.cn',
      'https://partner.outlook.cn',
      'https://microsoftgraph.chinacloudapi.cn',
    ],
  ])('maps the %s cloud to its Exchange and Graph hosts', (authority, exchange, graph) => {
    const config = loadConfig({ ...base, ENTRA_AUTHORITY_HOST: authority });
    expect(config.cloud.exchangeResource).toBe(exchange);
    expect(config.cloud.graphResource).toBe(graph);
  });

  it.each<[string, Record<string, string>, RegExp]>([
    ['missing tenant', { ENTRA_TENANT_ID: '' }, /^ENTRA_TENANT_ID: required/],
    ['bad tenant', { ENTRA_TENANT_ID: 'not a tenant' }, /^ENTRA_TENANT_ID: expected a tenant GUID/],
    ['bad client id', { ENTRA_CLIENT_ID: 'abc' }, /^ENTRA_CLIENT_ID: expected a GUID/],
    ['secret credential without secret', { ENTRA_CLIENT_SECRET: '' }, /^ENTRA_CLIENT_SECRET: required/],
    [
      'unknown credential kind',
      { ENTRA_CLIENT_CREDENTIAL: 'password' },
      /^ENTRA_CLIENT_CREDENTIAL: expected/,
    ],
    [
      'managed identity without id',
      { ENTRA_CLIENT_CREDENTIAL: 'managed-identity' },
      /^MANAGED_IDENTITY_CLIENT_ID: required/,
    ],
    [
      'http authority',
      { ENTRA_AUTHORITY_HOST: 'http://login.example.com' },
      /^ENTRA_AUTHORITY_HOST: expected .* https/,
    ],
    ['http vault', { KEY_VAULT_URL: 'http://vault.example.com' }, /^KEY_VAULT_URL: expected .* https/],
    [
      'public http base url',
      { PUBLIC_BASE_URL: 'http://broker.example.com' },
      /^PUBLIC_BASE_URL: expected .* https/,
    ],
    ['short local key', { BROKER_LOCAL_SECRET_KEY: 'abcd' }, /^BROKER_LOCAL_SECRET_KEY: expected 32 bytes/],
    [
      'concurrency out of range',
      { REFRESH_CONCURRENCY: '0' },
      /^REFRESH_CONCURRENCY: expected a whole number/,
    ],
    [
      'invitation lifetime out of range',
      { INVITATION_TTL_HOURS: '0' },
      /^INVITATION_TTL_HOURS: expected a whole number from 1 to 720/,
    ],
    [
      'invitation lifetime not whole',
      { INVITATION_TTL_HOURS: '1.5' },
      /^INVITATION_TTL_HOURS: expected a whole number/,
    ],
    [
      'margin not a number',
      { REFRESH_MARGIN_MINUTES: 'soon' },
      /^REFRESH_MARGIN_MINUTES: expected a whole number/,
    ],
    ['bad schedule', { REFRESH_SCHEDULE: '*/10 * * * *' }, /^REFRESH_SCHEDULE: expected an NCRONTAB/],
    ['multi-tenant without allow list', { ENTRA_TENANT_ID: 'organizations' }, /^ALLOWED_TENANTS: required/],
    ['allow list with a domain', { ALLOWED_TENANTS: 'contoso.com' }, /^ALLOWED_TENANTS: expected/],
    [
      'webhook without secret',
      { NOTIFY_WEBHOOK_URL: 'https://hooks.example.com/x' },
      /^NOTIFY_WEBHOOK_SECRET: required/,
    ],
    ['boolean typo', { BROKER_LOCAL_ADMIN: 'yes' }, /^BROKER_LOCAL_ADMIN: expected true or false/],
  ])('rejects %s with a line naming the setting', (_label, overrides, expected) => {
    const problems = problemsOf({ ...base, ...overrides });
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.some((line) => expected.test(line))).toBe(true);
  });

  it('refuses the local admin switch and the file store in Azure', () => {
    const problems = problemsOf({
      ...base,
      ENTRA_CLIENT_CREDENTIAL: 'secret',
      WEBSITE_INSTANCE_ID: 'x',
      WEBSITE_HOSTNAME: 'broker.azurewebsites.net',
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      BROKER_LOCAL_ADMIN: 'true',
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^KEY_VAULT_URL: required in Azure/),
        expect.stringMatching(/^BROKER_LOCAL_ADMIN: must not be true in Azure/),
      ]),
    );
  });

  it('never echoes a secret value in its message', () => {
    const problems = problemsOf({ ...base, ENTRA_CLIENT_ID: 'super-secret-value-xyz' });
    expect(problems.join(' ')).not.toContain('super-secret-value-xyz');
  });
});

describe('clouds', () => {
  it.each([
    [
      {},
      'https://login.microsoftonline.com',
      'outlook.office365.com',
      'smtp.office365.com',
      'https://graph.microsoft.com',
    ],
    [
      { ENTRA_AUTHORITY_HOST: 'https://login.microsoftonline.us' },
      'https://login.microsoftonline.us',
      'outlook.office365.us',
      'smtp.office365.us',
      'https://graph.microsoft.us',
    ],
    [
      { ENTRA_CLOUD: 'usgov-dod' },
      'https://login.microsoftonline.us',
      'outlook-dod.office365.us',
      'smtp-dod.office365.us',
      'https://dod-graph.microsoft.us',
    ],
    [
      { ENTRA_AUTHORITY_HOST: 'https://login.partner.microsoftonline.cn' },
      'https://login.partner.microsoftonline.cn',
      'partner.outlook.cn',
      'smtp.partner.outlook.cn',
      'https://microsoftgraph.chinacloudapi.cn',
    ],
  ] as const)('%j signs in at %s and reaches %s, %s, %s', (env, authority, exchangeHost, smtpHost, graph) => {
    const { cloud } = loadConfig({ ...base, ...env });
    expect(cloud.authorityHost).toBe(authority);
    expect(cloud.ewsUrl).toBe(`https://${exchangeHost}/EWS/Exchange.asmx`);
    expect(cloud.imap).toEqual({ host: exchangeHost, port: 993 });
    expect(cloud.pop).toEqual({ host: exchangeHost, port: 995 });
    expect(cloud.smtp).toEqual({ host: smtpHost, port: 587 });
    expect(cloud.graphResource).toBe(graph);
  });

  it('refuses a cloud that does not sign in at the authority host, and an unknown cloud', () => {
    expect(
      problemsOf({
        ...base,
        ENTRA_CLOUD: 'china',
        ENTRA_AUTHORITY_HOST: 'https://login.microsoftonline.com',
      }),
    ).toEqual([
      expect.stringMatching(/^ENTRA_CLOUD: china does not sign in at https:\/\/login\.microsoftonline\.com/),
    ]);
    expect(problemsOf({ ...base, ENTRA_CLOUD: 'mars' })).toEqual([
      expect.stringMatching(/^ENTRA_CLOUD: expected one of/),
    ]);
  });

  it('takes Global hosts for an authority Microsoft does not run, unless ENTRA_CLOUD says otherwise', () => {
    expect(
      loadConfig({ ...base, ENTRA_AUTHORITY_HOST: 'https://127.0.0.1:7443' }).cloud.exchangeResource,
    ).toBe('https://outlook.office365.com');
    expect(
      loadConfig({ ...base, ENTRA_AUTHORITY_HOST: 'https://127.0.0.1:7443', ENTRA_CLOUD: 'usgov' }).cloud
        .exchangeResource,
    ).toBe('https://outlook.office365.us');
  });
});
