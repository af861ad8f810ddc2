"""The SCIM endpoints of a connector: thin views around ``resources``, one transaction each.

Every answer is ``application/scim+json`` (requests may be ``application/json``
too); every failure is a SCIM error object, never a 500 or an HTML page.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from django.core.exceptions import RequestDataTooBig, ValidationError
from django.db import DataError, IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from ..models import Connector, SCIMGroup, SCIMUser
from . import discovery, resources
from .auth import authenticated_connector
from .errors import SCIMError, bad_request, error_response, not_found, scim_response
from .filters import parse_filter, strip_urn, to_query
from .patch import apply_patch

logger = logging.getLogger(__name__)

#: The largest request body accepted (413 above it).
MAX_BODY_BYTES = 1024 * 1024
MULTI_VALUED = frozenset(
    {"emails", "phonenumbers", "addresses", "members", "roles", "entitlements", "ims", "photos"}
)
ALWAYS_RETURNED = frozenset({"id", "schemas", "meta"})


@method_decorator([csrf_exempt, never_cache], name="dispatch")
class SCIMView(View):
    """Authenticates the connector's bearer token, then runs the handler in one transaction."""

    http_method_names = ["get"]
    connector: Connector

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            self.connector = authenticated_connector(request, kwargs["slug"])
            try:
                with transaction.atomic():
                    if request.method not in ("GET", "HEAD"):
                        self.lock_connector()
                    response = super().dispatch(request, *args, **kwargs)
            except IntegrityError as exc:
                # Two requests racing for one userName or externalId.
                raise SCIMError(409, "The resource conflicts with another.", "uniqueness") from exc
            except (ValidationError, DataError, RecursionError) as exc:
                # A value the database or a field cannot take (a date that is none, a
                # filter nested hundreds deep): the client's input, not our failure.
                logger.info("SCIM request refused: %r", exc)
                raise bad_request("A value in the request cannot be used.", "invalidValue") from exc
        except SCIMError as error:
            return error_response(error)
        return response

    def lock_connector(self) -> None:
        """One write at a time per connector, each reading what the last one committed.

        IdPs send changes in parallel (Entra retries, Okta's PUT racing a PATCH).
        Without this, a PATCH that read a person before a deactivation committed
        saved them active again, and two group changes each computed a member's
        Django groups without the other's. Sign-ins and reads never wait on it.
        """
        list(Connector.objects.select_for_update().filter(pk=self.connector.pk).values_list("pk"))

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        raise SCIMError(405, f"{request.method} is not supported here.")

    def json_body(self) -> Any:
        request = self.request
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > MAX_BODY_BYTES:
            raise SCIMError(413, "The request body is too large.")
        try:
            raw = request.body
        except RequestDataTooBig as exc:
            raise SCIMError(413, "The request body is too large.") from exc
        if len(raw) > MAX_BODY_BYTES:
            raise SCIMError(413, "The request body is too large.")
        try:
            body = json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            # RecursionError: thousands of nested brackets fit in the size cap.
            raise bad_request("The body is not valid JSON.", "invalidSyntax") from exc
        if _holds_nul(body):
            # PostgreSQL text cannot hold NUL: psycopg 3 raises DataError, psycopg2 a
            # ValueError of its own (a 500); no IdP means one in a name or an address.
            raise bad_request("Strings may not contain NUL characters.", "invalidValue")
        return body

    def check_if_match(self, obj: SCIMUser | SCIMGroup) -> None:
        header = self.request.headers.get("If-Match")
        if not header or header.strip() == "*":
            return
        wanted = {tag.strip().removeprefix("W/") for tag in header.split(",")}
        if resources.etag(obj).removeprefix("W/") not in wanted:
            raise SCIMError(412, "The resource has changed (If-Match).")

    def page(self) -> tuple[int, int]:
        try:
            start = int(self.request.GET.get("startIndex") or 1)
            count = int(self.request.GET.get("count") or discovery.MAX_RESULTS)
        except ValueError as exc:
            raise bad_request("startIndex and count must be integers.") from exc
        # Bounded: a startIndex past any database integer would be a database error.
        return min(max(start, 1), 2**31 - 1), min(max(count, 0), discovery.MAX_RESULTS)

    def listed(
        self, found: QuerySet[Any], fields: dict[str, Any], sub_fields: dict[str, Any]
    ) -> tuple[int, int, list[Any]]:
        """``(startIndex, totalResults, the page)`` of ``found`` under the request's
        ``filter``, ``startIndex`` and ``count``, oldest first."""
        start, count = self.page()
        text = self.request.GET.get("filter")
        if text:
            found = found.filter(to_query(parse_filter(text), fields, sub_fields)).distinct()
        total = found.count()
        page = (
            list(found.order_by("created_at", "pk")[start - 1 : start - 1 + count]) if count else []
        )
        return start, total, page

    def wanted(self) -> tuple[set[str], set[str]]:
        def names(param: str) -> set[str]:
            raw = self.request.GET.get(param) or ""
            return {strip_urn(n.strip()).lower() for n in raw.split(",") if n.strip()}

        return names("attributes"), names("excludedAttributes")

    def shape(self, doc: dict[str, Any]) -> dict[str, Any]:
        attributes, excluded = self.wanted()
        return {
            key: value
            for key, value in doc.items()
            if key.lower() in ALWAYS_RETURNED
            or (key.lower() not in excluded and (not attributes or key.lower() in attributes))
        }

    def with_members(self) -> bool:
        attributes, excluded = self.wanted()
        return "members" not in excluded and (not attributes or "members" in attributes)

    def resource(self, doc: dict[str, Any], status: int = 200) -> HttpResponse:
        headers = {"ETag": doc["meta"]["version"]}
        if status == 201:
            headers["Location"] = doc["meta"]["location"]
        return scim_response(self.shape(doc), status, **headers)


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise not_found() from exc


class BaseView(SCIMView):
    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        raise not_found("See ServiceProviderConfig, ResourceTypes and Schemas.")


class SearchView(SCIMView):
    http_method_names = ["post"]

    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        # 501: RFC 7644, 3.12's answer for an operation the server does not support.
        raise SCIMError(501, "POST .search is not supported: use GET with filter.")


class UnknownPathView(SCIMView):
    http_method_names = ["get", "post", "put", "patch", "delete"]

    def get(self, request: HttpRequest, slug: str, unknown: str) -> HttpResponse:
        raise not_found()

    post = put = patch = delete = get


class UsersView(SCIMView):
    http_method_names = ["get", "post"]

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        start, total, page = self.listed(
            resources.users(self.connector), resources.USER_FIELDS, resources.USER_SUB_FIELDS
        )
        docs = [self.shape(resources.render_user(request, link)) for link in page]
        return scim_response(discovery.list_response(docs, total, start))

    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        link = resources.create_user(self.connector, self.json_body(), request)
        return self.resource(resources.render_user(request, link), 201)


class UserView(SCIMView):
    http_method_names = ["get", "put", "patch", "delete"]

    def link(self, scim_id: str) -> SCIMUser:
        link = resources.users(self.connector).filter(scim_id=_uuid(scim_id)).first()
        if link is None:
            raise not_found()
        return link

    def get(self, request: HttpRequest, slug: str, scim_id: str) -> HttpResponse:
        return self.resource(resources.render_user(request, self.link(scim_id)))

    def put(self, request: HttpRequest, slug: str, scim_id: str) -> HttpResponse:
        link = self.link(scim_id)
        self.check_if_match(link)
        link = resources.replace_user(link, self.json_body())
        return self.resource(resources.render_user(request, link))

    def patch(self, request: HttpRequest, slug: str, scim_id: str) -> HttpResponse:
        link = self.link(scim_id)
        self.check_if_match(link)
        body = self.json_body()
        current = resources.render_user(request, link)
        current.pop("meta")
        link = resources.replace_user(link, apply_patch(current, body, MULTI_VALUED))
        return self.resource(resources.render_user(request, link))

    def delete(self, request: HttpRequest, slug: str, scim_id: str) -> HttpResponse:
        link = self.link(scim_id)
        self.check_if_match(link)
        resources.delete_user(link)
        return scim_response(None, 204)


class GroupsView(SCIMView):
    http_method_names = ["get", "post"]

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        start, total, page = self.listed(
            resources.scim_groups(self.connector),
            resources.GROUP_FIELDS,
            resources.GROUP_SUB_FIELDS,
        )
        members = self.with_members()
        docs = [self.shape(resources.render_group(request, g, with_members=members)) for g in page]
        return scim_response(discovery.list_response(docs, total, start))

    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        group = resources.create_group(self.connector, self.json_body())
        return self.resource(resources.render_group(request, group), 201)


class GroupView(SCIMView):
    http_method_names = ["get", "put", "patch", "delete"]

    def group(self, scim_id: str) -> SCIMGroup:
        group = resources.scim_groups(self.connector).filter(scim_id=_uuid(scim_id)).first()
        if group is None:
            raise not_found()
        return group

    def get(self, request: HttpRequest, slug: str, scim_id: str) -> HttpResponse:
        group = self.group(scim_id)
        return self.resource(
            resources.render_group(request, group, with_members=self.with_members())
        )

    def put(self, request: HttpRequest, slug: str, scim_id: str) -> HttpResponse:
        group = self.group(scim_id)
        self.check_if_match(group)
        group = resources.replace_group(group, self.json_body())
        return self.resource(resources.render_group(request, group))

    def patch(self, request: HttpRequest, slug: str, scim_id: str) -> HttpResponse:
        group = self.group(scim_id)
        self.check_if_match(group)
        body = self.json_body()
        current = resources.render_group(request, group)
        current.pop("meta")
        resources.replace_group(group, apply_patch(current, body, MULTI_VALUED))
        # 204 (RFC 7644, 3.5.2): a large group is not sent back after every change.
        return scim_response(None, 204, ETag=resources.etag(group))

    def delete(self, request: HttpRequest, slug: str, scim_id: str) -> HttpResponse:
        group = self.group(scim_id)
        self.check_if_match(group)
        resources.delete_group(group)
        return scim_response(None, 204)


class ServiceProviderConfigView(SCIMView):
    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        return scim_response(discovery.service_provider_config(request, self.connector))


class ResourceTypesView(SCIMView):
    def get(self, request: HttpRequest, slug: str, name: str | None = None) -> HttpResponse:
        if name is not None:
            found = discovery.resource_type(request, self.connector, name)
            if found is None:
                raise not_found()
            return scim_response(found)
        docs = [
            discovery.resource_type(request, self.connector, n) for n in discovery.RESOURCE_TYPES
        ]
        return scim_response(discovery.list_response([d for d in docs if d], len(docs), 1))


class SchemasView(SCIMView):
    def get(self, request: HttpRequest, slug: str, schema_id: str | None = None) -> HttpResponse:
        if schema_id is not None:
            found = discovery.schema(request, self.connector, schema_id)
            if found is None:
                raise not_found()
            return scim_response(found)
        docs = [discovery.schema(request, self.connector, s) for s in discovery.SCHEMAS]
        return scim_response(discovery.list_response([d for d in docs if d], len(docs), 1))


def _refuse_constant(name: str) -> Any:
    """``NaN`` and ``Infinity`` are not JSON (RFC 8259), though Python reads them."""
    raise ValueError(f"{name} is not a JSON value")


def _holds_nul(value: Any) -> bool:
    """Whether any string (or object key) in a parsed JSON body holds U+0000."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
