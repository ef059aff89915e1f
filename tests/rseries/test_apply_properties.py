"""Properties of R-Series apply: any catalog R-Series can hold, applied to an empty store and
then edited as a person might, converges (the next plan is empty) with no duplicate."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.model import Catalog
from reconciler.providers.rseries.sandbox import RSeriesStore
from reconciler.state import State
from tests.conftest import RSERIES_TOKEN

from .applying import Harness, assert_converged
from .helpers import connect
from .strategies import catalogs, edited


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(pair=catalogs().flatmap(lambda c: st.tuples(st.just(c), edited(c))))
def test_random_catalogs_apply_and_converge(pair: tuple[Catalog, Catalog]) -> None:
    first, second = pair
    store = RSeriesStore(token=RSERIES_TOKEN, rate_limit=None, seed=1)
    with (
        tempfile.TemporaryDirectory() as tmp,
        State(Path(tmp) / "state.db") as state,
        connect(store, RSERIES_TOKEN, Path(tmp)) as client,
    ):
        rs = Harness(store, client, state)
        for wanted in (first, second):
            _, result = rs.apply(wanted)
            assert result.ok, [c for c in result.changes if c.outcome != "applied"]
            assert_converged(rs, wanted)
    store.close()
