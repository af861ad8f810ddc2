// Who signs in at the test SAML IdP, and what it says about them.
//
// Any login name is accepted, with any password. The names mirror the OpenID Provider of the
// e2e suite (tests/e2e/provider/server.mjs), so alice is "Alice Liddell" at both:
//   alice -> Alice Liddell, groups ["readers"]
//   bob   -> Bob Builder,  groups ["readers", "editors"]
//   anything else -> given name = capitalised login, surname "Tester", no groups
// The email is <login>@<email_domain>, or the login itself when it contains "@".
//
// Attributes carry Entra ID's claim URIs as names, with no NameFormat and untyped values, as
// Entra ID's SAML tokens do. A person without groups gets no groups attribute (Entra ID leaves
// it out too). The NameID (format persistent) is a UUID derived from the login as typed: stable
// and opaque, the same for every SP.

import { createHash } from 'node:crypto';

export const CLAIMS = {
  email: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
  givenName: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname',
  surname: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname',
  name: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
  displayName: 'http://schemas.microsoft.com/identity/claims/displayname',
  objectId: 'http://schemas.microsoft.com/identity/claims/objectidentifier',
  groups: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups',
};

const BUILTIN_USERS = {
  alice: { givenName: 'Alice', surname: 'Liddell', groups: ['readers'] },
  bob: { givenName: 'Bob', surname: 'Builder', groups: ['readers', 'editors'] },
};

/** A UUID-shaped, stable digest of `text` (same scheme as the OpenID Provider's `oid`). */
export function uuidFrom(text) {
  const h = createHash('sha256').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The person behind `login` (already trimmed, not empty). */
export function personFor(login, emailDomain) {
  const local = login.includes('@') ? login.split('@')[0] : login;
  const builtin = BUILTIN_USERS[local.toLowerCase()];
  const givenName = builtin?.givenName ?? (local.charAt(0).toUpperCase() + local.slice(1));
  const surname = builtin?.surname ?? 'Tester';
  const email = login.includes('@') ? login : `${login}@${emailDomain}`;
  return {
    login,
    email,
    givenName,
    surname,
    displayName: `${givenName} ${surname}`,
    groups: builtin ? [...builtin.groups] : [],
    objectId: uuidFrom(`oid:${login}`), // equals the OpenID Provider's `oid` for the same login
    nameId: uuidFrom(`saml-nameid:${login}`),
  };
}

/** [[attribute name, [values]], ...] for the AttributeStatement. */
export function attributesOf(person) {
  const attributes = [
    [CLAIMS.email, [person.email]],
    [CLAIMS.givenName, [person.givenName]],
    [CLAIMS.surname, [person.surname]],
    [CLAIMS.name, [person.email]],
    [CLAIMS.displayName, [person.displayName]],
    [CLAIMS.objectId, [person.objectId]],
  ];
  if (person.groups.length > 0) attributes.push([CLAIMS.groups, person.groups]);
  return attributes;
}
