"""Register (or update) an application that calls the bookstore's API for itself.

A confidential client with the client-credentials grant only: no redirect URIs, no
people. Its tokens for ``Books.Read.All`` are JWTs for the API (accounts/api_tokens.py).
``demo.sh`` runs it for ``bookstore-daemon``, the client of ``example_project/call_api.py``.
The secret is kept in a file, as ``add_client`` keeps it: made there when the file is
missing, read back otherwise; delete the file for a new one. Leaves the demo users and
every other client alone. Run ``manage.py migrate`` first.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from oauth2_provider.models import get_application_model

from .add_client import add_client_arguments, read_or_make_secret


class Command(BaseCommand):
    help = (
        "Create/update one confidential client-credentials client (an application calling "
        "the bookstore's API for itself). Run migrate first."
    )

    def add_arguments(self, parser):
        add_client_arguments(parser)
        parser.add_argument("--name", help="Default: the client ID.")

    def handle(self, *args, **opts):
        secret, made_now = read_or_make_secret(opts["client_secret_file"])
        Application = get_application_model()
        try:
            with transaction.atomic():
                app = Application.objects.filter(client_id=opts["client_id"]).first()
                created = app is None
                if created:
                    app = Application(client_id=opts["client_id"])
                app.name = opts["name"] or opts["client_id"]
                app.client_type = Application.CLIENT_CONFIDENTIAL
                app.authorization_grant_type = Application.GRANT_CLIENT_CREDENTIALS
                app.redirect_uris = ""
                app.post_logout_redirect_uris = ""
                app.hash_client_secret = True  # DOT hashes it on save
                app.client_secret = secret
                try:
                    app.full_clean(exclude=["user"])
                except Exception as exc:  # ValidationError
                    raise CommandError(f"invalid application settings: {exc}") from exc
                app.save()
        except CommandError:
            if made_now:
                opts["client_secret_file"].unlink()
            raise
        self.stdout.write(
            f"{'created' if created else 'updated'} application {app.client_id!r} "
            f"({app.name}): confidential, client-credentials, secret stored hashed\n"
            f"  secret: {'new' if made_now else 'kept'}, in {opts['client_secret_file']}"
        )
