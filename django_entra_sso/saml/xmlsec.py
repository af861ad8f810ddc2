"""The ``xmlsec1`` program pysaml2 signs, verifies and decrypts with (Debian: ``xmlsec1``)."""

from __future__ import annotations

import shutil

from ..conf import app_settings


class XmlsecMissing(Exception):
    """The ``xmlsec1`` program pysaml2 needs is not installed."""


def xmlsec_binary() -> str:
    configured = app_settings.XMLSEC_BINARY
    found = configured if configured else shutil.which("xmlsec1")
    if not found:
        raise XmlsecMissing(
            "SAML needs the xmlsec1 program (Debian/Ubuntu: apt-get install xmlsec1; "
            "or set ENTRA_SSO_XMLSEC_BINARY)."
        )
    return found
