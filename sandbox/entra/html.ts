/**
 * The emulator's HTML pages. Plain server-rendered forms (no script needed except the form_post
 * auto-submit), usable in a real browser and by sign-in-driver.ts, which reads these forms.
 */

export function escapeHtml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style>
body{font-family:"Segoe UI",Arial,sans-serif;background:#f2f2f2;margin:0}
main{background:#fff;max-width:440px;margin:48px auto;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}
h1{font-size:24px;font-weight:600;margin:0 0 16px}
.banner{font-size:13px;color:#666;margin-bottom:16px}
label{display:block;margin-top:12px;font-size:14px}
input[type=email],input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:6px 0;border:0;border-bottom:1px solid #666;font-size:15px}
.alert{color:#e81123;font-size:14px;margin:8px 0}
.buttons{margin-top:24px;text-align:right}
button{min-width:108px;padding:6px 12px;font-size:15px;margin-left:8px;border:0}
button.primary{background:#0067b8;color:#fff}
button.secondary{background:#ccc}
ul{padding-left:20px}
code,pre{font-size:12px;white-space:pre-wrap;word-break:break-all}
</style>
</head>
<body>
<main>
<div class="banner">Microsoft Entra ID emulator (test only)</div>
${body}
</main>
</body>
</html>`;
}

export function signInPage(p: {
  action: string;
  ctx: string;
  loginHint: string;
  appName: string;
  error?: string;
  admin?: boolean;
}): string {
  const alert = p.error
    ? `<div class="alert" id="passwordError" role="alert">${escapeHtml(p.error)}</div>`
    : '';
  return page(
    'Sign in to your account',
    `<h1>Sign in</h1>
<p>${p.admin ? 'Sign in with an administrator account to grant permissions to' : 'to continue to'} <b>${escapeHtml(p.appName)}</b></p>
${alert}
<form id="signInForm" method="post" action="${escapeHtml(p.action)}" autocomplete="off">
<input type="hidden" name="ctx" value="${escapeHtml(p.ctx)}">
<label for="i0116">Email, phone, or Skype</label>
<input type="email" id="i0116" name="login" value="${escapeHtml(p.loginHint)}" autocomplete="username" required${p.loginHint ? '' : ' autofocus'}>
<label for="i0118">Password</label>
<input type="password" id="i0118" name="passwd" autocomplete="current-password" required${p.loginHint ? ' autofocus' : ''}>
<div class="buttons">
<button type="submit" class="primary" id="idSIButton9" name="action" value="signin">Sign in</button>
<button type="submit" class="secondary" id="idBtn_Back" name="action" value="cancel" formnovalidate>Cancel</button>
</div>
</form>`,
  );
}

export function consentPage(p: {
  action: string;
  ctx: string;
  appName: string;
  username: string;
  scopes: { scope: string; description: string }[];
  admin: boolean;
}): string {
  const items = p.scopes
    .map((s) => `<li><span>${escapeHtml(s.description)}</span><br><code>${escapeHtml(s.scope)}</code></li>`)
    .join('\n');
  return page(
    'Permissions requested',
    `<h1>Permissions requested</h1>
<p><b>${escapeHtml(p.appName)}</b></p>
<p>Signed in as ${escapeHtml(p.username)}</p>
<p>${p.admin ? 'This app would like to (on behalf of your organization):' : 'This app would like to:'}</p>
<ul id="scopeList">
${items}
</ul>
<p>Accepting these permissions means that you allow this app to use your data as specified in their terms of service and privacy statement.</p>
<form id="consentForm" method="post" action="${escapeHtml(p.action)}">
<input type="hidden" name="ctx" value="${escapeHtml(p.ctx)}">
<div class="buttons">
<button type="submit" class="primary" id="idSIButton9" name="action" value="accept" autofocus>Accept</button>
<button type="submit" class="secondary" id="idBtn_Back" name="action" value="cancel">Cancel</button>
</div>
</form>`,
  );
}

/** Entra's error page (shown when it must not redirect, e.g. unknown app or unregistered redirect URI). */
export function errorPage(p: {
  message: string;
  traceId: string;
  correlationId: string;
  timestamp: string;
}): string {
  return page(
    'Sign in to your account',
    `<h1>Sorry, but we’re having trouble signing you in.</h1>
<div class="alert" id="errorMessage" role="alert">${escapeHtml(p.message)}</div>
<pre id="errorDetails">Request Id: ${escapeHtml(p.traceId)}
Correlation Id: ${escapeHtml(p.correlationId)}
Timestamp: ${escapeHtml(p.timestamp)}</pre>`,
  );
}

/** The auto-submitting page of response_mode=form_post, as Entra serves it. */
export function formPostPage(action: string, fields: Record<string, string>): string {
  const inputs = Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}" />`)
    .join('');
  return `<html><head><title>Working...</title></head><body><form method="POST" name="hiddenform" action="${escapeHtml(action)}">${inputs}<noscript><p>Script is disabled. Click Submit to continue.</p><input type="submit" value="Submit" /></noscript></form><script language="javascript">document.forms[0].submit();</script></body></html>`;
}

export function signedOutPage(): string {
  return page(
    'Sign out',
    '<h1>You signed out of your account</h1><p>It’s a good idea to close all browser windows.</p>',
  );
}

export function infoPage(title: string, text: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p>`);
}
