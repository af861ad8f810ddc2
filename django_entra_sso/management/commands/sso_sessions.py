"""``manage.py sso_sessions end --user USERNAME``: sign a person out everywhere, at once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...sessions import end_sessions_for_user


class Command(BaseCommand):
    help = "End every SSO session of a user, on any session engine."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        end = sub.add_parser("end", help="End every SSO session of one user.")
        end.add_argument("--user", required=True, help="The user's username.")

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(options["user"])
        except user_model.DoesNotExist as exc:
            raise CommandError(f"No user {options['user']!r}.") from exc
        ended = end_sessions_for_user(user, reason="admin")
        self.stdout.write(f"Ended {ended} session(s) of {user.get_username()}.")
