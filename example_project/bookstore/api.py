"""The bookstore's API: ``GET /api/books/`` for scripts and apps, with an access token.

The token comes from the bookstore connector's IdP and is checked by django-entra-sso
(``django_entra_sso.api``, here through Django REST framework): signed with the keys the
sign-ins are checked with, ``aud`` one of the connector's API audiences (demo.sh gives it
``http://localhost:8000/api/``), not expired. Who may call:

- an app a person signed in to, for that person (a delegated token): it needs the scope
  ``Books.Read``; ``request.user`` is then the same Django user as the person's browser
  sign-in;
- an application for itself (the client-credentials grant, ``example_project/call_api.py``):
  it needs the app role ``Books.Read.All``; ``request.user`` is an ``ApplicationPrincipal``,
  never a Django user.

The names are the ones the README's "APIs" part gives an Entra ID app registration. The
demo IdP issues JWTs for them (``idp/accounts/api_tokens.py``): ``Books.Read`` in a person's
token's ``scope``; ``Books.Read.All`` in an application's ``roles``, as Entra ID does.
"""

from __future__ import annotations

from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_entra_sso.api import ApplicationPrincipal, BearerTokenAuthentication

from .views import BOOKS


class BookList(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]  # JSON only: no browsable API, no session sign-in
    required_scopes = ["Books.Read"]  # a person's app (delegated tokens)
    required_roles = ["Books.Read.All"]  # an application for itself (client credentials)

    def get(self, request: Request) -> Response:
        caller = request.user
        application = isinstance(caller, ApplicationPrincipal)
        return Response(
            {
                "caller": caller.get_username(),
                "kind": "application" if application else "person",
                "books": BOOKS,
            }
        )
