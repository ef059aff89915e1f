"""R-Series prune and removals: prune archives (DELETE: R-Series zeroes an archived item's
stock), only when the catalog asks and only what it manages, and the plan says so loudly;
tags are removed by replacing the set; options cannot change on an existing family."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.plan import Action, Kind
from reconciler.providers.rseries.sandbox import RSeriesStore
from reconciler.providers.rseries.writes import ARCHIVE_NOTE, build_steps
from reconciler.state import State
from tests.conftest import RSERIES_TOKEN

from .applying import MANAGED_KINDS, Harness, assert_converged, catalog, family, shop, simple
from .helpers import connect

ROUTE = "/API/V3/Account/{accountID}/"


@pytest.fixture
def rs(rseries: RSeriesStore, state: State, tmp_path: Path) -> Iterator[Harness]:
    with connect(rseries, RSERIES_TOKEN, tmp_path) as client:
        yield Harness(rseries, client, state)


def first_apply(rs: Harness) -> None:
    _, result = rs.apply(shop(2))
    assert result.ok
    rs.store.reset_stats()


def test_without_prune_nothing_is_archived(rs: Harness) -> None:
    first_apply(rs)
    fewer = catalog(*[p for p in shop(2).products if p.handle != "tee-1"])
    plan, result = rs.apply(fewer)
    assert result.ok and rs.write_count() == 0
    assert any("no longer declared" in n for n in plan.notices)


def test_prune_archives_a_family_in_one_delete_and_says_it_zeroes_stock(rs: Harness) -> None:
    first_apply(rs)
    fewer = catalog(*[p for p in shop(2).products if p.handle != "tee-1"], prune="deactivate")
    plan, live = rs.plan(fewer)
    managed = {k: rs.ledger.managed(k) for k in MANAGED_KINDS}
    compiled = build_steps(plan, live, managed)
    (change,) = plan.changes
    assert change.action is Action.DEACTIVATE and change.key == "tee-1"
    assert compiled.notes[id(change)] == ARCHIVE_NOTE
    shown = plan.with_costs(
        compiled.charges(), plan.estimate, notes=compiled.notes, notices=tuple(compiled.notices)
    )
    assert shown.changes[0].note == ARCHIVE_NOTE
    assert any("zeroes an archived item's stock" in n for n in shown.notices)
    result = rs.apply_plan(plan, live, fewer)
    assert result.ok
    assert rs.writes() == {f"DELETE {ROUTE}ItemMatrix/{{id}}.json": 1}
    items = [i for i in rs.records("Item") if str(i["customSku"]).startswith("TEE-1-")]
    assert len(items) == 3 and all(i["archived"] for i in items)
    assert_converged(rs, fewer)


def test_prune_archives_a_simple_product_and_a_dropped_variant(rs: Harness) -> None:
    first_apply(rs)
    tee = family(
        "tee-0",
        price="20.00",
        variants={"TEE-0-S": (("Black", "S"), "27.00"), "TEE-0-M": (("Black", "M"), None)},
    )
    fewer = catalog(
        tee,
        family("tee-1", price="21.00"),
        simple("gift-wrap", "GIFT-WRAP", tags=("cotton",), barcode="012345678905"),
        prune="delete",
    )
    _, result = rs.apply(fewer)
    assert result.ok, [c for c in result.changes if c.outcome != "applied"]
    assert rs.writes() == {f"DELETE {ROUTE}Item/{{id}}.json": 2}  # TEE-0-L and the sticker
    archived = {i["customSku"] for i in rs.records("Item") if i["archived"]}
    assert archived == {"TEE-0-L", "STICKER"}
    assert_converged(rs, fewer)


def test_an_unmanaged_product_is_never_archived(rs: Harness) -> None:
    # Made in the store by someone else: the catalog never managed it.
    rs.client.create("Item", {"description": "Their Mug", "customSku": "THEIR-MUG"})
    _, result = rs.apply(catalog(simple("pin", "PIN"), prune="delete"))
    assert result.ok
    mug = next(i for i in rs.records("Item") if i["customSku"] == "THEIR-MUG")
    assert not mug["archived"]


def test_tags_are_removed_by_sending_the_set_left(rs: Harness) -> None:
    first_apply(rs)
    untagged = catalog(
        *[p for p in shop(2).products if p.handle not in ("tee-0", "gift-wrap")],
        family("tee-0", price="20.00", tags=("cotton",)),
        simple("gift-wrap", "GIFT-WRAP", tags=(), barcode="012345678905"),
    )
    _, result = rs.apply(untagged)
    assert result.ok
    assert rs.writes() == {
        f"PUT {ROUTE}ItemMatrix/{{id}}.json": 1,
        f"PUT {ROUTE}Item/{{id}}.json": 1,
    }
    assert_converged(rs, untagged)


def test_a_familys_options_cannot_change_and_the_refusal_says_what_to_do(rs: Harness) -> None:
    first_apply(rs)
    reshaped = catalog(
        *[p for p in shop(2).products if p.handle != "tee-0"],
        family(
            "tee-0",
            price="20.00",
            options=("Size",),
            variants={
                "TEE-0-S": (("S",), "27.00"),
                "TEE-0-M": (("M",), None),
                "TEE-0-L": (("L",), None),
            },
        ),
    )
    _, result = rs.apply(reshaped)
    assert not result.ok and rs.write_count() == 0
    (refused,) = [c for c in result.changes if c.kind == str(Kind.PRODUCT)]
    assert refused.outcome == "failed" and refused.error is not None
    assert "cannot change the options of an existing family" in refused.error
