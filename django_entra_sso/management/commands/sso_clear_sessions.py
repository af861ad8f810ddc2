"""Drop ``SSOSession`` index rows whose Django session has ended (run beside ``clearsessions``),
sign-in log rows older than ``ENTRA_SSO_SIGN_IN_LOG_RETENTION_DAYS``, and SAML replay
markers past their time.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ...saml import replay
from ...sessions import clear_stale_sessions
from ...signin_log import prune


class Command(BaseCommand):
    help = (
        "Remove SSO session index rows whose Django session expired or was deleted, and "
        "sign-in log rows older than ENTRA_SSO_SIGN_IN_LOG_RETENTION_DAYS, and SAML replay "
        "markers past their time."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        removed = clear_stale_sessions()
        self.stdout.write(f"Removed {removed} stale SSO session row(s).")
        self.stdout.write(f"Removed {prune()} sign-in log row(s) past the retention period.")
        self.stdout.write(f"Removed {replay.prune()} used SAML message marker(s) past their time.")
