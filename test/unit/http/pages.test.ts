import { consolePage } from '../../../shared/http/pages';

function render(options: { sandbox: boolean; secretStore: string; redirectUri: string }) {
  const response = consolePage(options);
  const nonce = /script-src 'nonce-([^']+)'/.exec(response.headers['Content-Security-Policy'] ?? '')?.[1];
  return { response, nonce, body: String(response.body) };
}

describe('consolePage', () => {
  it('carries its script and style under the response nonce, and nothing else', () => {
    const { response, nonce, body } = render({
      sandbox: false,
      secretStore: 'key-vault',
      redirectUri: 'https://broker.contoso.com/api/callback',
    });
    expect(response.status).toBe(200);
    expect(nonce).toBeTruthy();
    expect(body.match(/<script[^>]*>/g)).toEqual([`<script nonce="${nonce}">`]);
    expect(body.match(/<style[^>]*>/g)).toEqual([`<style nonce="${nonce}">`]);
    expect(body).toContain("document.getElementById('define').addEventListener('submit'");
    expect(body).toMatch(/<\/script><\/body><\/html>$/);
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
