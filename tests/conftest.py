"""Shared fixtures. The sandbox store is the fake every test talks to (see
reconciler.providers.xseries.sandbox)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.providers.asgi import SandboxTransport, serve_in_thread
from reconciler.providers.rseries.sandbox import RSeriesStore
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State
from tests.fakes import TOKEN

SANDBOX_TOKEN = "sandbox-token"


@pytest.fixture
def store() -> Iterator[SandboxStore]:
    """The store the plan and apply tests talk to: rate limit off, seeded faults, images
    processed almost at once (defined once, for every folder)."""
    sandbox = SandboxStore(
        ":memory:", token=TOKEN, rate_limit=None, seed=7, image_processing_seconds=0.01
    )
    yield sandbox
    sandbox.close()


@pytest.fixture
def client(store: SandboxStore) -> Iterator[Client]:
    """A client on `store` in process. Short backoffs: injected faults are retried quickly."""
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
    """A state file of the test's own."""
    with State(tmp_path / "state.db") as s:
        yield s


@pytest.fixture
def sandbox() -> Iterator[SandboxStore]:
    """A fresh in-memory store: rate limit off, images processed almost at once."""
    store = SandboxStore(
        token=SANDBOX_TOKEN, rate_limit=None, image_processing_seconds=0.01, seed=1234
    )
    yield store
    store.close()


@pytest.fixture
def sandbox_client(sandbox: SandboxStore) -> Iterator[httpx.Client]:
    """An httpx client talking to `sandbox` in process, bearer token set."""
    with httpx.Client(
        transport=SandboxTransport(sandbox),
        base_url="http://sandbox.invalid",
        headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
    ) as client:
        yield client


@pytest.fixture
def sandbox_url(sandbox: SandboxStore) -> Iterator[str]:
    """The base URL of `sandbox` served over a real socket on 127.0.0.1."""
    with serve_in_thread(sandbox) as url:
        yield url


RSERIES_TOKEN = "rseries-token"
RSERIES_ACCOUNT = "100001"


@pytest.fixture
def rseries() -> Iterator[RSeriesStore]:
    """A fresh in-memory R-Series store: bucket off (tests that pace turn it on)."""
    store = RSeriesStore(token=RSERIES_TOKEN, rate_limit=None, seed=1234)
    yield store
    store.close()


@pytest.fixture
def rseries_client(rseries: RSeriesStore) -> Iterator[httpx.Client]:
    """An httpx client talking to `rseries` in process, bearer token set."""
    with httpx.Client(
        transport=SandboxTransport(rseries),
        base_url="http://rseries.invalid",
        headers={"Authorization": f"Bearer {RSERIES_TOKEN}"},
    ) as client:
        yield client


@pytest.fixture
def rseries_url(rseries: RSeriesStore) -> Iterator[str]:
    """The base URL of `rseries` served over a real socket on 127.0.0.1."""
    with serve_in_thread(rseries) as url:
        yield url
