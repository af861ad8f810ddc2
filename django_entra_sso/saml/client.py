"""The one place that configures pysaml2: a connector as a SAML service provider.

The SP's entity ID is the absolute URL of its metadata (``saml_metadata``), so
what the IdP is told and what the IdP audience-checks are the same string. The
IdP is the one entity of the connector's metadata; signatures are checked
against its certificates only. Our requests are signed with RSA-SHA256 (logout
messages must be, by the SAML profiles; AuthnRequests are, because some IdPs
want it without saying so). XML signatures and decryption are done by
pysaml2 with Debian's ``xmlsec1`` (``ENTRA_SSO_XMLSEC_BINARY``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from subprocess import PIPE, Popen, TimeoutExpired
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.sigver import (
    ENC_KEY_CLASS,
    CryptoBackendXmlSec1,
    DecryptError,
    XmlsecError,
    make_temp,
)
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from .. import links
from ..conf import app_settings
from .keys import key_files
from .metadata import IdPMetadata
from .xmlsec import XmlsecMissing, xmlsec_binary

if TYPE_CHECKING:
    from ..models import Connector

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SPEndpoints:
    """This site's SAML URLs for one connector, absolute: what the IdP is told."""

    entity_id: str
    acs: str
    sls: str

    @classmethod
    def of(cls, request: HttpRequest, connector: Connector) -> SPEndpoints:
        return cls(
            entity_id=links.saml_metadata_uri(request, connector),
            acs=links.saml_acs_uri(request, connector),
            sls=links.saml_sls_uri(request, connector),
        )


def sp_config(
    connector: Connector,
    endpoints: SPEndpoints,
    idp: IdPMetadata,
    *,
    key_path: str,
    cert_path: str,
    allow_unsolicited: bool = False,
    signs: bool = False,
) -> SPConfig:
    settings: dict[str, Any] = {
        "entityid": endpoints.entity_id,
        "xmlsec_binary": xmlsec_binary(),
        "metadata": {"inline": [idp.xml]},
        "cert_file": cert_path,
        # Decryption: xmlsec1 reads the key file itself.
        "encryption_keypairs": [{"key_file": key_path, "cert_file": cert_path}],
        "accepted_time_diff": app_settings.CLOCK_LEEWAY,
        "allow_unknown_attributes": True,
        "service": {
            "sp": {
                "name": connector.name,
                "endpoints": {
                    "assertion_consumer_service": [(endpoints.acs, BINDING_HTTP_POST)],
                    "single_logout_service": [
                        (endpoints.sls, BINDING_HTTP_REDIRECT),
                        (endpoints.sls, BINDING_HTTP_POST),
                    ],
                },
                "allow_unsolicited": allow_unsolicited,
                # Always signed: some IdPs (ADFS) check signatures when the SP metadata
                # has a signing certificate without saying so in their own metadata.
                "authn_requests_signed": True,
                "logout_requests_signed": True,
                "logout_responses_signed": True,
                "want_assertions_signed": False,
                "want_response_signed": False,
                "want_assertions_or_response_signed": True,
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
            }
        },
    }
    if signs:
        # Given a key_file, pysaml2 loads (and validates) the RSA key twice per client,
        # about 50 ms each: only for the enveloped signatures of the HTTP-POST binding.
        # Redirect-binding messages are signed by ``redirect.sign``.
        settings["key_file"] = key_path
    config = SPConfig()
    config.load(settings)
    return config


class XmlsecTimeout(Exception):
    """``xmlsec1`` ran past ``ENTRA_SSO_XMLSEC_TIMEOUT`` and was stopped.

    Not an ``XmlsecError``: pysaml2 treats those as "this certificate did not verify" and
    tries the next one (another full timeout each), losing the reason on the way.
    """


def _stop(run: Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended in the meantime
        os.killpg(run.pid, signal.SIGKILL)
    try:
        run.communicate(timeout=5)
    except TimeoutExpired:
        logger.error("xmlsec1 (pid %s) did not end after SIGKILL", run.pid)


def timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a stopped ``xmlsec1``: pysaml2 wraps the backend's errors
    (``SignatureError``, ``DecryptError``, its own), so the chain is searched."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, XmlsecTimeout):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class _XmlSec1(CryptoBackendXmlSec1):  # type: ignore[misc]
    """pysaml2's xmlsec1 backend, asking ``xmlsec1 --version`` once per process, and
    stopping an ``xmlsec1`` that runs too long.

    The stock backend starts ``xmlsec1 --version`` twice before each signature check
    (three processes where one does the work); the answer never changes. It also waits
    for ``xmlsec1`` without a bound, so a document that makes it work for minutes (or a
    hung process) would hold the request's worker as long.
    """

    _versions: dict[str, str] = {}

    def _run_xmlsec(self, com_list: list[str], extra_args: list[str]) -> tuple[str, str, bytes]:
        """pysaml2's ``_run_xmlsec`` with a timeout; the same arguments and answer."""
        with tempfile.NamedTemporaryFile(suffix=".xml") as output:
            command = [*com_list, "--output", output.name]
            if self.version_nums >= (1, 3):
                command.append("--lax-key-search")
            command += extra_args
            timeout = app_settings.XMLSEC_TIMEOUT
            # The configured xmlsec1 with the arguments pysaml2 builds; no shell.
            # A session of its own, so that stopping it stops whatever it started (a
            # wrapper script's children would otherwise hold the pipes open).
            with Popen(  # noqa: S603
                command, stdout=PIPE, stderr=PIPE, start_new_session=True
            ) as run:
                try:
                    out, err = run.communicate(timeout=timeout)
                except TimeoutExpired as exc:
                    _stop(run)
                    raise XmlsecTimeout(f"xmlsec1 stopped after {timeout} s") from exc
            if run.returncode != 0:
                raise XmlsecError(
                    f"returncode={run.returncode}\nerror={err.decode(errors='replace')}"
                    f"\noutput={out.decode(errors='replace')}"
                )
            output.seek(0)
            return out.decode(errors="replace"), err.decode(errors="replace"), output.read()

    def decrypt(self, enctext: str, key_file: str) -> str:
        """As pysaml2's, with xmlsec1 allowed no ``CipherReference`` outside the document.

        ``messages.refuse_outside_references`` refuses such documents (and
        ``RetrievalMethod`` URIs outside them) first; this is the second line.
        (``--enabled-retrieval-uris same-doc`` also refused the IdPs' own ``#id``
        key references with xmlsec1 1.2.37, so it is not set.)
        """
        tmp = make_temp(enctext, decode=False, delete_tmpfiles=self.delete_tmpfiles)
        command = [
            self.xmlsec,
            "--decrypt",
            "--privkey-pem",
            key_file,
            "--id-attr:Id",
            ENC_KEY_CLASS,
            "--enabled-cipher-reference-uris",
            "empty,same-doc",
        ]
        try:
            _stdout, _stderr, output = self._run_xmlsec(command, [tmp.name])
        except XmlsecError as exc:
            raise DecryptError(command) from exc
        return str(output.decode("utf-8"))

    @property
    def version(self) -> str:
        known = self._versions.get(self.xmlsec)
        if known is None:
            known = self._versions[self.xmlsec] = str(CryptoBackendXmlSec1.version.fget(self))
        return known


class SAMLConfigError(Exception):
    """pysaml2 could not be set up with this connector's metadata or keys."""


@contextmanager
def saml_client(
    request: HttpRequest,
    connector: Connector,
    idp: IdPMetadata,
    *,
    allow_unsolicited: bool = False,
    signs: bool = False,
) -> Iterator[Saml2Client]:
    """A pysaml2 client for one operation; the key files live as long as the block."""
    endpoints = SPEndpoints.of(request, connector)
    with key_files(connector) as (key_path, cert_path):
        try:
            config = sp_config(
                connector,
                endpoints,
                idp,
                key_path=key_path,
                cert_path=cert_path,
                allow_unsolicited=allow_unsolicited,
                signs=signs,
            )
            client = Saml2Client(config)
            if type(client.sec.crypto) is CryptoBackendXmlSec1:
                client.sec.crypto.__class__ = _XmlSec1
        except XmlsecMissing:
            raise
        except Exception as exc:
            raise SAMLConfigError(f"{connector.slug}: pysaml2 refused the set-up: {exc!r}") from exc
        yield client


def sp_metadata_xml(request: HttpRequest, connector: Connector) -> str:
    """This connector's SP metadata: entity ID, ACS, SLS and the SP certificate."""
    from saml2.metadata import entity_descriptor

    endpoints = SPEndpoints.of(request, connector)
    with key_files(connector) as (key_path, cert_path):
        settings: dict[str, Any] = {
            "entityid": endpoints.entity_id,
            # No xmlsec_binary: given one, pysaml2 runs it to list every algorithm it
            # knows (MD5 and SHA-1 too) into the metadata; we accept SHA-2 only.
            "key_file": key_path,
            "cert_file": cert_path,
            "encryption_keypairs": [{"key_file": key_path, "cert_file": cert_path}],
            "service": {
                "sp": {
                    "name": connector.name,
                    "endpoints": {
                        "assertion_consumer_service": [(endpoints.acs, BINDING_HTTP_POST)],
                        "single_logout_service": [
                            (endpoints.sls, BINDING_HTTP_REDIRECT),
                            (endpoints.sls, BINDING_HTTP_POST),
                        ],
                    },
                    "authn_requests_signed": True,
                    "want_assertions_or_response_signed": True,
                }
            },
        }
        config = SPConfig()
        config.load(settings)
        return str(entity_descriptor(config))
