"""A small API in the test project: one endpoint per integration, the same rules each."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from ninja import NinjaAPI
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_entra_sso.api import (
    ApplicationPrincipal,
    BearerTokenAuthentication,
    NinjaBearerAuth,
    access_token_required,
)

SCOPES = ["Books.Read"]
ROLES = ["Books.Read.All"]


def describe(user: Any, token: Any) -> dict[str, Any]:
    return {
        "kind": "application" if isinstance(user, ApplicationPrincipal) else "user",
        "caller": user.get_username(),
        "pk": user.pk,
        "scopes": sorted(token.scopes),
        "roles": sorted(token.roles),
        "connector": token.connector.slug,
    }


@access_token_required(scopes=SCOPES, roles=ROLES)
def plain_books(request: HttpRequest) -> JsonResponse:
    return JsonResponse(describe(request.user, request.auth))  # type: ignore[attr-defined]


class DRFBooks(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    required_scopes = SCOPES
    required_roles = ROLES

    def get(self, request: Request) -> Response:
        return Response(describe(request.user, request.auth))


ninja_api = NinjaAPI(urls_namespace="test-ninja-api")
NinjaBearerAuth.install(ninja_api)
#: The same route on an API that did not install the challenges: Ninja's own answers.
ninja_api_as_is = NinjaAPI(urls_namespace="test-ninja-api-as-is")


@ninja_api.get("/books", auth=NinjaBearerAuth(scopes=SCOPES, roles=ROLES))
def ninja_books(request: HttpRequest) -> dict[str, Any]:
    return describe(request.user, request.auth)  # type: ignore[attr-defined]


@ninja_api_as_is.get("/books", auth=NinjaBearerAuth(scopes=SCOPES, roles=ROLES))
def ninja_books_as_is(request: HttpRequest) -> dict[str, Any]:
    return describe(request.user, request.auth)  # type: ignore[attr-defined]
