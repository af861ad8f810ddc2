"""``SSOBackend``: the public authentication backend, a thin shell over ``accounts``.

It subclasses mozilla-django-oidc's backend (and so Django's ``ModelBackend``,
for permissions) but none of the protocol happens here: an adapter has already
verified the person when ``authenticate(request, sso_person=...)`` is called,
and every rule about who the user is lives in ``accounts``. What a site may
change, it changes by subclassing this class and overriding the
``AccountHooks`` steps (``verify_claims``, ``get_username``, ``create_user``,
``update_user``, ``user_can_authenticate``); list the subclass in
``AUTHENTICATION_BACKENDS`` instead of this one.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from .accounts import AccountHooks, refuse_password_for_sso_only, user_for
from .verified import VerifiedPerson


class SSOBackend(AccountHooks, OIDCAuthenticationBackend):
    """Signs in a person a connector has vouched for; guards SSO-only domains' passwords."""

    def get_settings(self, attr: str, *args: Any) -> Any:  # type: ignore[override]
        """No global ``OIDC_*`` settings: every provider is a ``Connector``.

        mozilla-django-oidc's ``__init__`` reads its settings through this hook;
        its defaults (or ``None``) keep it from asking for settings we never use.
        """
        return args[0] if args else None

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        sso_person: VerifiedPerson | None = None,
        **credentials: Any,
    ) -> Any:
        if sso_person is None:
            # A password sign-in passing through: refuse SSO-only domains here,
            # before ModelBackend gets to check the password.
            refuse_password_for_sso_only(credentials)
            return None
        return user_for(sso_person, request=request, hooks=self)

    def get_user(self, user_id: Any) -> Any:
        """The session's user, unless they may no longer sign in (as ``ModelBackend``).

        mozilla-django-oidc's ``get_user`` returns deactivated users too, which
        kept an offboarded person signed in until their session expired.
        """
        user = super().get_user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None
