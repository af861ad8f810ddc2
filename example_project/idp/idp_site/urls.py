"""URLs of the demo OpenID provider.

/o/...               django-oauth-toolkit (authorize, token, userinfo, logout,
                     .well-known/openid-configuration, .well-known/jwks.json)
/accounts/login/     sign-in page (fields: username, password, next)
/accounts/logout/    plain sign-out (POST)
/                    who am I signed in as
/admin/              Django admin (no admin user is seeded; createsuperuser if wanted)
"""

from accounts import views
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", views.IdPLoginView.as_view(), name="login"),
    path("accounts/logout/", views.IdPLogoutView.as_view(), name="logout"),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("admin/", admin.site.urls),
]
