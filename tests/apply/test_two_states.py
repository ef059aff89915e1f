"""Two applies from two state files on one store (a laptop and CI; two runners after a lost
state branch) never make a duplicate brand, supplier, tag, variant attribute or category, nor
a duplicate product (issue 12, point 2). Neither sees the other's lock or cache: the store is
looked up before each kind is created, and a racing create settles on the oldest object."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply import ApplyResult
from reconciler.live import path_key
from reconciler.model import Catalog
from reconciler.plan import Plan
from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State

from .helpers import TOKEN, Harness, catalog, simple, tee

TRIALS = 20


def _catalog() -> Catalog:
    return catalog(
        tee("tee-a", brand="Acme", tags=("cotton", "summer")),
        tee("tee-b", brand="Borealis", tags=("linen",), category=("Apparel", "Bottoms")),
        simple("gift-wrap", "GIFT-WRAP", tags=("gift",), brand="Acme"),
    )


def _live(client: Client, kind: str) -> list[dict[str, Any]]:
    return [o for page in client.iter_pages(kind) for o in page.items if not o.get("deleted_at")]


def _duplicates(client: Client) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for kind in ("brand", "supplier", "tag"):
        names = Counter(str(o["name"]).casefold() for o in _live(client, kind))
        found[kind] = [n for n, k in names.items() if k > 1]
    attributes = Counter(str(o["name"]).casefold() for o in client.variant_attributes())
    found["variant_attribute"] = [n for n, k in attributes.items() if k > 1]
    paths = Counter(
        path_key(str(s["name"]) for s in c["category_path"]) for c in client.product_categories()
    )
    found["category"] = [" / ".join(p) for p, k in paths.items() if k > 1]
    rows = _live(client, "product")
    skus = Counter(str(r["sku"]) for r in rows)
    found["sku"] = [s for s, k in skus.items() if k > 1]
    families = {(r.get("family_id") or r["id"], str(r["name"]).casefold()) for r in rows}
    names = Counter(name for _, name in families)
    found["family name"] = [n for n, k in names.items() if k > 1]
    return {k: v for k, v in found.items() if v}


def _race(store: SandboxStore, tmp: Path, trial: int) -> list[tuple[Plan, ApplyResult]]:
    wanted = _catalog()
    start = threading.Barrier(2)
    results: list[tuple[Plan, ApplyResult]] = []
    errors: list[BaseException] = []

    def one(name: str) -> None:
        try:
            with (
                Client("http://sandbox.test", TOKEN, transport=SandboxTransport(store)) as client,
                State(tmp / f"{name}-{trial}.db") as state,
            ):
                start.wait()
                results.append(Harness(store, client, state).apply(wanted, parallelism=4))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in ("laptop", "ci")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


@pytest.mark.parametrize("trial", range(TRIALS))
def test_two_state_files_applying_together_make_no_duplicate(tmp_path: Path, trial: int) -> None:
    store = SandboxStore(":memory:", token=TOKEN, rate_limit=None, seed=trial)
    try:
        results = _race(store, tmp_path, trial)
        with Client("http://sandbox.test", TOKEN, transport=SandboxTransport(store)) as client:
            assert _duplicates(client) == {}
            # Every name the catalog uses is there, once.
            assert {o["name"] for o in _live(client, "brand")} >= {"Acme", "Borealis"}
            assert {o["name"] for o in _live(client, "tag")} >= {"cotton", "summer", "linen"}
        # Both runs ended well: the loser of each race adopted the winner's object.
        for _plan, result in results:
            failed = [(c.key, c.error) for c in result.changes if c.outcome != "applied"]
            assert failed == [] or all("already" in str(e) for _, e in failed), failed
        # And each state file now plans nothing more.
        for name in ("laptop", "ci"):
            with (
                Client("http://sandbox.test", TOKEN, transport=SandboxTransport(store)) as client,
                State(tmp_path / f"{name}-{trial}.db") as state,
            ):
                plan, _ = Harness(store, client, state).plan(_catalog())
                assert [c.key for c in plan.changes] == [], name
    finally:
        store.close()


def test_plan_names_duplicates_already_in_the_store_and_apply_uses_the_oldest(
    harness: Harness, client: Client
) -> None:
    first = client.create_brand("Acme")
    second = client.create_brand("ACME")
    plan, result = harness.apply(catalog(simple("mug", "MUG", brand="Acme")))
    assert any(
        f'brand "Acme" is in the store 2 times ({first}, {second})' in n for n in plan.notices
    )
    assert result.ok
    mug = next(r for r in harness.raw_products() if r["sku"] == "MUG")
    assert mug["brand_id"] == first  # the oldest (lowest version), every time
