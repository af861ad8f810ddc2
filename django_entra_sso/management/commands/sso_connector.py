"""Connectors as code: ``manage.py sso_connector add|list|test|remove|rotate-secrets|scim-token``.

The client secret can come from ``--client-secret``, but a command line shows in
``ps`` and in shell history: ``--client-secret-stdin`` and ``--client-secret-env
NAME`` keep it out of both.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from ...crypto import SecretDecryptionError, reencrypt_secret
from ...models import Connector, EmailDomain
from ...oidc.metadata import check_connection
from ...providers import PROVIDER_LABELS
from ...validation import normalize_domain


def _first_error(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        field, errors = next(iter(exc.error_dict.items()))
        return f"{field}: {errors[0].messages[0]}"
    return exc.messages[0]


class Command(BaseCommand):
    help = "Add, list, test and remove single sign-on connectors."
    # call_command(..., stdin=...) feeds --client-secret-stdin in tests and scripts.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Add a connector, or update the one with this slug.")
        add.add_argument("slug")
        add.add_argument("--issuer", required=True)
        add.add_argument("--client-id", required=True)
        secret = add.add_mutually_exclusive_group()
        secret.add_argument(
            "--client-secret",
            help="The secret itself (visible in ps and shell history; prefer the two below).",
        )
        secret.add_argument(
            "--client-secret-stdin",
            action="store_true",
            help="Read the secret from standard input (its first line).",
        )
        secret.add_argument(
            "--client-secret-env",
            metavar="NAME",
            help="Read the secret from the environment variable NAME.",
        )
        add.add_argument("--name")
        add.add_argument("--provider", choices=sorted(PROVIDER_LABELS), default=None)
        add.add_argument("--domain", action="append", default=[], dest="domains")
        add.add_argument("--scopes", default=None, help="Extra scopes, space-separated.")
        add.add_argument("--response-mode", choices=["form_post", "query"], default=None)
        add.add_argument("--tenant", action="append", default=[], dest="tenants")
        add.add_argument(
            "--allow-any-tenant",
            action="store_true",
            help="A multi-tenant issuer with no --tenant: let every Entra tenant sign in "
            "(not with --domain).",
        )
        add.add_argument(
            "--revalidate-after",
            type=int,
            metavar="SECONDS",
            help="Re-validate sessions at the IdP this often (0: never).",
        )
        add.add_argument(
            "--max-session-age",
            type=int,
            metavar="SECONDS",
            help="End sessions this long after sign-in (0: Django's expiry only).",
        )
        add.add_argument("--sso-only", action="store_true", help="Mark the domains SSO-only.")
        add.add_argument("--disabled", action="store_true", help="Add the connector switched off.")
        sub.add_parser("list", help="List connectors.")
        test = sub.add_parser("test", help="Fetch discovery and JWKS and check them.")
        test.add_argument("slug")
        remove = sub.add_parser("remove", help="Remove a connector.")
        remove.add_argument("slug")
        scim = sub.add_parser(
            "scim-token", help="Print a new SCIM bearer token once (the old one stops working)."
        )
        scim.add_argument("slug")
        sub.add_parser(
            "rotate-secrets",
            help="Re-encrypt every client secret with the first of ENTRA_SSO_SECRET_KEYS.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        handler = getattr(self, "do_" + action.replace("-", "_"))
        handler(options)

    def _client_secret(self, options: dict[str, Any]) -> tuple[str, str] | None:
        """``(secret, where it came from)`` from the option given, or ``None`` for none."""
        if options["client_secret"] is not None:
            return options["client_secret"].strip(), "--client-secret"
        if options["client_secret_stdin"]:
            stream = options.get("stdin") or sys.stdin
            return stream.readline().strip(), "--client-secret-stdin"
        name = options["client_secret_env"]
        if name is not None:
            if name not in os.environ:
                raise CommandError(f"--client-secret-env: the variable {name} is not set.")
            return os.environ[name].strip(), "--client-secret-env"
        return None

    def do_add(self, options: dict[str, Any]) -> None:
        slug = options["slug"]
        given = self._client_secret(options)
        if given is not None and not given[0]:
            # An empty secret would wipe the stored one on update and cannot sign anyone in.
            raise CommandError(f"{given[1]}: enter the client secret from the IdP.")
        if given is None and not Connector.objects.filter(slug=slug).exists():
            raise CommandError(
                "Give the client secret with --client-secret-stdin, --client-secret-env NAME "
                "or --client-secret."
            )
        try:
            domains = [normalize_domain(d) for d in options["domains"]]
        except ValidationError as exc:
            raise CommandError(f"--domain: {_first_error(exc)}") from exc
        connector = Connector.objects.filter(slug=slug).first()
        created = connector is None
        if connector is None:
            connector = Connector(slug=slug, provider=options["provider"] or "entra_id")
        elif options["provider"]:
            connector.provider = options["provider"]
        connector.name = options["name"] or connector.name or slug
        connector.issuer = options["issuer"]
        connector.client_id = options["client_id"]
        if given is not None:
            connector.client_secret = given[0]
        if options["scopes"] is not None:
            connector.extra_scopes = " ".join(
                s for s in options["scopes"].split() if s not in ("openid", "profile", "email")
            )
        if options["response_mode"]:
            connector.response_mode = options["response_mode"]
        if options["tenants"]:
            connector.allowed_tenants = [t.strip().lower() for t in options["tenants"]]
        if options["allow_any_tenant"]:
            connector.allow_any_tenant = True
        for name in ("revalidate_after", "max_session_age"):
            value = options[name]
            if value is not None:
                if value < 0:
                    flag = "--" + name.replace("_", "-")
                    raise CommandError(f"{flag}: enter a number of seconds, 0 or more.")
                setattr(connector, name, value)
        if options["disabled"]:
            connector.enabled = False
        try:
            connector.full_clean(validate_unique=True)
        except ValidationError as exc:
            raise CommandError(_first_error(exc)) from exc
        if domains:
            problem = connector.open_tenancy_problem(has_domains=True)
            if problem:
                raise CommandError(f"--domain: {problem}")
        taken = (
            EmailDomain.objects.filter(domain__in=domains)
            .exclude(connector__slug=slug)
            .select_related("connector")
            .first()
        )
        if taken is not None:
            raise CommandError(
                f"--domain: {taken.domain} already belongs to connector {taken.connector.slug}."
            )
        with transaction.atomic():
            connector.save()
            for domain in domains:
                EmailDomain.objects.update_or_create(
                    domain=domain,
                    defaults={"connector": connector, "sso_only": options["sso_only"]},
                )
        verb = "Added" if created else "Updated"
        self.stdout.write(f"{verb} connector {slug} ({connector.issuer}).")

    def do_list(self, options: dict[str, Any]) -> None:
        connectors = Connector.objects.prefetch_related("domains").order_by("slug")
        if not connectors:
            self.stdout.write("No connectors.")
            return
        for c in connectors:
            domains = ", ".join(d.domain for d in c.domains.all()) or "-"
            state = "enabled" if c.enabled else "disabled"
            windows = (
                f"revalidate {c.revalidate_after}s" if c.revalidate_after else "no revalidation"
            ) + (f", max age {c.max_session_age}s" if c.max_session_age else "")
            self.stdout.write(f"{c.slug}\t{c.provider}\t{state}\t{c.issuer}\t{domains}\t{windows}")

    def do_test(self, options: dict[str, Any]) -> None:
        connector = self._get(options["slug"])
        report = check_connection(connector)
        if not report.ok:
            raise CommandError(f"{connector.slug}: not healthy: {report.error}")
        self.stdout.write(
            f"{connector.slug}: healthy. issuer {report.issuer}; "
            f"{report.signing_key_count} signing key(s); "
            f"response modes {', '.join(report.response_modes_supported)}; "
            f"auth methods {', '.join(report.auth_methods_supported)}."
        )

    def do_remove(self, options: dict[str, Any]) -> None:
        connector = self._get(options["slug"])
        connector.delete()
        self.stdout.write(f"Removed connector {options['slug']}.")

    def do_rotate_secrets(self, options: dict[str, Any]) -> None:
        count = 0
        with transaction.atomic():
            for connector in Connector.objects.select_for_update():
                try:
                    connector.client_secret_encrypted = reencrypt_secret(
                        connector.client_secret_encrypted
                    )
                except SecretDecryptionError as exc:
                    raise CommandError(f"{connector.slug}: {exc}") from exc
                connector.save(update_fields=["client_secret_encrypted"])
                count += 1
        self.stdout.write(f"Re-encrypted {count} client secret(s).")

    def do_scim_token(self, options: dict[str, Any]) -> None:
        from django.urls import reverse

        from ...scim.auth import new_token

        connector = self._get(options["slug"])
        token = new_token(connector)
        path = reverse("entra_sso:scim", args=[connector.slug])
        self.stdout.write(
            f"New SCIM token for {connector.slug} (shown once; the old one no longer works):\n"
            f"{token}\n"
            f"Endpoint (Entra ID: Tenant URL): https://<your site>{path}"
        )

    @staticmethod
    def _get(slug: str) -> Connector:
        connector = Connector.objects.filter(slug=slug).first()
        if connector is None:
            raise CommandError(f"No connector with slug {slug!r}.")
        return connector
