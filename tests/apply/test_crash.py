"""Crashes and races with real processes: SIGKILL mid-apply then rerun; two applies at once."""

from __future__ import annotations

import json
import random
import time
from collections import Counter

import httpx
import pytest

from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State
from reconciler.state.ledger import Ledger

from .helpers import TOKEN, Cli, writes


def store_rows(cli: Cli) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    after = 0
    with httpx.Client(base_url=cli.env["LIGHTSPEED_BASE_URL"]) as http:
        while True:
            page = http.get(
                "/api/2.0/products",
                params={"after": after, "page_size": 1000},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ).json()
            if not page["data"]:
                return rows
            rows.extend(page["data"])
            after = page["version"]["max"]


def assert_converged(cli: Cli) -> None:
    again = cli.run("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    rows = store_rows(cli)
    assert [s for s, n in Counter(r["sku"] for r in rows).items() if n > 1] == []
    families = {(r["family_id"], str(r["name"]).casefold()) for r in rows}
    names = Counter(name for _, name in families)
    assert [n for n, k in names.items() if k > 1] == []
    for row in rows:  # the store reuses an image for the same bytes; ids must be distinct
        ids = [i["id"] for i in row.get("images") or []]
        assert len(ids) == len(set(ids))
    with State(cli.state) as state:
        ledger = Ledger(state)
        assert ledger.pending_intents() == []
        managed = ledger.managed("product")
        assert set(managed) == {str(r["handle"]) for r in rows}


def test_sigkill_at_random_points_then_rerun_converges(cli: Cli, store: SandboxStore) -> None:
    store.set_faults(latency_ms=40)  # long enough for the kill to land among the writes
    rng = random.Random(20261123)
    killed = 0
    for _ in range(3):
        proc = cli.start("apply", "--auto-approve")
        assert proc.stderr is not None
        for line in proc.stderr:  # wait until writes are under way, then a random moment
            if line.startswith("Applied "):
                break
        time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is None:
            proc.kill()
            killed += 1
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert killed >= 1, "no apply was killed mid-run"
    store.set_faults(latency_ms=0)
    for _ in range(3):
        final = cli.run("apply", "--auto-approve")
        if final.returncode == 0:
            break
    assert final.returncode == 0, final.stderr
    assert_converged(cli)


def test_two_applies_at_once_never_both_write(cli: Cli, store: SandboxStore) -> None:
    estimate = json.loads(cli.run("plan", "--format", "json").stdout)["estimate"]["requests"]
    store.set_faults(latency_ms=60)  # the first apply holds the lock for a few seconds
    store.reset_stats()
    first, second = cli.start("apply", "--auto-approve"), cli.start("apply", "--auto-approve")
    results = [(*p.communicate(timeout=120), p.returncode) for p in (first, second)]
    codes = sorted(code for _, _, code in results)
    assert codes == [0, 1], results
    refused = next(err for _, err, code in results if code == 1)
    assert "lock is held by" in refused and "it expires at" in refused
    assert writes(store) == estimate  # one apply's writes, not two
    store.set_faults(latency_ms=0)
    assert_converged(cli)


@pytest.mark.parametrize("after", [0.0, 0.12, 0.25, 0.4])
def test_a_saved_plan_killed_mid_apply_is_finished_by_applying_it_again(
    cli: Cli, store: SandboxStore, after: float
) -> None:
    # Killed at several points after the first write: between a create and its follow-up PUT,
    # between a request and its record, between a family and its images.
    saved = cli.tmp / "plan.json"
    made = cli.run("plan", "--out", str(saved))
    assert made.returncode == 0, made.stderr
    store.set_faults(latency_ms=40)
    proc = cli.start("apply", str(saved))
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("Applied "):
            break
    time.sleep(after)
    proc.kill()
    proc.communicate(timeout=30)
    store.set_faults(latency_ms=0)
    rerun = cli.run("apply", str(saved))
    assert rerun.returncode == 0, rerun.stderr
    assert "Resuming" in rerun.stderr or "No changes" in rerun.stdout
    assert_converged(cli)
