// Test-only SAML 2.0 Identity Provider for the django-entra-sso end-to-end tests.
//
// Written independently of the app's SAML code: it is built on samlify (saml.mjs), with
// @authenio/samlify-node-xmllint as samlify's schema validator (xmllint compiled to JavaScript,
// no Java), and node's own http module. It answers as Entra ID does where that matters to an SP:
// signed Assertion AND signed Response (RSA-SHA256), NameID format persistent, Entra's claim URIs
// as attribute names (users.mjs).
//
// Start:  node server.mjs --config /abs/path/config.json
// (normally done by tests/e2e/saml_idp.py, whose docstring documents the config shape too).
// Config: {"host": "127.0.0.1" (loopback only), "port": 0 (0 = any free port),
//          "key_path": PEM private key, "cert_path": PEM certificate (the signing key pair),
//          "email_domain": "saml.test", "want_authn_requests_signed": false,
//          "encrypt_assertions": false, "admin_token": "..."}
// Once it accepts connections it prints ONE line of JSON on stdout:
//   {"ready": true, "base_url": "http://127.0.0.1:PORT", "entity_id": ".../metadata",
//    "metadata_url": ".../metadata"}
// Everything else (one line per request, errors) goes to stderr.
// NEVER use this outside tests: it accepts any username with any password.
//
// Setup: `npm ci` in this directory (node_modules/ is git-ignored; package-lock.json is committed).
//
// Routes (entity ID = <base_url>/metadata):
//   GET  /metadata        IdP metadata: signing certificate, SingleSignOnService and
//                         SingleLogoutService (HTTP-Redirect and HTTP-POST, at /sso and /slo),
//                         NameIDFormat persistent, WantAuthnRequestsSigned per config.
//   GET|POST /sso         SP-initiated sign-in: SAMLRequest (+RelayState, +SigAlg/Signature). The
//                         AuthnRequest is schema-validated, its signature checked when
//                         want_authn_requests_signed (query signature for GET, enveloped for
//                         POST), its Destination (if any) must be /sso and its
//                         AssertionConsumerServiceURL (if any) an HTTP-POST ACS of the SP's
//                         metadata. ForceAuthn="true" asks for the password again.
//                         Without an IdP session: the login form. With one: the Response.
//                         A POST that carries no IdP cookie is first re-posted to /sso from this
//                         origin (one auto-submitting page), so the SameSite=Lax session cookie
//                         comes along, as it would not on the SP's cross-site POST.
//   GET  /login           the login form on its own (signs in at the IdP only).
//   POST /login           username, password (anything), pending (the request being answered):
//                         starts the IdP session (cookie saml_idp_<port>) and answers the request.
//                         Login form: <form id="login-form" action="/login">, inputs
//                         name="username" and name="password", <button>Sign in</button>.
//   GET  /launch?sp=<SP entityID>[&relay_state=...]
//                         IdP-initiated sign-in: an unsolicited Response (no InResponseTo) to the
//                         SP's default HTTP-POST ACS, after the login form if needed.
//   The Response page is a form (id="saml-post") that posts SAMLResponse (+RelayState) to the
//   ACS as soon as it loads. The Response: Destination = ACS, InResponseTo (SP-initiated),
//   Issuer = entity ID; Assertion signed, then encrypted to the SP's encryption certificate
//   when encrypt_assertions, then the Response signed. Assertion: NameID persistent (a UUID
//   derived from the login), SubjectConfirmation bearer with Recipient = ACS, NotOnOrAfter =
//   +5 min and InResponseTo; Conditions NotBefore -5 min, NotOnOrAfter +70 min, Audience = SP
//   entity ID; AuthnStatement with the IdP session's SessionIndex; attributes of users.mjs.
//   GET|POST /slo         SAMLRequest = a LogoutRequest from an SP: its signature is required and
//                         checked against the SP's signing certificate (query signature for GET,
//                         enveloped for POST; unsigned or badly signed -> 400). The IdP session it
//                         names (the browser's own, else the one with that NameID/SessionIndex at
//                         that SP) ends, and a signed LogoutResponse (InResponseTo the request,
//                         RelayState echoed) goes to the SP's SingleLogoutService: HTTP-Redirect
//                         when the SP has one, else HTTP-POST.
//                         SAMLResponse = an SP's LogoutResponse during an IdP-initiated logout
//                         (signature required and checked): on to the next SP.
//   GET  /logout          IdP-initiated single logout: for each SP the session signed into that
//                         has a SingleLogoutService, a signed LogoutRequest (NameID and
//                         SessionIndex as sent at sign-in, RelayState = the logout's id), one SP
//                         after the other (HTTP-Redirect preferred); each SP's LogoutResponse
//                         comes back to /slo. Then the page "You are signed out" (with
//                         <ul id="slo-results">, one <li data-sp="..."> per SP) and the IdP
//                         session ends.
//   GET  /               "You are not signed in" / "Signed in as ..." (handy in a browser).
//   Admin routes (Authorization: Bearer <admin_token>; 401 otherwise, 404 without a token):
//   POST /admin/sp        body: an SP's metadata XML. Registers it, or replaces the SP with the
//                         same entityID. -> 200 {"entity_id", "replaced", "assertion_consumer_
//                         services", "single_logout_services", "signing_certificate",
//                         "encryption_certificate", "registered_at"}; 400 {"error"} on bad XML.
//   GET  /admin/sp        -> {"service_providers": [...same objects...]}
//   GET  /admin/sessions  -> {"sessions": [{"id", "login", "email", "name_id", "session_index",
//                         "authn_instant", "created_at", "logging_out",
//                         "service_providers": [{"entity_id", "name_id", "session_index",
//                         "signed_in_at"}]}]}
//   DELETE /admin/sessions -> {"ended": n}: every IdP session (and pending sign-in or logout)
//                         is forgotten, as if the IdP restarted; the registered SPs stay.
// Bad input of any kind is answered with a 400 page (JSON on admin routes), never a crash.
//
// Where samlify needed help (and what this server does about it):
// * samlify signs the Assertion only when the SP's metadata says WantAssertionsSigned="true";
//   saml.mjs makes every registered SP "want" it, so both Assertion and Response are signed.
// * samlify's default login Response has no AuthnStatement (so no SessionIndex), one value per
//   attribute and a NameID taken from user.email; saml.mjs writes the whole Response XML and
//   passes it through createLoginResponse's customTagReplacement, so samlify still does the
//   signing and encryption (encryptThenSign: sign Assertion, encrypt, sign Response).
// * samlify picks the last ACS of the metadata and does not check an AuthnRequest's
//   AssertionConsumerServiceURL, Destination or ProtocolBinding; done here.
// * samlify's Redirect-binding parsers need the signed octet string: it is rebuilt here from
//   the raw (still encoded) query values, as SAML bindings 3.4.4.1 defines it.
// * samlify has no session, SP registry, login page or logout propagation: all here.
// * SingleLogoutService ResponseLocation is not used (samlify sends LogoutResponses to Location).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

import * as pages from './pages.mjs';
import {
  BadRequest,
  buildLoginResponse,
  createIdentityProvider,
  warmUpValidator,
  decodeMessage,
  describeServiceProvider,
  parseParams,
  parseServiceProvider,
  peek,
  pickAssertionConsumerService,
  refused,
  samlifyRequest,
  singleLogoutEndpoint,
} from './saml.mjs';
import { personFor } from './users.mjs';

const log = (...parts) => process.stderr.write(`[saml-idp] ${parts.join(' ')}\n`);

// stdout carries exactly one line, the ready line. Whatever a library prints there (xmllint,
// compiled with emscripten, writes a blank line per validation) goes to stderr instead.
const writeStdout = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, encoding, callback) => {
  const done = [encoding, callback].find((f) => typeof f === 'function');
  if (!String(chunk).trim()) {
    done?.();
    return true;
  }
  return process.stderr.write(chunk, typeof encoding === 'string' ? encoding : undefined, done);
};

// ---------------------------------------------------------------------------------------------
// Configuration.
// ---------------------------------------------------------------------------------------------
function fail(message) {
  process.stderr.write(`[saml-idp] ${message}\n`);
  process.exit(2);
}

const { values: args } = parseArgs({ options: { config: { type: 'string' } } });
if (!args.config) fail('usage: node server.mjs --config /path/config.json');

let config;
try {
  config = JSON.parse(readFileSync(resolve(args.config), 'utf8'));
} catch (err) {
  fail(`cannot read the config ${args.config}: ${err.message}`);
}
const host = config.host ?? '127.0.0.1';
if (!['127.0.0.1', 'localhost', '::1'].includes(host)) fail(`refusing to listen on non-loopback host ${host}`);
const requestedPort = Number(config.port ?? 0);
if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) fail(`bad port ${config.port}`);
if (!config.key_path || !config.cert_path) fail('key_path and cert_path are required');
let privateKey;
let signingCert;
try {
  privateKey = readFileSync(resolve(config.key_path), 'utf8');
  signingCert = readFileSync(resolve(config.cert_path), 'utf8');
} catch (err) {
  fail(`cannot read the signing key pair: ${err.message}`);
}
const emailDomain = config.email_domain ?? 'saml.test';
const wantAuthnRequestsSigned = config.want_authn_requests_signed === true;
const encryptAssertions = config.encrypt_assertions === true;
const adminToken = config.admin_token ? String(config.admin_token) : null;

const BODY_LIMIT = 1024 * 1024;
const PENDING_TTL_MS = 15 * 60 * 1000;
const MAX_LOGIN_LENGTH = 256;

// ---------------------------------------------------------------------------------------------
// State (in memory; a restart forgets everything, SPs included).
// ---------------------------------------------------------------------------------------------
let baseUrl = ''; // set once listening (port 0 -> the port picked)
let idp = null;
let cookieName = 'saml_idp';
const serviceProviders = new Map(); // entityID -> parsed SP (saml.mjs)
const sessions = new Map(); // session id -> { id, person, sessionIndex, authnInstant, createdAt, sps, loggingOut }
const pending = new Map(); // id -> { kind: "sso"|"launch", spEntityId, requestId, acsUrl, relayState, createdAt }
const logouts = new Map(); // logout id -> { id, sessionId, queue, current, results }
const logoutByRequest = new Map(); // LogoutRequest ID -> logout id

function randomId(bytes = 24) {
  return randomBytes(bytes).toString('base64url');
}

function storePending(entry) {
  const now = Date.now();
  for (const [id, old] of pending) if (now - old.createdAt > PENDING_TTL_MS) pending.delete(id);
  const id = randomId(18);
  pending.set(id, { ...entry, createdAt: now });
  return id;
}

function takePending(id) {
  const entry = pending.get(id);
  pending.delete(id);
  if (!entry || Date.now() - entry.createdAt > PENDING_TTL_MS) return null;
  return entry;
}

function newSession(login) {
  const now = Date.now();
  const session = {
    id: randomId(),
    person: personFor(login, emailDomain),
    sessionIndex: `_${randomId(16)}`,
    authnInstant: now,
    createdAt: now,
    sps: new Map(), // SP entityID -> { nameId, sessionIndex, signedInAt }
    loggingOut: null,
  };
  sessions.set(session.id, session);
  log(`session started for ${login} (${session.sessionIndex})`);
  return session;
}

function endSession(session, why) {
  if (sessions.delete(session.id)) log(`session of ${session.person.login} ended (${why})`);
}

function describeSession(s) {
  return {
    id: s.id,
    login: s.person.login,
    email: s.person.email,
    name_id: s.person.nameId,
    session_index: s.sessionIndex,
    authn_instant: new Date(s.authnInstant).toISOString(),
    created_at: new Date(s.createdAt).toISOString(),
    logging_out: Boolean(s.loggingOut),
    service_providers: [...s.sps].map(([entityId, r]) => ({
      entity_id: entityId,
      name_id: r.nameId,
      session_index: r.sessionIndex,
      signed_in_at: r.signedInAt,
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers.
// ---------------------------------------------------------------------------------------------
function readCookie(req, name) {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

function sessionCookie(session) {
  return `${cookieName}=${session.id}; Path=/; HttpOnly; SameSite=Lax`;
}

function clearedCookie() {
  return `${cookieName}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`;
}

function currentSession(ctx) {
  const id = readCookie(ctx.req, cookieName);
  return id ? sessions.get(id) ?? null : null;
}

function send(ctx, status, body, contentType, headers = {}) {
  ctx.res.writeHead(status, {
    'Content-Type': contentType,
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(body),
    ...headers,
  });
  ctx.res.end(body);
}

function sendHtml(ctx, status, html, headers) {
  send(ctx, status, html, 'text/html; charset=utf-8', headers);
}

function sendJson(ctx, status, data, headers) {
  send(ctx, status, `${JSON.stringify(data, null, 2)}\n`, 'application/json', headers);
}

function redirect(ctx, location, headers = {}) {
  ctx.res.writeHead(303, { Location: location, 'Cache-Control': 'no-store', 'Content-Length': 0, ...headers });
  ctx.res.end();
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > BODY_LIMIT) {
      const err = new BadRequest('request body too large');
      err.status = 413;
      throw err;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function rawQuery(req) {
  const q = req.url.indexOf('?');
  return q < 0 ? '' : req.url.slice(q + 1);
}

async function requestParams(ctx) {
  return ctx.req.method === 'GET' ? parseParams(rawQuery(ctx.req)) : parseParams(await readBody(ctx.req));
}

function requireSp(entityId) {
  const sp = serviceProviders.get(entityId);
  if (!sp) throw new BadRequest(`unknown service provider ${entityId}: register its metadata first (POST /admin/sp)`);
  return sp;
}

function sameSecret(given, expected) {
  const digest = (text) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** True (and the 401/404 answer sent) unless the request carries the admin token. */
function adminRefusal(ctx) {
  if (!adminToken) {
    sendJson(ctx, 404, { error: 'no admin_token configured' });
    return true;
  }
  const [scheme, given] = (ctx.req.headers.authorization ?? '').split(' ');
  if (scheme?.toLowerCase() !== 'bearer' || !given || !sameSecret(given, adminToken)) {
    sendJson(ctx, 401, { error: 'invalid_token' }, { 'WWW-Authenticate': 'Bearer' });
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Sign-in.
// ---------------------------------------------------------------------------------------------
function showLogin(ctx, entry, status = 200, extra = {}) {
  const id = storePending(entry);
  sendHtml(ctx, status, pages.loginPage({ pending: id, spEntityId: entry.spEntityId, ...extra }));
}

async function answerWithResponse(ctx, session, entry, headers = {}) {
  const sp = requireSp(entry.spEntityId);
  const record = { nameId: session.person.nameId, sessionIndex: session.sessionIndex };
  const { id, samlResponse } = await buildLoginResponse(idp, sp, {
    destination: entry.acsUrl,
    inResponseTo: entry.requestId,
    person: session.person,
    sessionIndex: record.sessionIndex,
    authnInstant: session.authnInstant,
  });
  session.sps.set(sp.entityId, { ...record, signedInAt: new Date().toISOString() });
  log(`Response ${id} for ${session.person.login} to ${sp.entityId} at ${entry.acsUrl}`
    + (entry.requestId ? ` (InResponseTo ${entry.requestId})` : ' (unsolicited)'));
  sendHtml(ctx, 200, pages.autoPostPage({
    action: entry.acsUrl,
    fields: { SAMLResponse: samlResponse, RelayState: entry.relayState },
    title: 'Signing you in',
  }), headers);
}

async function sso(ctx) {
  const binding = ctx.req.method === 'GET' ? 'redirect' : 'post';
  const params = await requestParams(ctx);
  const { values } = params;
  if (!values.SAMLRequest) throw new BadRequest('SAMLRequest is missing');

  if (binding === 'post' && values._idp_bounce === undefined && readCookie(ctx.req, cookieName) === null) {
    // A cross-site POST does not carry the SameSite=Lax session cookie: post it again from here.
    const fields = { ...values, _idp_bounce: '1' };
    return sendHtml(ctx, 200, pages.autoPostPage({ action: '/sso', fields, title: 'Continuing' }));
  }
  delete values._idp_bounce;

  const xml = decodeMessage(values.SAMLRequest, binding);
  const peeked = peek(xml, 'AuthnRequest');
  const sp = requireSp(peeked.issuer);
  let info;
  try {
    info = await idp.parseLoginRequest(sp.entity, binding, samlifyRequest(binding, params, 'SAMLRequest'));
  } catch (err) {
    throw refused('AuthnRequest', err);
  }
  const request = peek(xml, 'AuthnRequest', [
    'ID', 'Destination', 'AssertionConsumerServiceURL', 'AssertionConsumerServiceIndex',
    'ProtocolBinding', 'ForceAuthn', 'IsPassive',
  ]);
  const requestId = info.extract?.request?.id ?? request.id;
  if (!requestId) throw new BadRequest('the AuthnRequest has no ID');
  if (request.destination !== undefined && request.destination !== `${baseUrl}/sso`) {
    throw new BadRequest(`AuthnRequest Destination ${request.destination} is not ${baseUrl}/sso`);
  }
  if (request.protocolBinding !== undefined && request.protocolBinding !== 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST') {
    throw new BadRequest(`ProtocolBinding ${request.protocolBinding} is not supported: this IdP answers with HTTP-POST`);
  }
  const acsUrl = pickAssertionConsumerService(sp, {
    url: request.assertionConsumerServiceUrl,
    index: request.assertionConsumerServiceIndex,
  });
  const forceAuthn = request.forceAuthn === 'true' || request.forceAuthn === '1';
  log(`AuthnRequest ${requestId} from ${sp.entityId} (${binding}${values.Signature || info.extract?.signature ? ', signed' : ''}${forceAuthn ? ', ForceAuthn' : ''})`);
  const entry = { kind: 'sso', spEntityId: sp.entityId, requestId, acsUrl, relayState: values.RelayState };
  const session = currentSession(ctx);
  if (session && !forceAuthn) return answerWithResponse(ctx, session, entry);
  return showLogin(ctx, entry, 200, { username: forceAuthn ? session?.person.login : undefined });
}

async function launch(ctx) {
  const { values } = parseParams(rawQuery(ctx.req));
  if (!values.sp) throw new BadRequest('sp (the SP entityID) is missing');
  const sp = requireSp(values.sp);
  const entry = {
    kind: 'launch',
    spEntityId: sp.entityId,
    requestId: null,
    acsUrl: pickAssertionConsumerService(sp),
    relayState: values.relay_state,
  };
  const session = currentSession(ctx);
  if (session) return answerWithResponse(ctx, session, entry);
  return showLogin(ctx, entry);
}

function loginForm(ctx) {
  sendHtml(ctx, 200, pages.loginPage({}));
}

async function login(ctx) {
  const { values } = parseParams(await readBody(ctx.req));
  const username = (values.username ?? '').trim();
  let entry = null;
  if (values.pending) {
    entry = pending.get(values.pending) ?? null;
    if (!entry || Date.now() - entry.createdAt > PENDING_TTL_MS) {
      pending.delete(values.pending);
      throw new BadRequest('this sign-in request is unknown or has expired: start again at the service');
    }
  }
  if (!username || username.length > MAX_LOGIN_LENGTH) {
    const error = username ? 'That username is too long.' : 'Enter a username.';
    return sendHtml(ctx, 400, pages.loginPage({ pending: values.pending, spEntityId: entry?.spEntityId, error }));
  }
  if (values.pending) takePending(values.pending);

  let session = currentSession(ctx);
  if (session && session.person.login === username) {
    session.authnInstant = Date.now(); // signed in again (ForceAuthn): same session
  } else {
    if (session) endSession(session, `${username} signed in instead`);
    session = newSession(username);
  }
  const headers = { 'Set-Cookie': sessionCookie(session) };
  if (!entry) return redirect(ctx, '/', headers);
  return answerWithResponse(ctx, session, entry, headers);
}

// ---------------------------------------------------------------------------------------------
// Single logout.
// ---------------------------------------------------------------------------------------------
function sessionForLogout(ctx, spEntityId, nameId, sessionIndexes) {
  const matches = (s) => {
    const r = s.sps.get(spEntityId);
    return Boolean(r) && r.nameId === nameId
      && (sessionIndexes.length === 0 || sessionIndexes.includes(r.sessionIndex));
  };
  const own = currentSession(ctx);
  if (own && matches(own)) return own;
  for (const s of sessions.values()) if (matches(s)) return s;
  return null;
}

async function logoutRequestFromSp(ctx, binding, params) {
  const { values } = params;
  const xml = decodeMessage(values.SAMLRequest, binding);
  const peeked = peek(xml, 'LogoutRequest', ['ID', 'Destination']);
  const sp = requireSp(peeked.issuer);
  if (!sp.hasSigningCert) {
    throw new BadRequest(`the metadata of ${sp.entityId} has no signing certificate: its LogoutRequest cannot be verified`);
  }
  let info;
  try {
    info = await idp.parseLogoutRequest(sp.entity, binding, samlifyRequest(binding, params, 'SAMLRequest'));
  } catch (err) {
    throw refused('LogoutRequest', err);
  }
  if (peeked.destination !== undefined && peeked.destination !== `${baseUrl}/slo`) {
    throw new BadRequest(`LogoutRequest Destination ${peeked.destination} is not ${baseUrl}/slo`);
  }
  const endpoint = singleLogoutEndpoint(sp);
  if (!endpoint) throw new BadRequest(`the metadata of ${sp.entityId} has no SingleLogoutService to answer to`);
  const nameId = info.extract?.nameID;
  const sessionIndexes = [info.extract?.sessionIndex ?? []].flat();
  const session = sessionForLogout(ctx, sp.entityId, nameId, sessionIndexes);
  const headers = {};
  if (session) {
    if (currentSession(ctx) === session) headers['Set-Cookie'] = clearedCookie();
    endSession(session, `LogoutRequest ${info.extract?.request?.id} from ${sp.entityId}`);
  } else {
    log(`LogoutRequest from ${sp.entityId}: no IdP session with NameID ${nameId}; answering Success`);
  }
  const relayState = values.RelayState;
  if (endpoint.binding === 'redirect') {
    const { context } = idp.createLogoutResponse(sp.entity, info, 'redirect', { relayState: relayState ?? '' });
    return redirect(ctx, context, headers);
  }
  const { context } = idp.createLogoutResponse(sp.entity, info, 'post', { relayState: relayState ?? '' });
  return sendHtml(ctx, 200, pages.autoPostPage({
    action: endpoint.location,
    fields: { SAMLResponse: context, RelayState: relayState },
    title: 'Signing you out',
  }), headers);
}

function continueLogout(ctx, logout) {
  const session = sessions.get(logout.sessionId);
  while (logout.queue.length > 0) {
    const entityId = logout.queue.shift();
    const sp = serviceProviders.get(entityId);
    const record = session?.sps.get(entityId);
    const endpoint = sp ? singleLogoutEndpoint(sp) : null;
    if (!sp || !record || !endpoint) {
      logout.results.push({ entity_id: entityId, outcome: sp ? 'skipped: no SingleLogoutService' : 'skipped: not registered any more' });
      continue;
    }
    const user = { logoutNameID: record.nameId, sessionIndex: record.sessionIndex };
    const made = idp.createLogoutRequest(sp.entity, endpoint.binding, user, { relayState: logout.id });
    logout.current = { entityId, requestId: made.id };
    logoutByRequest.set(made.id, logout.id);
    log(`LogoutRequest ${made.id} to ${entityId} (${endpoint.binding})`);
    if (endpoint.binding === 'redirect') return redirect(ctx, made.context);
    return sendHtml(ctx, 200, pages.autoPostPage({
      action: endpoint.location,
      fields: { SAMLRequest: made.context, RelayState: logout.id },
      title: 'Signing you out',
    }));
  }
  logouts.delete(logout.id);
  if (session) endSession(session, 'IdP-initiated logout');
  return sendHtml(ctx, 200, pages.signedOutPage(logout.results), { 'Set-Cookie': clearedCookie() });
}

async function logoutResponseFromSp(ctx, binding, params) {
  const { values } = params;
  const xml = decodeMessage(values.SAMLResponse, binding);
  const peeked = peek(xml, 'LogoutResponse', ['ID', 'InResponseTo', 'Destination']);
  const logout = logouts.get(logoutByRequest.get(peeked.inResponseTo));
  if (!logout || logout.current?.requestId !== peeked.inResponseTo) {
    throw new BadRequest(`this LogoutResponse (InResponseTo ${peeked.inResponseTo}) answers no LogoutRequest of this IdP`);
  }
  const sp = requireSp(logout.current.entityId);
  if (peeked.issuer !== sp.entityId) throw new BadRequest(`LogoutResponse Issuer ${peeked.issuer} is not ${sp.entityId}`);
  if (peeked.destination !== undefined && peeked.destination !== `${baseUrl}/slo`) {
    throw new BadRequest(`LogoutResponse Destination ${peeked.destination} is not ${baseUrl}/slo`);
  }
  let outcome = 'signed out';
  try {
    await idp.parseLogoutResponse(sp.entity, binding, samlifyRequest(binding, params, 'SAMLResponse'));
  } catch (err) {
    // samlify reads the status before the signature: a non-Success status is recorded, and the
    // logout goes on with the next SP; any other problem (signature!) is refused.
    if (!/ERR_FAILED_STATUS/.test(err?.message ?? '')) throw refused('LogoutResponse', err);
    outcome = `failed: ${err.message}`;
  }
  log(`LogoutResponse from ${sp.entityId}: ${outcome}`);
  logoutByRequest.delete(peeked.inResponseTo);
  logout.results.push({ entity_id: sp.entityId, outcome });
  logout.current = null;
  return continueLogout(ctx, logout);
}

async function slo(ctx) {
  const binding = ctx.req.method === 'GET' ? 'redirect' : 'post';
  const params = await requestParams(ctx);
  if (params.values.SAMLRequest !== undefined) return logoutRequestFromSp(ctx, binding, params);
  if (params.values.SAMLResponse !== undefined) return logoutResponseFromSp(ctx, binding, params);
  throw new BadRequest('SAMLRequest or SAMLResponse is missing');
}

function idpLogout(ctx) {
  const session = currentSession(ctx);
  if (!session) return sendHtml(ctx, 200, pages.signedOutPage([]), { 'Set-Cookie': clearedCookie() });
  if (session.loggingOut) { // started before and not finished: start over
    const old = logouts.get(session.loggingOut);
    if (old?.current) logoutByRequest.delete(old.current.requestId);
    logouts.delete(session.loggingOut);
  }
  const logout = { id: randomId(18), sessionId: session.id, queue: [...session.sps.keys()], current: null, results: [] };
  logouts.set(logout.id, logout);
  session.loggingOut = logout.id;
  log(`IdP-initiated logout of ${session.person.login}: ${logout.queue.length} SP(s)`);
  return continueLogout(ctx, logout);
}

// ---------------------------------------------------------------------------------------------
// Other routes.
// ---------------------------------------------------------------------------------------------
function home(ctx) {
  sendHtml(ctx, 200, pages.homePage({ session: currentSession(ctx), baseUrl }));
}

function metadata(ctx) {
  send(ctx, 200, idp.getMetadata(), 'application/samlmetadata+xml; charset=utf-8');
}

async function adminSp(ctx) {
  if (adminRefusal(ctx)) return;
  if (ctx.req.method === 'GET') {
    return sendJson(ctx, 200, { service_providers: [...serviceProviders.values()].map(describeServiceProvider) });
  }
  const sp = parseServiceProvider(await readBody(ctx.req));
  const replaced = serviceProviders.has(sp.entityId);
  serviceProviders.set(sp.entityId, sp);
  log(`SP ${replaced ? 're-registered' : 'registered'}: ${sp.entityId}`);
  return sendJson(ctx, 200, { ...describeServiceProvider(sp), replaced });
}

function adminSessions(ctx) {
  if (adminRefusal(ctx)) return;
  if (ctx.req.method === 'DELETE') { // test-only: forget every IdP session and logout
    const ended = sessions.size;
    sessions.clear();
    pending.clear();
    logouts.clear();
    logoutByRequest.clear();
    log(`admin ended ${ended} session(s)`);
    return sendJson(ctx, 200, { ended });
  }
  return sendJson(ctx, 200, { sessions: [...sessions.values()].map(describeSession) });
}

const ROUTES = {
  '/': { GET: home },
  '/metadata': { GET: metadata },
  '/sso': { GET: sso, POST: sso },
  '/login': { GET: loginForm, POST: login },
  '/launch': { GET: launch },
  '/slo': { GET: slo, POST: slo },
  '/logout': { GET: idpLogout },
  '/admin/sp': { GET: adminSp, POST: adminSp },
  '/admin/sessions': { GET: adminSessions, DELETE: adminSessions },
};

async function handle(ctx) {
  const path = ctx.req.url.split('?')[0];
  const methods = ROUTES[path];
  if (!methods) return sendHtml(ctx, 404, pages.messagePage('Not found', `Nothing at ${path}.`));
  const handler = methods[ctx.req.method];
  if (!handler) {
    return sendHtml(ctx, 405, pages.messagePage('Method not allowed', `${ctx.req.method} ${path}`), {
      Allow: Object.keys(methods).join(', '),
    });
  }
  return handler(ctx);
}

function answerError(ctx, err) {
  const status = err instanceof BadRequest ? err.status : 500;
  const message = err instanceof BadRequest ? err.message : `internal error: ${err?.message ?? err}`;
  log(`${ctx.req.method} ${ctx.req.url.split('?')[0]} -> ${status}: ${message}`);
  if (status === 500) log(err?.stack ?? String(err));
  if (ctx.res.headersSent) return ctx.res.end();
  if (ctx.req.url.startsWith('/admin/')) return sendJson(ctx, status, { error: message });
  return sendHtml(ctx, status, pages.messagePage(status === 500 ? 'Error' : 'Bad request', message));
}

const server = createServer((req, res) => {
  const ctx = { req, res };
  res.on('finish', () => log(`${req.method} ${req.url.split('?')[0]} ${res.statusCode}`));
  Promise.resolve()
    .then(() => handle(ctx))
    .catch((err) => answerError(ctx, err))
    .catch((err) => { log(`could not answer: ${err?.stack ?? err}`); res.destroy(); });
});

process.on('uncaughtException', (err) => log(`uncaught: ${err?.stack ?? err}`));
process.on('unhandledRejection', (err) => log(`unhandled rejection: ${err?.stack ?? err}`));

server.listen(requestedPort, host, async () => {
  const { port } = server.address();
  const hostPart = host.includes(':') ? `[${host}]` : host;
  baseUrl = `http://${hostPart}:${port}`;
  cookieName = `saml_idp_${port}`; // cookies ignore ports: one name per IdP on this host
  idp = createIdentityProvider({ baseUrl, privateKey, signingCert, wantAuthnRequestsSigned, encryptAssertions });
  // The first schema validation compiles xmllint (seconds); do it before saying "ready".
  const started = Date.now();
  await warmUpValidator();
  log(`schema validator ready in ${Date.now() - started} ms`);
  log(`listening on ${baseUrl} (entity ID ${baseUrl}/metadata, want_authn_requests_signed=${wantAuthnRequestsSigned}, encrypt_assertions=${encryptAssertions})`);
  writeStdout(`${JSON.stringify({
    ready: true,
    base_url: baseUrl,
    entity_id: `${baseUrl}/metadata`,
    metadata_url: `${baseUrl}/metadata`,
  })}\n`);
});
server.on('error', (err) => fail(`cannot listen on ${host}:${requestedPort}: ${err.message}`));

function shutdown(signal) {
  log(`received ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
