// The HTML pages of the test SAML IdP. Plain, self-contained, no outbound requests.

export function escapeHtml(value) {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; }
label { display: block; margin: 0.75rem 0; }
input[type=text], input[type=password] { display: block; width: 100%; padding: 0.4rem; }
button { padding: 0.4rem 1.2rem; }
.error { color: #a00; }
.muted { color: #555; }
</style>
</head>
<body>
${body}
</body>
</html>
`;
}

/** The login form: POST /login with username, password and the pending request's id. */
export function loginPage({ pending, spEntityId, error, username }) {
  const target = spEntityId ? `<p class="muted">to continue to <code>${escapeHtml(spEntityId)}</code></p>` : '';
  const problem = error ? `<p class="error" id="login-error">${escapeHtml(error)}</p>` : '';
  const hidden = pending ? `<input type="hidden" name="pending" value="${escapeHtml(pending)}">` : '';
  return page('Sign in', `<h1>Sign in</h1>
${target}
${problem}
<form method="post" action="/login" id="login-form">
${hidden}
<label>Username <input type="text" name="username" autocomplete="username" autofocus value="${escapeHtml(username ?? '')}"></label>
<label>Password <input type="password" name="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form>
<p class="muted">Test identity provider: any username and any password are accepted.</p>`);
}

/**
 * A form that posts `fields` to `action` as soon as it loads (SAML HTTP-POST binding); without
 * JavaScript the "Continue" button does it.
 */
export function autoPostPage({ action, fields, title = 'Continuing' }) {
  const inputs = Object.entries(fields)
    .filter(([, value]) => value !== undefined && value !== null && value !== '')
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n');
  return page(title, `<form method="post" action="${escapeHtml(action)}" id="saml-post">
${inputs}
<noscript><p>JavaScript is off: press Continue.</p><button type="submit">Continue</button></noscript>
</form>
<script>document.getElementById('saml-post').submit();</script>`);
}

export function messagePage(title, text, extraHtml = '') {
  return page(title, `<h1>${escapeHtml(title)}</h1>
<p id="message">${escapeHtml(text)}</p>
${extraHtml}`);
}

/** The end of a single logout: "You are signed out", with what each SP answered. */
export function signedOutPage(results) {
  const items = results
    .map((r) => `<li data-sp="${escapeHtml(r.entity_id)}"><code>${escapeHtml(r.entity_id)}</code>: ${escapeHtml(r.outcome)}</li>`)
    .join('\n');
  const list = items ? `<ul id="slo-results">\n${items}\n</ul>` : '';
  return page('Signed out', `<h1>You are signed out</h1>
<p id="message">You are signed out of the identity provider${results.length ? ' and of these services' : ''}.</p>
${list}`);
}

export function homePage({ session, baseUrl }) {
  if (!session) {
    return page('Test identity provider', `<h1>Test identity provider</h1>
<p id="message">You are not signed in.</p>
<p><a href="/metadata">Metadata</a></p>`);
  }
  const sps = [...session.sps.keys()].map((id) => `<li><code>${escapeHtml(id)}</code></li>`).join('\n');
  return page('Test identity provider', `<h1>Test identity provider</h1>
<p id="message">Signed in as ${escapeHtml(session.person.login)} (${escapeHtml(session.person.email)}).</p>
${sps ? `<p>Signed into:</p><ul>${sps}</ul>` : ''}
<p><a href="/logout">Sign out</a> · <a href="${escapeHtml(baseUrl)}/metadata">Metadata</a></p>`);
}
