"""Every benchmark still runs (bench/apply_bench.py once imported a helper from a module it had
left, and nothing noticed for a release). Each one found by `bench.__main__.available()` runs as
`python -m bench NAME` at the smallest scale its options allow, once as text and, if it has
`--json`, once as JSON. Only that it runs and prints its figures is checked here, never how fast:
the figures themselves come from `./run bench` at the defaults."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench import TARGETS_MISSED
from bench.__main__ import available

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Smoke:
    """How to run one benchmark small: its arguments (`{tmp}`: a folder of its own), the
    lines its text output must hold, and the keys its `--json` document must hold (None: the
    benchmark has no `--json`). `timed` benchmarks may miss their targets at this scale, where
    interpreter start-up outweighs the work; the others' targets (no 429, applied, requests
    counted) hold at any scale, so they must exit 0."""

    args: str
    rows: tuple[str, ...]
    keys: tuple[str, ...] | None
    timed: bool = False
    shared_files: bool = False
    seconds: float = 5.0  # about how long one run takes: the longest start first


SMOKE: dict[str, Smoke] = {
    "apply": Smoke(
        "--families-per-kind 2",
        rows=(r"^apply: \d+ families touched", r"^  writes \d+", r"^  wall ", r"^  429 answers"),
        keys=("writes_processed", "plan_estimate", "wall_seconds", "bound_seconds", "targets_met"),
        timed=True,
        seconds=6,
    ),
    "import": Smoke(
        "--families 12 --files 2",
        rows=(r"^import of 12 families", r"^  cold: \d+ requests", r"^  warm: ", r"^  OK$"),
        keys=("cold_import", "warm_import", "byte_identical", "plan_after_import"),
        shared_files=True,
        seconds=7,
    ),
    "plan": Smoke(
        "--families 20 --files 2 --repeat 1 --out {tmp}/catalog",
        rows=(
            r"^cold plan +\d+ requests",
            r"^warm no-op +\d+ requests",
            r"^adoption ",
            r"^  plan after one YAML edit",
        ),
        keys=("cold_plan", "warm_noop_plan", "adoption", "incremental", "targets_met"),
        timed=True,
        seconds=13,
    ),
    "ratelimit": Smoke(
        "--families-per-kind 2 --window 0.5",
        rows=(r"^ratelimit: \d+ writes", r"^  429 answers drawn: 0 ", r"^  wall "),
        keys=("writes_sent", "rate_limited_429", "wall_seconds", "bound_seconds", "targets_met"),
        seconds=7.5,
    ),
    "rseries_apply": Smoke(
        "--families 2 --variants 1 --drip 1000 --threads 2",
        rows=(
            r"^apply: 2 families",
            r"^bucket 90/1000 ",
            r"^cold plan: \d+ requests",
            r"^no-op plan: ",
        ),
        keys=None,
        seconds=6,
    ),
    "rseries_pacing": Smoke(
        "--bucket 90/100 --categories 1 --items 2 --queries 2 --threads 2",
        rows=(r"^bucket 90/100: \d+ requests", r"^wall "),
        keys=None,
        seconds=3,
    ),
    "validate": Smoke(
        "--families 20 --files 2 --repeat 1 --out {tmp}/catalog",
        rows=(r"^catalog: 20 families, 2 files", r"^bare parse ", r"^peak RSS "),
        keys=("validate_cold_s", "bare_parse_s", "ratio_cold", "peak_rss_mb", "targets_met"),
        timed=True,
        seconds=3,
    ),
}


CompletedRun = subprocess.CompletedProcess[str]


def _bench(
    name: str, args: list[str], *, after: Future[CompletedRun] | None = None
) -> CompletedRun:
    if after is not None:
        after.result()  # the run before it, whose files this one shares
    return subprocess.run(
        [sys.executable, "-m", "bench", name, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[CompletedRun]]]:
    """Every run started at once, four at a time, the longest first: most of their time is
    spent waiting on a served sandbox or a rate-limit window, not on the CPU. The JSON run of a
    benchmark whose runs share files (import writes its catalog and store under bench/out)
    waits for its text run; the queue is first in, first out, so that one is already going."""
    done: dict[str, Future[CompletedRun]] = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for name in sorted(SMOKE, key=lambda n: -SMOKE[n].seconds):
            smoke = SMOKE[name]
            tmp = tmp_path_factory.mktemp(name)
            text = pool.submit(
                _bench, name, [a.format(tmp=tmp / "text") for a in smoke.args.split()]
            )
            done[f"{name} text"] = text
            if smoke.keys is not None:
                args = [*(a.format(tmp=tmp / "json") for a in smoke.args.split()), "--json"]
                after = text if smoke.shared_files else None
                done[f"{name} json"] = pool.submit(_bench, name, args, after=after)
        yield done


def test_every_benchmark_has_smoke_arguments() -> None:
    missing = sorted(set(available()) - set(SMOKE))
    assert not missing, f"add {missing} to SMOKE in {Path(__file__).name} (its smallest scale)"
    assert not set(SMOKE) - set(available()), "SMOKE names a benchmark that no longer exists"
    # A benchmark with --json gets its document checked: SMOKE must say which keys it holds.
    has_json = {n for n in SMOKE if '"--json"' in (ROOT / "bench" / f"{n}_bench.py").read_text()}
    assert has_json == {n for n, s in SMOKE.items() if s.keys is not None}


def _check_exit(name: str, smoke: Smoke, done: CompletedRun) -> None:
    allowed = {0, TARGETS_MISSED} if smoke.timed else {0}
    assert done.returncode in allowed, (
        f"bench {name} {' '.join(done.args[4:])} exited {done.returncode}:\n"
        f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    )


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_benchmark_runs_and_prints_its_figures(
    name: str, runs: dict[str, Future[CompletedRun]]
) -> None:
    smoke = SMOKE[name]
    text = runs[f"{name} text"].result()
    _check_exit(name, smoke, text)
    for row in smoke.rows:
        assert re.search(row, text.stdout, re.MULTILINE), (row, text.stdout)
    if smoke.keys is not None:
        as_json = runs[f"{name} json"].result()
        _check_exit(name, smoke, as_json)
        figures = json.loads(as_json.stdout)  # the whole of stdout: one document
        assert isinstance(figures, dict)
        assert set(smoke.keys) <= set(figures), sorted(figures)
