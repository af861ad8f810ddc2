"""URLs of the demo identity provider.

/o/...               django-oauth-toolkit: the OpenID provider (authorize, token,
                     userinfo, logout, .well-known/openid-configuration,
                     .well-known/jwks.json)
/saml/metadata/      the SAML IdP's metadata; this absolute URL is its entity ID
                     (``manage.py saml_metadata`` writes the same to a file)
/saml/sso/           SAML single sign-on (HTTP-Redirect AuthnRequest in, signed
                     Response posted to the SP's ACS out), for the SPs listed in
                     IDP_SAML_SP_METADATA_URLS only
/saml/slo/           SAML single logout (HTTP-Redirect and HTTP-POST LogoutRequest
                     in, signed HTTP-Redirect LogoutResponse out)
/accounts/login/     sign-in page (fields: username, password, next), for both
/accounts/logout/    plain sign-out (POST)
/                    who am I signed in as
/admin/              Django admin (no admin user is seeded; createsuperuser if wanted)

The SAML side is accounts/saml_idp.py (pysaml2's IdP).
"""

from accounts import saml_idp, views
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", views.IdPLoginView.as_view(), name="login"),
    path("accounts/logout/", views.IdPLogoutView.as_view(), name="logout"),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("saml/metadata/", saml_idp.metadata, name="saml_metadata"),
    path("saml/sso/", saml_idp.sso, name="saml_sso"),
    path("saml/slo/", saml_idp.slo, name="saml_slo"),
    path("admin/", admin.site.urls),
]
