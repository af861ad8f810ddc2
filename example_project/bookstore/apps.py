from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BookstoreConfig(AppConfig):
    name = "bookstore"
    verbose_name = _("Bookstore")
    default_auto_field = "django.db.models.BigAutoField"
