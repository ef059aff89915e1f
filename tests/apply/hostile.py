"""A hostile proxy in front of the sandbox, on a real socket on 127.0.0.1.

Reads pass through to the sandbox unchanged (so refresh and plan see the real store); every
write is answered by the proxy itself, in one of the shapes a broken proxy, a login page or a
misbehaving store sends, and never reaches the store. `echo` answers with an error that quotes
the request's Authorization header back, as some servers do.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.xseries.sandbox import SandboxStore

WRITES = ("POST", "PUT", "DELETE")

# mode -> (status, headers, body) for every write
SHAPES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "redirect-307": (307, {"Location": "https://login.example.test/sso"}, b""),
    "redirect-301": (301, {"Location": "http://127.0.0.1:9/elsewhere"}, b""),
    "empty-200": (200, {}, b""),
    "empty-201": (201, {}, b""),
    "html": (200, {"Content-Type": "text/html"}, b"<html><body>Sign in</body></html>"),
    "truncated": (200, {"Content-Type": "application/json"}, b'{"data": ["3f2a-'),
    "wrong-shape": (200, {"Content-Type": "application/json"}, b'{"ok": true}'),
    "missing-id": (200, {"Content-Type": "application/json"}, b'{"data": {"name": "x"}}'),
    "null-data": (200, {"Content-Type": "application/json"}, b'{"data": null}'),
    "list-not-object": (200, {"Content-Type": "application/json"}, b"[]"),
}
MODES = tuple(SHAPES)


@contextmanager
def hostile_proxy(store: SandboxStore, mode: str) -> Iterator[str]:
    """Serve the proxy; yields its base URL. `mode` is a key of SHAPES, or `echo`."""
    upstream = httpx.Client(transport=SandboxTransport(store), base_url="http://sandbox.test")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return None

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _forward(self, method: str) -> None:
            body = self._body()
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
            }
            answer = upstream.request(method, self.path, content=body, headers=headers)
            out = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding", "connection")
            }
            self._send(answer.status_code, out, answer.content)

        def _hostile(self) -> None:
            self._body()
            if mode == "echo":
                quoted = self.headers.get("Authorization", "")
                body = json.dumps(
                    {
                        "error": "Forbidden",
                        "message": f"Request with Authorization: {quoted} is not allowed",
                        "details": f"header was {quoted}",
                    }
                ).encode()
                self._send(403, {"Content-Type": "application/json"}, body)
                return
            status, headers, body = SHAPES[mode]
            self._send(status, headers, body)

        def do_GET(self) -> None:
            if mode == "echo-reads":
                self._hostile_read()
                return
            self._forward("GET")

        def _hostile_read(self) -> None:
            quoted = self.headers.get("Authorization", "")
            body = json.dumps({"error": "Bad Gateway", "message": f"upstream saw {quoted}"})
            self._send(400, {"Content-Type": "application/json"}, body.encode())

        def do_POST(self) -> None:
            self._hostile()

        def do_PUT(self) -> None:
            self._hostile()

        def do_DELETE(self) -> None:
            self._hostile()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="hostile-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        upstream.close()
