from django.conf import settings
from django.contrib.auth.views import LoginView, LogoutView
from django.shortcuts import render

from accounts import saml_idp


class IdPLoginView(LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = False


class IdPLogoutView(LogoutView):
    template_name = "accounts/logged_out.html"


def home(request):
    return render(
        request,
        "accounts/home.html",
        {"issuer": settings.ISSUER, "saml_metadata": saml_idp.endpoints().entity_id},
    )
