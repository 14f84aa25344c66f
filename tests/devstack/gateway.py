"""The deployed HTTP API's routes on loopback: each request becomes a payload-2.0 event for the receive handler."""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from devstack.lambda_events import LambdaContext, webhook_event

__all__ = ["LocalGateway"]

log = logging.getLogger(__name__)
_ROUTE = re.compile(r"^/webhooks/(?P<source>[^/]+)$")
_MAX_BODY = 10 * 1024 * 1024
"""API Gateway HTTP APIs refuse bodies over 10 MB before any function runs."""

type Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class LocalGateway:
    """``POST /webhooks/{source}`` on ``http://127.0.0.1:{port}``, invoking ``handler`` like API Gateway does.

    Requests are read and answered concurrently, but the handler runs one invocation at a time, as
    in one Lambda container: Powertools' resolver keeps the current event in module state, so two
    invocations at once would answer one request with the other's event.
    """

    def __init__(self, handler: Handler, *, port: int = 3000) -> None:
        gateway = self

        class _Request(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                gateway._serve(self, "POST")

            def do_GET(self) -> None:
                gateway._serve(self, "GET")

            def do_PUT(self) -> None:
                gateway._serve(self, "PUT")

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("gateway: " + format, *args)

        self._handler = handler
        self._container = threading.Lock()
        """Held for each invocation: the one warm container every local request goes to."""
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Request)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-gateway", daemon=True)

    @property
    def url(self) -> str:
        """The base URL (what ``PUBLIC_BASE_URL`` is locally)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self._reply(request, 413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}')
            return
        body = request.rfile.read(length) if length else b""
        match = _ROUTE.match(parts.path)
        if method != "POST" or match is None:
            self._reply(request, 404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
            return
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        event = webhook_event(match["source"], headers, body, query=parts.query)
        with self._container:
            response = self._handler(event, LambdaContext(function_name="receive"))
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else str(payload).encode()
        self._reply(request, int(response.get("statusCode", 200)), dict(response.get("headers") or {}), data)

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() not in {"content-length", "connection"}:
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
