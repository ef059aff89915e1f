"""R-Series crashes and races with real processes over a real socket: SIGKILL mid-apply then
apply again converges without a duplicate; two applies holding one state file's lock never
both write."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.providers.rseries.client import RSeriesClient, client_from_environment
from reconciler.providers.rseries.sandbox import RSeriesStore
from reconciler.state import State
from reconciler.state.ledger import Ledger
from tests.conftest import RSERIES_TOKEN

from .applying import Harness, assert_converged, shop

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(rseries_url: str, tmp_path: Path) -> Iterator[RSeriesClient]:
    environ = {"LIGHTSPEED_BASE_URL": rseries_url, "LIGHTSPEED_TOKEN": RSERIES_TOKEN}
    with client_from_environment(environ, token_file=tmp_path / "tokens.json") as client:
        yield client


def start(url: str, state: Path, families: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.rseries.run_apply", url, str(state), str(families)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_at_random_points_then_apply_again_converges(
    rseries: RSeriesStore, rseries_url: str, served: RSeriesClient, tmp_path: Path
) -> None:
    state_path = tmp_path / "state.db"
    rseries.set_faults(latency_ms=30)  # long enough for the kill to land among the writes
    rng = random.Random(20261130)
    killed = 0
    for _ in range(3):
        proc = start(rseries_url, state_path, 4)
        assert proc.stderr is not None
        for line in proc.stderr:  # wait until writes are under way, then a random moment
            if line.startswith("Applied"):
                break
        time.sleep(rng.uniform(0.0, 0.5))
        if proc.poll() is None:
            proc.kill()
            killed += 1
        proc.communicate(timeout=30)
    assert killed >= 1, "no apply was killed mid-run"
    rseries.set_faults(latency_ms=0)
    wanted = shop(4)
    with State(state_path) as state:
        rs = Harness(rseries, served, state)
        for _ in range(3):
            _, result = rs.apply(wanted)
            if result.ok:
                break
        assert result.ok, [c for c in result.changes if c.outcome != "applied"]
        assert_converged(rs, wanted)
        assert Ledger(state).pending_intents() == []


def test_two_applies_holding_one_lock_never_both_write(
    rseries: RSeriesStore, served: RSeriesClient, tmp_path: Path
) -> None:
    import threading

    from reconciler.errors import LockHeld
    from reconciler.state.lock import ApplyLock

    state_path = tmp_path / "state.db"
    wanted = shop(2)
    rseries.set_faults(latency_ms=20)
    outcomes: list[str] = []

    def one() -> None:
        with State(state_path) as state:
            try:
                lock = ApplyLock(state, "rseries").acquire()
            except LockHeld as held:
                outcomes.append(f"refused: {held}")
                return
            try:
                _, result = Harness(rseries, served, state).apply(wanted)
                outcomes.append("applied" if result.ok else "partial")
            finally:
                lock.release()

    first = threading.Thread(target=one)
    first.start()
    time.sleep(0.05)
    second = threading.Thread(target=one)
    second.start()
    first.join(60)
    second.join(60)
    assert sorted(o.split(":")[0] for o in outcomes) == ["applied", "refused"], outcomes
    rseries.set_faults(latency_ms=0)
    with State(state_path) as state:
        assert_converged(Harness(rseries, served, state), wanted)
