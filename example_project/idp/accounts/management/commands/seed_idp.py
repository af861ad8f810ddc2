"""Create or update the demo users and the bookstore's OIDC client.

Idempotent: run it as often as you like, it updates in place and never
duplicates.  It does not migrate -- run ``manage.py migrate`` first.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from oauth2_provider.models import get_application_model

DEMO_USERS = [
    {
        "username": "alice",
        "first_name": "Alice",
        "last_name": "Liddell",
        "email": "alice@bookstore.example",
        "password": "alice-demo-pw",
        "groups": ["readers"],
    },
    {
        "username": "bob",
        "first_name": "Bob",
        "last_name": "Cratchit",
        "email": "bob@bookstore.example",
        "password": "bob-demo-pw",
        "groups": ["staff"],
    },
]


class Command(BaseCommand):
    help = (
        "Create/update the demo users (alice, bob) and a confidential OIDC client "
        "(authorization code + PKCE, RS256). Idempotent. Run migrate first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--client-id", required=True)
        parser.add_argument(
            "--client-secret",
            required=True,
            help="Plain secret; stored hashed (DOT hash_client_secret=True).",
        )
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
        parser.add_argument("--name", default="Bookstore (django-entra-sso demo)")

    @transaction.atomic
    def handle(self, *args, **opts):
        for spec in DEMO_USERS:
            self._seed_user(spec)
        self._seed_application(opts)

    def _seed_user(self, spec):
        User = get_user_model()
        user, created = User.objects.get_or_create(username=spec["username"])
        user.first_name = spec["first_name"]
        user.last_name = spec["last_name"]
        user.email = spec["email"]
        user.is_active = True
        user.set_password(spec["password"])
        user.save()
        groups = []
        for name in spec["groups"]:
            group, _ = Group.objects.get_or_create(name=name)
            groups.append(group)
        user.groups.set(groups)
        self.stdout.write(
            f"{'created' if created else 'updated'} user {user.username} "
            f"({user.get_full_name()}, {user.email}, groups={spec['groups']}, "
            f"password={spec['password']})"
        )

    def _seed_application(self, opts):
        app, created = save_client(
            client_id=opts["client_id"],
            client_secret=opts["client_secret"],
            name=opts["name"],
            redirect_uris=opts["redirect_uris"],
            post_logout_redirect_uris=opts["post_logout_redirect_uris"],
        )
        self.stdout.write(describe_client(app, created))


def save_client(*, client_id, client_secret, name, redirect_uris, post_logout_redirect_uris):
    """Create or update one confidential OIDC client; return ``(app, created)``.

    Touches that client only: the users and every other client stay as they are.
    """
    Application = get_application_model()
    app = Application.objects.filter(client_id=client_id).first()
    created = app is None
    if created:
        app = Application(client_id=client_id)
    app.name = name
    app.client_type = Application.CLIENT_CONFIDENTIAL
    app.authorization_grant_type = Application.GRANT_AUTHORIZATION_CODE
    app.algorithm = Application.RS256_ALGORITHM
    app.redirect_uris = " ".join(redirect_uris)
    app.post_logout_redirect_uris = " ".join(post_logout_redirect_uris)
    app.skip_authorization = False  # show the consent page
    # DOT hashes the plain secret when the model is saved (ClientSecretField).
    app.hash_client_secret = True
    app.client_secret = client_secret
    try:
        app.full_clean(exclude=["user"])
    except Exception as exc:  # ValidationError: bad redirect URI etc.
        raise CommandError(f"invalid application settings: {exc}") from exc
    app.save()
    return app, created


def describe_client(app, created):
    return (
        f"{'created' if created else 'updated'} application {app.client_id!r} "
        f"({app.name}): confidential, authorization-code, RS256, "
        f"skip_authorization=False, secret stored hashed\n"
        f"  redirect_uris: {app.redirect_uris}\n"
        f"  post_logout_redirect_uris: {app.post_logout_redirect_uris or '(none)'}"
    )
