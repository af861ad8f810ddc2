"""Unit tests of the one token checker (``oidc/tokens.py``) against the fake IdP's keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.cache import cache

from django_entra_sso.cache import cache_key
from django_entra_sso.models import Connector
from django_entra_sso.oidc.metadata import MetadataError, ProviderMetadata, get_metadata
from django_entra_sso.oidc.tokens import (
    BACKCHANNEL_LOGOUT_EVENT,
    TokenError,
    check_access_token_hash,
    check_id_token,
    check_logout_token,
)
from tests.fakeidp import FakeIdP, Fault, new_rsa_key
from tests.helpers import (
    ENTRA_TEMPLATE,
    OTHER_TENANT,
    TENANT,
    entra_common_connector,
    entra_issuer,
    logout_claims,
    make_connector,
    make_entra_idp,
)

pytestmark = pytest.mark.django_db

NONCE = "nonce-for-this-sign-in"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(value: Any) -> str:
    return b64url(json.dumps(value).encode())


def id_claims(idp: FakeIdP, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": idp.issuer,
        "aud": idp.client_id,
        "sub": "subject-alice",
        "iat": now,
        "exp": now + 300,
        "nonce": NONCE,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture
def metadata(connector: Connector) -> ProviderMetadata:
    return get_metadata(connector)


def check(token: str, idp: FakeIdP, metadata: ProviderMetadata, **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "provider": "oidc",
        "metadata": metadata,
        "client_id": idp.client_id,
        "nonce": NONCE,
    }
    options.update(kwargs)
    return check_id_token(token, **options)


def refused(token: str, idp: FakeIdP, metadata: ProviderMetadata, **kwargs: Any) -> str:
    with pytest.raises(TokenError) as info:
        check(token, idp, metadata, **kwargs)
    return info.value.code


def check_logout(token: str, idp: FakeIdP, metadata: ProviderMetadata) -> dict[str, Any]:
    return check_logout_token(token, provider="oidc", metadata=metadata, client_id=idp.client_id)


def logout_refused(token: str, idp: FakeIdP, metadata: ProviderMetadata) -> str:
    with pytest.raises(TokenError) as info:
        check_logout(token, idp, metadata)
    return info.value.code


def public_pem(idp: FakeIdP, index: int = 0) -> bytes:
    key = idp.keys[index][1]
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def hs256_with_public_pem(idp: FakeIdP, claims: dict[str, Any]) -> str:
    """The key-confusion forgery: HMAC keyed with the RSA public key's PEM."""
    signing_input = f"{b64json({'alg': 'HS256', 'typ': 'JWT', 'kid': 'key-1'})}.{b64json(claims)}"
    signature = hmac.new(public_pem(idp), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def unsigned(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    return f"{b64json(header or {'alg': 'none', 'kid': 'key-1'})}.{b64json(claims)}."


# -- ID tokens ---------------------------------------------------------------------


def test_well_formed_id_token_is_accepted(fake_idp: FakeIdP, metadata: ProviderMetadata) -> None:
    claims = check(fake_idp.sign(id_claims(fake_idp)), fake_idp, metadata)
    assert claims["sub"] == "subject-alice"
    assert claims["nonce"] == NONCE


def test_id_token_from_another_issuer_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(id_claims(fake_idp, iss="https://evil.example"))
    assert refused(token, fake_idp, metadata) == "bad_iss"


def test_id_token_without_issuer_is_refused(fake_idp: FakeIdP, metadata: ProviderMetadata) -> None:
    token = fake_idp.sign({k: v for k, v in id_claims(fake_idp).items() if k != "iss"})
    assert refused(token, fake_idp, metadata) == "bad_iss"


def test_id_token_for_another_client_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(id_claims(fake_idp, aud="another-client"))
    assert refused(token, fake_idp, metadata) == "bad_aud"


def test_id_token_without_audience_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    claims = id_claims(fake_idp)
    del claims["aud"]
    assert refused(fake_idp.sign(claims), fake_idp, metadata) == "bad_aud"


def test_id_token_with_non_string_audience_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(id_claims(fake_idp, aud=[fake_idp.client_id, 42]))
    assert refused(token, fake_idp, metadata) == "bad_aud"


def test_several_audiences_without_azp_are_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(id_claims(fake_idp, aud=[fake_idp.client_id, "other-api"]))
    assert refused(token, fake_idp, metadata) == "bad_azp"


def test_several_audiences_with_another_azp_are_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(
        id_claims(fake_idp, aud=[fake_idp.client_id, "other-api"], azp="other-api")
    )
    assert refused(token, fake_idp, metadata) == "bad_azp"


def test_several_audiences_with_our_azp_are_accepted(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(
        id_claims(fake_idp, aud=[fake_idp.client_id, "other-api"], azp=fake_idp.client_id)
    )
    assert check(token, fake_idp, metadata)["azp"] == fake_idp.client_id


def test_single_audience_with_another_azp_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(id_claims(fake_idp, azp="other-api"))
    assert refused(token, fake_idp, metadata) == "bad_azp"


def test_id_token_with_another_nonce_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(id_claims(fake_idp, nonce="a-nonce-from-another-sign-in"))
    assert refused(token, fake_idp, metadata) == "bad_nonce"


def test_id_token_without_nonce_is_refused(fake_idp: FakeIdP, metadata: ProviderMetadata) -> None:
    claims = id_claims(fake_idp)
    del claims["nonce"]
    assert refused(fake_idp.sign(claims), fake_idp, metadata) == "bad_nonce"


def test_id_token_with_numeric_nonce_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(id_claims(fake_idp, nonce=12345))
    assert refused(token, fake_idp, metadata, nonce="12345") == "bad_nonce"


def test_signature_by_a_key_outside_the_jwks_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    stranger = new_rsa_key()
    token = jwt.encode(id_claims(fake_idp), stranger, algorithm="RS256", headers={"kid": "key-1"})
    assert refused(token, fake_idp, metadata) == "bad_signature"


def test_tampered_payload_is_refused(fake_idp: FakeIdP, metadata: ProviderMetadata) -> None:
    header, _payload, signature = fake_idp.sign(id_claims(fake_idp)).split(".")
    forged = b64json(id_claims(fake_idp, sub="subject-mallory"))
    assert refused(f"{header}.{forged}.{signature}", fake_idp, metadata) == "bad_signature"


def test_alg_none_is_refused(fake_idp: FakeIdP, metadata: ProviderMetadata) -> None:
    assert refused(unsigned(id_claims(fake_idp)), fake_idp, metadata) == "bad_alg"


@pytest.mark.parametrize("alg", ["None", "NONE", "nOnE"])
def test_alg_none_in_any_case_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata, alg: str
) -> None:
    token = unsigned(id_claims(fake_idp), {"alg": alg, "kid": "key-1"})
    assert refused(token, fake_idp, metadata) == "bad_alg"


def test_hs256_keyed_with_the_public_key_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = hs256_with_public_pem(fake_idp, id_claims(fake_idp))
    assert refused(token, fake_idp, metadata) == "bad_alg"


def test_hs256_is_refused_even_when_wrongly_allowed(
    fake_idp: FakeIdP, metadata: ProviderMetadata, settings: Any
) -> None:
    # A site that puts HS256 in its allow-list still cannot be fooled: an RSA
    # key from the JWKS never fits an HMAC algorithm.
    settings.ENTRA_SSO_ALLOWED_ALGORITHMS = ["RS256", "HS256"]
    token = hs256_with_public_pem(fake_idp, id_claims(fake_idp))
    assert refused(token, fake_idp, metadata) == "unknown_key"


def test_algorithm_outside_the_allow_list_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata, settings: Any
) -> None:
    settings.ENTRA_SSO_ALLOWED_ALGORITHMS = ["ES256"]
    assert refused(fake_idp.sign(id_claims(fake_idp)), fake_idp, metadata) == "bad_alg"


@pytest.mark.parametrize("alg", [None, 256, ["RS256"], "RS1"])
def test_missing_or_odd_alg_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata, alg: Any
) -> None:
    header = {"kid": "key-1"} if alg is None else {"alg": alg, "kid": "key-1"}
    token = f"{b64json(header)}.{b64json(id_claims(fake_idp))}.c2ln"
    assert refused(token, fake_idp, metadata) == "bad_alg"


def test_expired_id_token_is_refused(fake_idp: FakeIdP, metadata: ProviderMetadata) -> None:
    now = int(time.time())
    token = fake_idp.sign(id_claims(fake_idp, iat=now - 400, exp=now - 61 - 5))
    assert refused(token, fake_idp, metadata) == "expired"


def test_id_token_expired_within_the_leeway_is_accepted(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    now = int(time.time())
    token = fake_idp.sign(id_claims(fake_idp, iat=now - 300, exp=now - 30))
    assert check(token, fake_idp, metadata)["exp"] == now - 30


def test_leeway_follows_the_setting(
    fake_idp: FakeIdP, metadata: ProviderMetadata, settings: Any
) -> None:
    settings.ENTRA_SSO_CLOCK_LEEWAY = 0
    now = int(time.time())
    token = fake_idp.sign(id_claims(fake_idp, iat=now - 300, exp=now - 30))
    assert refused(token, fake_idp, metadata) == "expired"


def test_id_token_without_exp_is_refused(fake_idp: FakeIdP, metadata: ProviderMetadata) -> None:
    claims = id_claims(fake_idp)
    del claims["exp"]
    assert refused(fake_idp.sign(claims), fake_idp, metadata) == "missing_claim"


def test_id_token_not_valid_yet_is_refused(fake_idp: FakeIdP, metadata: ProviderMetadata) -> None:
    token = fake_idp.sign(id_claims(fake_idp, nbf=int(time.time()) + 600))
    assert refused(token, fake_idp, metadata) == "not_yet_valid"


def test_id_token_issued_in_the_future_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    now = int(time.time())
    token = fake_idp.sign(id_claims(fake_idp, iat=now + 600, exp=now + 900))
    assert refused(token, fake_idp, metadata) == "not_yet_valid"


def test_id_token_without_subject_is_refused(fake_idp: FakeIdP, metadata: ProviderMetadata) -> None:
    claims = id_claims(fake_idp)
    del claims["sub"]
    assert refused(fake_idp.sign(claims), fake_idp, metadata) == "missing_claim"


@pytest.mark.parametrize("sub", ["", 42, ["subject-alice"]])
def test_id_token_with_unusable_subject_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata, sub: Any
) -> None:
    assert refused(fake_idp.sign(id_claims(fake_idp, sub=sub)), fake_idp, metadata) in {
        "missing_claim",
        "invalid",
    }


def test_id_token_without_iat_is_refused(fake_idp: FakeIdP, metadata: ProviderMetadata) -> None:
    claims = id_claims(fake_idp)
    del claims["iat"]
    assert refused(fake_idp.sign(claims), fake_idp, metadata) == "missing_claim"


def test_id_token_issued_too_long_ago_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    now = int(time.time())
    token = fake_idp.sign(id_claims(fake_idp, iat=now - 600 - 60 - 30, exp=now + 300))
    assert refused(token, fake_idp, metadata) == "too_old"


def test_max_token_age_follows_the_setting(
    fake_idp: FakeIdP, metadata: ProviderMetadata, settings: Any
) -> None:
    now = int(time.time())
    token = fake_idp.sign(id_claims(fake_idp, iat=now - 3000, exp=now + 300))
    assert refused(token, fake_idp, metadata) == "too_old"
    settings.ENTRA_SSO_MAX_TOKEN_AGE = 3600
    assert check(token, fake_idp, metadata)["iat"] == now - 3000


# -- keys ---------------------------------------------------------------------------


@pytest.fixture
def single_key_idp() -> Iterator[FakeIdP]:
    idp = FakeIdP()
    idp.keys = idp.keys[:1]
    yield idp
    idp.close()


def test_token_without_kid_is_accepted_when_the_jwks_has_one_key(
    db: Any, single_key_idp: FakeIdP
) -> None:
    connector = make_connector(single_key_idp, "single")
    metadata = get_metadata(connector)
    token = single_key_idp.sign(id_claims(single_key_idp), kid=False)  # type: ignore[arg-type]
    assert "kid" not in jwt.get_unverified_header(token)
    assert check(token, single_key_idp, metadata)["sub"] == "subject-alice"


def test_token_without_kid_is_refused_when_the_jwks_has_several_keys(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(id_claims(fake_idp), kid=False)  # type: ignore[arg-type]
    assert "kid" not in jwt.get_unverified_header(token)
    assert refused(token, fake_idp, metadata) == "unknown_key"


def test_jwks_is_fetched_once_for_many_tokens(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    for _ in range(5):
        check(fake_idp.sign(id_claims(fake_idp)), fake_idp, metadata)
    assert fake_idp.calls["/jwks"] == 1


def test_key_rotation_at_the_idp_is_picked_up_with_one_refresh(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    check(fake_idp.sign(id_claims(fake_idp)), fake_idp, metadata)
    assert fake_idp.calls["/jwks"] == 1
    fake_idp.rotate_keys()
    token = fake_idp.sign(id_claims(fake_idp))
    assert jwt.get_unverified_header(token)["kid"] not in {"key-1", "key-2"}
    assert check(token, fake_idp, metadata)["sub"] == "subject-alice"
    assert fake_idp.calls["/jwks"] == 2
    # The refreshed copy is cached: the next token with the new key costs nothing.
    check(fake_idp.sign(id_claims(fake_idp)), fake_idp, metadata)
    assert fake_idp.calls["/jwks"] == 2


def test_unknown_kid_refetches_once_then_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    check(fake_idp.sign(id_claims(fake_idp)), fake_idp, metadata)
    token = fake_idp.sign(id_claims(fake_idp), kid="forged-kid-1")
    assert refused(token, fake_idp, metadata) == "unknown_key"
    assert fake_idp.calls["/jwks"] == 2


def test_second_unknown_kid_within_the_refresh_floor_does_not_refetch(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    check(fake_idp.sign(id_claims(fake_idp)), fake_idp, metadata)
    assert refused(fake_idp.sign(id_claims(fake_idp), kid="forged-1"), fake_idp, metadata) == (
        "unknown_key"
    )
    for n in range(2, 12):
        token = fake_idp.sign(id_claims(fake_idp), kid=f"forged-{n}")
        assert refused(token, fake_idp, metadata) == "unknown_key"
    assert fake_idp.calls["/jwks"] == 2


def test_rotation_right_after_a_forged_kid_waits_for_the_floor(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    check(fake_idp.sign(id_claims(fake_idp)), fake_idp, metadata)
    refused(fake_idp.sign(id_claims(fake_idp), kid="forged"), fake_idp, metadata)
    fake_idp.rotate_keys()
    token = fake_idp.sign(id_claims(fake_idp))
    # Within the floor the new key is not fetched yet ...
    assert refused(token, fake_idp, metadata) == "unknown_key"
    assert fake_idp.calls["/jwks"] == 2
    # ... once the floor has passed (its rate-limit marker expired), it is.
    cache.delete(cache_key("jwks-refresh", metadata.jwks_uri))
    assert check(token, fake_idp, metadata)["sub"] == "subject-alice"
    assert fake_idp.calls["/jwks"] == 3


def test_es256_key_is_accepted(fake_idp: FakeIdP, connector: Connector) -> None:
    kid = fake_idp.add_ec_key()
    metadata = get_metadata(connector)
    token = fake_idp.sign(id_claims(fake_idp), key_index=len(fake_idp.keys) - 1)
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": kid, "typ": "JWT"}
    assert check(token, fake_idp, metadata)["sub"] == "subject-alice"


def test_ec_signature_claiming_an_rsa_kid_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(id_claims(fake_idp), ec_key, algorithm="ES256", headers={"kid": "key-1"})
    assert refused(token, fake_idp, metadata) == "unknown_key"


def test_alg_other_than_the_keys_declared_alg_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    # key-1 is published with "alg": "RS256"; an RS384 signature by it does not fit.
    token = jwt.encode(
        id_claims(fake_idp), fake_idp.keys[0][1], algorithm="RS384", headers={"kid": "key-1"}
    )
    assert refused(token, fake_idp, metadata) == "unknown_key"


def test_jwks_unreachable_gives_no_keys(
    fake_idp: FakeIdP, metadata: ProviderMetadata, settings: Any
) -> None:
    fake_idp.faults["/jwks"] = Fault(status=500)
    assert refused(fake_idp.sign(id_claims(fake_idp)), fake_idp, metadata) == "no_keys"


def test_critical_header_is_refused(fake_idp: FakeIdP, metadata: ProviderMetadata) -> None:
    token = fake_idp.sign(id_claims(fake_idp), headers={"crit": ["exp"], "exp": 1})
    assert refused(token, fake_idp, metadata) == "malformed"


# -- Entra multi-tenant --------------------------------------------------------------


@pytest.fixture
def entra_idp() -> Iterator[FakeIdP]:
    idp = make_entra_idp()
    yield idp
    idp.close()


@pytest.fixture
def entra_metadata(entra_idp: FakeIdP) -> ProviderMetadata:
    metadata = get_metadata(entra_common_connector(entra_idp))
    assert metadata.issuer == entra_issuer(entra_idp, "{tenantid}")
    assert metadata.jwks_uri == f"{entra_idp.issuer}/jwks"
    return metadata


def entra_template(idp: FakeIdP) -> str:
    """The issuer template the IdP's discovery names (Microsoft's for a hand-built one)."""
    return idp.issuer_override or ENTRA_TEMPLATE


def entra_claims(idp: FakeIdP, tid: str = TENANT, **overrides: Any) -> dict[str, Any]:
    return id_claims(
        idp,
        iss=entra_template(idp).replace("{tenantid}", tid),
        tid=tid,
        oid="00000000-0000-0000-0000-00000000a11c",
        **overrides,
    )


def test_entra_issuer_template_filled_with_the_tid_is_accepted(
    entra_idp: FakeIdP, entra_metadata: ProviderMetadata
) -> None:
    token = entra_idp.sign(entra_claims(entra_idp))
    claims = check(token, entra_idp, entra_metadata, provider="entra_id")
    assert claims["tid"] == TENANT


def test_entra_tid_that_is_not_a_guid_is_refused(
    entra_idp: FakeIdP, entra_metadata: ProviderMetadata
) -> None:
    token = entra_idp.sign(entra_claims(entra_idp, tid="contoso.onmicrosoft.com"))
    assert refused(token, entra_idp, entra_metadata, provider="entra_id") == "bad_tid"


def test_entra_issuer_of_another_tenant_than_the_tid_is_refused(
    entra_idp: FakeIdP, entra_metadata: ProviderMetadata
) -> None:
    claims = entra_claims(entra_idp)
    claims["iss"] = entra_issuer(entra_idp, OTHER_TENANT)
    assert refused(entra_idp.sign(claims), entra_idp, entra_metadata, provider="entra_id") == (
        "bad_iss"
    )


def test_entra_token_without_tid_is_refused_on_a_templated_issuer(
    entra_idp: FakeIdP, entra_metadata: ProviderMetadata
) -> None:
    claims = entra_claims(entra_idp)
    del claims["tid"]
    assert refused(entra_idp.sign(claims), entra_idp, entra_metadata, provider="entra_id") == (
        "bad_iss"
    )


def test_entra_tenant_outside_the_allow_list_is_refused(
    entra_idp: FakeIdP, entra_metadata: ProviderMetadata
) -> None:
    token = entra_idp.sign(entra_claims(entra_idp))
    code = refused(
        token, entra_idp, entra_metadata, provider="entra_id", allowed_tenants={OTHER_TENANT}
    )
    assert code == "bad_tenant"
    claims = check(token, entra_idp, entra_metadata, provider="entra_id", allowed_tenants={TENANT})
    assert claims["tid"] == TENANT


def test_templated_issuer_is_refused_for_a_non_entra_provider(
    entra_idp: FakeIdP, entra_metadata: ProviderMetadata
) -> None:
    token = entra_idp.sign(entra_claims(entra_idp))
    assert refused(token, entra_idp, entra_metadata, provider="oidc") == "bad_iss"


def test_entra_oid_that_is_not_a_string_is_refused(
    entra_idp: FakeIdP, entra_metadata: ProviderMetadata
) -> None:
    token = entra_idp.sign(entra_claims(entra_idp) | {"oid": 12345})
    assert refused(token, entra_idp, entra_metadata, provider="entra_id") == "bad_oid"


def test_templated_discovery_issuer_is_refused_for_a_non_entra_connector(
    entra_idp: FakeIdP,
) -> None:
    with pytest.raises(MetadataError, match="issuer"):
        get_metadata(entra_common_connector(entra_idp, provider="oidc"))


def test_entra_template_built_by_hand_checks_the_same_way(fake_idp: FakeIdP) -> None:
    metadata = ProviderMetadata(
        issuer=ENTRA_TEMPLATE,
        authorization_endpoint=f"{fake_idp.issuer}/authorize",
        token_endpoint=f"{fake_idp.issuer}/token",
        jwks_uri=f"{fake_idp.issuer}/jwks",
        userinfo_endpoint=None,
        end_session_endpoint=None,
        raw={},
    )
    token = fake_idp.sign(entra_claims(fake_idp))
    assert check(token, fake_idp, metadata, provider="entra_id")["tid"] == TENANT
    claims = entra_claims(fake_idp)
    claims["iss"] = ENTRA_TEMPLATE.replace("{tenantid}", OTHER_TENANT)
    assert refused(fake_idp.sign(claims), fake_idp, metadata, provider="entra_id") == "bad_iss"


# -- at_hash ------------------------------------------------------------------------


def at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return b64url(digest[:16])


def test_matching_at_hash_is_accepted() -> None:
    check_access_token_hash({"at_hash": at_hash("token-a")}, "token-a", "RS256")


def test_at_hash_of_another_access_token_is_refused() -> None:
    with pytest.raises(TokenError) as info:
        check_access_token_hash({"at_hash": at_hash("token-a")}, "token-b", "RS256")
    assert info.value.code == "bad_at_hash"


def test_non_string_at_hash_is_refused() -> None:
    with pytest.raises(TokenError) as info:
        check_access_token_hash({"at_hash": 7}, "token-a", "RS256")
    assert info.value.code == "bad_at_hash"


def test_absent_at_hash_is_not_required() -> None:
    assert check_access_token_hash({}, "anything", "RS256") is None


# -- logout tokens -------------------------------------------------------------------


def test_well_formed_logout_token_is_accepted(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    claims = check_logout(fake_idp.sign(logout_claims(fake_idp)), fake_idp, metadata)
    assert claims["sid"] == "idp-session-1"


def test_logout_token_with_only_sub_is_accepted(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(logout_claims(fake_idp, sid=None, sub="subject-alice"))
    assert check_logout(token, fake_idp, metadata)["sub"] == "subject-alice"


def test_unsigned_logout_token_is_refused(fake_idp: FakeIdP, metadata: ProviderMetadata) -> None:
    assert logout_refused(unsigned(logout_claims(fake_idp)), fake_idp, metadata) == "bad_alg"


def test_logout_token_without_events_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(logout_claims(fake_idp, events=None))
    assert logout_refused(token, fake_idp, metadata) == "bad_events"


def test_logout_token_without_the_backchannel_event_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(
        logout_claims(fake_idp, events={"http://schemas.openid.net/event/other": {}})
    )
    assert logout_refused(token, fake_idp, metadata) == "bad_events"


def test_logout_token_whose_event_is_not_an_object_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(logout_claims(fake_idp, events={BACKCHANNEL_LOGOUT_EVENT: "yes"}))
    assert logout_refused(token, fake_idp, metadata) == "bad_events"


def test_logout_token_with_a_nonce_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(logout_claims(fake_idp, nonce="n"))
    assert logout_refused(token, fake_idp, metadata) == "has_nonce"


def test_logout_token_with_a_symmetric_alg_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = hs256_with_public_pem(fake_idp, logout_claims(fake_idp))
    assert logout_refused(token, fake_idp, metadata) == "bad_alg"


def test_logout_token_for_another_client_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(logout_claims(fake_idp, aud="another-client"))
    assert logout_refused(token, fake_idp, metadata) == "bad_aud"


def test_logout_token_from_another_issuer_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(logout_claims(fake_idp, iss="https://evil.example"))
    assert logout_refused(token, fake_idp, metadata) == "bad_iss"


def test_expired_logout_token_is_refused(fake_idp: FakeIdP, metadata: ProviderMetadata) -> None:
    now = int(time.time())
    token = fake_idp.sign(logout_claims(fake_idp, iat=now - 300, exp=now - 120))
    assert logout_refused(token, fake_idp, metadata) == "expired"


def test_logout_token_naming_neither_sub_nor_sid_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(logout_claims(fake_idp, sid=None, sub=None))
    assert logout_refused(token, fake_idp, metadata) == "missing_claim"


def test_logout_token_with_a_non_string_sid_is_refused(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(logout_claims(fake_idp, sub="subject-alice", sid=123))
    assert logout_refused(token, fake_idp, metadata) == "malformed"


# -- inputs that once escaped as other exceptions (found by tests/test_hardening.py) ------


def test_non_ascii_issuer_is_refused_not_crashed(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(id_claims(fake_idp, iss="https://idp.example/\u00e9"))
    assert refused(token, fake_idp, metadata) == "bad_iss"


def test_non_ascii_nonce_is_refused_not_crashed(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = fake_idp.sign(id_claims(fake_idp, nonce="n\u00f6nce"))
    assert refused(token, fake_idp, metadata) == "bad_nonce"


def test_non_ascii_at_hash_is_refused_not_crashed() -> None:
    with pytest.raises(TokenError) as info:
        check_access_token_hash({"at_hash": "h\u00e4sh"}, "token-a", "RS256")
    assert info.value.code == "bad_at_hash"


def test_deeply_nested_header_is_malformed_not_a_recursion_error(
    fake_idp: FakeIdP, metadata: ProviderMetadata
) -> None:
    token = f"{b64url(b'[' * 5000)}.e30.c2ln"
    assert refused(token, fake_idp, metadata) == "malformed"
