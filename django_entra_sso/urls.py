from __future__ import annotations

from django.urls import include, path

from . import views
from .saml import views as saml_views
from .scim import urls as scim_urls
from .setup import views as setup_views

app_name = "entra_sso"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("callback/<slug:slug>/", views.CallbackView.as_view(), name="callback"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("logout/done/", views.SignedOutView.as_view(), name="signed_out"),
    path(
        "logout/frontchannel/<slug:slug>/",
        views.FrontchannelLogoutView.as_view(),
        name="frontchannel_logout",
    ),
    path(
        "logout/backchannel/<slug:slug>/",
        views.BackchannelLogoutView.as_view(),
        name="backchannel_logout",
    ),
    path("initiate/<slug:slug>/", views.InitiateView.as_view(), name="initiate"),
    path("jwks/<slug:slug>/", views.ClientJWKSView.as_view(), name="jwks"),
    path("saml/metadata/<slug:slug>/", saml_views.MetadataView.as_view(), name="saml_metadata"),
    path("saml/acs/<slug:slug>/", saml_views.AssertionConsumerView.as_view(), name="saml_acs"),
    path("saml/sls/<slug:slug>/", saml_views.SingleLogoutView.as_view(), name="saml_sls"),
    path("scim/v2/<slug:slug>/", include(scim_urls)),
    path("setup/<path:token>/", setup_views.SetupView.as_view(), name="setup"),
]
