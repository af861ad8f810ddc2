"""Write the demo IdP's SAML metadata (what ``/saml/metadata/`` serves) to a file.

``demo.sh`` runs it before the IdP starts, and gives the file to the bookstore's
``sso_connector add bookstore-saml --saml-metadata-file``. The signing key pair
is made on first use (idp_site/settings.py), so the file holds the certificate
the running IdP signs with.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.saml_idp import endpoints, metadata_xml


class Command(BaseCommand):
    help = (
        "Write the SAML IdP's metadata (entity ID <base URL>/saml/metadata/) to a file or stdout."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--out", type=Path, metavar="FILE", help="Where to write it; default: stdout."
        )
        parser.add_argument(
            "--base-url",
            metavar="URL",
            help="Scheme, host and port the IdP is reached at, e.g. http://127.0.0.1:9000 "
            f"(default: that of IDP_ISSUER, {settings.SAML_IDP_BASE_URL}).",
        )

    def handle(self, *args, **opts):
        base_url = (opts["base_url"] or settings.SAML_IDP_BASE_URL).rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise CommandError("--base-url: an absolute http(s) URL, e.g. http://127.0.0.1:9000")
        if base_url != settings.SAML_IDP_BASE_URL:
            self.stderr.write(
                f"Note: the running IdP signs as {endpoints().entity_id} (from IDP_ISSUER); "
                f"start it with IDP_ISSUER={base_url}/o for this metadata to match."
            )
        xml = metadata_xml(base_url)
        if opts["out"] is None:
            self.stdout.write(xml)
            return
        try:
            opts["out"].parent.mkdir(parents=True, exist_ok=True)
            opts["out"].write_text(xml + "\n", encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"--out: {exc}") from exc
        self.stdout.write(
            f"Wrote the SAML IdP metadata ({base_url}/saml/metadata/) to {opts['out']}"
        )
