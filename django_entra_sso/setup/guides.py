"""The steps in each identity provider's console, written for this app.

Each step names the values of the setup page ("Redirect URI", …) that it asks to
paste; the page shows those values ready to copy. Plain text: the template
escapes it.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .. import providers

OIDC_GUIDES: dict[str, tuple[Promise, ...]] = {
    providers.ENTRA_ID: (
        _(
            "Sign in to the Microsoft Entra admin center (entra.microsoft.com) and go to "
            "Identity → Applications → App registrations → New registration."
        ),
        _(
            "Name it after this site and choose “Accounts in this organizational directory "
            "only (single tenant)”."
        ),
        _(
            "Under Redirect URI choose the platform Web and paste the Redirect URI below. "
            "Press Register."
        ),
        _(
            "Open Authentication: add the Post-logout redirect URI below as a second Web "
            "redirect URI, paste the Front-channel logout URL below, and save."
        ),
        _(
            "Open Certificates & secrets → Client secrets → New client secret. Copy its Value "
            "(not its Secret ID): Entra shows it only once."
        ),
        _(
            "On the Overview, copy the Application (client) ID. The issuer is "
            "https://login.microsoftonline.com/<Directory (tenant) ID>/v2.0."
        ),
        _(
            "Under Enterprise applications → this application → Users and groups, assign "
            "the people or groups who may sign in (when assignment is required)."
        ),
    ),
    providers.OKTA: (
        _(
            "In the Okta Admin Console go to Applications → Applications → Create App "
            "Integration, choose OIDC - OpenID Connect and Web Application."
        ),
        _(
            "Paste the Redirect URI below into Sign-in redirect URIs and the Post-logout "
            "redirect URI below into Sign-out redirect URIs."
        ),
        _("Under Assignments, choose who may sign in, and save."),
        _("On the General tab, copy the Client ID and the Client secret."),
        _(
            "The issuer is your Okta domain, e.g. https://yourcompany.okta.com (or "
            "https://yourcompany.okta.com/oauth2/default for the default authorization server)."
        ),
    ),
    providers.GOOGLE_WORKSPACE: (
        _(
            "In the Google Cloud console (console.cloud.google.com), open APIs & Services → "
            "OAuth consent screen and choose the user type Internal."
        ),
        _("Open Credentials → Create credentials → OAuth client ID, type Web application."),
        _("Paste the Redirect URI below into Authorized redirect URIs and press Create."),
        _("Copy the Client ID and the Client secret. The issuer is https://accounts.google.com."),
        _("Google has no front-channel logout: leave that URL out."),
    ),
    providers.LOGTO: (
        _(
            "In the Logto Console go to Applications → Create application and choose "
            "Traditional web."
        ),
        _(
            "Paste the Redirect URI below into Redirect URIs and the Post-logout redirect URI "
            "below into Post sign-out redirect URIs; save the changes."
        ),
        _(
            "Copy the App ID (the client ID) and the App secret. The issuer is your Logto "
            "endpoint followed by /oidc, e.g. https://your-tenant.logto.app/oidc."
        ),
    ),
    providers.OIDC: (
        _(
            "At your identity provider, create a confidential web application (client) that "
            "uses the authorization code flow."
        ),
        _(
            "Register the Redirect URI below, the Post-logout redirect URI below and, when "
            "your provider supports front-channel logout, the Front-channel logout URL below."
        ),
        _(
            "Copy the client ID, the client secret and the issuer: the URL before "
            "/.well-known/openid-configuration in the provider's discovery document."
        ),
    ),
}

SAML_GUIDES: dict[str, tuple[Promise, ...]] = {
    providers.ENTRA_ID: (
        _(
            "In the Microsoft Entra admin center go to Identity → Applications → Enterprise "
            "applications → New application → Create your own application, and choose "
            "“Integrate any other application you don't find in the gallery (Non-gallery)”."
        ),
        _("Under Users and groups, assign the people or groups who may sign in."),
        _(
            "Open Single sign-on → SAML → Basic SAML Configuration → Edit and paste the Entity "
            "ID, the Assertion Consumer Service URL and the Single logout URL below; save."
        ),
        _("Under SAML Certificates, copy the App Federation Metadata Url into the form below."),
    ),
    providers.OKTA: (
        _(
            "In the Okta Admin Console go to Applications → Applications → Create App "
            "Integration and choose SAML 2.0."
        ),
        _(
            "Paste the Assertion Consumer Service URL below into Single sign-on URL and the "
            "Entity ID below into Audience URI (SP Entity ID); finish and assign people."
        ),
        _("On the Sign On tab, copy the Metadata URL into the form below."),
    ),
    providers.GOOGLE_WORKSPACE: (
        _(
            "In the Google Admin console go to Apps → Web and mobile apps → Add app → Add "
            "custom SAML app."
        ),
        _("Download the IdP metadata file; paste its contents into the form below."),
        _(
            "Paste the Assertion Consumer Service URL below into ACS URL and the Entity ID "
            "below into Entity ID; then turn the app on for the people who may sign in."
        ),
    ),
}

GENERIC_SAML_GUIDE: tuple[Promise, ...] = (
    _(
        "At your identity provider, create a SAML 2.0 application. If it imports service "
        "provider metadata, give it the SP metadata URL below; otherwise paste the Entity ID, "
        "the Assertion Consumer Service URL and the Single logout URL below."
    ),
    _("Assign the people who may sign in."),
    _("Copy the identity provider's metadata URL (or its metadata XML) into the form below."),
)


def steps_for(provider: str, *, saml: bool) -> tuple[Promise, ...]:
    if saml:
        return SAML_GUIDES.get(provider, GENERIC_SAML_GUIDE)
    return OIDC_GUIDES.get(provider, OIDC_GUIDES[providers.OIDC])
