"""Fixtures for the apply tests beyond the shared `store`, `client` and `state`
(tests/conftest.py): a harness over the three, and the `catalog` command in a subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.providers.asgi import serve_in_thread
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State

from .helpers import Cli, Harness


@pytest.fixture
def harness(store: SandboxStore, client: Client, state: State) -> Harness:
    return Harness(store, client, state)


@pytest.fixture
def cli(tmp_path: Path, store: SandboxStore) -> Iterator[Cli]:
    """The `catalog` command in a subprocess, against `store` over a real socket."""
    with serve_in_thread(store) as url:
        yield Cli(tmp_path, url)
