"""A real DNS server on loopback that answers TXT queries from a table the test controls.

Domain verification is tested against this server rather than a mocked
resolver, so dnspython's real parsing, rcode handling and timeouts are what the
tests see. It answers on UDP and TCP on the same port (dnspython retries a
truncated UDP answer over TCP) and can be told to fail (SERVFAIL) or to stay
silent (no reply at all, so the client times out).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from dnslib import CNAME, QTYPE, RCODE, RR, TXT, DNSError, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

Mode = Literal["answer", "fail", "silent"]

# Binding UDP on a free port and then TCP on the same number can lose a race with
# another process; a few tries are plenty.
_BIND_ATTEMPTS = 20


def _normalize(name: str) -> str:
    return name.strip().lower().removesuffix(".")


class _TableResolver(BaseResolver):
    """Answers from the server's table; dnslib calls this from one thread per query."""

    def __init__(self, server: LoopbackDNSServer) -> None:
        self._server = server

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        name = _normalize(str(request.q.qname))
        mode = self._server.mode
        if mode == "silent" or name in self._server.silent_names():
            # dnslib's handler catches DNSError and sends nothing back: a server
            # that swallowed the query.
            raise DNSError("silent mode: no reply")
        reply = request.reply()
        if mode == "fail" or name in self._server.failing_names():
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        target = self._server.alias_of(name)
        if target is not None and request.q.qtype in (QTYPE.TXT, QTYPE.ANY, QTYPE.CNAME):
            # As a recursive resolver answers: the CNAME, then the target's records.
            reply.add_answer(RR(request.q.qname, QTYPE.CNAME, rdata=CNAME(target + "."), ttl=0))
            for strings in self._server.records(target) or []:
                reply.add_answer(RR(target + ".", QTYPE.TXT, rdata=TXT(list(strings)), ttl=0))
            return reply
        records = self._server.records(name)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype in (QTYPE.TXT, QTYPE.ANY):
            for strings in records:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(list(strings)), ttl=0))
        # Any other type at a known name: NOERROR with no answer (dnspython's NoAnswer).
        return reply


class LoopbackDNSServer:
    """A DNS server on 127.0.0.1 (UDP and TCP) with TXT records tests change while it runs.

    ``mode``: ``"answer"`` (from the table; unknown names are NXDOMAIN), ``"fail"``
    (SERVFAIL to everything) or ``"silent"`` (no reply to anything).
    """

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.mode: Mode = "answer"
        self._lock = threading.Lock()
        self._table: dict[str, list[tuple[str, ...]]] = {}
        self._failing: set[str] = set()
        self._silent: set[str] = set()
        self._aliases: dict[str, str] = {}
        self._servers: list[DNSServer] = []
        self._threads: list[threading.Thread] = []
        self.port = 0

    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"``, as ``ENTRA_SSO_DNS_NAMESERVERS`` takes it."""
        return f"{self.host}:{self.port}"

    def set_txt(self, name: str, *values: str | Sequence[str]) -> None:
        """Publish TXT records at ``name``, replacing its earlier ones.

        Each value is one record: a string, or a sequence of strings for a record
        split into several character-strings. No values: the name exists but has
        no TXT record.
        """
        records = [(value,) if isinstance(value, str) else tuple(value) for value in values]
        with self._lock:
            self._table[_normalize(name)] = records

    def set_cname(self, name: str, target: str) -> None:
        """Make ``name`` an alias of ``target`` (whose TXT records ``set_txt`` publishes)."""
        with self._lock:
            self._aliases[_normalize(name)] = _normalize(target)

    def alias_of(self, name: str) -> str | None:
        with self._lock:
            return self._aliases.get(name)

    def fail_at(self, name: str) -> None:
        """Answer SERVFAIL for ``name`` only, whatever the mode."""
        with self._lock:
            self._failing.add(_normalize(name))

    def silent_at(self, name: str) -> None:
        """Never answer queries for ``name``, whatever the mode."""
        with self._lock:
            self._silent.add(_normalize(name))

    def clear(self) -> None:
        """Forget every record and per-name failure and answer normally again."""
        with self._lock:
            self._table.clear()
            self._failing.clear()
            self._silent.clear()
            self._aliases.clear()
        self.mode = "answer"

    def records(self, name: str) -> list[tuple[str, ...]] | None:
        with self._lock:
            records = self._table.get(name)
            return None if records is None else list(records)

    def failing_names(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._failing)

    def silent_names(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._silent)

    def start(self) -> None:
        if self._servers:
            raise RuntimeError("The DNS server is already running.")
        resolver = _TableResolver(self)
        # dnslib prints every query and reply unless given a logger that doesn't.
        logger = DNSLogger(prefix=False, logf=lambda _line: None)
        for _attempt in range(_BIND_ATTEMPTS):
            udp = DNSServer(resolver, address=self.host, port=0, logger=logger)
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(resolver, address=self.host, port=port, tcp=True, logger=logger)
            except OSError:
                udp.server.server_close()
                continue
            break
        else:
            raise RuntimeError("No loopback port was free for both UDP and TCP.")
        self.port = port
        self._servers = [udp, tcp]
        for server in self._servers:
            # A short poll interval: stop() waits for it.
            thread = threading.Thread(
                target=server.server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"dns-{self.port}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        for server in self._servers:
            server.server.shutdown()
            server.server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers = []
        self._threads = []


@contextlib.contextmanager
def running_dns_server() -> Iterator[LoopbackDNSServer]:
    """A started ``LoopbackDNSServer``, stopped on the way out."""
    server = LoopbackDNSServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
