"""Fixtures for the plan tests: a sandbox store (the test double), a client on it, a state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State

TOKEN = "plan-test-token-6f1e2d"


@pytest.fixture
def store() -> Iterator[SandboxStore]:
    sandbox = SandboxStore(":memory:", token=TOKEN, rate_limit=None)
    yield sandbox
    sandbox.close()


@pytest.fixture
def client(store: SandboxStore) -> Iterator[Client]:
    with Client("http://sandbox.test", TOKEN, transport=SandboxTransport(store)) as c:
        yield c


@pytest.fixture
def state() -> Iterator[State]:
    with State(":memory:") as s:
        yield s
