"""Drop ``SSOSession`` index rows whose Django session has ended (run beside ``clearsessions``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ...sessions import clear_stale_sessions


class Command(BaseCommand):
    help = "Remove SSO session index rows whose Django session expired or was deleted."

    def handle(self, *args: Any, **options: Any) -> None:
        removed = clear_stale_sessions()
        self.stdout.write(f"Removed {removed} stale SSO session row(s).")
