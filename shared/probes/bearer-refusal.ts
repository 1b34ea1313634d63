import { ProbeFailure } from './result';

/** A quoted or bare parameter from a WWW-Authenticate or x-ms-diagnostics header. */
function parameter(header: string, name: string): string | undefined {
  const match = new RegExp(`(?:^|[\\s,;])${name}="([^"]*)"|(?:^|[\\s,;])${name}=([^\\s,;]+)`, 'i').exec(
    header,
  );
  return match?.[1] ?? match?.[2];
}

/** Header text is shown to admins: bounded, single-line, and never a token-shaped string. */
function plain(text: string): string {
  return text
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/eyJ[\w-]+\.[\w-]+\.[\w-]*/g, '[token]')
    .slice(0, 300);
}

/**
 * Why a resource answered 401 (or 403 with a bearer challenge), from its headers: Exchange sends
 * `x-ms-diagnostics: 2000003;reason="The audience claim value is invalid ...";error_category=
 * "invalid_resource"` beside `WWW-Authenticate: Bearer ..., error="invalid_token"`; Graph says
 * the same in its JSON error message. Words decide, because the numeric codes are not published.
 */
export function classifyBearerRefusal(input: {
  wwwAuthenticate?: string | null;
  diagnostics?: string | null;
  message?: string | null;
}): ProbeFailure {
  const diagnostics = input.diagnostics ?? '';
  const challenge = input.wwwAuthenticate ?? '';
  const reason =
    parameter(diagnostics, 'reason') ?? parameter(challenge, 'error_description') ?? input.message ?? '';
  const category = `${parameter(diagnostics, 'error_category') ?? ''} ${parameter(challenge, 'error') ?? ''}`;
  const text = `${reason} ${category}`.toLowerCase();
  const said = reason ? ` The server said: "${plain(reason)}"` : '';
  if (/expired|lifetime/.test(text)) {
    return new ProbeFailure('token_expired', `The access token had expired.${said}`);
  }
  if (/audience|invalid_resource/.test(text)) {
    return new ProbeFailure('token_wrong_audience', `The token was issued for another resource.${said}`);
  }
  if (/scope|permission|role|insufficient/.test(text)) {
    return new ProbeFailure('token_wrong_scope', `The token lacks the permission this call needs.${said}`);
  }
  return new ProbeFailure('token_invalid', `The server refused the token.${said || ' (no reason given)'}`);
}
