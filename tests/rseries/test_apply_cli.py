"""R-Series end to end through the command line, in real processes, against the R-Series
sandbox over a real socket: plan, apply, re-plan empty; writes equal the plan's estimate; every
image once; SIGKILL mid-apply then apply again converges; two applies at once never both
write."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.catalog import load_catalog
from reconciler.providers.rseries.client import RSeriesClient, client_from_environment
from reconciler.providers.rseries.sandbox import RSeriesStore
from reconciler.state import State
from reconciler.state.ledger import Ledger
from tests.apply.helpers import Cli
from tests.conftest import RSERIES_TOKEN

from .applying import Harness, assert_no_duplicates, example_catalog


class RCli(Cli):
    """`catalog` in a real process with LIGHTSPEED_PLATFORM=rseries on a served sandbox."""

    def __init__(self, tmp: Path, url: str) -> None:
        super().__init__(tmp, url)
        self.catalog = example_catalog(tmp / "rseries")
        self.env.update(LIGHTSPEED_PLATFORM="rseries", LIGHTSPEED_TOKEN=RSERIES_TOKEN)


@pytest.fixture
def cli(rseries_url: str, tmp_path: Path) -> RCli:
    return RCli(tmp_path, rseries_url)


@pytest.fixture
def client(rseries_url: str, tmp_path: Path) -> Iterator[RSeriesClient]:
    environ = {"LIGHTSPEED_BASE_URL": rseries_url, "LIGHTSPEED_TOKEN": RSERIES_TOKEN}
    with client_from_environment(environ, token_file=tmp_path / "t.json") as c:
        yield c


def writes(store: RSeriesStore) -> int:
    by_method = store.stats()["requests"]["by_method"]
    return sum(n for m, n in by_method.items() if m in ("POST", "PUT", "DELETE"))


def assert_converged(cli: RCli, store: RSeriesStore, client: RSeriesClient) -> None:
    again = cli.run("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    with State(cli.state) as state:
        assert Ledger(state).pending_intents() == []
        assert_no_duplicates(Harness(store, client, state))


def test_plan_apply_replan_and_writes_are_the_estimate(
    cli: RCli, rseries: RSeriesStore, client: RSeriesClient
) -> None:
    planned = cli.run("plan", "--format", "json")
    assert planned.returncode == 0, planned.stderr
    estimate = json.loads(planned.stdout)["estimate"]
    rseries.reset_stats()
    applied = cli.run("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert writes(rseries) == estimate["requests"]
    declared = sum(len(p.images or ()) for p in load_catalog(cli.catalog).products)
    assert len(client.query("Image")) == declared
    assert_converged(cli, rseries, client)
    rseries.reset_stats()
    again = cli.run("apply", "--auto-approve")
    assert again.returncode == 0 and writes(rseries) == 0


def test_sigkill_mid_apply_then_apply_again_converges(
    cli: RCli, rseries: RSeriesStore, client: RSeriesClient
) -> None:
    rseries.set_faults(latency_ms=40)
    rng = random.Random(20261130)
    killed = 0
    for _ in range(3):
        proc = cli.start("apply", "--auto-approve")
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("Applied "):
                break
        time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is None:
            proc.kill()
            killed += 1
        proc.communicate(timeout=30)
    assert killed >= 1, "no apply was killed mid-run"
    rseries.set_faults(latency_ms=0)
    for _ in range(3):
        final = cli.run("apply", "--auto-approve")
        if final.returncode == 0:
            break
    assert final.returncode == 0, final.stdout + final.stderr
    declared = sum(len(p.images or ()) for p in load_catalog(cli.catalog).products)
    assert len(client.query("Image")) == declared  # every image once
    assert_converged(cli, rseries, client)


def test_two_applies_at_once_never_both_write(
    cli: RCli, rseries: RSeriesStore, client: RSeriesClient
) -> None:
    estimate = json.loads(cli.run("plan", "--format", "json").stdout)["estimate"]["requests"]
    rseries.set_faults(latency_ms=60)
    rseries.reset_stats()
    first, second = cli.start("apply", "--auto-approve"), cli.start("apply", "--auto-approve")
    results = [(*p.communicate(timeout=180), p.returncode) for p in (first, second)]
    assert sorted(code for _, _, code in results) == [0, 1], results
    refused = next(err for _, err, code in results if code == 1)
    assert "lock is held by" in refused
    assert writes(rseries) == estimate
    rseries.set_faults(latency_ms=0)
    assert_converged(cli, rseries, client)
