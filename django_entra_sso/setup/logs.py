"""Setup tokens kept out of the site's own logs.

A setup link's token is in its URL, and Django logs the path of every answer
with a 4xx or 5xx status (``django.request``; ``django.server`` under runserver):
a customer's mistyped form or a reload past the rate limit would write a working
token to the log. This filter, on those two loggers, replaces the token with
``…`` in the message and its arguments. The web server's own access log is the
site's to configure (README).
"""

from __future__ import annotations

import logging
import re
from typing import Any

#: ``…/setup/<token>/``: the token is whatever stands between the two slashes.
_SETUP_PATH = re.compile(r"(/setup/)[^/\s?#\"']+")
LOGGERS = ("django.request", "django.server")


def redact(value: Any) -> Any:
    return _SETUP_PATH.sub(r"\1…", value) if isinstance(value, str) else value


class RedactSetupTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: redact(value) for key, value in record.args.items()}
        return True


def install() -> None:
    """Add the filter to Django's request loggers, once (``AppConfig.ready``)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSetupTokens) for f in logger.filters):
            logger.addFilter(RedactSetupTokens())
