"""WSGI entry point for the demo OpenID provider."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idp_site.settings")

application = get_wsgi_application()
