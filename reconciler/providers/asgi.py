"""Two ways to reach a sandbox store, running the same ASGI app: `SandboxTransport` for a sync
`httpx.Client` in the same process (no socket), and `serve_in_thread` for a real socket.

They serve any platform's sandbox store that builds its own ASGI app (`ServedStore`: the X-Series
and the R-Series sandbox), so every sandbox shares this plumbing; it imports no provider."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import anyio
import httpx
import uvicorn
from anyio.from_thread import BlockingPortal
from starlette.types import ASGIApp, Receive, Scope, Send

# Set in the ASGI scope by the in-process transport: a dropped response then becomes an
# immediate marker the transport turns into `httpx.ReadTimeout`, instead of a held socket.
IN_PROCESS_KEY = "sandbox.in_process"
DROPPED_HEADER = "x-sandbox-dropped"


class ServedStore(Protocol):
    """A sandbox store that builds its own ASGI app (another platform's sandbox)."""

    def build_app(self) -> ASGIApp: ...


def _app(store: ServedStore) -> ASGIApp:
    return store.build_app()


class SandboxTransport(httpx.BaseTransport):
    """Serves requests from the sandbox app in this process.

    httpx's `ASGITransport` speaks to the app; an anyio `BlockingPortal` on one daemon thread
    runs it for sync callers, so requests from many threads run concurrently in one event
    loop (injected latency overlaps, as it would on a server). A commit-then-timeout fault
    raises `httpx.ReadTimeout` after the write has been committed.
    """

    def __init__(self, store: ServedStore) -> None:
        self.store = store
        app = _app(store)

        async def in_process(scope: Scope, receive: Receive, send: Send) -> None:
            await app({**scope, IN_PROCESS_KEY: True}, receive, send)

        # App exceptions already became JSON 500s inside the app; do not re-raise them here.
        self._asgi = httpx.ASGITransport(app=in_process, raise_app_exceptions=False)
        self._lock = threading.Lock()
        self._portal: BlockingPortal | None = None
        self._thread: threading.Thread | None = None

    def _running_portal(self) -> BlockingPortal:
        with self._lock:
            if self._portal is None:
                started = threading.Event()
                holder: list[BlockingPortal] = []

                async def serve() -> None:
                    async with BlockingPortal() as portal:
                        holder.append(portal)
                        started.set()
                        await portal.sleep_until_stopped()

                # A daemon thread: a client that is never closed must not keep Python alive.
                self._thread = threading.Thread(
                    target=anyio.run, args=(serve,), name="sandbox-transport", daemon=True
                )
                self._thread.start()
                started.wait()
                self._portal = holder[0]
            return self._portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        status, headers, body = self._running_portal().call(self._serve, request)
        if any(name.lower() == DROPPED_HEADER.encode() for name, _ in headers):
            raise httpx.ReadTimeout(
                "The sandbox committed the write and dropped the response (injected fault)",
                request=request,
            )
        return httpx.Response(status, headers=headers, content=body)

    async def _serve(self, request: httpx.Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        response = await self._asgi.handle_async_request(request)
        body = await response.aread()
        return response.status_code, response.headers.raw, body

    def close(self) -> None:
        with self._lock:
            portal, thread = self._portal, self._thread
            self._portal = self._thread = None
        if portal is not None:
            portal.call(portal.stop)
        if thread is not None:
            thread.join()


@contextmanager
def serve_in_thread(store: ServedStore, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `store` over HTTP from a background thread; yields the base URL (`port=0` picks
    a free port). The server stops when the block ends."""
    config = uvicorn.Config(
        _app(store),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # Held commit-then-timeout responses must not delay shutdown for long.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="sandbox-server", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the sandbox server could not start on {host}:{port}")
        time.sleep(0.005)
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def serve_forever(
    store: ServedStore,
    *,
    host: str = "127.0.0.1",
    port: int = 8787,
    on_start: Callable[[str], None] = lambda base_url: None,
) -> None:
    """Serve `store` in this thread until interrupted. The socket is bound and listening before
    `on_start` is called with the base URL, so `port=0` reports the port actually chosen and a
    client may connect at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    config = uvicorn.Config(
        _app(store), log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    # Listening before the address is announced: a client that connects the moment it reads
    # the URL is queued by the kernel, never refused while the server starts up.
    sock.listen(config.backlog)
    on_start(f"http://{shown}:{bound}")
    uvicorn.Server(config).run(sockets=[sock])
