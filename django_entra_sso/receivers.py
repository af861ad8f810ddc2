"""Keep the ``SSOSession`` index in step when Django ends a session or a user leaves;
write sign-ins and sign-outs to the sign-in log.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from . import signin_log
from .sessions import end_sessions_for_user, forget_session
from .signals import sso_signed_in, sso_signed_out


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


@receiver(sso_signed_in, dispatch_uid="django_entra_sso.sign_in_log.signed_in")
def log_sign_in(
    sender: Any,
    connector: Any = None,
    request: Any = None,
    user: Any = None,
    claims: Any = None,
    **kwargs: Any,
) -> None:
    """Sent after the sign-in's transaction, so the log row is written outside it."""
    signin_log.record_sign_in(request, connector, user=user, claims=claims or {})


@receiver(sso_signed_out, dispatch_uid="django_entra_sso.sign_in_log.signed_out")
def log_sign_out(
    sender: Any,
    connector: Any = None,
    request: Any = None,
    user: Any = None,
    reason: str = "",
    **kwargs: Any,
) -> None:
    signin_log.record_sign_out(request, connector, user=user, reason=reason)


@receiver(post_save, sender="django_entra_sso.Connector", dispatch_uid="django_entra_sso.api.saved")
@receiver(
    post_delete, sender="django_entra_sso.Connector", dispatch_uid="django_entra_sso.api.deleted"
)
def forget_api_connectors(**kwargs: Any) -> None:
    """API tokens find their connector through a cache: a change must not wait for it.

    Forgotten now and again once the change commits: a call served in between reads
    the old row and would otherwise cache it for ``API_ISSUER_CACHE_TTL`` seconds.
    """
    from .api.connectors import forget_connectors

    forget_connectors()
    transaction.on_commit(forget_connectors)


@receiver(
    post_save, sender="django_entra_sso.Identity", dispatch_uid="django_entra_sso.api.id_saved"
)
@receiver(
    post_delete, sender="django_entra_sso.Identity", dispatch_uid="django_entra_sso.api.id_deleted"
)
def forget_api_identity(instance: Any, created: bool = False, **kwargs: Any) -> None:
    """An identity moved to another user, or went: API calls must not find the old one.
    A new one has nothing to forget (unknown people are not remembered)."""
    if not created:
        forget_api_identity_key(instance.connector_id, instance.issuer, instance.subject)


@receiver(
    pre_save, sender="django_entra_sso.Identity", dispatch_uid="django_entra_sso.api.id_saving"
)
def forget_api_identity_before_a_change(instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """Before an edit (the admin may change an identity's connector, issuer or subject),
    the key it had: ``post_save`` only knows the new one."""
    if raw or instance.pk is None:
        return
    old = (
        type(instance)
        ._default_manager.filter(pk=instance.pk)
        .values_list("connector_id", "issuer", "subject")
        .first()
    )
    if old is not None and old != (instance.connector_id, instance.issuer, instance.subject):
        forget_api_identity_key(*old)


@receiver(
    post_save, sender="django_entra_sso.EmailDomain", dispatch_uid="django_entra_sso.api.dom_saved"
)
@receiver(
    post_delete,
    sender="django_entra_sso.EmailDomain",
    dispatch_uid="django_entra_sso.api.dom_deleted",
)
def forget_api_domain_checks(**kwargs: Any) -> None:
    """A domain moved, was verified or went: API calls ask its owner again."""
    from .api.callers import forget_domain_checks

    forget_domain_checks()
    transaction.on_commit(forget_domain_checks)


def forget_api_identity_key(connector_pk: Any, issuer: str, subject: str) -> None:
    from .api.callers import forget_identity

    forget_identity(connector_pk, issuer, subject)
    # Again at commit, as ``forget_api_connectors``: a call may read the row in between.
    transaction.on_commit(lambda: forget_identity(connector_pk, issuer, subject))


@receiver(
    post_save, sender="django_entra_sso.Connector", dispatch_uid="django_entra_sso.setup.enabled"
)
def end_setup_links_of_a_connector_switched_on(instance: Any, **kwargs: Any) -> None:
    """A connector switched on is no setup link's any more, even once switched off again.

    Links refuse to work while their connector is on; without this, switching it off
    for maintenance would hand it back to whoever holds an old link.
    """
    if not instance.enabled:
        return
    from .setup.links import revoke_links_of_live_connector

    revoke_links_of_live_connector(instance)
