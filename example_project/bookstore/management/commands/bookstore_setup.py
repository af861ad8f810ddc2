"""Seed the demo site: an admin account (only if missing) and a group mapping.

Idempotent, so ``demo.sh`` runs it at every start.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_entra_sso.models import Connector

# The local IdP's groups claim carries plain names; map them one-to-one onto
# Django groups so that "readers" shows up on the home page. (Entra ID sends
# group object IDs instead: map those in the admin, on the connector.)
DEMO_GROUPS = ("readers", "staff")


class Command(BaseCommand):
    help = "Create the demo admin account if missing and map the demo IdP's groups."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--admin-username", default="admin")
        parser.add_argument("--admin-password", required=True)
        parser.add_argument("--admin-email", default="admin@localhost")
        parser.add_argument(
            "--map-groups",
            metavar="SLUG",
            action="append",
            default=[],
            help="Connector whose groups claim maps readers/staff onto Django groups "
            "(only when it has no mapping yet). Repeat for several.",
        )
        parser.add_argument(
            "--self-service",
            metavar="SLUG",
            default="",
            help="A connector for a new customer to set up from a setup link: made switched "
            "off and empty if missing, left as it is otherwise.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model: Any = get_user_model()
        username = options["admin_username"]
        if user_model._default_manager.filter(username=username).exists():
            self.stdout.write(f"Admin account {username} exists; left as it is.")
        else:
            user_model._default_manager.create_superuser(
                username=username, email=options["admin_email"], password=options["admin_password"]
            )
            self.stdout.write(f"Created admin account {username}.")
        slug = options["self_service"]
        if slug and not Connector.objects.filter(slug=slug).exists():
            # What the site's team makes before sending the link: a name, a type, no values.
            Connector.objects.create(
                slug=slug, name="Northwind Traders", provider="oidc", enabled=False
            )
            self.stdout.write(f"Created connector {slug} for self-service setup.")
        for slug in options["map_groups"]:
            connector = Connector.objects.filter(slug=slug).first()
            if connector is None:
                raise CommandError(f"No connector with slug {slug!r}.")
            if connector.group_mapping:
                continue
            connector.group_mapping = {name: [name] for name in DEMO_GROUPS}
            connector.save(update_fields=["group_mapping"])
            self.stdout.write(f"Mapped groups {', '.join(DEMO_GROUPS)} for connector {slug}.")
