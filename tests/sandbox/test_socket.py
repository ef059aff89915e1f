"""The same store over a real socket on 127.0.0.1 (uvicorn in a thread)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx
import pytest

from reconciler.providers.asgi import serve_forever
from reconciler.providers.xseries.sandbox import SandboxStore

from .builders import GIF, ok, simple, upload, wait_until_uploaded


def _client(url: str, *, timeout: float = 5.0) -> httpx.Client:
    return httpx.Client(
        base_url=url, headers={"Authorization": "Bearer sandbox-token"}, timeout=timeout
    )


def test_served_over_a_socket_with_the_same_answers(sandbox_url: str) -> None:
    assert sandbox_url.startswith("http://127.0.0.1:")
    with _client(sandbox_url) as client:
        product = simple(client, "Mug", "MUG")
        found = ok(client.get("/api/2.0/products", params={"sku": "MUG"}))
        assert [p["id"] for p in found["data"]] == [product]
        duplicate = client.post(
            "/api/2.0/products", json={"name": "Cup", "sku": "MUG", "price_including_tax": 1}
        )
        assert (
            duplicate.status_code == 422
            and duplicate.json()["fields"]["sku_existing_id"] == product
        )
        assert client.get("/api/2.0/nothing").headers["content-type"] == "application/json"
        assert httpx.get(f"{sandbox_url}/api/2.0/products").status_code == 401


def test_image_urls_use_the_socket_base_url_and_serve_bytes(sandbox_url: str) -> None:
    with _client(sandbox_url) as client:
        product = simple(client, "Mug", "MUG")
        image = ok(upload(client, product, GIF), 201)["data"]["id"]
        wait_until_uploaded(client, image)
        url = ok(client.get(f"/api/2.0/products/{product}"))["data"]["images"][0]["url"]
    assert url.startswith(sandbox_url + "/")
    assert httpx.get(url).content == GIF


def test_commit_then_timeout_over_a_socket(sandbox: SandboxStore, sandbox_url: str) -> None:
    sandbox.set_faults(timeout_rate=1.0)
    with _client(sandbox_url, timeout=0.3) as client:
        try:
            client.post("/api/2.0/brands", json={"name": "Acme"})
        except httpx.ReadTimeout:
            pass
        else:
            raise AssertionError("the response should have been held back past the timeout")
    sandbox.set_faults(timeout_rate=0.0)
    with _client(sandbox_url) as client:
        assert [b["name"] for b in ok(client.get("/api/2.0/brands"))["data"]] == ["Acme"]
    assert sandbox.stats()["faults_injected"] == 1


def test_concurrent_clients_over_the_socket(sandbox: SandboxStore, sandbox_url: str) -> None:
    errors: list[BaseException] = []

    def create(n: int) -> None:
        try:
            with _client(sandbox_url) as client:
                for k in range(5):
                    simple(client, f"P{n}-{k}", f"P{n}-{k}")
        except BaseException as error:  # collected and re-raised in the test thread
            errors.append(error)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with _client(sandbox_url) as client:
        assert len(ok(client.get("/api/2.0/products"))["data"]) == 20
    assert sandbox.stats()["requests"]["by_route"]["POST /api/2.0/products"] == 20


def test_serve_forever_accepts_a_connection_the_moment_it_announces_its_url(
    tmp_path: Path,
) -> None:
    """`catalog sandbox serve` prints its URL from `on_start`; a client reading it connects at
    once. Connecting inside `on_start` (before uvicorn runs) is refused unless the socket is
    already listening."""
    store = SandboxStore(tmp_path / "s.db", token="sandbox-token")
    outcome: list[str] = []

    def on_start(base_url: str) -> None:
        host, port = base_url.removeprefix("http://").rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
            outcome.append("connected")
        except OSError as error:
            outcome.append(f"refused: {error}")
        finally:
            raise KeyboardInterrupt  # stop before serving: the connection was the test

    with pytest.raises(KeyboardInterrupt):
        serve_forever(store, host="127.0.0.1", port=0, on_start=on_start)
    assert outcome == ["connected"]
