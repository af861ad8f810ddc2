from __future__ import annotations

from django.urls import include, path

from . import views
from .scim import urls as scim_urls

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
    path("scim/v2/<slug:slug>/", include(scim_urls)),
]
