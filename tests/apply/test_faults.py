"""Every fault kind at 20%: apply until it succeeds; the store then holds exactly the catalog."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from reconciler.errors import CatalogError
from reconciler.model import Catalog
from reconciler.providers.xseries.sandbox import SandboxStore

from .helpers import Harness, assert_store_holds, catalog, shop, simple

FAULTS: dict[str, dict[str, Any]] = {
    "5xx": {"fault_rate": 0.2},
    "429 bursts": {"burst_429_rate": 0.2, "burst_seconds": 0.05},
    "latency": {"latency_ms": 20},
    "commit-then-timeout": {"timeout_rate": 0.2},
}
CALM: dict[str, Any] = {
    "fault_rate": 0.0,
    "burst_429_rate": 0.0,
    "latency_ms": 0,
    "timeout_rate": 0.0,
}


def apply_until_success(harness: Harness, wanted: Catalog, *, tries: int = 8) -> list[str]:
    """Rerun apply (as CI would after a failure) until one run applies everything."""
    outcomes: list[str] = []
    for _ in range(tries):
        try:
            _, result = harness.apply(wanted)
        except CatalogError as exc:  # the refresh itself ran out of retries
            outcomes.append(f"error: {exc}")
            continue
        outcomes.append(result.outcome)
        if result.ok:
            return outcomes
    raise AssertionError(f"apply never succeeded: {outcomes}")


def edited(base: Catalog) -> Catalog:
    """Price edits, a rename, an added variant and a new product on top of `base`."""
    products = {p.handle: p for p in base.products}
    tee0 = products["tee-0"]
    rows = list(tee0.variants)
    rows[0] = replace(rows[0], price=Decimal("41.00"))
    rows.append(replace(rows[-1], sku="TEE-0-XL", options=(("Size", "XL"), ("Colour", "Black"))))
    products["tee-0"] = replace(tee0, variants=tuple(rows))
    products["tee-1"] = replace(products["tee-1"], name="Tee One Renamed", price=Decimal("19.00"))
    products["mug"] = simple("mug", "MUG-1", price="9.90", brand="Mugs Inc")
    return catalog(*products.values())


@pytest.mark.parametrize("fault", list(FAULTS))
def test_apply_until_success_under_faults(
    fault: str, harness: Harness, store: SandboxStore
) -> None:
    first = shop(4)
    store.set_faults(**FAULTS[fault])
    apply_until_success(harness, first)
    second = edited(first)
    apply_until_success(harness, second)
    store.set_faults(**CALM)
    assert_store_holds(harness, second)
    assert harness.ledger.pending_intents() == []
    if fault != "latency":
        assert store.stats()["faults_injected"] > 0
