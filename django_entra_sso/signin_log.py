"""The sign-in log: a row per sign-in attempt and sign-out, so support can see why.

The views record refusals (``record_refusal``, with the code the person was shown
and the reason the server log got); ``receivers`` record successes and sign-outs
from ``sso_signed_in`` and ``sso_signed_out``. A row holds no token, code,
secret, ``state`` or query string: the connector, the outcome, who when known,
and the client's network rather than its address.

Writing a row must never fail or hold up a sign-in: it runs after the sign-in's
transaction, in a savepoint of its own (a failed INSERT does not poison an outer
PostgreSQL transaction), makes no network call, and any error is logged and
swallowed.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from . import providers
from .conf import app_settings
from .models import Connector, SignInEvent
from .validation import domain_of_email

logger = logging.getLogger(__name__)

#: Codes that say something broke (set-up, outage), rather than that the person
#: was turned away; their rows have the outcome ``error``.
ERROR_CODES = frozenset(
    {
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_resource",
        "server_error",
        "temporarily_unavailable",
        "provider_unreachable",
        "token_failed",
        "misconfigured",
        "unavailable",
    }
)

#: ``SignInEvent.detail``'s length.
DETAIL_MAX_LENGTH = 1000
# A JWT that made its way into a message (three base64url segments, header first).
_JWT = re.compile(r"eyJ[\w-]*\.[\w-]*\.[\w-]*")


def coarse_network(address: Any) -> str:
    """``address`` cut to its network, IPv4 to /24 and IPv6 to /48; ``""`` when not an address."""
    try:
        ip = ipaddress.ip_address(str(address).strip())
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Network((int(ip), 24), strict=False))
    return str(ipaddress.IPv6Network((int(ip), 48), strict=False))  # without a %scope


def outcome_of(code: str) -> str:
    """``error`` for a code that says something broke, else ``refused``."""
    return "error" if code in ERROR_CODES else "refused"  # SignInEvent.Outcome


def _detail(text: str) -> str:
    text = _JWT.sub("[token]", str(text or ""))
    if len(text) > DETAIL_MAX_LENGTH:
        text = text[: DETAIL_MAX_LENGTH - 1] + "…"
    return text


def _email(value: Any) -> str:
    return value.strip() if isinstance(value, str) and domain_of_email(value) else ""


def _user(user: Any) -> Any:
    return user if getattr(user, "pk", None) is not None else None


def _email_of_user(user: Any) -> str:
    if user is None or not hasattr(user, "get_email_field_name"):
        return ""
    return _email(getattr(user, user.get_email_field_name(), ""))


def _write(
    request: HttpRequest | None, connector: Connector | None, slug: str = "", **fields: Any
) -> None:
    if not app_settings.SIGN_IN_LOG:
        return
    try:
        address = request.META.get("REMOTE_ADDR", "") if request is not None else ""
        with transaction.atomic():  # a savepoint when the caller's transaction is open
            if connector is None and slug:
                connector = Connector.objects.filter(slug=str(slug)[:64]).first()
            SignInEvent.objects.create(
                connector=connector,
                connector_slug=connector.slug if connector is not None else str(slug)[:64],
                client_network=coarse_network(address),
                **fields,
            )
    except Exception:  # a log row is never worth a failed sign-in
        logger.exception("Could not write to the sign-in log.")


def record_sign_in(
    request: HttpRequest | None,
    connector: Connector | None,
    *,
    user: Any,
    claims: Mapping[str, Any],
) -> None:
    """A person signed in through ``connector`` (``sso_signed_in``)."""
    try:
        subject = providers.identity_key(getattr(connector, "provider", ""), claims)[1]
    except (KeyError, TypeError):  # a site's own sso_signed_in without iss/sub
        subject = ""
    _write(
        request,
        connector,
        kind=SignInEvent.Kind.SIGN_IN,
        outcome=SignInEvent.Outcome.SUCCESS,
        email=_email(claims.get("email")) or _email_of_user(_user(user)),
        subject=subject[:255],
        user=_user(user),
    )


def record_refusal(
    request: HttpRequest | None,
    code: str,
    *,
    connector: Connector | None = None,
    slug: str = "",
    detail: str = "",
    email: str = "",
    subject: str = "",
) -> None:
    """A sign-in did not complete: the person saw ``code``'s page; ``detail`` is for admins.

    Without ``connector``, ``slug`` names the one asked for (it may not exist).
    """
    _write(
        request,
        connector,
        slug=slug,
        kind=SignInEvent.Kind.SIGN_IN,
        outcome=outcome_of(code),
        code=code[:64],
        detail=_detail(detail),
        email=_email(email),
        subject=(subject or "")[:255],
    )


def record_sign_out(
    request: HttpRequest | None, connector: Connector | None, *, user: Any, reason: str
) -> None:
    """An SSO session ended (``sso_signed_out``): ``reason`` is how."""
    _write(
        request,
        connector,
        kind=SignInEvent.Kind.SIGN_OUT,
        outcome=str(reason)[:16],
        email=_email_of_user(_user(user)),
        user=_user(user),
    )


def prune() -> int:
    """Delete rows older than ``ENTRA_SSO_SIGN_IN_LOG_RETENTION_DAYS``; return how many."""
    days = app_settings.SIGN_IN_LOG_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    return SignInEvent.objects.filter(time__lt=cutoff).delete()[0]
