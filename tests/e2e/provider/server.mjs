// Test-only OpenID Provider for the django-entra-sso end-to-end tests.
//
// Wraps node-oidc-provider (https://github.com/panva/node-oidc-provider), a certified OpenID
// Provider, in either of two major versions installed side by side (see package.json):
//   version 9 -> npm package "oidc-provider"   (ESM; no front-channel logout any more)
//   version 6 -> npm alias  "oidc-provider-6"  (= oidc-provider@6.31.1, CommonJS; has the
//                                               front-channel logout draft-04 feature)
//
// Start:  node server.mjs --config /abs/path/config.json
// (normally done by tests/e2e/oidc_provider.py, whose docstring documents the config shape).
// Prints "oidc-provider-<version> listening on <issuer>" once it accepts connections.
// NEVER use this outside tests: devInteractions accept any login and any password.
//
// Setup: `npm ci` in this directory (node_modules/ is git-ignored; package-lock.json is committed).
//
// Browser page flow (identical HTML in both versions):
//   GET  /auth?...                    -> 303 to /interaction/<uid>
//   GET  /interaction/<uid>           login page, <h1>Sign-in</h1>: form POST /interaction/<uid>
//                                     hidden prompt=login, text input name="login", password
//                                     input name="password", button "Sign-in";
//                                     link "[ Cancel ]" -> /interaction/<uid>/abort (access_denied)
//   POST /interaction/<uid>           -> /auth/<uid> -> /interaction/<uid2> (consent)
//   GET  /interaction/<uid2>          consent page, <h1>Authorize</h1>: hidden prompt=consent,
//                                     button "Continue" -> ... -> redirect_uri?code=&state=[&iss=]
//   Consent is only asked once per OP session/grant; while the OP session cookie lives, a new
//   /auth request redirects straight back (no pages) unless prompt=login is sent.
//   GET  /session/end?id_token_hint=&post_logout_redirect_uri=&state=   logout confirmation page:
//                                     <form id="op.logoutForm"> (hidden xsrf), buttons
//                                     "Yes, sign me out" (name=logout value=yes) and
//                                     "No, stay signed in"; POST /session/end/confirm.
//   9.x: back-channel POSTs, then 303 to post_logout_redirect_uri?state=...
//   6.x: back-channel POSTs, then (if any RP in the session has a frontchannel_logout_uri) a 200
//        page with one hidden <iframe src="<frontchannel_logout_uri>?iss=..&sid=.."> per RP,
//        which JS-redirects to post_logout_redirect_uri once all frames loaded (or after 2.5 s);
//        otherwise a 302 to post_logout_redirect_uri.
//
// Refresh tokens (both versions): a client whose grant_types include "refresh_token" gets one
// when the granted scope includes offline_access, which both versions only keep when the
// authorization request says prompt=consent. Every refresh_token grant rotates the token (the
// old one is consumed; presenting a consumed one again is answered invalid_grant AND revokes
// the whole grant) and answers a fresh id_token for openid scope. TTLs: refresh token 14 days,
// 9.x Grant 24 h (a refresh after the Grant expired is invalid_grant too).
//
// Admin route (only when config.admin_token is set), what an administrator's "revoke this
// person's sessions" does at a real IdP:
//   POST /admin/revoke   Authorization: Bearer <config.admin_token>
//                        body JSON {"account": "alice"} or form account=alice
//   -> 200 {"account": "alice", "grants": n, "tokens": n, "sessions": n}: every grant of the
//      account (so every refresh/access token and code of every client) and its OP sessions
//      are gone; a later refresh_token grant gets invalid_grant. 401 wrong/missing token,
//      400 no account, 405 not POST, 404 when no admin_token is configured.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createHash, timingSafeEqual } from 'node:crypto';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { AccountIndexedStore, createAdapter } from './adapter.mjs';
import { ensureJwks } from './keys.mjs';

const require = createRequire(import.meta.url);

const { values: args } = parseArgs({
  options: { config: { type: 'string' } },
});
if (!args.config) {
  process.stderr.write('usage: node server.mjs --config /path/config.json\n');
  process.exit(2);
}

const config = JSON.parse(readFileSync(resolve(args.config), 'utf8'));
const version = Number(config.version ?? 9);
if (version !== 9 && version !== 6) throw new Error(`unsupported version ${config.version}`);
const host = config.host ?? '127.0.0.1';
const port = Number(config.port);
const issuer = config.issuer ?? `http://${host}:${port}`;
const emailDomain = config.email_domain ?? 'example.test';
const jwksPath = resolve(config.jwks_path);
if (!['127.0.0.1', 'localhost', '::1'].includes(host)) {
  throw new Error(`refusing to listen on non-loopback host ${host}`);
}

ensureJwks(jwksPath);
const jwks = JSON.parse(readFileSync(jwksPath, 'utf8'));
if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) throw new Error(`no keys in ${jwksPath}`);

const log = (...parts) => console.log(`[oidc-provider-${version}]`, ...parts);

// ---------------------------------------------------------------------------------------------
// Accounts. Any login name is accepted (devInteractions). The accountId (and `sub`) is the login
// name exactly as typed. Claims come from this table, then from config.users[login] (merged on
// top), else are synthesized. A login containing "@" is used as the email address as-is.
// ---------------------------------------------------------------------------------------------
const BUILTIN_USERS = {
  alice: { given_name: 'Alice', family_name: 'Liddell', groups: ['readers'] },
  bob: { given_name: 'Bob', family_name: 'Builder', groups: ['readers', 'editors'] },
  carol: { given_name: 'Carol', family_name: 'Danvers', groups: ['admins'] },
};

function uuidFrom(text) {
  const h = createHash('sha256').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function claimsFor(login) {
  const local = login.includes('@') ? login.split('@')[0] : login;
  const builtin = BUILTIN_USERS[local.toLowerCase()];
  const given = builtin?.given_name ?? (local.charAt(0).toUpperCase() + local.slice(1));
  const family = builtin?.family_name ?? 'Tester';
  const email = login.includes('@') ? login : `${login}@${emailDomain}`;
  const claims = {
    sub: login,
    email,
    email_verified: true,
    given_name: given,
    family_name: family,
    name: `${given} ${family}`,
    preferred_username: email,
    groups: builtin?.groups ?? [],
    oid: uuidFrom(`oid:${login}`),
  };
  if (config.tenant_id) claims.tid = config.tenant_id;
  Object.assign(claims, config.users?.[login] ?? {});
  claims.sub = login;
  return claims;
}

async function findAccount(ctx, id) {
  return {
    accountId: id,
    async claims(use, scope) { // eslint-disable-line no-unused-vars
      return claimsFor(id);
    },
  };
}

// Which claims each scope releases. Claims listed under `openid` are always released.
// Extra claim names given via config.users are released with `openid` too.
const extraClaimNames = new Set();
for (const extra of Object.values(config.users ?? {})) {
  for (const name of Object.keys(extra)) extraClaimNames.add(name);
}
const SCOPE_CLAIMS = {
  email: ['email', 'email_verified'],
  profile: ['name', 'given_name', 'family_name', 'preferred_username'],
};
for (const list of Object.values(SCOPE_CLAIMS)) list.forEach((c) => extraClaimNames.delete(c));
['sub', 'groups', 'oid', 'tid'].forEach((c) => extraClaimNames.delete(c));
const claims = {
  acr: null,
  sid: null,
  auth_time: null,
  iss: null,
  openid: ['sub', 'groups', 'oid', 'tid', ...extraClaimNames],
  ...SCOPE_CLAIMS,
};

// ---------------------------------------------------------------------------------------------
// Outbound HTTP: only loopback URLs (i.e. the configured back-channel logout URIs) are allowed.
// ---------------------------------------------------------------------------------------------
function isLoopbackUrl(url) {
  const { hostname } = new URL(url);
  return hostname === 'localhost' || hostname === '[::1]' || hostname === '::1'
    || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

// ---------------------------------------------------------------------------------------------
// Clients: the same JSON works for both versions. Front-channel fields are dropped for 9.x,
// which does not implement front-channel logout.
// ---------------------------------------------------------------------------------------------
const CLIENT_FIELDS = [
  'client_id', 'client_secret', 'client_name', 'redirect_uris', 'post_logout_redirect_uris',
  'token_endpoint_auth_method', 'response_types', 'grant_types', 'backchannel_logout_uri',
  'backchannel_logout_session_required', 'frontchannel_logout_uri',
  'frontchannel_logout_session_required', 'id_token_signed_response_alg', 'application_type',
];
const clients = (config.clients ?? []).map((c) => {
  const client = {
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...Object.fromEntries(Object.entries(c).filter(([k, v]) => CLIENT_FIELDS.includes(k) && v !== null && v !== undefined)),
  };
  if (version === 9) {
    for (const k of ['frontchannel_logout_uri', 'frontchannel_logout_session_required']) {
      if (k in client) {
        log(`client ${client.client_id}: ignoring ${k} (front-channel logout does not exist in 9.x)`);
        delete client[k];
      }
    }
  }
  return client;
});

const cookieKeys = config.cookie_keys ?? [
  'e2e-test-cookie-key-1-not-secret', 'e2e-test-cookie-key-2-not-secret',
];
const requirePkce = config.require_pkce ?? true;
const adminToken = config.admin_token ? String(config.admin_token) : null;
// One store for all models, indexed by account so the admin route can revoke a person.
const store = new AccountIndexedStore();

// ---------------------------------------------------------------------------------------------
// Provider configuration per version.
// ---------------------------------------------------------------------------------------------
let Provider;
let configuration;

const common = {
  clients,
  jwks,
  findAccount,
  claims,
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  conformIdTokenClaims: false,
  adapter: createAdapter(store),
  // (the libraries' default, spelt out) 3rd argument: the code, or the rotated refresh token
  async issueRefreshToken(ctx, client, source) {
    return client.grantTypeAllowed('refresh_token') && source.scopes.has('offline_access');
  },
  // Always rotate. The libraries' default only rotates public clients' tokens or after 70 % of
  // the TTL, i.e. never for a confidential client in a test run.
  rotateRefreshToken: true,
};

if (version === 9) {
  ({ default: Provider } = await import('oidc-provider'));
  configuration = {
    ...common,
    cookies: {
      keys: cookieKeys,
      long: { httpOnly: true, sameSite: 'lax' },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
      // keep the token endpoint simple: no DPoP (enabled by default in 9.x; harmless, but off)
      dPoP: { enabled: false },
    },
    pkce: { required: () => requirePkce }, // 9.x only supports S256
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 300,
      IdToken: 3600,
      Interaction: 3600,
      Session: 24 * 3600,
      Grant: 24 * 3600,
      RefreshToken: 14 * 24 * 3600,
    },
    // 9.x routes outgoing requests through an SSRF-protected undici dispatcher which destroys
    // sockets to special-use addresses (127.0.0.0/8 included). Drop it, and allow loopback only.
    async fetch(url, options) {
      const href = String(url);
      if (!isLoopbackUrl(href)) {
        throw new Error(`test provider refuses outbound request to non-loopback URL ${href}`);
      }
      const { dispatcher, ...rest } = options; // eslint-disable-line no-unused-vars
      return globalThis.fetch(href, rest);
    },
  };
} else {
  Provider = require('oidc-provider-6');
  configuration = {
    ...common,
    cookies: {
      keys: cookieKeys,
      // 6.x defaults the long (session) cookie to SameSite=None, which browsers reject without
      // Secure; this provider is plain http, so use Lax.
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true, ack: 'draft-06' },
      frontchannelLogout: { enabled: true, ack: 'draft-04' },
    },
    pkce: { methods: ['S256'], required: () => requirePkce },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 300,
      IdToken: 3600,
      RefreshToken: 14 * 24 * 3600,
    },
    httpOptions(options) {
      const target = options.url ?? options.href;
      if (!target || !isLoopbackUrl(String(target))) {
        throw new Error(`test provider refuses outbound request to non-loopback URL ${target}`);
      }
      return { ...options, followRedirect: false, retry: 0, timeout: 2500, throwHttpErrors: false };
    },
  };
}

const provider = new Provider(issuer, configuration);

// Always put `sid` into ID tokens (both versions only do so when the client has
// back/front-channel logout with *_session_required, or the claims parameter asks for it).
if (config.always_include_sid ?? true) {
  provider.Client.prototype.includeSid = function includeSid() { return true; };
}

// The built-in HTML pages @import a Google font; strip it so browsers make no outbound request.
provider.use(async (ctx, next) => {
  await next();
  if (typeof ctx.body === 'string' && ctx.body.includes('fonts.googleapis.com')) {
    ctx.body = ctx.body.replace(/@import url\(https:\/\/fonts\.googleapis\.com[^)]*\);?/g, '');
  }
});

// ---------------------------------------------------------------------------------------------
// Admin route: POST /admin/revoke (see the header). Plain Koa middleware, placed by
// provider.use() before the provider's own routes in both versions.
// ---------------------------------------------------------------------------------------------
const ADMIN_BODY_LIMIT = 16 * 1024;

function sameSecret(given, expected) {
  const digest = (text) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > ADMIN_BODY_LIMIT) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function parseAdminBody(ctx) {
  const text = await readBody(ctx.req);
  if (ctx.is('application/json')) return JSON.parse(text || '{}');
  return Object.fromEntries(new URLSearchParams(text));
}

function adminAnswer(ctx, status, body) {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}

provider.use(async (ctx, next) => {
  if (ctx.path !== '/admin/revoke') return next();
  if (!adminToken) {
    return adminAnswer(ctx, 404, { error: 'not_found', error_description: 'no admin_token configured' });
  }
  if (ctx.method !== 'POST') {
    ctx.set('Allow', 'POST');
    return adminAnswer(ctx, 405, { error: 'method_not_allowed' });
  }
  const [scheme, given] = (ctx.get('authorization') || '').split(' ');
  if (scheme?.toLowerCase() !== 'bearer' || !given || !sameSecret(given, adminToken)) {
    ctx.set('WWW-Authenticate', 'Bearer');
    return adminAnswer(ctx, 401, { error: 'invalid_token' });
  }
  let body;
  try {
    body = await parseAdminBody(ctx);
  } catch (err) {
    return adminAnswer(ctx, 400, { error: 'invalid_request', error_description: err.message });
  }
  const account = body?.account;
  if (typeof account !== 'string' || !account) {
    return adminAnswer(ctx, 400, { error: 'invalid_request', error_description: 'account missing' });
  }
  const counts = store.revokeAccount(account);
  log(`admin revoked account=${account}`, JSON.stringify(counts));
  return adminAnswer(ctx, 200, { account, ...counts });
});

for (const event of ['backchannel.success', 'backchannel.error']) {
  provider.on(event, (...eventArgs) => {
    const err = eventArgs.find((a) => a instanceof Error);
    const client = eventArgs.find((a) => a && typeof a === 'object' && 'clientId' in a);
    log(event, client ? `client=${client.clientId}` : '', err ? `error=${err.message}` : '');
  });
}
for (const event of ['server_error', 'end_session.success', 'authorization.error', 'grant.error']) {
  provider.on(event, (...eventArgs) => {
    const err = eventArgs.find((a) => a instanceof Error);
    log(event, err ? `${err.name}: ${err.message} ${err.error_description ?? ''}` : '');
  });
}

const server = provider.listen(port, host, () => {
  log(`oidc-provider-${version} listening on ${issuer} (signing kid ${jwks.keys[0].kid})`);
});

function shutdown(signal) {
  log(`received ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
