// samlify glue for the test SAML IdP: the IdP entity, registered SPs, the signed login Response,
// and decoding of inbound HTTP-Redirect / HTTP-POST messages.
//
// samlify (https://github.com/tngan/samlify) does the SAML work: metadata, schema validation of
// every inbound message (@authenio/samlify-node-xmllint, xmllint compiled to JavaScript, no
// Java), signature checks of AuthnRequests, LogoutRequests and LogoutResponses (query-string
// signatures of the Redirect binding and enveloped XML signatures of the POST binding), and
// signing/encrypting what this IdP sends. What it leaves to its caller is done here; see
// "Where samlify needed help" in server.mjs.

import { randomUUID } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';

import xmllint from '@authenio/samlify-node-xmllint';
import samlify from 'samlify';

import { attributesOf } from './users.mjs';

samlify.setSchemaValidator(xmllint);

/** Compile the schema validator once (its first run takes seconds, later ones milliseconds). */
export async function warmUpValidator() {
  const probe = `<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_warm-up" Version="2.0" IssueInstant="2000-01-01T00:00:00Z"><saml:Issuer>warm-up</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>`;
  await xmllint.validate(probe);
}

const { IdentityProvider, ServiceProvider, Extractor, Constants } = samlify;

export const BINDING = Constants.namespace.binding; // { redirect, post, ... } -> URNs
export const NAMEID_PERSISTENT = Constants.namespace.format.persistent;
const RSA_SHA256 = Constants.algorithms.signature.RSA_SHA256;
const PROTOCOL_NS = 'urn:oasis:names:tc:SAML:2.0:protocol';
const ASSERTION_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
const AUTHN_CONTEXT_PASSWORD = 'urn:oasis:names:tc:SAML:2.0:ac:classes:Password';
const MAX_INFLATED = 1024 * 1024;

// Lifetimes as Entra ID issues them: the assertion's Conditions run from 5 minutes before the
// IssueInstant to 70 minutes after it; the bearer confirmation must be used within 5 minutes.
const NOT_BEFORE_SKEW_MS = 5 * 60 * 1000;
const CONDITIONS_LIFETIME_MS = 70 * 60 * 1000;
const CONFIRMATION_LIFETIME_MS = 5 * 60 * 1000;

/** Bad input from a browser, an SP or an admin call: answered with a 400, never a crash. */
export class BadRequest extends Error {
  constructor(message) {
    super(message);
    this.name = 'BadRequest';
    this.status = 400;
  }
}

export function newId() {
  return `_${randomUUID()}`;
}

/** xs:dateTime in UTC without fractions of a second. */
export function samlTime(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function escapeXml(value) {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function asArray(value) {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

function errorText(err) {
  if (err instanceof Error) return err.message;
  return String(err);
}

// ---------------------------------------------------------------------------------------------
// The IdP entity.
// ---------------------------------------------------------------------------------------------
export function createIdentityProvider({ baseUrl, privateKey, signingCert, wantAuthnRequestsSigned, encryptAssertions }) {
  return IdentityProvider({
    entityID: `${baseUrl}/metadata`,
    privateKey,
    signingCert,
    wantAuthnRequestsSigned,
    isAssertionEncrypted: encryptAssertions,
    // Inbound LogoutRequests and LogoutResponses must be signed (checked by samlify's flow).
    wantLogoutRequestSigned: true,
    wantLogoutResponseSigned: true,
    requestSignatureAlgorithm: RSA_SHA256,
    nameIDFormat: [NAMEID_PERSISTENT],
    singleSignOnService: [
      { Binding: BINDING.redirect, Location: `${baseUrl}/sso` },
      { Binding: BINDING.post, Location: `${baseUrl}/sso` },
    ],
    singleLogoutService: [
      { Binding: BINDING.redirect, Location: `${baseUrl}/slo` },
      { Binding: BINDING.post, Location: `${baseUrl}/slo` },
    ],
  });
}

// ---------------------------------------------------------------------------------------------
// Service providers, from their metadata XML.
// ---------------------------------------------------------------------------------------------
const SP_ENDPOINT_FIELDS = [
  {
    key: 'acs',
    localPath: ['EntityDescriptor', 'SPSSODescriptor', 'AssertionConsumerService'],
    attributes: ['Binding', 'Location', 'index', 'isDefault'],
  },
  {
    key: 'slo',
    localPath: ['EntityDescriptor', 'SPSSODescriptor', 'SingleLogoutService'],
    attributes: ['Binding', 'Location', 'ResponseLocation'],
  },
];

export function parseServiceProvider(xml) {
  if (typeof xml !== 'string' || !xml.trim()) throw new BadRequest('the request body must be the SP metadata XML');
  let entity;
  let endpoints;
  try {
    entity = ServiceProvider({
      metadata: xml,
      // This IdP always signs the Response (samlify: wantMessageSigned) and the Assertion
      // (see isWantAssertionsSigned below), signs its LogoutRequests and LogoutResponses.
      wantMessageSigned: true,
      wantLogoutRequestSigned: true,
      wantLogoutResponseSigned: true,
    });
    endpoints = Extractor.extract(xml, SP_ENDPOINT_FIELDS);
  } catch (err) {
    throw new BadRequest(`unreadable SP metadata: ${errorText(err)}`);
  }
  const entityId = entity.entityMeta.getEntityID();
  if (typeof entityId !== 'string' || !entityId) {
    throw new BadRequest('SP metadata: one EntityDescriptor with an entityID is needed');
  }
  // samlify signs the Assertion only when the SP's metadata says WantAssertionsSigned="true".
  // Entra ID (and this IdP) always sign it, whatever the SP asks for.
  entity.entityMeta.isWantAssertionsSigned = () => true;

  const acs = asArray(endpoints.acs).map((a) => ({
    binding: a.binding,
    location: a.location,
    index: a.index,
    isDefault: a.isDefault === 'true',
  }));
  if (!acs.some((a) => a.binding === BINDING.post && a.location)) {
    throw new BadRequest(`SP metadata of ${entityId}: no AssertionConsumerService with the HTTP-POST binding`);
  }
  const slo = asArray(endpoints.slo)
    .filter((s) => s.location)
    .map((s) => ({ binding: s.binding, location: s.location, responseLocation: s.responseLocation }));
  return {
    entityId,
    entity,
    acs,
    slo,
    hasSigningCert: Boolean(entity.entityMeta.getX509Certificate('signing')),
    hasEncryptionCert: Boolean(entity.entityMeta.getX509Certificate('encryption')),
    registeredAt: new Date().toISOString(),
  };
}

export function describeServiceProvider(sp) {
  return {
    entity_id: sp.entityId,
    assertion_consumer_services: sp.acs,
    single_logout_services: sp.slo,
    signing_certificate: sp.hasSigningCert,
    encryption_certificate: sp.hasEncryptionCert,
    registered_at: sp.registeredAt,
  };
}

/**
 * The ACS URL a Response goes to: the AuthnRequest's AssertionConsumerServiceURL (or index) when
 * it names one, which must be an HTTP-POST ACS of the SP's metadata; else the default one.
 */
export function pickAssertionConsumerService(sp, { url, index } = {}) {
  const post = sp.acs.filter((a) => a.binding === BINDING.post && a.location);
  if (url !== undefined && url !== null) {
    const match = post.find((a) => a.location === url);
    if (!match) {
      throw new BadRequest(`AssertionConsumerServiceURL ${url} is not an HTTP-POST AssertionConsumerService in the metadata of ${sp.entityId}`);
    }
    return match.location;
  }
  if (index !== undefined && index !== null) {
    const match = post.find((a) => a.index === String(index));
    if (!match) {
      throw new BadRequest(`AssertionConsumerServiceIndex ${index} is not an HTTP-POST AssertionConsumerService of ${sp.entityId}`);
    }
    return match.location;
  }
  return (post.find((a) => a.isDefault) ?? post[0]).location;
}

/** Where single-logout messages go: the SP's HTTP-Redirect SLO endpoint, else its HTTP-POST one. */
export function singleLogoutEndpoint(sp) {
  const redirect = sp.slo.find((s) => s.binding === BINDING.redirect);
  if (redirect) return { binding: 'redirect', location: redirect.location };
  const post = sp.slo.find((s) => s.binding === BINDING.post);
  if (post) return { binding: 'post', location: post.location };
  return null;
}

// ---------------------------------------------------------------------------------------------
// Inbound messages.
// ---------------------------------------------------------------------------------------------
const BASE64_PARAMS = new Set(['SAMLRequest', 'SAMLResponse', 'Signature']);
const SINGLE_PARAMS = new Set(['SAMLRequest', 'SAMLResponse', 'RelayState', 'SigAlg', 'Signature']);

function formDecode(text) {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    throw new BadRequest('malformed percent-encoding in the request');
  }
}

/**
 * Parse a query string or an x-www-form-urlencoded body. Returns the decoded `values` and the
 * `raw` (still encoded) values, which the Redirect binding's signature covers. A SAML parameter
 * given twice is refused; base64 values get back a "+" that a careless encoder left as a space.
 */
export function parseParams(text) {
  const values = Object.create(null);
  const raw = Object.create(null);
  for (const part of String(text ?? '').split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = formDecode(eq < 0 ? part : part.slice(0, eq));
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    if (key in values) {
      if (SINGLE_PARAMS.has(key)) throw new BadRequest(`${key} is given more than once`);
      continue;
    }
    let value = formDecode(rawValue);
    if (BASE64_PARAMS.has(key)) value = value.replace(/ /g, '+');
    values[key] = value;
    raw[key] = rawValue;
  }
  return { values, raw };
}

/** The octet string an HTTP-Redirect signature covers (SAML bindings 3.4.4.1), from raw values. */
export function redirectOctetString(raw, messageParam) {
  const parts = [`${messageParam}=${raw[messageParam]}`];
  if ('RelayState' in raw) parts.push(`RelayState=${raw.RelayState}`);
  if ('SigAlg' in raw) parts.push(`SigAlg=${raw.SigAlg}`);
  return parts.join('&');
}

/** The request envelope samlify's parse* functions take. */
export function samlifyRequest(binding, { values, raw }, messageParam) {
  if (binding === 'redirect') return { query: values, octetString: redirectOctetString(raw, messageParam) };
  return { body: values };
}

/** base64 (+ DEFLATE for the Redirect binding) -> XML text. */
export function decodeMessage(value, binding) {
  if (typeof value !== 'string' || !value || !/^[A-Za-z0-9+/=\r\n]+$/.test(value)) {
    throw new BadRequest('the SAML message is not base64');
  }
  const bytes = Buffer.from(value, 'base64');
  if (binding !== 'redirect') return bytes.toString('utf8');
  try {
    return inflateRawSync(bytes, { maxOutputLength: MAX_INFLATED }).toString('utf8');
  } catch (err) {
    throw new BadRequest(`the SAML message does not inflate (HTTP-Redirect binding uses DEFLATE): ${errorText(err)}`);
  }
}

/**
 * Read fields of an inbound message before its signature is checked (to find the SP that sent
 * it). `root` is the expected root element; anything else is refused.
 */
export function peek(xml, root, attributes = []) {
  let found;
  try {
    found = Extractor.extract(xml, [
      { key: 'root', localPath: [root], attributes: [], context: true },
      { key: 'issuer', localPath: [root, 'Issuer'], attributes: [] },
      { key: 'message', localPath: [root], attributes: attributes.length ? attributes : ['ID'] },
    ]);
  } catch (err) {
    throw new BadRequest(`the SAML message is not well-formed XML: ${errorText(err)}`);
  }
  if (!found.root) throw new BadRequest(`expected a ${root} message`);
  if (typeof found.issuer !== 'string' || !found.issuer) throw new BadRequest(`the ${root} has no (single) Issuer`);
  const message = found.message && typeof found.message === 'object' ? found.message : { id: found.message };
  return { issuer: found.issuer, ...message };
}

export function refused(what, err) {
  return new BadRequest(`${what} refused: ${errorText(err)}`);
}

// ---------------------------------------------------------------------------------------------
// The login Response.
// ---------------------------------------------------------------------------------------------
function loginResponseXml({ id, assertionId, issuer, destination, inResponseTo, audience, person, sessionIndex, authnInstant, now }) {
  const irt = inResponseTo ? ` InResponseTo="${escapeXml(inResponseTo)}"` : '';
  const issued = samlTime(now);
  const attributes = attributesOf(person)
    .map(([name, values]) => `<saml:Attribute Name="${escapeXml(name)}">${values
      .map((v) => `<saml:AttributeValue>${escapeXml(v)}</saml:AttributeValue>`)
      .join('')}</saml:Attribute>`)
    .join('');
  return `<samlp:Response xmlns:samlp="${PROTOCOL_NS}" xmlns:saml="${ASSERTION_NS}" ID="${id}" Version="2.0" IssueInstant="${issued}" Destination="${escapeXml(destination)}"${irt}>`
    + `<saml:Issuer>${escapeXml(issuer)}</saml:Issuer>`
    + `<samlp:Status><samlp:StatusCode Value="${STATUS_SUCCESS}"/></samlp:Status>`
    + `<saml:Assertion xmlns:saml="${ASSERTION_NS}" ID="${assertionId}" Version="2.0" IssueInstant="${issued}">`
    + `<saml:Issuer>${escapeXml(issuer)}</saml:Issuer>`
    + '<saml:Subject>'
    + `<saml:NameID Format="${NAMEID_PERSISTENT}">${escapeXml(person.nameId)}</saml:NameID>`
    + `<saml:SubjectConfirmation Method="${BEARER}">`
    + `<saml:SubjectConfirmationData${irt} NotOnOrAfter="${samlTime(now + CONFIRMATION_LIFETIME_MS)}" Recipient="${escapeXml(destination)}"/>`
    + '</saml:SubjectConfirmation>'
    + '</saml:Subject>'
    + `<saml:Conditions NotBefore="${samlTime(now - NOT_BEFORE_SKEW_MS)}" NotOnOrAfter="${samlTime(now + CONDITIONS_LIFETIME_MS)}">`
    + `<saml:AudienceRestriction><saml:Audience>${escapeXml(audience)}</saml:Audience></saml:AudienceRestriction>`
    + '</saml:Conditions>'
    + `<saml:AuthnStatement AuthnInstant="${samlTime(authnInstant)}" SessionIndex="${escapeXml(sessionIndex)}">`
    + `<saml:AuthnContext><saml:AuthnContextClassRef>${AUTHN_CONTEXT_PASSWORD}</saml:AuthnContextClassRef></saml:AuthnContext>`
    + '</saml:AuthnStatement>'
    + `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>`
    + '</saml:Assertion>'
    + '</samlp:Response>';
}

/**
 * A base64 SAML Response for `sp`: the Assertion signed, then (when the IdP encrypts) encrypted
 * to the SP's encryption certificate, then the Response signed, all RSA-SHA256.
 * `inResponseTo` is null for an unsolicited (IdP-initiated) Response.
 */
export async function buildLoginResponse(idp, sp, { destination, inResponseTo, person, sessionIndex, authnInstant }) {
  if (idp.entitySetting.isAssertionEncrypted && !sp.hasEncryptionCert) {
    throw new BadRequest(`assertions are encrypted, but the metadata of ${sp.entityId} has no encryption certificate`);
  }
  const id = newId();
  const xml = loginResponseXml({
    id,
    assertionId: newId(),
    issuer: idp.entityMeta.getEntityID(),
    destination,
    inResponseTo,
    audience: sp.entityId,
    person,
    sessionIndex,
    authnInstant,
    now: Date.now(),
  });
  const { context } = await idp.createLoginResponse(sp.entity, {}, 'post', {}, {
    customTagReplacement: () => ({ id, context: xml }),
    // sign the Assertion, encrypt it, sign the Response: the Response signature stays valid
    encryptThenSign: true,
  });
  return { id, samlResponse: context };
}
