"""Fixtures for the apply tests: a sandbox store (the test double), a client on it, a state file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.providers.asgi import SandboxTransport, serve_in_thread
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State

from .helpers import TOKEN, Cli, Harness


@pytest.fixture
def store() -> Iterator[SandboxStore]:
    sandbox = SandboxStore(
        ":memory:", token=TOKEN, rate_limit=None, seed=7, image_processing_seconds=0.01
    )
    yield sandbox
    sandbox.close()


@pytest.fixture
def client(store: SandboxStore) -> Iterator[Client]:
    # Short backoffs: injected faults are retried quickly, so fault tests stay fast.
    with Client(
        "http://sandbox.test",
        TOKEN,
        transport=SandboxTransport(store),
        backoff_base=0.005,
        backoff_cap=0.05,
    ) as c:
        yield c


@pytest.fixture
def state(tmp_path: Path) -> Iterator[State]:
    with State(tmp_path / "state.db") as s:
        yield s


@pytest.fixture
def harness(store: SandboxStore, client: Client, state: State) -> Harness:
    return Harness(store, client, state)


@pytest.fixture
def cli(tmp_path: Path, store: SandboxStore) -> Iterator[Cli]:
    """The `catalog` command in a subprocess, against `store` over a real socket."""
    with serve_in_thread(store) as url:
        yield Cli(tmp_path, url)
