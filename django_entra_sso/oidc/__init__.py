"""The OpenID Connect adapter: from what an OpenID provider sends to a verified person.

- ``adapter``: the entry points the views call (start, complete, logout token,
  end-session URL).
- ``flow``: the authorization request, pending sign-ins, the form_post hand-off.
- ``client``: the client's own calls: the token request, userinfo.
- ``tokens``: ID token and logout token checks, logout token replays.
- ``metadata``: discovery and the JWKS, cached; "Test connection".

Nothing here decides who the Django user is (``accounts``) or which Django
sessions end (``sessions``).
"""
