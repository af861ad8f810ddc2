"""A small Microsoft Graph for the group-overage tests, served on a loopback port in a thread.

It answers the two calls the app makes for a signed-in person whose groups did
not fit in the token: ``GET /v1.0/me/transitiveMemberOf/microsoft.graph.group``
(paged with ``@odata.nextLink``, honouring ``$top`` up to Graph's 999 unless
``page_size`` says otherwise) and ``POST /v1.0/me/checkMemberGroups`` (at most 20
IDs, as Graph). Both want ``Authorization: Bearer <token>`` with a token in
``access_tokens``; anything else gets Graph's 401. It lets tests misbehave on
purpose: faults per path or per page (status codes, delays, garbage), endless
paging, and next links to another origin. It counts every request by path and
keeps the Authorization headers it received.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakeidp import Fault

MEMBER_OF = "/v1.0/me/transitiveMemberOf/microsoft.graph.group"
CHECK_MEMBER_GROUPS = "/v1.0/me/checkMemberGroups"
#: Graph's own limits: the largest page ``$top`` may ask for, and IDs per check.
MAX_TOP = 999
CHECK_LIMIT = 20


def graph_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class FakeGraph:
    def __init__(self) -> None:
        #: The signed-in person's groups (object IDs), in the order pages list them.
        self.groups: list[str] = []
        #: Bearer tokens Graph accepts.
        self.access_tokens: set[str] = set()
        #: Objects per page; ``None``: ``$top`` (default 100, at most 999), as Graph.
        self.page_size: int | None = None
        #: Every page has a next link, forever.
        self.endless = False
        #: Where next links point; ``None``: this server.
        self.next_link_base: str | None = None
        #: Faults for every request to a path, and for one page (0, 1, …) of the listing.
        self.faults: dict[str, Fault] = {}
        self.page_faults: dict[int, Fault] = {}
        self.calls: Counter[str] = Counter()
        self.authorizations: list[str] = []
        #: The ``groupIds`` of each checkMemberGroups request.
        self.checked: list[list[str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- answers --------------------------------------------------------------------
    def member_of_page(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if query.get("$select") != "id":
            return 400, graph_error("Request_BadRequest", "expected $select=id")
        size = self.page_size or min(int(query.get("$top", "100")), MAX_TOP)
        start = int(query.get("$skiptoken", "0"))
        page = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups(id)",
            "value": [
                {"@odata.type": "#microsoft.graph.group", "id": group_id}
                for group_id in self.groups[start : start + size]
            ],
        }
        if self.endless or start + size < len(self.groups):
            base = self.next_link_base or self.url
            top = f"&$top={query['$top']}" if "$top" in query else ""
            page["@odata.nextLink"] = f"{base}{MEMBER_OF}?$select=id{top}&$skiptoken={start + size}"
        return 200, page

    def check_member_groups(self, body: Any) -> tuple[int, dict[str, Any]]:
        ids = body.get("groupIds") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids or len(ids) > CHECK_LIMIT:
            return 400, graph_error("Request_BadRequest", "groupIds: 1 to 20 IDs")
        self.checked.append(list(ids))
        asked = {i.lower() for i in ids if isinstance(i, str)}
        return 200, {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)",
            # Graph's own spelling of the IDs (lower case), whatever the request's.
            "value": [g.lower() for g in self.groups if g.lower() in asked],
        }

    # -- HTTP -----------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        graph = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(
                self, status: int, payload: Any, content_type: str = "application/json"
            ) -> None:
                body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _fault(self, fault: Fault | None) -> bool:
                if fault is None:
                    return False
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.status == 200 and fault.body is None:
                    return False
                self._send(fault.status, fault.body or b"{}", fault.content_type)
                return True

            def _authorized(self) -> bool:
                auth = self.headers.get("Authorization", "")
                graph.authorizations.append(auth)
                token = auth[7:] if auth.startswith("Bearer ") else ""
                if token in graph.access_tokens:
                    return True
                self._send(401, graph_error("InvalidAuthenticationToken", "Access token is empty."))
                return False

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                graph.calls[parts.path] += 1
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if self._fault(graph.faults.get(parts.path)) or not self._authorized():
                    return
                if parts.path != MEMBER_OF:
                    self._send(404, graph_error("Request_ResourceNotFound", parts.path))
                    return
                page = int(query.get("$skiptoken", "0")) // (
                    graph.page_size or min(int(query.get("$top", "100")), MAX_TOP)
                )
                if self._fault(graph.page_faults.get(page)):
                    return
                self._send(*graph.member_of_page(query))

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                graph.calls[path] += 1
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if self._fault(graph.faults.get(path)) or not self._authorized():
                    return
                if path != CHECK_MEMBER_GROUPS:
                    self._send(404, graph_error("Request_ResourceNotFound", path))
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                self._send(*graph.check_member_groups(body))

        return Handler
