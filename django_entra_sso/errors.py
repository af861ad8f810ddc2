"""What a person is told when sign-in or sign-out cannot go on.

Any layer refuses a sign-in by raising ``SignInError`` with a reason code; the
view turns it into that reason's page. Each reason has a title, a sentence about
what happened, one about what to do, and a status, all translated. Details never
go here: they go to the log.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger("django_entra_sso")

TRY_AGAIN = _("Please go back to the sign-in page and try again.")
ASK_ADMIN = _(
    "This looks like a set-up problem. Please tell your IT administrator or this site's "
    "administrator; trying again will not help until it is fixed."
)

# code -> (title, what happened, what to do, status)
MESSAGES = {
    # Errors the identity provider sends back (Microsoft identity platform's table).
    "access_denied": (
        _("Sign-in was cancelled"),
        _("You declined to sign in, or your organization does not allow this site."),
        _("Try again and accept, or ask your IT administrator to grant this site access."),
        403,
    ),
    "invalid_request": (
        _("Your organization could not process the sign-in"),
        _("Your organization's identity provider refused the sign-in request."),
        ASK_ADMIN,
        400,
    ),
    "unauthorized_client": (
        _("This site is not allowed to sign you in"),
        _("Your organization's identity provider does not accept sign-ins from this site."),
        ASK_ADMIN,
        400,
    ),
    "unsupported_response_type": (
        _("Sign-in is not set up correctly"),
        _(
            "Your organization's identity provider does not support the kind of sign-in this site asked for."
        ),
        ASK_ADMIN,
        400,
    ),
    "invalid_resource": (
        _("Sign-in is not set up correctly"),
        _("The application this site asked for is not known to your organization."),
        ASK_ADMIN,
        400,
    ),
    "server_error": (
        _("Your organization's sign-in service had a problem"),
        _("The identity provider reported an unexpected error."),
        _("Please wait a moment and try again."),
        400,
    ),
    "temporarily_unavailable": (
        _("Your organization's sign-in service is busy"),
        _("The identity provider is temporarily unable to handle the sign-in."),
        _("Please wait a moment and try again."),
        400,
    ),
    "interaction_required": (
        _("Please sign in again"),
        _("Your organization needs you to sign in interactively."),
        TRY_AGAIN,
        400,
    ),
    "idp_error": (
        _("Sign-in did not complete"),
        _("Your organization's identity provider reported an error."),
        TRY_AGAIN,
        400,
    ),
    # Our own reasons.
    "invalid_state": (
        _("This sign-in has expired"),
        _("The sign-in was already used, took too long, or was started in another browser."),
        TRY_AGAIN,
        400,
    ),
    "wrong_callback": (
        _("Sign-in did not complete"),
        _("The answer came back from a different organization than the sign-in was sent to."),
        TRY_AGAIN,
        400,
    ),
    "unknown_connector": (
        _("Unknown sign-in link"),
        _("This single sign-on link does not exist."),
        _("Please start from the sign-in page."),
        404,
    ),
    "disabled": (
        _("Single sign-on is switched off"),
        _("Single sign-on for your organization is currently switched off on this site."),
        ASK_ADMIN,
        403,
    ),
    "provider_unreachable": (
        _("Your organization's sign-in service cannot be reached"),
        _("This site could not reach your organization's identity provider."),
        _(
            "Please wait a moment and try again. If it keeps happening, tell this site's administrator."
        ),
        424,
    ),
    "token_failed": (
        _("Sign-in did not complete"),
        _("Your organization's identity provider did not confirm the sign-in."),
        TRY_AGAIN,
        424,
    ),
    "invalid_token": (
        _("Sign-in could not be verified"),
        _("The proof of identity from your organization could not be verified."),
        TRY_AGAIN,
        400,
    ),
    "wrong_connector": (
        _("Use your own organization's sign-in"),
        _(
            "Your email address belongs to a different organization than the one you signed in with."
        ),
        _("Go back to the sign-in page and enter your work email address."),
        403,
    ),
    "wrong_domain": (
        _("This account cannot sign in here"),
        _(
            "Your email address is not one of the domains your organization registered with this site."
        ),
        ASK_ADMIN,
        403,
    ),
    "wrong_organization": (
        _("This account belongs to another organization"),
        _(
            "You signed in with an account that is not managed by the organization "
            "this sign-in is for, such as a personal account."
        ),
        _("Sign in again with your work account."),
        403,
    ),
    "no_account": (
        _("No account for you yet"),
        _(
            "You signed in, but this site has no account for you and does not create them automatically."
        ),
        ASK_ADMIN,
        403,
    ),
    "inactive": (
        _("Your account is deactivated"),
        _("You signed in, but your account on this site is deactivated."),
        ASK_ADMIN,
        403,
    ),
    "refused": (
        _("Sign-in was refused"),
        _("This site refused the sign-in."),
        ASK_ADMIN,
        403,
    ),
    "misconfigured": (
        _("Sign-in is not set up correctly"),
        _("This site's single sign-on settings for your organization cannot be used."),
        ASK_ADMIN,
        424,
    ),
    "unavailable": (
        _("This site is having a problem"),
        _("This site could not finish signing you in because of a temporary problem on our side."),
        _("Please wait a moment and try again."),
        503,
    ),
}


#: Error codes an IdP may send to the redirect URI, each with a page of its own
#: (OAuth 2.0 §4.1.2.1, OpenID Connect Core §3.1.2.6, Microsoft's table).
IDP_ERROR_PAGES = {
    "access_denied": "access_denied",
    "invalid_request": "invalid_request",
    "unauthorized_client": "unauthorized_client",
    "unsupported_response_type": "unsupported_response_type",
    "invalid_resource": "invalid_resource",
    "server_error": "server_error",
    "temporarily_unavailable": "temporarily_unavailable",
    "interaction_required": "interaction_required",
    "login_required": "interaction_required",
    "consent_required": "interaction_required",
}


class SignInError(Exception):
    """A sign-in cannot go on; any layer may raise it, the view shows its page.

    ``code`` picks the page (a key of ``MESSAGES``) and with it the status; the
    exception's own message is for the log only.
    """

    def __init__(self, code: str, message: str = "", *, status: int | None = None):
        super().__init__(message or code)
        self.code = code
        self.status = status or MESSAGES.get(code, MESSAGES["idp_error"])[3]
        #: Where the person was going, once known: the error page's way back keeps it.
        self.next_url = ""
        #: What the refused round trip was for: ``"sign_in"``, or ``"revalidate"``.
        self.purpose = "sign_in"


def page_for_idp_error(error: str) -> str:
    """The page for an IdP's ``error``; codes we do not know get a generic one."""
    return IDP_ERROR_PAGES.get(error, "idp_error")


def error_response(
    request: HttpRequest,
    code: str,
    *,
    log: str = "",
    status: int | None = None,
    next_url: str = "",
) -> HttpResponse:
    """Render the overridable error page for ``code``; ``log`` goes only to the log.

    Its link back to the sign-in page keeps ``next`` (``next_url``, else the request's).
    """
    from .links import next_of, safe_next

    title, happened, what_to_do, default_status = MESSAGES.get(code, MESSAGES["idp_error"])
    if log:
        logger.warning("Single sign-on failed (%s): %s", code, log)
    response = TemplateResponse(
        request,
        "django_entra_sso/error.html",
        {
            "error_code": code,
            "title": title,
            "happened": happened,
            "what_to_do": what_to_do,
            "next": safe_next(next_url) or next_of(request),
        },
        status=status or default_status,
    )
    response["Cache-Control"] = "no-store"
    return response
