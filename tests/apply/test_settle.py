"""The race check after new brands, suppliers and tags (issue 12, point 2): one read per kind
for all the names of that kind an apply creates, not one per object, with the same protection
against an apply from another state file (tests/apply/test_two_states.py races two of them)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from reconciler.api import apply_plan
from reconciler.model import Brand, Catalog, Supplier
from reconciler.plan import Action, Change, FieldChange, Kind
from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State

from .helpers import TOKEN, Harness, simple

NAMED_ROUTES = ("/api/2.0/brands", "/api/2.0/suppliers", "/api/2.0/tags")


def _named_catalog(n: int) -> Catalog:
    """`n` new brands, suppliers and tags (twice as many tags), one product using each."""
    products = [
        simple(
            f"item-{i}",
            f"ITEM-{i}",
            brand=f"Brand {i}",
            supplier=f"Supplier {i}",
            tags=(f"tag-{i}-a", f"tag-{i}-b"),
        )
        for i in range(n)
    ]
    return Catalog.build(
        products=products,
        brands=[Brand(f"Brand {i}") for i in range(n)],
        suppliers=[Supplier(f"Supplier {i}") for i in range(n)],
    )


def _routes(store: SandboxStore) -> dict[str, int]:
    return {r: k for r, k in store.stats()["requests"]["by_route"].items() if k}


@pytest.mark.parametrize("n", [1, 4])
def test_new_names_cost_two_reads_per_kind_however_many_are_created(
    harness: Harness, store: SandboxStore, state: State, n: int
) -> None:
    plan, live = harness.plan(_named_catalog(n))
    store.reset_stats()
    # No read-back after the steps: what is left is exactly what the steps send.
    result = apply_plan(plan, harness.client, state, live=live)
    assert result.ok
    routes = _routes(store)
    for route in NAMED_ROUTES:
        # The census before the first create of the kind, and one race check after the last.
        assert routes.pop(f"GET {route}") == 2, route
    assert routes == {
        "POST /api/2.0/brands": n,
        "POST /api/2.0/suppliers": n,
        "POST /api/2.0/tags": 2 * n,
        "POST /api/2.0/products": n,
    }
    assert result.writes == plan.estimate.requests == 5 * n
    assert result.requests == 5 * n + 2 * len(NAMED_ROUTES)


class _RacedOn(httpx.BaseTransport):
    """The sandbox, with another apply creating the same brand just before ours is created
    (after our census read): the store then holds theirs, older, beside ours."""

    def __init__(self, store: SandboxStore, brand: str) -> None:
        self.inner = SandboxTransport(store)
        self.store = store
        self.brand = brand
        self.theirs: str | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/2.0/brands":
            body: dict[str, Any] = json.loads(request.content)
            if body.get("name") == self.brand and self.theirs is None:
                with Client(
                    "http://sandbox.test", TOKEN, transport=SandboxTransport(self.store)
                ) as other:
                    self.theirs = other.create_brand(self.brand)
        return self.inner.handle_request(request)


def test_a_racing_applys_older_brand_is_used_and_ours_deleted(
    harness: Harness, store: SandboxStore, state: State
) -> None:
    plan, live = harness.plan(_named_catalog(3))
    raced = _RacedOn(store, "Brand 1")
    store.reset_stats()
    with Client("http://sandbox.test", TOKEN, transport=raced) as client:
        result = apply_plan(plan, client, state, live=live)
    assert result.ok and raced.theirs is not None
    routes = _routes(store)
    assert routes["GET /api/2.0/brands"] == 2  # still one race check for the three brands
    assert routes["DELETE /api/2.0/brands/{id}"] == 1  # ours, the duplicate
    brands = [o for page in harness.client.iter_pages("brand") for o in page.items]
    assert sorted(o["name"] for o in brands if not o.get("deleted_at")) == [
        "Brand 0",
        "Brand 1",
        "Brand 2",
    ]
    item = next(r for r in harness.raw_products() if r["sku"] == "ITEM-1")
    assert item["brand_id"] == raced.theirs
    # The ledger manages the name as the object that stays, without a read-back to tell it.
    assert harness.ledger.managed("brand")["Brand 1"].remote_id == raced.theirs
    again, _ = harness.plan(_named_catalog(3))
    assert again.changes == ()


def test_a_failed_create_does_not_stop_the_race_check_of_the_others(harness: Harness) -> None:
    # A brand the store refuses (blank name) beside one it takes: the check after them still
    # runs, so only the product needing the refused brand is skipped.
    base, live = harness.plan(_named_catalog(1))
    bad_brand = Change(
        Kind.BRAND, " ", Action.CREATE, (FieldChange("name", None, " "),), requests=1
    )
    needs = Change(
        Kind.PRODUCT,
        "needs-brand",
        Action.CREATE,
        (
            FieldChange("name", None, "Needs Brand"),
            FieldChange("sku", None, "NB-1"),
            FieldChange("brand", None, " "),
            FieldChange("price", None, "5.00"),
        ),
        requests=1,
    )
    plan = replace(base, changes=(bad_brand, *base.changes, needs))
    result = harness.apply_plan(plan, live)
    outcomes = {c.key: c.outcome for c in result.changes}
    assert outcomes[" "] == "failed" and outcomes["needs-brand"] == "skipped"
    assert outcomes["Brand 0"] == "applied" and outcomes["item-0"] == "applied"
    assert [r["sku"] for r in harness.raw_products()] == ["ITEM-0"]
