"""Connectors as code: ``manage.py sso_connector add|list|test|remove|rotate-secrets|scim-token|invite``.

A connector is OpenID Connect (``--issuer``, ``--client-id``, a secret) or SAML
(``--protocol saml`` with ``--saml-metadata-url`` or ``--saml-metadata-file``).

The client secret can come from ``--client-secret``, but a command line shows in
``ps`` and in shell history: ``--client-secret-stdin`` and ``--client-secret-env
NAME`` keep it out of both.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.urls import reverse

from ...crypto import SecretDecryptionError, reencrypt_secret
from ...models import ClientKey, Connector, EmailDomain, Identity
from ...oidc.metadata import check_connection
from ...providers import PROVIDER_LABELS
from ...receivers import forget_api_identity_key
from ...validation import normalize_domain


def _first_error(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        field, errors = next(iter(exc.error_dict.items()))
        return f"{field}: {errors[0].messages[0]}"
    return exc.messages[0]


#: How much of a thumbprint ``certificate --confirm`` needs: enough that a rotation
#: someone else started meanwhile is never confirmed by a lucky prefix.
MIN_THUMBPRINT_PREFIX = 8


class Command(BaseCommand):
    help = "Add, list, test and remove single sign-on connectors."
    # call_command(..., stdin=...) feeds --client-secret-stdin in tests and scripts.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Add a connector, or update the one with this slug.")
        add.add_argument("slug")
        add.add_argument("--issuer", help="OpenID Connect: the issuer URL (required for oidc).")
        add.add_argument("--client-id", help="OpenID Connect: the client ID (required for oidc).")
        add.add_argument("--protocol", choices=["oidc", "saml"], default=None)
        add.add_argument(
            "--client-auth",
            choices=["client_secret_basic", "client_secret_post", "private_key_jwt"],
            default=None,
            help="OpenID Connect: how the site authenticates at the token endpoint "
            "(default: what discovery offers, with the client secret).",
        )
        metadata = add.add_mutually_exclusive_group()
        metadata.add_argument(
            "--saml-metadata-url", metavar="URL", help="SAML: the IdP's federation metadata URL."
        )
        metadata.add_argument(
            "--saml-metadata-file",
            metavar="PATH",
            help="SAML: the IdP's metadata XML, from a file.",
        )
        add.add_argument(
            "--allow-idp-initiated",
            action="store_true",
            help="SAML: accept sign-ins the IdP starts (off by default).",
        )
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
        add.add_argument(
            "--api-audience",
            action="append",
            default=None,
            dest="api_audiences",
            metavar="AUD",
            help="An audience of access tokens the site's API accepts from this IdP "
            "(repeatable; replaces the connector's list).",
        )
        add.add_argument("--sso-only", action="store_true", help="Mark the domains SSO-only.")
        add.add_argument("--disabled", action="store_true", help="Add the connector switched off.")
        sub.add_parser("list", help="List connectors.")
        test = sub.add_parser("test", help="Fetch discovery and JWKS and check them.")
        test.add_argument("slug")
        remove = sub.add_parser("remove", help="Remove a connector.")
        remove.add_argument("slug")
        move = sub.add_parser(
            "move-identities",
            help="Hand the people of one connector to another of the same company (a "
            "replaced connector): their SSO identities move, so they keep their accounts.",
        )
        move.add_argument("from_slug", metavar="FROM")
        move.add_argument("to_slug", metavar="TO")
        certificate = sub.add_parser(
            "certificate",
            help="Print the connector's client certificate (private_key_jwt) to upload to the IdP.",
        )
        certificate.add_argument("slug")
        steps = certificate.add_mutually_exclusive_group()
        steps.add_argument(
            "--rotate",
            action="store_true",
            help="Make a new certificate (published beside the old one) and print it.",
        )
        steps.add_argument(
            "--confirm",
            default=None,
            metavar="THUMBPRINT",
            help="The IdP has the new certificate (this thumbprint, or its start): sign with "
            "it from now on.",
        )
        certificate.add_argument(
            "--replace",
            action="store_true",
            help="With --rotate: discard a new certificate still waiting, and make another.",
        )
        scim = sub.add_parser(
            "scim-token", help="Print a new SCIM bearer token once (the old one stops working)."
        )
        scim.add_argument("slug")
        invite = sub.add_parser(
            "invite",
            help="Print a one-time setup link for the customer (older links stop working).",
        )
        invite.add_argument("slug")
        invite.add_argument(
            "--expires",
            type=int,
            metavar="SECONDS",
            default=None,
            help="How long the link works (default: ENTRA_SSO_SETUP_LINK_LIFETIME, 3 days).",
        )
        invite.add_argument(
            "--base-url",
            metavar="URL",
            default="",
            help="The site's address (https://shop.example.com), to print the whole link.",
        )
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
        existing = Connector.objects.filter(slug=options["slug"]).first()
        protocol = options["protocol"] or (existing.protocol if existing else "oidc")
        if protocol == "saml":
            self._add_saml(options, existing)
        else:
            self._add_oidc(options)

    def _add_oidc(self, options: dict[str, Any]) -> None:
        slug = options["slug"]
        for flag in ("issuer", "client_id"):
            if not options[flag]:
                raise CommandError(f"--{flag.replace('_', '-')} is required for an oidc connector.")
        if options["saml_metadata_url"] or options["saml_metadata_file"]:
            raise CommandError("--saml-metadata-*: only for --protocol saml.")
        given = self._client_secret(options)
        if given is not None and not given[0]:
            # An empty secret would wipe the stored one on update and cannot sign anyone in.
            raise CommandError(f"{given[1]}: enter the client secret from the IdP.")
        with_certificate = options["client_auth"] == "private_key_jwt"
        if (
            given is None
            and not with_certificate
            and not Connector.objects.filter(slug=slug).exists()
        ):
            raise CommandError(
                "Give the client secret with --client-secret-stdin, --client-secret-env NAME "
                "or --client-secret."
            )
        domains = _domains(options)
        connector = Connector.objects.filter(slug=slug).first()
        created = connector is None
        if connector is None:
            connector = Connector(slug=slug, provider=options["provider"] or "entra_id")
        elif options["provider"]:
            connector.provider = options["provider"]
        connector.protocol = "oidc"
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
        if options["client_auth"]:
            connector.client_auth = options["client_auth"]
        if options["api_audiences"] is not None:
            connector.api_audiences = [a.strip() for a in options["api_audiences"] if a.strip()]
        if options["tenants"]:
            connector.allowed_tenants = [t.strip().lower() for t in options["tenants"]]
        if options["allow_any_tenant"]:
            connector.allow_any_tenant = True
        self._save(options, connector, domains, created)

    def _add_saml(self, options: dict[str, Any], connector: Connector | None) -> None:
        from ...saml.keys import ensure_key_pair
        from ...saml.metadata import SAMLMetadataError, get_idp_metadata

        slug = options["slug"]
        for flag in ("issuer", "client_id", "client_secret", "client_secret_env"):
            if options[flag]:
                raise CommandError(f"--{flag.replace('_', '-')}: not for a saml connector.")
        if options["client_secret_stdin"] or options["tenants"] or options["allow_any_tenant"]:
            raise CommandError("Client secrets and tenant lists are not for a saml connector.")
        domains = _domains(options)
        created = connector is None
        if connector is None:
            connector = Connector(slug=slug, provider=options["provider"] or "entra_id")
        elif options["provider"]:
            connector.provider = options["provider"]
        connector.protocol = "saml"
        connector.name = options["name"] or connector.name or slug
        if options["saml_metadata_url"]:
            connector.saml_metadata_url, connector.saml_metadata_xml = (
                options["saml_metadata_url"].strip(),
                "",
            )
        elif options["saml_metadata_file"]:
            try:
                with open(options["saml_metadata_file"], encoding="utf-8") as handle:
                    xml = handle.read(2 * 1024 * 1024)
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"--saml-metadata-file: {exc}") from exc
            connector.saml_metadata_url, connector.saml_metadata_xml = "", xml.strip()
        elif created:
            raise CommandError("Give --saml-metadata-url URL or --saml-metadata-file PATH.")
        if options["allow_idp_initiated"]:
            connector.allow_idp_initiated = True
        try:
            connector.full_clean(validate_unique=True)
            metadata = get_idp_metadata(connector, force=True)
        except ValidationError as exc:
            raise CommandError(_first_error(exc)) from exc
        except SAMLMetadataError as exc:
            raise CommandError(f"SAML metadata: {exc}") from exc
        connector.issuer = metadata.entity_id[:500]
        ensure_key_pair(connector)
        self._save(options, connector, domains, created)
        self.stdout.write(
            "Give the IdP (paths on your site's address):\n"
            f"  Identifier (Entity ID), SP metadata: {reverse('entra_sso:saml_metadata', args=[slug])}\n"
            f"  Reply URL (ACS): {reverse('entra_sso:saml_acs', args=[slug])}\n"
            f"  Logout URL: {reverse('entra_sso:saml_sls', args=[slug])}"
        )

    def _save(
        self, options: dict[str, Any], connector: Connector, domains: list[str], created: bool
    ) -> None:
        slug = connector.slug
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
        taken = (  # proved by another connector; an unverified claim elsewhere is no block
            EmailDomain.objects.filter(domain__in=domains, verified_at__isnull=False)
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
                row, _created = EmailDomain.objects.update_or_create(
                    domain=domain, connector=connector, defaults={"sso_only": options["sso_only"]}
                )
                if not row.is_verified:
                    # Whoever runs the command vouches for the domain, as staff do in the admin.
                    row.mark_verified("manual", "sso_connector command")
                    row.save(update_fields=["verified_at", "verification_method", "verified_by"])
        verb = "Added" if created else "Updated"
        self.stdout.write(f"{verb} connector {slug} ({connector.issuer}).")
        if connector.client_auth == "private_key_jwt":
            from ...oidc.credentials import active_key

            active_key(connector)
            self.stdout.write(
                f"Upload its certificate to the IdP: python manage.py sso_connector certificate {slug}"
            )

    def do_list(self, options: dict[str, Any]) -> None:
        connectors = Connector.objects.prefetch_related("domains").order_by("slug")
        if not connectors:
            self.stdout.write("No connectors.")
            return
        for c in connectors:
            domains = (
                ", ".join(
                    d.domain if d.is_verified else f"{d.domain} (unverified)"
                    for d in c.domains.all()
                )
                or "-"
            )
            state = "enabled" if c.enabled else "disabled"
            windows = (
                f"revalidate {c.revalidate_after}s" if c.revalidate_after else "no revalidation"
            ) + (f", max age {c.max_session_age}s" if c.max_session_age else "")
            self.stdout.write(f"{c.slug}\t{c.provider}\t{state}\t{c.issuer}\t{domains}\t{windows}")

    def do_test(self, options: dict[str, Any]) -> None:
        connector = self._get(options["slug"])
        if connector.is_saml:
            from ...saml.metadata import check_saml_connection

            saml = check_saml_connection(connector)
            if not saml.ok:
                raise CommandError(f"{connector.slug}: not healthy: {saml.error}")
            expiries = ", ".join(c.not_after.date().isoformat() for c in saml.certificates)
            self.stdout.write(
                f"{connector.slug}: healthy. SAML entity {saml.entity_id}; "
                f"{len(saml.certificates)} signing certificate(s) (expiring {expiries}); "
                f"single logout {'yes' if saml.slo_url else 'no'}."
            )
            for warning in saml.warnings:
                self.stdout.write(f"warning: {warning}")
            return
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

    def do_move_identities(self, options: dict[str, Any]) -> None:
        # Sign-ins never move an identity between connectors (accounts.user_for): the
        # site's staff say when two connectors are one company.
        source, target = self._get(options["from_slug"]), self._get(options["to_slug"])
        if source.pk == target.pk:
            raise CommandError("FROM and TO are the same connector.")
        if source.is_saml or target.is_saml:
            raise CommandError(
                "SAML identities are named after their connector and cannot move; people of "
                "a SAML connector are linked again by verified email, or by staff."
            )
        with transaction.atomic():
            leaving = Identity.objects.filter(connector=source)
            keys = list(leaving.values_list("issuer", "subject"))
            moved = leaving.update(connector=target)  # sends no post_save: forgotten here
            for issuer, subject in keys:
                forget_api_identity_key(source.pk, issuer, subject)
        self.stdout.write(
            f"Moved {moved} identit{'y' if moved == 1 else 'ies'} from {source.slug} to "
            f"{target.slug}. They sign in through {target.slug} only from now on; sign-ins "
            f"through {target.slug} are matched by issuer and subject, so its issuer must be "
            f"{source.slug}'s for them to find their accounts."
        )

    def do_rotate_secrets(self, options: dict[str, Any]) -> None:
        count = 0
        with transaction.atomic():
            for connector in Connector.objects.select_for_update():
                try:
                    connector.client_secret_encrypted = reencrypt_secret(
                        connector.client_secret_encrypted
                    )
                    # The SAML key pair's private key is encrypted with the same keys.
                    connector.sp_private_key_encrypted = reencrypt_secret(
                        connector.sp_private_key_encrypted
                    )
                except SecretDecryptionError as exc:
                    raise CommandError(f"{connector.slug}: {exc}") from exc
                connector.save(
                    update_fields=["client_secret_encrypted", "sp_private_key_encrypted"]
                )
                count += 1
            # And the private keys of certificate credentials (private_key_jwt): without
            # them, dropping the old key would break every certificate sign-in at restart.
            keys = 0
            for key in ClientKey.objects.select_for_update().select_related("connector"):
                try:
                    key.private_key_encrypted = reencrypt_secret(key.private_key_encrypted)
                except SecretDecryptionError as exc:
                    raise CommandError(
                        f"{key.connector.slug}: client certificate {key.kid[:12]}: {exc}"
                    ) from exc
                key.save(update_fields=["private_key_encrypted"])
                keys += 1
        self.stdout.write(
            f"Re-encrypted the secrets of {count} connector(s) and {keys} client key(s)."
        )

    def do_certificate(self, options: dict[str, Any]) -> None:
        from ...oidc import credentials

        connector = self._get(options["slug"])
        if connector.client_auth != "private_key_jwt":
            raise CommandError(
                f"{connector.slug} authenticates with a client secret; switch it first: "
                f"sso_connector add {connector.slug} --client-auth private_key_jwt ..."
            )
        if options["replace"] and not options["rotate"]:
            raise CommandError("--replace goes with --rotate.")
        if options["confirm"] is not None:
            if len(options["confirm"].strip()) < MIN_THUMBPRINT_PREFIX:
                raise CommandError(
                    f"Name the certificate: --confirm=THUMBPRINT, at least "
                    f"{MIN_THUMBPRINT_PREFIX} characters of it (--rotate prints it)."
                )
            try:
                key = credentials.finish_rotation(connector, options["confirm"])
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(
                f"{connector.slug} signs with certificate {key.kid} from now on; the old one "
                "is gone (remove it from the IdP)."
            )
            return
        if options["rotate"]:
            waiting = credentials.waiting_key(connector)
            key = credentials.start_rotation(connector, replace=options["replace"])
            if waiting is not None and key.pk == waiting.pk:
                self.stderr.write(
                    f"A new certificate for {connector.slug} was already waiting: here it is "
                    "again (--replace makes another)."
                )
            self.stderr.write(
                f"New certificate for {connector.slug} (the old one keeps signing). Upload it "
                f"to the IdP, then: python manage.py sso_connector certificate {connector.slug} "
                f"--confirm={key.kid[:16]}"  # "=": a thumbprint may start with "-"
            )
        else:
            key = credentials.active_key(connector)
        self.stderr.write(
            f"thumbprint (x5t#S256) {key.kid}; expires {key.not_after.date().isoformat()}"
        )
        self.stdout.write(key.certificate.rstrip("\n"))

    def do_scim_token(self, options: dict[str, Any]) -> None:
        from ...scim.auth import new_token

        connector = self._get(options["slug"])
        token = new_token(connector)
        path = reverse("entra_sso:scim", args=[connector.slug])
        self.stdout.write(
            f"New SCIM token for {connector.slug} (shown once; the old one no longer works):\n"
            f"{token}\n"
            f"Endpoint (Entra ID: Tenant URL): https://<your site>{path}"
        )

    def do_invite(self, options: dict[str, Any]) -> None:
        from ...setup.links import ConnectorIsLive, make_link

        connector = self._get(options["slug"])
        if options["expires"] is not None and options["expires"] <= 0:
            raise CommandError("--expires: give a positive number of seconds.")
        base = str(options["base_url"] or "").rstrip("/")
        if base and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", base):
            raise CommandError(
                "--base-url: give the site's address, like https://shop.example.com."
            )
        try:
            token, link = make_link(
                connector, created_by="sso_connector invite", lifetime=options["expires"]
            )
        except ConnectorIsLive as exc:
            raise CommandError(str(exc)) from exc
        path = reverse("entra_sso:setup", args=[token])
        self.stdout.write(
            f"Setup link for {connector.slug} (shown once; older links no longer work; "
            f"expires {link.expires_at.isoformat()}):\n"
            f"{base or 'https://<your site>'}{path}"
        )

    @staticmethod
    def _get(slug: str) -> Connector:
        connector = Connector.objects.filter(slug=slug).first()
        if connector is None:
            raise CommandError(f"No connector with slug {slug!r}.")
        return connector


def _domains(options: dict[str, Any]) -> list[str]:
    """The ``--domain`` values normalised; a malformed or public mail domain stops the command."""
    from ...public_domains import refuse_public_mail_domain

    domains = []
    try:
        for value in options["domains"]:
            domain = normalize_domain(value)
            refuse_public_mail_domain(domain)
            domains.append(domain)
    except ValidationError as exc:
        raise CommandError(f"--domain: {_first_error(exc)}") from exc
    return domains
