"""Settings for the demo's local OpenID provider ("the IdP").

This is a small stand-alone Django project that plays the part of Microsoft
Entra ID for the bookstore demo of django-entra-sso.  It is *not* part of the
app: it is off-the-shelf software (django-oauth-toolkit, "DOT") that we only
configure -- OIDC on, PKCE required, RS256-signed ID tokens, RP-initiated
logout, and a custom validator (accounts.oidc.IdPOAuth2Validator) that adds
the email / profile / groups claims the bookstore needs, and JWT access tokens
for the bookstore's API (accounts.api_tokens).  Beside it, a SAML 2.0
identity provider (pysaml2's, configured in accounts.saml_idp) signs the same
users in to the SAML service providers listed in IDP_SAML_SP_METADATA_URLS.

Environment variables:

IDP_ISSUER
    The issuer identifier, default ``http://127.0.0.1:9000/o``.  A trailing
    slash is stripped.  The discovery document is served at
    ``{IDP_ISSUER}/.well-known/openid-configuration`` and every endpoint URL it
    lists is built from the issuer's scheme/host/port, so change this when you
    run the server on another address.
IDP_DATA_DIR
    Where runtime state lives, default ``example_project/.run/idp/`` (git
    ignored): the SQLite database ``idp.sqlite3``, the RSA signing key
    ``oidc_rsa_private_key.pem``, the SAML signing key pair
    ``saml_idp_private_key.pem`` / ``saml_idp_certificate.pem`` and the Django
    ``secret_key.txt``.  The key files are created on first start.  A relative
    path is taken relative to the current directory.
IDP_SAML_SP_METADATA_URLS
    The SAML service providers this IdP signs people in to, by their entity
    IDs, which (as django-entra-sso makes them) are the URLs of their metadata;
    several are separated by spaces or commas.  Default: none, so every
    AuthnRequest is refused.  Each SP's metadata is fetched from that URL on
    its first request and kept in memory.  See accounts/saml_idp.py.
IDP_SAML_EMAIL_DOMAIN
    The domain of the email address the SAML side asserts,
    ``<username>@<domain>``; default ``saml.bookstore.example``.
IDP_API_AUDIENCE
    The bookstore's API, the ``aud`` of the access tokens for it; default
    ``http://localhost:8000/api/``.  Tokens with one of its scopes (``Books.Read``
    for a person's app, ``Books.Read.All`` for an application) are JWTs the API
    checks with this IdP's keys (accounts/api_tokens.py); others stay opaque.
IDP_XMLSEC_BINARY
    The ``xmlsec1`` program SAML signs with; default: ``xmlsec1`` on the PATH
    (Debian/Ubuntu: ``apt-get install xmlsec1``).  Without it the OIDC side
    works and the SAML endpoints answer 503.

Run it (the demo script does the same)::

    python manage.py migrate
    python manage.py seed_idp --client-id ID --client-secret SECRET \\
        --redirect-uri http://localhost:8000/... --post-logout-redirect-uri http://localhost:8000/
    python manage.py runserver 127.0.0.1:9000

Loopback only, DEBUG on: never expose this to a network.
"""

import contextlib
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent  # example_project/idp

DATA_DIR = Path(os.environ.get("IDP_DATA_DIR") or BASE_DIR.parent / ".run" / "idp").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

ISSUER = (os.environ.get("IDP_ISSUER") or "http://127.0.0.1:9000/o").rstrip("/")


def _read_or_create(path: Path, make) -> str:
    """Return the file's text, creating it first (atomically, mode 0600) if missing.

    runserver imports settings in two processes at once (autoreloader parent and
    child), so the file is written to a temp file and hard-linked into place; the
    loser of a race just reads the winner's file.
    """
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(make())
            os.chmod(tmp, 0o600)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # fails if another process won the race
        finally:
            os.unlink(tmp)
    return path.read_text()


def _new_rsa_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")


OIDC_RSA_PRIVATE_KEY_FILE = DATA_DIR / "oidc_rsa_private_key.pem"
OIDC_RSA_PRIVATE_KEY = _read_or_create(OIDC_RSA_PRIVATE_KEY_FILE, _new_rsa_pem)

SECRET_KEY = _read_or_create(DATA_DIR / "secret_key.txt", lambda: secrets.token_urlsafe(50)).strip()


def _certificate_for(key_file: Path):
    """A self-signed certificate for the key in ``key_file``, as PEM text (made lazily)."""

    def make() -> str:
        from datetime import datetime, timedelta, timezone

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import NameOID

        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Demo IdP (SAML)")])
        now = datetime.now(timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            # Long-lived, like the app's SP certificates: the bookstore pins it.
            .not_valid_after(now + timedelta(days=10 * 365))
            .sign(key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    return make


def _same_key(key_file: Path, cert_file: Path) -> bool:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return cert.public_key().public_numbers() == key.public_key().public_numbers()


# The SAML side (accounts.saml_idp) signs with a key pair of its own: the key and
# a self-signed certificate for it, made on first start like the OIDC key. A
# certificate left over from a deleted key is made again.
SAML_IDP_KEY_FILE = DATA_DIR / "saml_idp_private_key.pem"
SAML_IDP_CERT_FILE = DATA_DIR / "saml_idp_certificate.pem"
_read_or_create(SAML_IDP_KEY_FILE, _new_rsa_pem)
_read_or_create(SAML_IDP_CERT_FILE, _certificate_for(SAML_IDP_KEY_FILE))
if not _same_key(SAML_IDP_KEY_FILE, SAML_IDP_CERT_FILE):
    SAML_IDP_CERT_FILE.unlink(missing_ok=True)
    _read_or_create(SAML_IDP_CERT_FILE, _certificate_for(SAML_IDP_KEY_FILE))

# Where the SAML endpoints are: the issuer's scheme, host and port. The IdP's
# SAML entity ID is "{SAML_IDP_BASE_URL}/saml/metadata/".
SAML_IDP_BASE_URL = "{0.scheme}://{0.netloc}".format(urlsplit(ISSUER))
# The service providers the SAML side trusts: their entity IDs = metadata URLs.
SAML_IDP_TRUSTED_SPS = [
    url for url in re.split(r"[\s,]+", os.environ.get("IDP_SAML_SP_METADATA_URLS", "")) if url
]
SAML_IDP_EMAIL_DOMAIN = os.environ.get("IDP_SAML_EMAIL_DOMAIN") or "saml.bookstore.example"
SAML_IDP_XMLSEC_BINARY = os.environ.get("IDP_XMLSEC_BINARY") or shutil.which("xmlsec1") or ""

# The bookstore's API (accounts/api_tokens.py): access tokens with one of these scopes
# are JWTs for IDP_API_AUDIENCE. Books.Read: a person lets an app read the books for
# them (delegated); Books.Read.All: an application reads them for itself (client
# credentials; in its tokens' ``roles``, as Entra ID puts application permissions).
IDP_API_AUDIENCE = os.environ.get("IDP_API_AUDIENCE") or "http://localhost:8000/api/"
IDP_API_SCOPES = {
    "Books.Read": "Read the bookstore's books for you",
    "Books.Read.All": "Read the bookstore's books (an application, for itself)",
}

DEBUG = True

_issuer_host = urlsplit(ISSUER).hostname or "127.0.0.1"
ALLOWED_HOSTS = sorted({"127.0.0.1", "localhost", "[::1]", "::1", _issuer_host})

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "oauth2_provider",
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "idp_site.urls"
WSGI_APPLICATION = "idp_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "idp.sqlite3",
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# The bookstore runs on http://localhost:8000 and this IdP on
# http://127.0.0.1:9000: different host names, so browsers keep their cookies
# apart anyway (cookies ignore the port).  Distinct names make it obvious which
# cookie is whose, and keep them apart should both ever share a host name.
SESSION_COOKIE_NAME = "idp_sessionid"
CSRF_COOKIE_NAME = "idp_csrftoken"
LANGUAGE_COOKIE_NAME = "idp_language"

OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_ISS_ENDPOINT": ISSUER,
    "OIDC_RSA_PRIVATE_KEY": OIDC_RSA_PRIVATE_KEY,
    "OAUTH2_VALIDATOR_CLASS": "accounts.oidc.IdPOAuth2Validator",
    "SCOPES": {
        "openid": "Sign you in (OpenID Connect)",
        "profile": "See your name and user name",
        "email": "See your email address",
        **IDP_API_SCOPES,
    },
    "DEFAULT_SCOPES": ["openid"],
    "PKCE_REQUIRED": True,
    # Show the consent page the first time; skip it while the user still holds
    # a valid access token for the same client and scopes.
    "REQUEST_APPROVAL_PROMPT": "auto",
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    # With an id_token_hint for the user who is logged in here, log out and
    # redirect at once; otherwise (no hint, other user) ask first.
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,
    "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["client_secret_basic", "client_secret_post"],
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    # RFC 9700 hardening that costs the demo nothing: no implicit/password
    # grants, no "plain" PKCE.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    # JWTs for the bookstore's API, DOT's random tokens for the rest; refresh tokens
    # stay random (oauthlib would otherwise use the access token generator for them).
    "ACCESS_TOKEN_GENERATOR": "accounts.api_tokens.access_token",
    "REFRESH_TOKEN_GENERATOR": "oauthlib.oauth2.rfc6749.tokens.random_token_generator",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        # Shows why a redirect_uri / post_logout_redirect_uri was rejected.
        "oauth2_provider": {"handlers": ["console"], "level": "INFO"},
    },
}
