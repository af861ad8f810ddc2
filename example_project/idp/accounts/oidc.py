"""The OIDC claims this demo IdP issues (django-oauth-toolkit validator)."""

from oauth2_provider.oauth2_validators import OAuth2Validator


class IdPOAuth2Validator(OAuth2Validator):
    """Adds email, profile and groups claims to the ID token and userinfo.

    DOT filters each claim by the scope named for it in ``oidc_claim_scope``:
    ``email`` -> email, email_verified; ``profile`` -> name, given_name,
    family_name, preferred_username; ``groups`` rides on ``openid`` (like
    Entra's group claim, it comes with every sign-in).  The same claims go
    into the ID token (DOT's get_id_token_dictionary uses get_oidc_claims)
    and the userinfo response.
    """

    oidc_claim_scope = {
        **OAuth2Validator.oidc_claim_scope,
        "groups": "openid",
    }

    # Request-agnostic form (no ``request`` parameter): DOT then calls each
    # value with the oauthlib request, and lists every key in the discovery
    # document's ``claims_supported``.
    def get_additional_claims(self):
        return {
            "email": lambda r: r.user.email,
            "email_verified": lambda r: True,
            "given_name": lambda r: r.user.first_name,
            "family_name": lambda r: r.user.last_name,
            "name": lambda r: r.user.get_full_name() or r.user.get_username(),
            "preferred_username": lambda r: r.user.get_username(),
            "groups": lambda r: sorted(r.user.groups.values_list("name", flat=True)),
        }
