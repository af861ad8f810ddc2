"""Keep the ``SSOSession`` index in step when Django ends a session or a user leaves."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save
from django.dispatch import receiver

from .sessions import end_sessions_for_user, forget_session


@receiver(user_logged_out, dispatch_uid="django_entra_sso.forget_session")
def forget_session_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if session is not None:
        forget_session(session.session_key)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="django_entra_sso.deactivated")
def end_sessions_of_deactivated_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Offboarding: a user saved with ``is_active=False`` loses their SSO sessions at once.

    ``SSOBackend.get_user`` already refuses such a user on their next request;
    this also deletes the sessions themselves and tells ``sso_signed_out``
    listeners (reason ``"deactivated"``).
    """
    if getattr(instance, "is_active", True) is False and not kwargs.get("raw"):
        end_sessions_for_user(instance, reason="deactivated")
