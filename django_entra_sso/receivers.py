"""Keep the ``SSOSession`` index in step when Django ends a session itself."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from .sessions import forget_session


@receiver(user_logged_out, dispatch_uid="django_entra_sso.forget_session")
def forget_session_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if session is not None:
        forget_session(session.session_key)
