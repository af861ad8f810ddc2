"""The app's configuration: checks, signal receivers and a log filter are set up when ready."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EntraSSOConfig(AppConfig):
    name = "django_entra_sso"
    label = "django_entra_sso"
    verbose_name = _("Enterprise single sign-on")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, receivers  # noqa: F401 - registers checks and receivers
        from .setup import logs

        logs.install()  # setup links' tokens never reach Django's request log
