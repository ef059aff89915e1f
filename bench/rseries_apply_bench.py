"""R-Series apply at scale through the leaky bucket, and what planning costs afterwards.

Setup: the R-Series sandbox served over a real socket from a process of its own (`catalog
sandbox serve --platform rseries`), empty, with R-Series' bucket (90 units) draining `--drip`
units a second; a generated catalog R-Series can hold (`--families` families of `--variants`
Color/Size variants, 10 brands, 2 suppliers with codes, 20 two-level categories, tags, prices,
supply prices, barcodes).

1. apply (timed): refresh the empty store, plan, compile (`writes.build_steps`), wait for the
   bucket to drain, then run the steps (`apply.apply_compiled`, 4 threads). The sandbox counts
   what it charged; bound = (total cost - bucket size) / drip rate; target wall <= 1.1 x bound
   and no 429.
2. cold plan: a fresh state file refreshes the whole store and plans the catalog (it adopts
   everything: no write); requests and units counted by the client.
3. the first plan on the apply's own state (its feed reads what the apply made), then a no-op
   plan: nothing changed, one request per kind.

Time is scaled as `bench ratelimit` scales X-Series' window: R-Series drips 1 unit a second,
which makes 10,000 families a day's apply; `--drip 100` keeps the bucket's size and every
request's cost and drains 100 times faster, so the bound, the ratio and the 429 count keep
their meaning. `--drip 1` is the real rate (use a small `--families`).

Run: `python -m bench rseries_apply` (about 15 minutes with the defaults);
`python -m bench rseries_apply --families 500` for a quick look.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import httpx

from bench import TARGETS_MISSED
from bench.rseries_pacing_bench import TOKEN, served
from reconciler.apply import apply_compiled
from reconciler.live import Live
from reconciler.model import Brand, Catalog, Product, Supplier, Variant
from reconciler.plan import Kind, Plan
from reconciler.planner import make_plan
from reconciler.providers.rseries.client import RSeriesClient, client_from_environment
from reconciler.providers.rseries.refresh import load_live, refresh
from reconciler.providers.rseries.writes import build_steps, total_cost
from reconciler.state import State
from reconciler.state.cache import Cache
from reconciler.state.ledger import Ledger

SIZE = 90.0
TARGET_RATIO = 1.1
COLORS = ("Black", "White", "Navy", "Red")
SIZES = ("S", "M", "L", "XL")


def gtin(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def generate(families: int, variants: int) -> Catalog:
    products = []
    for n in range(families):
        rows = tuple(
            Variant(
                sku=f"RS-{n:05d}-{j}",
                options=(("Color", COLORS[j % 4]), ("Size", SIZES[j // 4 % 4])),
                price=Decimal(20 + j) if j else None,
                barcode=gtin(f"7{n:07d}{j:04d}"),
            )
            for j in range(variants)
        )
        products.append(
            Product(
                handle=f"family-{n:05d}",
                name=f"Family {n:05d}",
                brand=f"Brand {n % 10}",
                supplier=f"Supplier {n % 2}",
                supplier_code=f"SUP-{n:05d}",
                category=(f"Department {n % 4}", f"Class {n % 20}"),
                tags=(f"tag{n % 5}",),
                price=Decimal("19.99"),
                supply_price=Decimal("7.50"),
                options=("Color", "Size"),
                variants=rows,
            )
        )
    return Catalog.build(
        products=products,
        brands=[Brand(f"Brand {n}") for n in range(10)],
        suppliers=[Supplier(f"Supplier {n}") for n in range(2)],
    )


def handles_of(catalog: Catalog) -> dict[str, str]:
    return {row.sku: p.handle for p in catalog.products for row in p.sellables()}


def plan_once(client: RSeriesClient, state: State, catalog: Catalog) -> tuple[Plan, Live, float]:
    """Refresh and plan as `catalog plan` does; returns the plan, the live store and seconds."""
    started = time.monotonic()
    cache = Cache(state)
    refresh(client, cache)
    live = load_live(cache, handles=handles_of(catalog))
    ledger = Ledger(state)
    managed = {str(k): ledger.managed(str(k)) for k in Kind}
    plan = make_plan(catalog, live, store="rseries", managed=managed)
    return plan, live, time.monotonic() - started


def counted(client: RSeriesClient, do: Any) -> tuple[Any, int, float]:
    before = client.stats()
    out = do()
    after = client.stats()
    return out, after.requests - before.requests, round(after.cost - before.cost, 1)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench rseries_apply", description=__doc__)
    parser.add_argument("--families", type=int, default=10_000)
    parser.add_argument("--variants", type=int, default=2)
    parser.add_argument("--drip", type=float, default=100.0, help="units a second (R-Series: 1)")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    catalog = generate(args.families, args.variants)
    bucket = f"{SIZE:g}/{args.drip:g}"
    with served(bucket) as url, tempfile.TemporaryDirectory() as tmp:
        environ = {"LIGHTSPEED_BASE_URL": url, "LIGHTSPEED_TOKEN": TOKEN}
        with (
            client_from_environment(environ, token_file=Path(tmp) / "t.json") as client,
            State(Path(tmp) / "state.db") as state,
        ):
            client.account_id()
            plan, live, _ = plan_once(client, state, catalog)
            ledger = Ledger(state)
            managed = {str(k): ledger.managed(str(k)) for k in Kind}
            compiled = build_steps(plan, live, managed)
            time.sleep(SIZE / args.drip + 0.5)  # an empty bucket when the clock starts
            httpx.post(f"{url}/_sandbox/stats/reset")
            started = time.monotonic()
            result = apply_compiled(
                plan,
                cast(Any, client),  # the client is the connection apply runs on
                state,
                compiled=cast(Any, compiled),
                live=live,
                parallelism=args.threads,
            )
            wall = time.monotonic() - started
            stats = httpx.get(f"{url}/_sandbox/stats").json()
            # 3. the apply's own state: its first plan reads what the apply made; then no-op.
            (first, _, first_s), first_n, first_u = counted(
                client, lambda: plan_once(client, state, catalog)
            )
            (noop, _, noop_s), noop_n, noop_u = counted(
                client, lambda: plan_once(client, state, catalog)
            )
        # 2. a cold plan: a fresh state file (and client) reads the whole store.
        with (
            client_from_environment(environ, token_file=Path(tmp) / "c.json") as cold_client,
            State(Path(tmp) / "cold.db") as cold_state,
        ):
            cold_client.account_id()
            (cold, _, cold_s), cold_n, cold_u = counted(
                cold_client, lambda: plan_once(cold_client, cold_state, catalog)
            )
    cost = float(stats["cost"])
    bound = max(0.0, (cost - SIZE) / args.drip)
    ratio = wall / bound if bound else float("nan")
    limited = int(stats["rate_limited"])
    rows = sum(len(p.variants) for p in catalog.products)
    print(
        f"apply: {args.families} families, {rows} variants; {result.writes} writes, "
        f"{stats['requests']['total']} requests, {cost:g} units charged "
        f"(compile priced {total_cost(compiled):g}); outcome {result.outcome}"
    )
    print(
        f"bucket {bucket} (R-Series' size, drip x{args.drip:g}): wall {wall:.1f} s vs bound "
        f"{bound:.1f} s = {ratio:.3f} x (target <= {TARGET_RATIO} x); {limited} x 429; at the "
        f"real drip of 1/s the bound is {bound * args.drip / 3600:.1f} h"
    )
    print(f"cold plan: {cold_n} requests, {cold_u:g} units, {cold_s:.1f} s")
    print(
        f"first plan after apply: {first_n} requests, {first_u:g} units, {first_s:.1f} s; "
        f"changes: {sum(1 for c in first.changes)}"
    )
    print(
        f"no-op plan: {noop_n} requests, {noop_u:g} units, {noop_s:.1f} s; "
        f"changes: {len(noop.changes)}"
    )
    del cold
    ok = result.ok and limited == 0 and (not bound or ratio <= TARGET_RATIO)
    return 0 if ok else TARGETS_MISSED
