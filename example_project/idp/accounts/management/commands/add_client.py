"""Register (or update) one more OIDC client at the demo IdP, for a site of your own.

``demo.sh --add-client`` runs it.  Unlike ``seed_idp`` it leaves the demo users and
every other client (the bookstore's too) as they are.  The client secret is kept in
a file: made there (random, 256 bits, mode 0600) when the file is missing, read
back otherwise, so running it again keeps the secret; delete the file for a new one.
It does not migrate -- run ``manage.py migrate`` first.
"""

import os
import secrets
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from .seed_idp import describe_client, save_client


def read_or_make_secret(path: Path) -> tuple[str, bool]:
    """``(secret, made_now)``: the secret kept in ``path``, made first if missing."""
    if path.exists():
        secret = path.read_text().strip()
        if not secret:
            raise CommandError(f"{path} is empty: delete it for a new secret.")
        return secret, False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return secret, True


def add_client_arguments(parser) -> None:
    """``--client-id`` and ``--client-secret-file``, as every client command takes them."""
    parser.add_argument("--client-id", required=True)
    parser.add_argument(
        "--client-secret-file",
        required=True,
        type=Path,
        metavar="PATH",
        help="Where the secret is kept: read if it exists, else made and written there.",
    )


class Command(BaseCommand):
    help = (
        "Create/update one confidential OIDC client (authorization code + PKCE, RS256) "
        "without touching the demo users or other clients. Run migrate first."
    )

    def add_arguments(self, parser):
        add_client_arguments(parser)
        parser.add_argument(
            "--redirect-uri",
            required=True,
            action="append",
            dest="redirect_uris",
            metavar="URI",
            help="Exact callback URL of the relying party. Repeat for several.",
        )
        parser.add_argument(
            "--post-logout-redirect-uri",
            action="append",
            dest="post_logout_redirect_uris",
            default=[],
            metavar="URI",
            help="Allowed post_logout_redirect_uri for RP-initiated logout. Repeat for several.",
        )
        parser.add_argument("--name", help="Shown on the consent page; default: the client ID.")

    def handle(self, *args, **opts):
        secret, made_now = read_or_make_secret(opts["client_secret_file"])
        try:
            with transaction.atomic():
                app, created = save_client(
                    client_id=opts["client_id"],
                    client_secret=secret,
                    name=opts["name"] or opts["client_id"],
                    redirect_uris=opts["redirect_uris"],
                    post_logout_redirect_uris=opts["post_logout_redirect_uris"],
                )
        except CommandError:
            if made_now:  # nothing uses it: the next run makes a fresh one
                opts["client_secret_file"].unlink()
            raise
        self.stdout.write(describe_client(app, created))
        self.stdout.write(
            f"  secret: {'new' if made_now else 'kept'}, in {opts['client_secret_file']}"
        )
