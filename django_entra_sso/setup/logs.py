"""Setup tokens kept out of the site's own logs.

A setup link's token is in its URL, and Django logs the path of every answer
with a 4xx or 5xx status (``django.request``; ``django.server`` under runserver):
a customer's mistyped form or a reload past the rate limit would write a working
token to the log. This filter, on those two loggers, replaces the token with
``…`` in the message and its arguments. A 500 is also mailed to ``ADMINS`` with
the whole request and the traceback's variables: the record's request is swapped
for a copy whose path and ``META`` lack the token, reported through
``SetupTokenReporterFilter``, which hides every variable that shows it. The web
server's own access log is the site's to configure (README).
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

#: ``…/setup/<token>/``: the token is whatever stands between the two slashes.
_SETUP_PATH = re.compile(r"(/setup/)[^/\s?#\"']+")
LOGGERS = ("django.request", "django.server")


def redact(value: Any) -> Any:
    return _SETUP_PATH.sub(r"\1…", value) if isinstance(value, str) else value


class SetupTokenReporterFilter(SafeExceptionReporterFilter):
    """Django's error report of a setup page, with its token nowhere in it."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(self.token, "…")
        try:
            shown = repr(value)
        except Exception:  # noqa: BLE001 - a report must not fail on a strange object
            return self.cleansed_substitute
        return self.cleansed_substitute if self.token in shown else value

    def get_safe_request_meta(self, request: Any) -> dict[str, Any]:
        return {k: self.scrub(v) for k, v in super().get_safe_request_meta(request).items()}

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        return [
            (name, self.scrub(value))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]


def reported_request(request: Any) -> Any:
    """``request`` as an error report may show it: a copy without the setup token."""
    path = getattr(request, "path", "")
    match = _SETUP_PATH.search(path) if isinstance(path, str) else None
    if match is None:
        return request
    token = path[match.end(1) : match.end()]
    shown = copy.copy(request)
    shown.path = redact(request.path)
    shown.path_info = redact(request.path_info)
    shown.META = {
        key: value.replace(token, "…") if isinstance(value, str) else value
        for key, value in request.META.items()
    }
    shown.exception_reporter_filter = SetupTokenReporterFilter(token)
    return shown


class RedactSetupTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is not None:
            record.request = reported_request(request)
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
