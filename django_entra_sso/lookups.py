"""Lookups every sign-in makes, through the ORM's own SQL compiled once per database.

Every callback, logout and re-validated page view starts by reading its connector by
slug; every sign-in asks who owns its email's domain. Building the SELECT of a forty-column model costs Django more than running it:
figure 2's breakdown (``bench/``) showed about 0.4 ms of a 0.8 ms lookup on SQLite and
1 ms of 2 on PostgreSQL spent compiling the same statement again. Here the statement is
compiled once per database alias from the very queryset the views used to run, and
executed through ``Manager.raw()``, which converts every column exactly as the ORM does
(JSON, dates, booleans) and builds the instance with ``Model.from_db``. Only the SQL is
kept, never a row: a connector edited a moment ago is read as it is now.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connections, router

from .conf import app_settings
from .models import Connector, EmailDomain

#: Compiled in place of the slug, then checked to be the statement's only parameter.
_PLACEHOLDER = "\x00django-entra-sso-slug\x00"


@functools.lru_cache(maxsize=8)
def _by_slug_sql(alias: str, vendor: str) -> str | None:
    """The SELECT of one connector by slug on ``alias``; ``None``: use the ORM as it is."""
    # slug is unique: no ORDER BY for ``.first()`` to add, one row at most.
    query = Connector.objects.using(alias).filter(slug=_PLACEHOLDER).order_by()[:1].query
    sql, params = query.get_compiler(alias).as_sql()
    return sql if list(params) == [_PLACEHOLDER] else None


def connector_by_slug(slug: str) -> Connector | None:
    """``Connector.objects.filter(slug=slug).first()``, without compiling it again."""
    alias = router.db_for_read(Connector)
    sql = _by_slug_sql(alias, connections[alias].vendor)
    if sql is None:
        return Connector.objects.using(alias).filter(slug=slug).first()
    return next(iter(Connector.objects.db_manager(alias).raw(sql, [slug])), None)


@functools.lru_cache(maxsize=8)
def _owner_sql(alias: str, vendor: str, verification: bool) -> str | None:
    """The SELECT of a trusted domain's connector ID; ``verification``: what ``trusted()``
    means (only verified domains, or all, the verified first)."""
    trusted = EmailDomain.objects.using(alias).trusted().filter(domain=_PLACEHOLDER)
    query = trusted.values_list("connector_id", flat=True)[:1].query
    sql, params = query.get_compiler(alias).as_sql()
    return sql if list(params) == [_PLACEHOLDER] else None


def trusted_domain_owner(domain: str) -> Any:
    """The connector ID owning the trusted ``domain`` (``None``: no one), as
    ``EmailDomain.objects.trusted().filter(domain=…).values_list("connector_id",
    flat=True).first()`` answers it, without compiling it again."""
    alias = router.db_for_read(EmailDomain)
    verification = bool(app_settings.REQUIRE_DOMAIN_VERIFICATION)
    sql = _owner_sql(alias, connections[alias].vendor, verification)
    if sql is None:
        trusted = EmailDomain.objects.using(alias).trusted().filter(domain=domain)
        return trusted.values_list("connector_id", flat=True).first()
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [domain])
        row = cursor.fetchone()
    return row[0] if row is not None else None  # an integer column: nothing to convert
