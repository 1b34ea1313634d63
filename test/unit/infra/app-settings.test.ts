/**
 * The Function App's settings (infra/app/function-app-settings.bicep) against shared/config.ts:
 * loadConfig must accept exactly what the Bicep sets plus what the platform sets, and the redirect
 * URI the App Registration lists must be the one the app builds.
 */
import { cloudFor } from '../../../shared/clouds';
import { loadConfig } from '../../../shared/config';
import {
  Expression,
  isObject,
  objectLiterals,
  paramDefault,
  parseBicepLiteral,
  readBicep,
  readRepoFile,
  varExpression,
  type BicepNode,
} from './bicep-text';

const settingsBicep = readBicep('app/function-app-settings.bicep');
const entraApp = readBicep('app/entra-app.bicep');
const main = readBicep('main.bicep');

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const OTHER_TENANT = '11111111-2222-3333-4444-555555555555';
const APP_CLIENT_ID = '9a1c3f5e-0b2d-4e6f-8a9b-0c1d2e3f4a5b';
const MI_CLIENT_ID = '0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a';
const HOST = 'func-broker-abc123-gqbyh7fbdvc2e0a3.westeurope-01.azurewebsites.net';

interface Scenario {
  multiTenant: boolean;
  notifyWebhookUrl: string;
  publicBaseUrl: string;
}

/** Value of the same shape as what Azure puts there, for one expression of the Bicep. */
function placeholder(expression: string, scenario: Scenario): string {
  const ternary = /^(\w+) \? (.+) : (.+)$/.exec(expression);
  if (ternary) {
    const [, condition, whenTrue, whenFalse] = ternary;
    if (condition !== 'multiTenant') throw new Error(`no scenario value for ${condition}`);
    return valueOf(scenario.multiTenant ? whenTrue! : whenFalse!, scenario);
  }
  const known: Record<string, string> = {
    identityClientId: MI_CLIENT_ID,
    entraClientId: APP_CLIENT_ID,
    'tenant().tenantId': TENANT,
    storageAccountName: 'stabc123def456',
    storageTableEndpoint: 'https://stabc123def456.table.core.windows.net/',
    loginEndpoint: 'https://login.microsoftonline.com/',
    "join(keyVaultUris, ',')":
      'https://kvabc123def456.vault.azure.net/,https://kvabc123def4561.vault.azure.net/',
    "join(privateKeyVaultUris, ',')":
      'https://kvpabc123def456.vault.azure.net/,https://kvpabc123def4561.vault.azure.net/',
    appInsightsConnectionString:
      'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;ApplicationId=00000000-0000-0000-0000-000000000000',
    refreshSchedule: (paramDefault(main, 'refreshSchedule') ?? '').replace(/^'|'$/g, ''),
    notifyWebhookUrl: scenario.notifyWebhookUrl,
    notifyWebhookSecretUri: 'https://kvabc123def456.vault.azure.net/secrets/notify-webhook-secret',
    publicBaseUrl: scenario.publicBaseUrl,
    // Set only by DoD deployments, whose environment() signs in at login.microsoftonline.us (test/unit/config.test.ts).
    entraCloud: '',
    "join(union([tenant().tenantId], allowedTenants), ',')": `${TENANT},${OTHER_TENANT}`,
  };
  const value = known[expression];
  if (value === undefined)
    throw new Error(`no placeholder for the expression ${expression}: teach this test its shape`);
  return value;
}

function valueOf(raw: string, scenario: Scenario): string {
  const trimmed = raw.trim();
  if (trimmed.startsWith("'") && trimmed.endsWith("'")) {
    const body = trimmed.slice(1, -1);
    // A Key Vault reference is resolved by the platform before the app reads it.
    if (body.startsWith('@Microsoft.KeyVault(')) return 'resolved-from-key-vault';
    return body.replace(/\$\{([^}]+)\}/g, (_, inner: string) => placeholder(inner.trim(), scenario));
  }
  return placeholder(trimmed, scenario);
}

interface SettingsBlock {
  name: string;
  conditional: boolean;
  settings: Record<string, BicepNode>;
}

function settingsBlocks(): SettingsBlock[] {
  const names = [...settingsBicep.matchAll(/^var (\w+AppSettings)\s*=/gm)].map((m) => m[1]!);
  return names.map((name) => {
    const expression = varExpression(settingsBicep, name);
    const objects = objectLiterals(expression)
      .map((literal) => parseBicepLiteral(literal))
      .filter((node): node is { [key: string]: BicepNode } => isObject(node) && Object.keys(node).length > 0);
    if (objects.length !== 1) throw new Error(`${name}: expected one non-empty settings object`);
    return { name, conditional: !expression.startsWith('{'), settings: objects[0]! };
  });
}

const blocks = settingsBlocks();

function settingsFor(scenario: Scenario, include: (block: SettingsBlock) => boolean): Record<string, string> {
  const env: Record<string, string> = {};
  for (const block of blocks.filter(include)) {
    for (const [key, node] of Object.entries(block.settings)) {
      if (typeof node === 'string') env[key] = node;
      else if (node instanceof Expression) env[key] = valueOf(node.text, scenario);
      else throw new Error(`${key}: not a scalar`);
    }
  }
  return env;
}

/** What App Service / Functions sets on every instance. */
const PLATFORM = {
  WEBSITE_INSTANCE_ID: 'a1b2c3d4e5f6',
  WEBSITE_HOSTNAME: HOST,
  WEBSITE_AUTH_ENABLED: 'True',
};

const minimal: Scenario = { multiTenant: false, notifyWebhookUrl: '', publicBaseUrl: '' };

describe('Function App settings (infra/app/function-app-settings.bicep)', () => {
  it('reads the settings blocks: the base block unconditionally, the optional ones under a condition', () => {
    expect(blocks.map((b) => [b.name, b.conditional])).toEqual([
      ['baseAppSettings', false],
      ['allowedTenantsAppSettings', true],
      ['notifyAppSettings', true],
      ['publicBaseUrlAppSettings', true],
      ['entraCloudAppSettings', true],
    ]);
    const union = /properties: union\(([^)]*)\)/
      .exec(settingsBicep)?.[1]
      ?.split(',')
      .map((s) => s.trim());
    expect(union).toEqual(blocks.map((b) => b.name));
  });

  it('gives loadConfig everything it needs in Azure: the minimal deployment starts with the managed identity', () => {
    const env = { ...settingsFor(minimal, (b) => !b.conditional), ...PLATFORM };
    const config = loadConfig(env);
    expect(config.clientCredential.kind).toBe('managed-identity');
    expect(config.managedIdentityClientId).toBe(MI_CLIENT_ID);
    expect(config.clientId).toBe(APP_CLIENT_ID);
    expect(config.tenantId).toBe(TENANT);
    expect(config.storage).toEqual({
      kind: 'identity',
      tableServiceUrl: 'https://stabc123def456.table.core.windows.net',
      managedIdentityClientId: MI_CLIENT_ID,
    });
    expect(config.keyVaultUrls).toEqual([
      'https://kvabc123def456.vault.azure.net',
      'https://kvabc123def4561.vault.azure.net',
    ]);
    expect(config.platformAuthEnabled).toBe(true);
    expect(config.localAdmin).toBe(false);
    expect(config.refresh.schedule).toBe('0 */10 * * * *');
    expect(config.cloud).toEqual(cloudFor('https://login.microsoftonline.com'));
  });

  it('accepts every optional block too (multi-tenant, webhook, custom domain)', () => {
    const scenario: Scenario = {
      multiTenant: true,
      notifyWebhookUrl: 'https://hooks.contoso.com/broker',
      publicBaseUrl: 'https://broker.contoso.com',
    };
    const config = loadConfig({ ...settingsFor(scenario, () => true), ...PLATFORM });
    expect(config.tenantId).toBe('organizations');
    expect(config.allowedTenants).toEqual([TENANT, OTHER_TENANT]);
    expect(config.notify.webhookUrl).toBe('https://hooks.contoso.com/broker');
    expect(config.notify.webhookSecret).toBe('resolved-from-key-vault');
    expect(config.redirectUri).toBe('https://broker.contoso.com/api/callback');
    expect(config.clientCredential.kind).toBe('managed-identity');
  });

  it('sets only settings the app or the platform reads, and none that must not exist in Azure', () => {
    const configSource = readRepoFile('shared/config.ts');
    const schemaSource = configSource.slice(configSource.indexOf('const schema = z.object({'));
    const appSettings = new Set(
      [...schemaSource.matchAll(/^ {2}(\w+): /gm)].map((m) => m[1]!).filter((n) => n !== 'message'),
    );
    const platformSettings = new Set([
      'AzureWebJobsStorage__credential',
      'APPLICATIONINSIGHTS_CONNECTION_STRING',
      'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
      'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID',
    ]);
    const names = blocks.flatMap((b) => Object.keys(b.settings));
    expect(names.filter((n) => !appSettings.has(n) && !platformSettings.has(n))).toEqual([]);
    for (const forbidden of [
      'ENTRA_CLIENT_SECRET',
      'ENTRA_CLIENT_CERTIFICATE',
      'BROKER_LOCAL_SECRET_KEY',
      'BROKER_LOCAL_ADMIN',
      'BROKER_SANDBOX',
      'AzureWebJobsStorage',
      'FUNCTIONS_WORKER_RUNTIME',
      'FUNCTIONS_EXTENSION_VERSION',
      'WEBSITE_RUN_FROM_PACKAGE',
    ]) {
      expect(names).not.toContain(forbidden);
    }
    expect(names.filter((n) => n.startsWith('WEBSITE_CONTENT'))).toEqual([]);
    // The timer's %REFRESH_SCHEDULE% must resolve in Azure.
    expect(names).toContain('REFRESH_SCHEDULE');
  });

  it('points App Service Authentication at the managed identity, not a secret', () => {
    const base = blocks[0]!.settings;
    expect(base.OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID).toEqual(new Expression('identityClientId'));
    expect(base.MANAGED_IDENTITY_CLIENT_ID).toEqual(new Expression('identityClientId'));
    expect(base.AzureWebJobsStorage__clientId).toEqual(new Expression('identityClientId'));
    expect(settingsBicep).toMatch(/clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'/);
    expect(settingsBicep).toMatch(/unauthenticatedClientAction: 'AllowAnonymous'/);
    expect(settingsBicep).toMatch(/'api:\/\/\$\{entraClientId\}'/);
    // Nothing reads the token store: it stays off rather than hold copies of users' tokens.
    expect(settingsBicep).toMatch(/tokenStore: \{\s*enabled: false/);
  });

  it('federates the same token-exchange audience the app asks its managed identity for, per cloud', () => {
    const audiences = objectLiterals(varExpression(entraApp, 'tokenExchangeAudiences'))[0]!;
    const byCloud = parseBicepLiteral(audiences);
    expect(byCloud).toEqual({
      AzureCloud: cloudFor('https://login.microsoftonline.com').tokenExchangeAudience,
      AzureUSGovernment: cloudFor('https://login.microsoftonline.us').tokenExchangeAudience,
      AzureChinaCloud: cloudFor('https://login.partner.microsoftonline.cn').tokenExchangeAudience,
    });
    expect(entraApp).toMatch(/audiences: \[tokenExchangeAudiences\[cloudEnvironment\]\]/);
    expect(entraApp).toMatch(/issuer: '\$\{loginEndpoint\}\$\{tenantId\}\/v2\.0'/);
    expect(entraApp).toMatch(/subject: identityPrincipalId/);
    expect(main).toMatch(/identityPrincipalId: identity\.outputs\.principalId/);
    expect(settingsBicep).toMatch(/ENTRA_AUTHORITY_HOST: loginEndpoint/);
  });
});

describe('redirect URI', () => {
  const base = settingsFor(minimal, (b) => !b.conditional);

  it('is https://{WEBSITE_HOSTNAME}/api/callback in the app', () => {
    expect(loadConfig({ ...base, ...PLATFORM, WEBSITE_HOSTNAME: 'h' }).redirectUri).toBe(
      'https://h/api/callback',
    );
  });

  it("is registered from the Function App's real default host name, the same way", () => {
    const callback = varExpression(entraApp, 'callbackUri');
    expect(callback).toBe("'https://${defaultHostName}/api/callback'");
    const rendered = callback.slice(1, -1).replace('${defaultHostName}', HOST);
    expect(rendered).toBe(loadConfig({ ...base, ...PLATFORM }).redirectUri);
    expect(varExpression(entraApp, 'redirectUris')).toMatch(
      /\[callbackUri, 'https:\/\/\$\{defaultHostName\}\/\.auth\/login\/aad\/callback'\]/,
    );
    expect(entraApp).toMatch(/redirectUris: redirectUris/);
    expect(main).toMatch(/defaultHostName: functionApp\.outputs\.defaultHostName/);
    expect(readBicep('app/function-app.bicep')).toMatch(
      /output defaultHostName string = site\.properties\.defaultHostName/,
    );
  });

  it('is never built from a hand-made <name>.azurewebsites.net', () => {
    for (const file of [
      'main.bicep',
      'app/entra-app.bicep',
      'app/function-app.bicep',
      'app/function-app-settings.bicep',
    ]) {
      expect(readBicep(file)).not.toMatch(/azurewebsites\.net/);
    }
  });

  it('follows PUBLIC_BASE_URL (custom domain) on both sides', () => {
    const publicBaseUrl = 'https://broker.contoso.com';
    const scenario: Scenario = { ...minimal, publicBaseUrl };
    const env = {
      ...settingsFor(scenario, (b) => !b.conditional || b.name === 'publicBaseUrlAppSettings'),
      ...PLATFORM,
    };
    expect(loadConfig(env).redirectUri).toBe(`${publicBaseUrl}/api/callback`);
    expect(varExpression(entraApp, 'redirectUris')).toMatch(/'\$\{publicBaseUrl\}\/api\/callback'/);
  });

  it('is in the admin-consent URL, URL-encoded', () => {
    expect(entraApp).toMatch(
      /output adminConsentUrl string = '\$\{loginEndpoint\}\$\{tenantId\}\/adminconsent\?client_id=\$\{app\.appId\}&redirect_uri=\$\{uriComponent\(/,
    );
  });
});
