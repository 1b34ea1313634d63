/**
 * Drives the Entra emulator's sign-in like a browser would, for tests: GETs the authorize URL,
 * then reads the `<form>`s of each HTML page the emulator serves (action, method, inputs,
 * submit buttons), fills the username/password fields, presses "Sign in" / "Cancel" / "Accept",
 * and POSTs them as a browser would (application/x-www-form-urlencoded, only the pressed button's
 * name=value, cookies kept for the emulator's origin). It stops at the redirect to the client's
 * redirect_uri and returns that URL without fetching it. For response_mode=form_post it returns
 * the form's action with the posted fields as query parameters.
 */

export interface SignInOptions {
  username: string;
  password: string;
  /** What to press on a consent page; default 'accept'. */
  consent?: 'accept' | 'cancel';
  /** Press "Cancel" on the sign-in page instead of signing in. */
  cancel?: boolean;
}

interface ParsedControl {
  tag: 'input' | 'button';
  attrs: Map<string, string>;
  /** Button text content. */
  text: string;
}

interface ParsedForm {
  attrs: Map<string, string>;
  controls: ParsedControl[];
}

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos|#39);/gi, (_m, e: string) => {
    const lower = e.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[lower] ?? '';
  });
}

/** A capture group, which is undefined at run time when it did not participate in the match. */
function group(m: RegExpMatchArray, i: number): string | undefined {
  return m.at(i);
}

function parseAttrs(source: string): Map<string, string> {
  const attrs = new Map<string, string>();
  const re = /([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
  for (const m of source.matchAll(re)) {
    const name = (group(m, 1) ?? '').toLowerCase();
    attrs.set(name, decodeEntities(group(m, 2) ?? group(m, 3) ?? group(m, 4) ?? ''));
  }
  return attrs;
}

function stripTags(html: string): string {
  return decodeEntities(
    html.replace(/<script[\s\S]*?<\/script>|<style[\s\S]*?<\/style>/gi, '').replace(/<[^>]+>/g, ' '),
  )
    .replace(/\s+/g, ' ')
    .trim();
}

export function parseForms(html: string): ParsedForm[] {
  const forms: ParsedForm[] = [];
  for (const f of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const body = group(f, 2) ?? '';
    const controls: ParsedControl[] = [];
    for (const c of body.matchAll(/<input\b([^>]*)>|<button\b([^>]*)>([\s\S]*?)<\/button>/gi)) {
      const input = group(c, 1);
      if (input !== undefined) controls.push({ tag: 'input', attrs: parseAttrs(input), text: '' });
      else
        controls.push({
          tag: 'button',
          attrs: parseAttrs(group(c, 2) ?? ''),
          text: stripTags(group(c, 3) ?? ''),
        });
    }
    forms.push({ attrs: parseAttrs(group(f, 1) ?? ''), controls });
  }
  return forms;
}

function controlType(c: ParsedControl): string {
  return (c.attrs.get('type') ?? (c.tag === 'button' ? 'submit' : 'text')).toLowerCase();
}

function isSubmit(c: ParsedControl): boolean {
  return controlType(c) === 'submit' && !c.attrs.has('disabled');
}

function submitLabel(c: ParsedControl): string {
  return c.tag === 'button' ? c.text : (c.attrs.get('value') ?? 'Submit');
}

/** The form data set a browser would send when `submitter` is pressed. */
function formData(
  form: ParsedForm,
  submitter: ParsedControl | undefined,
  fill: (c: ParsedControl) => string | undefined,
): URLSearchParams {
  const data = new URLSearchParams();
  for (const c of form.controls) {
    const name = c.attrs.get('name');
    if (!name || c.attrs.has('disabled')) continue;
    const type = controlType(c);
    if (type === 'submit' || type === 'image' || type === 'reset' || type === 'button') {
      if (c === submitter) data.append(name, c.attrs.get('value') ?? '');
      continue;
    }
    if ((type === 'checkbox' || type === 'radio') && !c.attrs.has('checked')) continue;
    data.append(
      name,
      fill(c) ?? c.attrs.get('value') ?? (type === 'checkbox' || type === 'radio' ? 'on' : ''),
    );
  }
  return data;
}

class CookieJar {
  private readonly cookies = new Map<string, Map<string, string>>();
  store(origin: string, headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const jar = this.cookies.get(origin) ?? new Map<string, string>();
      const value = pair.slice(eq + 1).trim();
      if (/;\s*max-age=0/i.test(line) || value === '') jar.delete(pair.slice(0, eq).trim());
      else jar.set(pair.slice(0, eq).trim(), value);
      this.cookies.set(origin, jar);
    }
  }
  header(origin: string): string | undefined {
    const jar = this.cookies.get(origin);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

function sameEndpoint(a: URL, b: URL): boolean {
  return a.origin === b.origin && a.pathname === b.pathname;
}

export async function signIn(authorizeUrl: string, opts: SignInOptions): Promise<URL> {
  const start = new URL(authorizeUrl);
  const redirectParam = start.searchParams.get('redirect_uri');
  if (!redirectParam) throw new Error('signIn: the authorize URL has no redirect_uri');
  const redirectUri = new URL(redirectParam);
  const jar = new CookieJar();
  let url = start;
  let request: { method: string; body?: URLSearchParams } = { method: 'GET' };
  let signInSubmitted = false;

  for (let step = 0; step < 12; step++) {
    const headers: Record<string, string> = { accept: 'text/html,application/xhtml+xml' };
    const cookie = jar.header(url.origin);
    if (cookie) headers.cookie = cookie;
    if (request.body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, {
      method: request.method,
      headers,
      redirect: 'manual',
      ...(request.body ? { body: request.body.toString() } : {}),
    });
    jar.store(url.origin, res.headers);

    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      const location = res.headers.get('location');
      if (!location) throw new Error(`signIn: ${res.status} without Location from ${url.toString()}`);
      const next = new URL(location, url);
      if (sameEndpoint(next, redirectUri)) return next;
      url = next;
      request = { method: 'GET' };
      continue;
    }

    const html = await res.text();
    if (res.status !== 200)
      throw new Error(`signIn: HTTP ${res.status} from ${url.pathname}: ${stripTags(html).slice(0, 600)}`);
    const forms = parseForms(html);

    // response_mode=form_post: the page auto-submits a form to the redirect URI.
    const post = forms.find((f) =>
      sameEndpoint(new URL(f.attrs.get('action') ?? url.toString(), url), redirectUri),
    );
    if (post) {
      const result = new URL(post.attrs.get('action') ?? '', url);
      for (const [k, v] of formData(post, undefined, () => undefined)) result.searchParams.append(k, v);
      return result;
    }

    const signInForm = forms.find((f) => f.controls.some((c) => controlType(c) === 'password'));
    const consentForm = forms.find((f) =>
      f.controls.some((c) => isSubmit(c) && /^accept$/i.test(submitLabel(c))),
    );
    let form: ParsedForm;
    let label: RegExp;
    let fill: (c: ParsedControl) => string | undefined = () => undefined;
    if (signInForm) {
      if (signInSubmitted && !opts.cancel) {
        const alert = /role="alert"[^>]*>([\s\S]*?)<\//i.exec(html);
        throw new Error(
          `signIn: sign-in rejected for ${opts.username}: ${stripTags(alert?.[1] ?? html).slice(0, 300)}`,
        );
      }
      signInSubmitted = true;
      form = signInForm;
      label = opts.cancel ? /^cancel$/i : /^sign in$/i;
      fill = (c) => {
        const type = controlType(c);
        if (type === 'password') return opts.password;
        if (type === 'email' || (type === 'text' && c.attrs.get('autocomplete') === 'username'))
          return opts.username;
        return undefined;
      };
    } else if (consentForm) {
      form = consentForm;
      label = (opts.consent ?? 'accept') === 'accept' ? /^accept$/i : /^cancel$/i;
    } else {
      throw new Error(`signIn: unexpected page at ${url.pathname}: ${stripTags(html).slice(0, 600)}`);
    }
    const submitter = form.controls.find((c) => isSubmit(c) && label.test(submitLabel(c)));
    if (!submitter)
      throw new Error(`signIn: no button matching ${label.source} on the page at ${url.pathname}`);
    const action = new URL(
      submitter.attrs.get('formaction') ?? form.attrs.get('action') ?? url.toString(),
      url,
    );
    const method = (submitter.attrs.get('formmethod') ?? form.attrs.get('method') ?? 'get').toUpperCase();
    const data = formData(form, submitter, fill);
    if (method === 'POST') {
      url = action;
      request = { method: 'POST', body: data };
    } else {
      action.search = data.toString();
      url = action;
      request = { method: 'GET' };
    }
  }
  throw new Error('signIn: too many steps without reaching the redirect URI');
}
