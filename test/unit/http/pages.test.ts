import { BrokerError } from '../../../shared/errors';
import { consolePage, errorPage } from '../../../shared/http/pages';

function render(options: { sandbox: boolean; secretStore: string; redirectUri: string }) {
  const response = consolePage({
    ...options,
    publicBaseUrl: 'https://broker.contoso.com',
    tenantId: '11111111-2222-3333-4444-555555555555',
    scriptUrl: '/api/console.js?v=0123456789abcdef',
  });
  const nonce = /script-src 'nonce-([^']+)'/.exec(response.headers['Content-Security-Policy'] ?? '')?.[1];
  return { response, nonce, body: String(response.body) };
}

describe('consolePage', () => {
  it('loads its script from /api/console.js under the response nonce, with its style; nothing inline', () => {
    const { response, nonce, body } = render({
      sandbox: false,
      secretStore: 'key-vault',
      redirectUri: 'https://broker.contoso.com/api/callback',
    });
    expect(response.status).toBe(200);
    expect(nonce).toBeTruthy();
    expect(body.match(/<script[^>]*>/g)).toEqual([
      `<script nonce="${nonce}" src="/api/console.js?v=0123456789abcdef" defer>`,
    ]);
    expect(body).toMatch(/<script [^>]*><\/script><\/body><\/html>$/);
    expect(body.match(/<style[^>]*>/g)).toEqual([`<style nonce="${nonce}">`]);
    expect(response.headers['Content-Security-Policy']).toContain(`script-src 'nonce-${nonce}'`);
  });

  it('names the deployment and its environment in the header', () => {
    const tenant = render({
      sandbox: false,
      secretStore: 'key-vault',
      redirectUri: 'https://b/api/callback',
    });
    expect(tenant.body).toContain('<span class="deployment" id="deployment">broker.contoso.com</span>');
    expect(tenant.body).toContain('Tenant <span class="mono">11111111-2222-3333-4444-555555555555</span>');
    const sandbox = render({
      sandbox: true,
      secretStore: 'local-file',
      redirectUri: 'http://localhost/api/callback',
    });
    expect(sandbox.body).toMatch(/<span class="badge env env-sandbox">.*Sandbox<\/span>/);
  });

  it('states the connection name rule before anything is typed', () => {
    const { body } = render({
      sandbox: false,
      secretStore: 'key-vault',
      redirectUri: 'https://b/api/callback',
    });
    expect(body).toMatch(
      /<span class="hint" id="name-rule">Lowercase letters, digits and hyphens, 1–48 characters/,
    );
    expect(body).toContain('aria-describedby="name-rule"');
  });

  it.each<[boolean, string, boolean, boolean]>([
    [true, 'local-file', true, true],
    [false, 'key-vault', false, false],
  ])(
    'sandbox %p, secret store %p: banner %p, development-store note %p',
    (sandbox, secretStore, banner, devStore) => {
      const { body } = render({ sandbox, secretStore, redirectUri: 'http://localhost:7071/api/callback' });
      expect(body.includes('class="sandbox"')).toBe(banner);
      expect(body.includes('local encrypted development store')).toBe(devStore);
    },
  );

  it('escapes the redirect URI it shows', () => {
    const { body } = render({ sandbox: false, secretStore: 'key-vault', redirectUri: 'https://x/"><b>' });
    expect(body).toContain('<span class="mono">https://x/&#34;&#62;&#60;b&#62;</span>');
  });
});

describe('errorPage', () => {
  it('shows a remedy with its code spans and links, everything else escaped', () => {
    const error = new BrokerError('consent_required', 'Consent is missing.', {
      remedy: 'Run `Get-Mailbox <x>` or open https://login.microsoftonline.com/a?b=1&c=2. <b>not bold</b>',
    });
    const body = String(errorPage(error, 'corr').body);
    expect(body).toContain(
      '<strong>What to do:</strong> Run <code>Get-Mailbox &#60;x&#62;</code> or open ' +
        '<a href="https://login.microsoftonline.com/a?b=1&#38;c=2" rel="noreferrer" target="_blank">' +
        'https://login.microsoftonline.com/a?b=1&#38;c=2</a>. &#60;b&#62;not bold&#60;/b&#62;</p>',
    );
  });
});
