"""A real HTTP server on 127.0.0.1 for download tests, scripted to misbehave.

Each path maps to a Route: the body to serve (with its Content-Type, with or without a
Content-Length) and how many of the first requests to answer with 429 (with a
Retry-After when given), with 500, to cut mid-body or to stall mid-body. A route may
redirect (302) instead, or ask for a query string (else 403) or HTTP basic credentials
(else 401). Range requests are honoured (206) unless the route says otherwise; unknown
paths get 404. Every request is recorded (its path without the query), so tests can
count retries and check the Range and Authorization headers the client sent.
"""

import base64

import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RANGE_PATTERN = re.compile(r"bytes=(\d+)-")


@dataclass
class Route:
    body: bytes
    throttles: int = 0  # answer 429 (Retry-After: retry_after) to this many first,
    retry_after: str | None = None
    failures: int = 0  # then 500 to this many requests,
    cuts: int = 0  # then close the connection half-way through this many bodies,
    stalls: int = 0  # then go silent half-way through this many bodies
    stall_s: float = 1.0
    honour_range: bool = True
    content_type: str = "application/octet-stream"
    # Without a Content-Length the body ends where the connection closes, so a cut
    # looks like a complete body to the client.
    content_length: bool = True
    redirect_to: str | None = None  # answer 302 with this Location
    query: str | None = None  # the query string the request must carry
    credentials: str | None = None  # "user:password" of HTTP basic authentication


@dataclass(frozen=True)
class Request:
    path: str
    range: str | None
    arrived_s: float  # time.monotonic() when the server read it
    authorization: str | None = None


class ScriptedHTTPServer(ThreadingHTTPServer):
    """Use as a context manager: serves in a background thread until the block ends."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = {}
        self.requests = []
        self._lock = threading.Lock()
        # A short poll interval lets shutdown() return at once instead of after 0.5 s.
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self.shutdown()
        self.server_close()
        self._thread.join()

    def url(self, path):
        return f"http://127.0.0.1:{self.server_port}{path}"

    def requests_for(self, path):
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def _record(self, path, range_header, authorization):
        """Record a request; return its route (None: unknown) and its scripted fate."""
        with self._lock:
            arrived_s = time.monotonic()
            self.requests.append(Request(path, range_header, arrived_s, authorization))
            route = self.routes.get(path)
            if route is None:
                return None, None
            for fate in ("throttles", "failures", "cuts", "stalls"):
                if getattr(route, fate):
                    setattr(route, fate, getattr(route, fate) - 1)
                    return route, fate
            return route, "serve"


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedHTTPServer

    def do_GET(self):
        range_header = self.headers.get("Range")
        authorization = self.headers.get("Authorization")
        path, _, query = self.path.partition("?")
        route, fate = self.server._record(path, range_header, authorization)
        if route is None:
            self.send_error(404)
            return
        if route.query is not None and query != route.query:
            self.send_error(403)
            return
        if route.credentials is not None:
            expected = base64.b64encode(route.credentials.encode()).decode()
            if authorization != f"Basic {expected}":
                self.send_error(401)
                return
        if route.redirect_to is not None:
            self.send_response(302)
            self.send_header("Location", route.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fate == "throttles":
            self.send_response(429)
            if route.retry_after is not None:
                self.send_header("Retry-After", route.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fate == "failures":
            self.send_error(500)
            return
        start = self._range_start(route, range_header)
        if start and start >= len(route.body):
            self.send_error(416)
            return
        body = route.body[start:]
        self.send_response(206 if start else 200)
        if start:
            end = len(route.body) - 1
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(route.body)}")
        self.send_header("Content-Type", route.content_type)
        if route.content_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fate == "serve":
            self.wfile.write(body)
            return
        self.wfile.write(body[: len(body) // 2])
        if fate == "stalls":
            time.sleep(route.stall_s)
        # Closing now is a transfer cut mid-way (seen as one only with a Content-Length).
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    @staticmethod
    def _range_start(route, range_header):
        match = RANGE_PATTERN.fullmatch(range_header or "")
        return int(match[1]) if match and route.honour_range else 0

    def log_message(self, format, *args):
        """Stay quiet: tests read self.server.requests instead of a stderr log."""
