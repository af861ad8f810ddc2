// Signing-key helpers for the test OpenID Provider (TEST USE ONLY).
//
// Usage:
//   node keys.mjs ensure /path/jwks.json   create the file with two fresh RSA keys if it is missing
//   node keys.mjs new-jwk                   print one fresh private RSA JWK (JSON) on stdout
//
// The JWKS file is a plain JSON Web Key Set of *private* RSA keys
// ({"keys": [{kty, n, e, d, p, q, dp, dq, qi, kid, alg: "RS256", use: "sig"}, ...]}).
// Both oidc-provider versions sign with the FIRST key of `keys`; the others are only
// published at the jwks endpoint (so tokens signed before a rotation still verify).
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export function newJwk() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    ...jwk, kid: `test-${randomUUID()}`, alg: 'RS256', use: 'sig',
  };
}

export function writeJwksAtomically(path, jwks) {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

export function ensureJwks(path) {
  if (!existsSync(path)) {
    writeJwksAtomically(path, { keys: [newJwk(), newJwk()] });
    return true;
  }
  return false;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [cmd, arg] = process.argv.slice(2);
  if (cmd === 'ensure' && arg) {
    ensureJwks(resolve(arg));
  } else if (cmd === 'new-jwk') {
    process.stdout.write(`${JSON.stringify(newJwk())}\n`);
  } else {
    process.stderr.write('usage: node keys.mjs ensure PATH | node keys.mjs new-jwk\n');
    process.exit(2);
  }
}
