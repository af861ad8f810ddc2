#!/usr/bin/env python3
"""Call the bookstore's API as an application: a client-credentials token, then GET /api/books/.

With the demo running (``./example_project/demo.sh``), from the repository root::

    example_project/.run/venv/bin/python example_project/call_api.py

It asks the IdP's token endpoint (found through its discovery document) for an access
token with the client-credentials grant, as the client ``bookstore-daemon`` that demo.sh
registers at the demo IdP (its secret is kept in ``.run/clients/bookstore-daemon.secret``),
for the scope ``Books.Read.All``; shows what the token says (read without checking it: the
API checks it); calls the API with it and prints the books.

The defaults follow demo.sh's knobs (``DEMO_IDP_PORT``, ``DEMO_SITE_PORT``,
``DEMO_RUN_DIR``); with another IdP give ``--issuer``, ``--client-id``, the secret in
``API_CLIENT_SECRET`` or ``--client-secret-file``, ``--scope`` (Entra ID:
``api://<API app id>/.default``) and ``--resource`` for IdPs that want RFC 8707's resource
indicator (node-oidc-provider: the API's URI). Needs only ``requests``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import requests

HERE = Path(__file__).resolve().parent
TIMEOUT = 15


def defaults() -> dict[str, str]:
    run_dir = Path(os.environ.get("DEMO_RUN_DIR") or HERE / ".run")
    return {
        "issuer": f"http://127.0.0.1:{os.environ.get('DEMO_IDP_PORT') or 9000}/o",
        "api": f"http://localhost:{os.environ.get('DEMO_SITE_PORT') or 8000}/api/books/",
        "client_id": "bookstore-daemon",
        "secret_file": str(run_dir / "clients" / "bookstore-daemon.secret"),
        "scope": "Books.Read.All",
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    d = defaults()
    parser = argparse.ArgumentParser(
        description="Get a client-credentials access token and call the bookstore's API."
    )
    parser.add_argument("--issuer", default=d["issuer"], help=f"default {d['issuer']}")
    parser.add_argument("--client-id", default=d["client_id"], help=f"default {d['client_id']}")
    parser.add_argument(
        "--client-secret-file",
        default=d["secret_file"],
        metavar="PATH",
        help="where the client secret is (unless API_CLIENT_SECRET is set); "
        f"default {d['secret_file']}",
    )
    parser.add_argument("--scope", default=d["scope"], help=f"default {d['scope']}")
    parser.add_argument("--resource", help="RFC 8707 resource indicator, for IdPs that want one")
    parser.add_argument("--api", default=d["api"], help=f"default {d['api']}")
    return parser.parse_args(argv)


def client_secret(args: argparse.Namespace) -> str:
    from_env = os.environ.get("API_CLIENT_SECRET", "").strip()
    if from_env:
        return from_env
    try:
        return Path(args.client_secret_file).read_text().strip()
    except OSError as exc:
        raise SystemExit(
            f"call_api.py: no client secret: {exc}. Start ./example_project/demo.sh first "
            "(it registers bookstore-daemon), or set API_CLIENT_SECRET."
        ) from None


def token_endpoint(issuer: str) -> tuple[str, list[str]]:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    doc = requests.get(url, timeout=TIMEOUT)
    doc.raise_for_status()
    data = doc.json()
    methods = data.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return data["token_endpoint"], methods


def get_token(args: argparse.Namespace) -> dict[str, Any]:
    endpoint, methods = token_endpoint(args.issuer)
    secret = client_secret(args)
    data = {"grant_type": "client_credentials", "scope": args.scope}
    if args.resource:
        data["resource"] = args.resource
    auth = None
    if "client_secret_basic" in methods:
        # RFC 6749 2.3.1: both form-encoded before they go into the Basic header.
        auth = (quote_plus(args.client_id), quote_plus(secret))
    else:
        data.update(client_id=args.client_id, client_secret=secret)
    answer = requests.post(endpoint, data=data, auth=auth, timeout=TIMEOUT)
    if answer.status_code != 200:
        raise SystemExit(f"call_api.py: {endpoint} answered {answer.status_code}: {answer.text}")
    print(f"Token     from {endpoint} for {args.client_id} (client credentials)")
    return answer.json()


def unverified_claims(token: str) -> dict[str, Any]:
    """What a JWT says, unchecked: only to show it (the API checks the signature)."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    token = get_token(args)["access_token"]
    claims = unverified_claims(token)
    if claims:
        shown = {k: claims[k] for k in ("iss", "aud", "sub", "scope", "roles") if k in claims}
        print("          " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    else:
        print("          (an opaque token: the API can check it only by introspection)")
    answer = requests.get(args.api, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    print(f"GET       {args.api} -> {answer.status_code}")
    if answer.status_code != 200:
        challenge = answer.headers.get("WWW-Authenticate", "")
        print(f"          {challenge} {answer.text}".rstrip(), file=sys.stderr)
        return 1
    body = answer.json()
    print(f"Caller    {body['caller']} ({body['kind']})")
    for book in body["books"]:
        print(f"  {book['title']}, {book['author']} ({book['year']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
