"""The state file under load: a large store adopted again and again while the apply lock is
renewed from its own thread on its own connection. Never "database is locked" (issue 18)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reconciler.api import apply_plan, make_plan
from reconciler.importer import catalog_from_live
from reconciler.live import Live
from reconciler.plan import Action
from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.normalize import normalize_live
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State
from reconciler.state.ledger import Ledger
from reconciler.state.lock import ApplyLock, Holder

FAMILIES = 5_000
SIZES = ("S", "M", "L", "XL")


def store_rows(families: int) -> list[dict[str, Any]]:
    """`families` four-variant families as the 2.0 product list returns them."""
    rows: list[dict[str, Any]] = []
    for n in range(families):
        common = {
            "family_id": f"f{n}",
            "name": f"Family {n:05d}",
            "handle": f"family-{n:05d}",
            "brand_id": "b1",
            "tag_ids": ["t1"],
            "is_active": True,
        }
        for i, size in enumerate(SIZES):
            rows.append(
                {
                    **common,
                    "id": f"p{n}-{size}",
                    "sku": f"FAM-{n:05d}-{size}",
                    "has_variants": i == 0,
                    "variant_parent_id": None if i == 0 else f"p{n}-S",
                    "variant_options": [{"id": "a1", "name": "Size", "value": size}],
                    "price_including_tax": 20 + i,
                    "version": n * 10 + i + 1,
                }
            )
    return rows


def big_live(families: int) -> Live:
    return normalize_live(
        products=store_rows(families),
        brands=[{"id": "b1", "name": "Acme", "version": 1}],
        tags=[{"id": "t1", "name": "summer", "version": 2}],
        attributes=[{"id": "a1", "name": "Size"}],
        tax_exclusive=False,
    )


def test_adopting_a_large_store_ten_times_with_the_lock_renewed_never_fails(
    tmp_path: Path, sandbox: SandboxStore
) -> None:
    live = big_live(FAMILIES)
    imported = catalog_from_live(
        {handle: found.product for handle, found in live.products.items()},
        brands=live.names.brands.values(),
        tags=["summer"],
    )
    plan = make_plan(imported.catalog, live, store="stress")
    assert {c.action for c in plan.changes} == {Action.ADOPT}
    with (
        State(tmp_path / "state.db") as state,
        Client("http://sandbox.invalid", "t", transport=SandboxTransport(sandbox)) as client,
    ):
        lock = ApplyLock(
            state, "stress", holder=Holder("ci", "runner", os.getpid()), renew_every=1.0
        ).acquire()
        first_renewal = lock.info()
        try:
            for _ in range(10):
                result = apply_plan(plan, client, state, live=live, lock=lock)
                assert result.outcome == "applied"
                assert len(result.changes) == FAMILIES * (1 + len(SIZES))
        finally:
            renewed = lock.info()
            lock.release()
        assert lock.misses == 0 and not lock.lost
        assert first_renewal is not None and renewed is not None
        assert renewed.renewed_at > first_renewal.renewed_at  # it really ran meanwhile
        ledger = Ledger(state)
        assert len(ledger.managed("variant")) == FAMILIES * len(SIZES)
        assert [r.outcome for r in ledger.runs()] == ["applied"] * 10


def test_an_adoption_records_the_versions_it_read_without_reading_the_store_back(
    tmp_path: Path, sandbox: SandboxStore
) -> None:
    live = big_live(3)
    imported = catalog_from_live(
        {handle: found.product for handle, found in live.products.items()},
        brands=live.names.brands.values(),
        tags=["summer"],
    )
    plan = make_plan(imported.catalog, live, store="adopt")

    def read_back() -> Live:
        raise AssertionError("nothing was sent: there is nothing new to read back")

    with (
        State(tmp_path / "state.db") as state,
        Client("http://sandbox.invalid", "t", transport=SandboxTransport(sandbox)) as client,
    ):
        result = apply_plan(plan, client, state, live=live, refresh_live=read_back)
        versions = {c.key: c.remote_version for c in result.changes}
        rows = {r.key: r.remote_version for r in Ledger(state).changes(result.run_id)}
    assert versions["family-00002"] == "24" and versions["FAM-00001-M"] == "12"
    assert rows == versions
