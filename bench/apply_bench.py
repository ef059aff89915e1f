"""Apply benchmark: a 300-family change set against a rate-limited sandbox over a real socket.

Setup (not timed): a sandbox store served on 127.0.0.1 from a process of its own (so server and
apply do not share one interpreter lock, as they would not in life), seeded with 200 families
(4 variants each) by an unthrottled apply. Then the store is throttled to 100 requests per
sliding 10 s with 150 ms added to every request, and a change set touching 300 families is
planned and applied:

- 100 new families (one POST each, all variants in it);
- 100 families with a family-wide edit only (one 2.1 PUT each);
- 100 families with new prices on 4 of their variants and a family-wide edit riding along
  (four 2.1 PUTs each);

600 write requests under the rules. Reported: writes made vs the plan's estimate vs that rules'
minimum (counted from the change set, independently of the planner), wall time of the apply vs
the rate-limit bound (ceil(requests / 100) - 1) x 10 s, and the 429 answers drawn. Targets:
writes = minimum, wall <= 1.15 x bound.

Run: `python -m bench apply` (about a minute). `--families-per-kind` scales the change set.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench import TARGETS_MISSED
from reconciler.api import apply_plan, make_plan
from reconciler.apply import ApplyEvent
from reconciler.model import Brand, Catalog, Product, Variant
from reconciler.plan import Plan
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.pacing import default_parallelism
from reconciler.providers.xseries.refresh import load_live, refresh, store_facts
from reconciler.providers.xseries.sandbox import RateLimit
from reconciler.state import State
from reconciler.state.cache import Cache
from reconciler.state.ledger import Ledger

TOKEN = "bench-token"
LIMIT = RateLimit(100, 10.0)
LATENCY_MS = 150
SIZES = ("S", "M", "L", "XL")
TARGET_RATIO = 1.15


def family(index: int, *, description: str = "<p>Base</p>", prices: int = 0) -> Product:
    """Family `index` with four variants; the first `prices` of them carry a new price."""
    return Product(
        handle=f"fam-{index:04d}",
        name=f"Family {index:04d}",
        description=description,
        brand="Bench Brand",
        supplier="Bench Supply",
        category=("Bench", "Goods"),
        tags=("bench",),
        active=True,
        price=Decimal("20.00"),
        options=("Size",),
        variants=tuple(
            Variant(
                sku=f"FAM-{index:04d}-{size}",
                options=(("Size", size),),
                price=Decimal("30.00") + n if n < prices else None,
            )
            for n, size in enumerate(SIZES)
        ),
    )


def catalog(products: list[Product]) -> Catalog:
    return Catalog.build(products=products, brands=[Brand("Bench Brand")], tags=["bench"])


@dataclass(frozen=True)
class ChangeSet:
    base: Catalog
    target: Catalog
    minimum: int  # write requests the API's rules call for, counted from the edits


def change_set(per_kind: int) -> ChangeSet:
    existing = 2 * per_kind
    base = [family(i) for i in range(existing)]
    edited = [family(i, description="<p>Edited</p>") for i in range(per_kind)]
    priced = [family(i, description="<p>Edited</p>", prices=4) for i in range(per_kind, existing)]
    new = [family(i) for i in range(existing, existing + per_kind)]
    # New family: one POST. Family-wide edit: one PUT. Four variant prices with the family
    # edit riding along in one of them: four PUTs.
    minimum = per_kind * 1 + per_kind * 1 + per_kind * 4
    return ChangeSet(catalog(base), catalog(edited + priced + new), minimum)


def plan_against(client: Client, state: State, wanted: Catalog, *, window: float) -> Plan:
    cache = Cache(state)
    refresh(client, cache)
    ledger = Ledger(state)
    managed = {k: ledger.managed(k) for k in ("product", "variant")}
    return make_plan(
        wanted,
        load_live(cache),
        store="bench",
        managed=managed,
        rate_limit=store_facts(cache).rate_limit,
        window_seconds=window,
    )


SERVE = textwrap.dedent(
    """
    import sys
    from reconciler.providers.asgi import serve_in_thread
    from reconciler.providers.xseries.sandbox import SandboxStore
    store = SandboxStore(sys.argv[1], token=sys.argv[2], rate_limit=None, seed=1)
    with serve_in_thread(store) as url:
        print(url, flush=True)
        sys.stdin.read()  # serve until the benchmark closes our stdin
    """
)


@contextmanager
def sandbox_process(db: Path) -> Iterator[str]:
    """A sandbox store served from a child process; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(db), TOKEN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise SystemExit("the sandbox server did not start")
        yield url
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def control(client: Client, method: str, path: str, body: object = None) -> Any:
    """The sandbox's own controls (`/_sandbox/...`, not counted, no rate limit)."""
    answer = client._http.request(method, path, json=body)
    answer.raise_for_status()
    return answer.json()


def run(per_kind: int, *, parallelism: int | None, quiet: bool) -> dict[str, object]:
    changes = change_set(per_kind)
    limit = f"{LIMIT.requests}/{LIMIT.seconds:g}"
    with (
        tempfile.TemporaryDirectory() as tmp,
        sandbox_process(Path(tmp) / "sandbox.db") as url,
        State(Path(tmp) / "state.db") as state,
        # The store's headers give the limit, not the window: tell the pacer it is 10 s.
        Client(url, TOKEN, rate_window=LIMIT.seconds, timeout=60) as client,
    ):
        seed_plan = plan_against(client, state, changes.base, window=300)
        seeded = apply_plan(seed_plan, client, state, live=load_live(Cache(state)), parallelism=16)
        if not seeded.ok:
            raise SystemExit(f"seeding the store failed: {seeded.counts()}")
        control(client, "PUT", "/_sandbox/faults", {"latency_ms": LATENCY_MS, "rate_limit": limit})
        plan = plan_against(client, state, changes.target, window=LIMIT.seconds)
        live = load_live(Cache(state))
        # A clean window for the timed part, as for an apply that starts fresh.
        control(client, "PUT", "/_sandbox/faults", {"rate_limit": limit})
        control(client, "POST", "/_sandbox/stats/reset")

        def on_event(event: ApplyEvent) -> None:
            if not quiet and event.type == "progress" and event.done % 50 == 0:
                print(
                    f"  {event.done}/{event.planned} requests, {event.rate_limited} x 429",
                    file=sys.stderr,
                )

        started = time.monotonic()
        result = apply_plan(
            plan, client, state, live=live, parallelism=parallelism, on_event=on_event
        )
        wall = time.monotonic() - started
        stats = control(client, "GET", "/_sandbox/stats")
    by_method = stats["requests"]["by_method"]
    sent = sum(n for m, n in by_method.items() if m in ("POST", "PUT", "DELETE"))
    limited = int(stats["rate_limited"])
    writes = sent - limited  # the 429s are counted by the store, but never processed
    bound = (math.ceil(writes / LIMIT.requests) - 1) * LIMIT.seconds
    return {
        "families_touched": 3 * per_kind,
        "outcome": result.outcome,
        "writes_processed": writes,
        "writes_sent_by_apply": result.writes,
        "plan_estimate": plan.estimate.requests,
        "rules_minimum": changes.minimum,
        "requests_incl_429": sent,
        "rate_limited_429": limited,
        "wall_seconds": round(wall, 2),
        "bound_seconds": bound,
        "ratio_to_bound": round(wall / bound, 3) if bound else None,
        "targets_met": {
            "requests_equal_minimum": writes == changes.minimum == plan.estimate.requests,
            "wall_within_1.15x_bound": bound == 0 or wall <= TARGET_RATIO * bound,
        },
        "parallelism": parallelism or default_parallelism(plan.estimate),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench apply", description=__doc__)
    parser.add_argument("--families-per-kind", type=int, default=100)
    parser.add_argument("--parallelism", type=int, default=None)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args(argv)
    figures = run(args.families_per_kind, parallelism=args.parallelism, quiet=args.quiet)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        met = figures["targets_met"]
        assert isinstance(met, dict)
        print(
            f"apply: {figures['families_touched']} families touched, outcome "
            f"{figures['outcome']}\n"
            f"  writes {figures['writes_processed']} (plan estimate "
            f"{figures['plan_estimate']}, rules' minimum {figures['rules_minimum']}): "
            f"{'OK' if met['requests_equal_minimum'] else 'MISSED'}\n"
            f"  wall {figures['wall_seconds']} s vs bound {figures['bound_seconds']} s "
            f"(x{figures['ratio_to_bound']}, target <= {TARGET_RATIO}): "
            f"{'OK' if met['wall_within_1.15x_bound'] else 'MISSED'}\n"
            f"  429 answers drawn: {figures['rate_limited_429']}"
        )
    met = figures["targets_met"]
    assert isinstance(met, dict)
    return 0 if all(met.values()) and figures["outcome"] == "applied" else TARGETS_MISSED


if __name__ == "__main__":
    raise SystemExit(main())
