"""A small OpenID provider for unit tests, served on a loopback port in a thread.

It does what the app needs and lets tests misbehave on purpose: discovery,
JWKS (two RSA keys, rotatable), a token endpoint that checks PKCE, the redirect
URI and client authentication, userinfo, and switches for faults (status codes,
delays, garbage). It counts every request by path so tests can assert how many
network calls a sign-in made.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


_KEY_POOL: list[rsa.RSAPrivateKey] = []


def pooled_keys(count: int) -> list[rsa.RSAPrivateKey]:
    """Keys reused across tests: generating RSA keys is the slow part of a test."""
    while len(_KEY_POOL) < count:
        _KEY_POOL.append(new_rsa_key())
    return _KEY_POOL[:count]


def public_jwk(key: Any, kid: str, alg: str = "RS256") -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    else:
        data = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    data.update({"kid": kid, "use": "sig", "alg": alg})
    return data


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str
    claims: dict[str, Any]
    offline: bool = False


@dataclass
class Fault:
    status: int = 200
    body: bytes | None = None
    delay: float = 0.0
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeIdP:
    client_id: str = "test-client"
    client_secret: str = "test-secret with spaces+plus"
    auth_methods: list[str] = field(default_factory=lambda: ["client_secret_basic"])
    issuer: str = ""
    issuer_override: str | None = None
    iss_parameter_supported: bool = False

    def __post_init__(self) -> None:
        first, second = pooled_keys(2)
        self.keys: list[tuple[str, Any, str]] = [
            ("key-1", first, "RS256"),
            ("key-2", second, "RS256"),
        ]
        self.grants: dict[str, Grant] = {}
        self.calls: Counter[str] = Counter()
        self.faults: dict[str, Fault] = {}
        self.token_overrides: dict[str, Any] = {}
        self.token_header_overrides: dict[str, Any] = {}
        self.signing_key_index = 0
        self.userinfo_claims: dict[str, Any] | None = None
        self.received_token_requests: list[dict[str, Any]] = []
        # Refresh tokens: issued for scope offline_access, rotated on each use; a revoked
        # subject's (or a spent) token gets invalid_grant; refresh_overrides change the
        # refreshed ID token's claims.
        self.refresh_tokens: dict[str, Grant] = {}
        self.revoked_subjects: set[str] = set()
        self.refresh_overrides: dict[str, Any] = {}
        self.rotate_refresh_tokens = True
        # private_key_jwt (RFC 7523): the client's public keys, as the IdP was given them
        # (an uploaded certificate, or a fetched JWKS), and the assertion ids seen.
        self.client_public_keys: list[Any] = []
        self.client_assertion_algorithms = ["RS256", "PS256"]
        self.seen_assertion_ids: set[str] = set()
        # RFC 7662 introspection: opaque access token -> what the IdP says of it.
        self.opaque_tokens: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.issuer = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what it publishes ---------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        base = self.issuer
        doc = {
            "issuer": self.issuer_override or base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "introspection_endpoint": f"{base}/introspect",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "end_session_endpoint": f"{base}/logout",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": self.auth_methods,
            "code_challenge_methods_supported": ["S256"],
            "frontchannel_logout_supported": True,
            "backchannel_logout_supported": True,
        }
        if self.iss_parameter_supported:
            doc["authorization_response_iss_parameter_supported"] = True
        return doc

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(key, kid, alg) for kid, key, alg in self.keys]}

    def rotate_keys(self) -> None:
        """Retire the oldest key and sign with a brand-new one."""
        with self._lock:
            new_kid = f"key-{uuid.uuid4().hex[:8]}"
            self.keys = [(new_kid, new_rsa_key(), "RS256"), self.keys[0]]
            self.signing_key_index = 0

    def add_ec_key(self) -> str:
        kid = "ec-key"
        self.keys.append((kid, ec.generate_private_key(ec.SECP256R1()), "ES256"))
        return kid

    # -- tokens -------------------------------------------------------------
    def sign(
        self,
        claims: dict[str, Any],
        *,
        kid: str | None = None,
        headers: dict[str, Any] | None = None,
        key_index: int | None = None,
    ) -> str:
        index = self.signing_key_index if key_index is None else key_index
        key_id, key, alg = self.keys[index]
        header = {"kid": key_id if kid is None else kid, **(headers or {})}
        if header.get("kid") is False:
            header.pop("kid")
        return jwt.encode(claims, key, algorithm=alg, headers=header)

    def id_token_claims(self, grant: Grant) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": grant.client_id,
            "sub": "subject-alice",
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            "sid": "idp-session-1",
            "email": "alice@contoso.com",
            "email_verified": True,
            "given_name": "Alice",
            "family_name": "Liddell",
            "name": "Alice Liddell",
        }
        claims.update(grant.claims)
        claims.update(self.token_overrides)
        template = self.issuer_override or ""
        if (
            "{tenantid}" in template
            and "iss" not in grant.claims
            and "iss" not in self.token_overrides
            and isinstance(claims.get("tid"), str)
        ):
            # As Entra's multi-tenant endpoints: the token's issuer is the template of
            # the discovery document filled with the person's tenant.
            claims["iss"] = template.replace("{tenantid}", claims["tid"])
        return {k: v for k, v in claims.items() if v is not None}

    def authorize(self, authorize_url: str, **claims: Any) -> dict[str, str]:
        """Act as the person approving: return the callback parameters (code, state)."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant(
            client_id=query["client_id"],
            redirect_uri=query["redirect_uri"],
            code_challenge=query["code_challenge"],
            nonce=query["nonce"],
            claims=claims,
            offline="offline_access" in query.get("scope", "").split(),
        )
        return {"code": code, "state": query["state"]}

    def _token(self, form: dict[str, str], headers: Any) -> tuple[int, dict[str, Any]]:
        self.received_token_requests.append({"form": dict(form), "headers": dict(headers)})
        client_id = client_secret = None
        auth = headers.get("Authorization", "")
        if "client_assertion" in form:
            refusal = self._check_client_assertion(form)
            if refusal:
                return 401, {"error": "invalid_client", "error_description": refusal}
            client_id, client_secret = self.client_id, self.client_secret
        elif auth.startswith("Basic "):
            decoded = base64.b64decode(auth[6:]).decode()
            raw_id, _, raw_secret = decoded.partition(":")
            client_id, client_secret = unquote_plus(raw_id), unquote_plus(raw_secret)
            if "client_secret_basic" not in self.auth_methods:
                return 401, {"error": "invalid_client"}
        elif "client_secret" in form:
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
            if "client_secret_post" not in self.auth_methods:
                return 401, {"error": "invalid_client"}
        if client_id != self.client_id or client_secret != self.client_secret:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") == "refresh_token":
            return self._refresh(form)
        grant = self.grants.pop(form.get("code", ""), None)
        if grant is None:
            return 400, {"error": "invalid_grant"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri"}
        verifier = form.get("code_verifier", "")
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        if challenge != grant.code_challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE"}
        id_token = self.sign(self.id_token_claims(grant), headers=self.token_header_overrides)
        answer = {
            "access_token": "access-" + secrets.token_urlsafe(8),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }
        if grant.offline:
            answer["refresh_token"] = self._new_refresh_token(grant)
        return 200, answer

    def _introspect(self, form: dict[str, str], headers: Any) -> tuple[int, dict[str, Any]]:
        """RFC 7662: what ``opaque_tokens`` says of the token, for an authenticated client."""
        auth = headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return 401, {"error": "invalid_client"}
        raw_id, _, raw_secret = base64.b64decode(auth[6:]).decode().partition(":")
        if (unquote_plus(raw_id), unquote_plus(raw_secret)) != (self.client_id, self.client_secret):
            return 401, {"error": "invalid_client"}
        answer = self.opaque_tokens.get(form.get("token", ""))
        return 200, ({"active": True, **answer} if answer else {"active": False})

    def _check_client_assertion(self, form: dict[str, str]) -> str:
        """Why a ``private_key_jwt`` client assertion is refused, or ``""`` (RFC 7523 §3)."""
        if "private_key_jwt" not in self.auth_methods:
            return "private_key_jwt is not allowed"
        if form.get("client_assertion_type") != (
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            return "client_assertion_type"
        assertion = form["client_assertion"]
        for key in self.client_public_keys:
            try:
                claims = jwt.decode(
                    assertion,
                    key,
                    algorithms=self.client_assertion_algorithms,
                    audience=f"{self.issuer}/token",
                    options={"require": ["iss", "sub", "aud", "exp", "jti"]},
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as exc:
                return f"assertion: {exc}"
            if claims["iss"] != self.client_id or claims["sub"] != self.client_id:
                return "iss/sub is not the client"
            if form.get("client_id", self.client_id) != self.client_id:
                return "client_id"
            with self._lock:
                if claims["jti"] in self.seen_assertion_ids:
                    return "jti replayed"
                self.seen_assertion_ids.add(claims["jti"])
            return ""
        return "no registered key verifies the assertion"

    def _new_refresh_token(self, grant: Grant) -> str:
        token = "refresh-" + secrets.token_urlsafe(16)
        self.refresh_tokens[token] = grant
        return token

    def _refresh(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            token = form.get("refresh_token", "")
            grant = self.refresh_tokens.get(token)
            claims = self.id_token_claims(grant) if grant is not None else {}
            if grant is None or claims.get("sub") in self.revoked_subjects:
                return 400, {"error": "invalid_grant", "error_description": "revoked or spent"}
            if self.rotate_refresh_tokens:
                del self.refresh_tokens[token]
                token = self._new_refresh_token(grant)
        claims.pop("nonce", None)
        claims.update(self.refresh_overrides)
        return 200, {
            "access_token": "access-" + secrets.token_urlsafe(8),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": self.sign(claims),
            "refresh_token": token,
        }

    # -- HTTP -----------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(
                self,
                status: int,
                payload: Any,
                content_type: str = "application/json",
                headers: dict[str, str] | None = None,
            ) -> None:
                body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _fault(self, path: str) -> bool:
                fault = idp.faults.get(path)
                if fault is None:
                    return False
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.status == 200 and fault.body is None:
                    return False
                self._send(fault.status, fault.body or b"{}", fault.content_type, fault.headers)
                return True

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                idp.calls[path] += 1
                if self._fault(path):
                    return
                if path == "/.well-known/openid-configuration":
                    self._send(200, idp.discovery())
                elif path == "/jwks":
                    self._send(200, idp.jwks())
                elif path == "/userinfo":
                    claims = idp.userinfo_claims or {"sub": "subject-alice"}
                    self._send(200, claims)
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                idp.calls[path] += 1
                if self._fault(path):
                    return
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if path == "/token":
                    status, payload = idp._token(form, self.headers)
                    self._send(status, payload)
                elif path == "/introspect":
                    status, payload = idp._introspect(form, self.headers)
                    self._send(status, payload)
                else:
                    self._send(404, {"error": "not_found"})

        return Handler
