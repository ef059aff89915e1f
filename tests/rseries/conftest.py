"""Fixtures of the R-Series normalize and refresh tests (the plain store and httpx client are in
tests/conftest.py): a store whose wall clock the test moves, a project client on it, a cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.providers.rseries.client import RSeriesClient
from reconciler.providers.rseries.sandbox import RSeriesStore
from reconciler.state import State
from reconciler.state.cache import Cache
from tests.conftest import RSERIES_TOKEN

from .helpers import Frozen, connect


@pytest.fixture
def clock() -> Frozen:
    return Frozen()


@pytest.fixture
def timed_rseries(clock: Frozen) -> Iterator[RSeriesStore]:
    """An in-memory R-Series store, bucket off, on `clock`: writes land in the second it says."""
    store = RSeriesStore(token=RSERIES_TOKEN, rate_limit=None, seed=1234, clock=clock)
    yield store
    store.close()


@pytest.fixture
def rs_client(timed_rseries: RSeriesStore, tmp_path: Path) -> Iterator[RSeriesClient]:
    """The project's R-Series client on `timed_rseries` in process, the account id given."""
    with connect(timed_rseries, RSERIES_TOKEN, tmp_path) as client:
        yield client


@pytest.fixture
def cache(state: State) -> Cache:
    return Cache(state)
