"""R-Series apply against the sandbox store in process: what each change sends (counted by the
store), that the store then holds the catalog (the next plan is empty), and costs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.providers.rseries.sandbox import RSeriesStore
from reconciler.state import State
from tests.conftest import RSERIES_TOKEN

from .applying import Harness, assert_converged, catalog, family, shop, simple
from .helpers import connect


@pytest.fixture
def rs(rseries: RSeriesStore, state: State, tmp_path: Path) -> Iterator[Harness]:
    with connect(rseries, RSERIES_TOKEN, tmp_path) as client:
        yield Harness(rseries, client, state)


def test_a_new_shop_is_created_and_converges(rs: Harness) -> None:
    wanted = shop(3)
    rs.store.reset_stats()
    _, result = rs.apply(wanted)
    assert result.ok, [c for c in result.changes if c.outcome != "applied"]
    writes = rs.writes()
    assert writes == {
        "POST /API/V3/Account/{accountID}/Manufacturer.json": 1,
        "POST /API/V3/Account/{accountID}/Vendor.json": 1,
        "POST /API/V3/Account/{accountID}/Category.json": 2,
        "POST /API/V3/Account/{accountID}/ItemMatrix.json": 3,
        "POST /API/V3/Account/{accountID}/Item.json": 11,
    }, writes
    assert_converged(rs, wanted)


ROUTE = "/API/V3/Account/{accountID}/"


def route(method: str, resource: str, *, single: bool = False) -> str:
    return f"{method} {ROUTE}{resource}{'/{id}' if single else ''}.json"


def applied_once(rs: Harness, wanted: object) -> None:
    from reconciler.model import Catalog

    assert isinstance(wanted, Catalog)
    _, result = rs.apply(wanted)
    assert result.ok, [c for c in result.changes if c.outcome != "applied"]
    rs.store.reset_stats()


def test_one_variant_price_is_one_put_with_only_that_field(rs: Harness) -> None:
    applied_once(rs, shop(2))
    edited = shop(2)
    tee = edited.products[1]  # tee-0 (sorted by handle: gift-wrap, sticker after)
    tee = next(p for p in edited.products if p.handle == "tee-1")
    changed = catalog(
        *[p for p in edited.products if p.handle != "tee-1"],
        family(
            "tee-1",
            price="21.00",
            variants={
                "TEE-1-S": (("Black", "S"), "29.00"),
                "TEE-1-M": (("Black", "M"), None),
                "TEE-1-L": (("Black", "L"), None),
            },
        ),
    )
    assert tee.handle == "tee-1"
    _, result = rs.apply(changed)
    assert result.ok
    assert rs.writes() == {route("PUT", "Item", single=True): 1}
    (step,) = rs.steps()
    assert step.payload == {"Prices": {"ItemPrice": [{"amount": "29.00", "useTypeID": "1"}]}}
    assert_converged(rs, changed)


def test_a_family_rename_puts_the_matrix_and_each_items_description(rs: Harness) -> None:
    applied_once(rs, catalog(family("tee")))
    renamed = catalog(family("tee", name="Heavy Tee"))
    _, result = rs.apply(renamed)
    assert result.ok
    assert rs.writes() == {
        route("PUT", "ItemMatrix", single=True): 1,
        route("PUT", "Item", single=True): 3,
    }
    items = {i["customSku"]: i["description"] for i in rs.records("Item")}
    assert items["TEE-S"] == "Heavy Tee Black S"
    assert_converged(rs, renamed)


def test_a_supplier_code_goes_to_the_items_only(rs: Harness) -> None:
    applied_once(rs, catalog(family("tee")))
    recoded = catalog(family("tee", code="NEW-CODE"))
    _, result = rs.apply(recoded)
    assert result.ok
    assert rs.writes() == {route("PUT", "Item", single=True): 3}
    body = rs.steps()[0].payload
    assert set(body) == {"ItemVendorNums"}
    assert_converged(rs, recoded)


def test_brand_and_category_reach_matrix_and_items_in_one_put_each(rs: Harness) -> None:
    applied_once(rs, catalog(family("tee")))
    moved = catalog(family("tee", brand="Zeta", category=("Apparel", "Shirts")))
    _, result = rs.apply(moved)
    assert result.ok
    assert rs.writes() == {
        route("POST", "Manufacturer"): 1,
        route("POST", "Category"): 1,
        route("PUT", "ItemMatrix", single=True): 1,
        route("PUT", "Item", single=True): 3,
    }
    assert_converged(rs, moved)
    # The category write is priced at 10 units, as the docs say.
    costs = {s.label: s.cost for s in rs.steps()}
    assert costs["create category Apparel / Shirts"] == 10.0


def test_a_simple_products_fields_go_in_one_put(rs: Harness) -> None:
    from decimal import Decimal

    applied_once(rs, shop(1))
    edited = catalog(
        *[p for p in shop(1).products if p.handle != "sticker"],
        simple(
            "sticker",
            "STICKER",
            price="1.50",
            brand="Acme",
            supply_price=Decimal("0.45"),
            barcode="9300000000019",
            tags=("fresh",),
        ),
    )
    _, result = rs.apply(edited)
    assert result.ok
    # The new tag rides on the item's PUT (the store makes a tag it is sent by name).
    assert rs.writes() == {route("PUT", "Item", single=True): 1}
    (step,) = rs.steps()
    assert [str(c.kind) for c in step.changes] == ["product", "tag"]
    assert step.payload == {
        "Prices": {"ItemPrice": [{"amount": "1.50", "useTypeID": "1"}]},
        "defaultCost": "0.45",
        "ean": "9300000000019",
        "upc": "",
        "Tags": {"tag": ["fresh"]},
    }
    assert_converged(rs, edited)


def test_family_tags_are_one_matrix_put(rs: Harness) -> None:
    applied_once(rs, catalog(family("tee")))
    tagged = catalog(family("tee", tags=("cotton", "Winter Sale")))
    _, result = rs.apply(tagged)
    assert result.ok
    assert rs.writes() == {route("PUT", "ItemMatrix", single=True): 1}
    assert_converged(rs, tagged)


def test_inactive_archives_and_says_it_zeroes_stock_and_active_restores(rs: Harness) -> None:
    applied_once(rs, shop(1))
    off = catalog(
        family(
            "tee-0",
            price="20.00",
            variants={
                "TEE-0-S": (("Black", "S"), "27.00"),
                "TEE-0-M": (("Black", "M"), None),
                "TEE-0-L": (("Black", "L"), None),
            },
        ),
        *[p for p in shop(1).products if not p.is_family and p.handle != "sticker"],
        simple("sticker", "STICKER", price="1.25", brand="Acme", active=False),
    )
    from dataclasses import replace

    tee = off.products[[p.handle for p in off.products].index("tee-0")]
    rows = tuple(replace(v, active=False) if v.sku == "TEE-0-M" else v for v in tee.variants)
    off = catalog(*[replace(p, variants=rows) if p.handle == "tee-0" else p for p in off.products])
    _, result = rs.apply(off)
    assert result.ok, [c for c in result.changes if c.outcome != "applied"]
    assert rs.writes() == {route("DELETE", "Item", single=True): 2}
    labels = [s.label for s in rs.steps()]
    assert all("zeroes its stock" in label for label in labels), labels
    assert all(s.zeroes_stock for s in rs.steps())
    assert_converged(rs, off)
    rs.store.reset_stats()
    # Declared active again (an undeclared `active` is never compared).
    on = catalog(
        *[
            replace(p, variants=tuple(replace(v, active=True) for v in p.variants))
            if p.handle == "tee-0"
            else replace(p, active=True)
            if p.handle == "sticker"
            else p
            for p in off.products
        ]
    )
    _, result = rs.apply(on)
    assert result.ok
    assert rs.writes() == {route("PUT", "Item", single=True): 2}
    assert {s.payload["archived"] for s in rs.steps()} == {"false"}
    assert_converged(rs, on)


def test_a_new_family_inactive_variant_is_created_then_archived(rs: Harness) -> None:
    from dataclasses import replace

    tee = family("tee")
    tee = replace(tee, variants=(*tee.variants[:2], replace(tee.variants[2], active=False)))
    wanted = catalog(tee)
    rs.store.reset_stats()
    _, result = rs.apply(wanted)
    assert result.ok
    assert rs.writes()[route("DELETE", "Item", single=True)] == 1
    assert_converged(rs, wanted)


def test_options_no_system_set_holds_make_one_set_for_all_their_families(rs: Harness) -> None:
    care = ("Material", "Weight")
    wanted = catalog(
        family("wool", options=care, variants={"W-1": (("Wool", "1 kg"), None)}),
        family("silk", options=care, variants={"S-1": (("Silk", "2 kg"), None)}),
        family("socks", options=("Size",), variants={"SO-1": (("One",), None)}),
        family("caps", options=("Color",), variants={"CA-1": (("Red",), None)}),
    )
    rs.store.reset_stats()
    _, result = rs.apply(wanted)
    assert result.ok, [c for c in result.changes if c.outcome != "applied"]
    assert rs.writes()[route("POST", "ItemAttributeSet")] == 1
    sets = {m["description"]: m["itemAttributeSetID"] for m in rs.records("ItemMatrix")}
    assert sets["Socks"] == 2 and sets["Caps"] == 3  # "Size" alone is set 2, slot 2
    assert sets["Wool"] == sets["Silk"] > 4
    assert_converged(rs, wanted)


def test_a_variant_added_to_an_existing_family_is_one_post(rs: Harness) -> None:
    applied_once(rs, catalog(family("socks", options=("Size",), variants={"SO-1": (("S",), None)})))
    grown = catalog(
        family(
            "socks",
            options=("Size",),
            variants={"SO-1": (("S",), None), "SO-2": (("M",), "30.00")},
        )
    )
    _, result = rs.apply(grown)
    assert result.ok, [c for c in result.changes if c.outcome != "applied"]
    assert rs.writes() == {route("POST", "Item"): 1}
    assert_converged(rs, grown)


def test_a_variants_option_value_is_one_put(rs: Harness) -> None:
    applied_once(rs, catalog(family("tee")))
    changed = catalog(
        family(
            "tee",
            variants={
                "TEE-S": (("Black", "S"), "27.00"),
                "TEE-M": (("Navy", "M"), None),
                "TEE-L": (("Black", "L"), None),
            },
        )
    )
    _, result = rs.apply(changed)
    assert result.ok, [c for c in result.changes if c.outcome != "applied"]
    assert rs.writes() == {route("PUT", "Item", single=True): 1}
    item = next(i for i in rs.records("Item") if i["customSku"] == "TEE-M")
    assert item["description"] == "Tee Navy M"
    assert_converged(rs, changed)


def test_nothing_changed_sends_nothing(rs: Harness) -> None:
    applied_once(rs, shop(2))
    plan, _ = rs.plan(shop(2))
    assert not plan.has_changes
    _, result = rs.apply(shop(2))
    assert result.ok and rs.write_count() == 0


def test_a_deep_category_is_made_parents_first(rs: Harness) -> None:
    wanted = catalog(simple("pin", "PIN", category=("Gifts", "Small", "Pins")))
    rs.store.reset_stats()
    _, result = rs.apply(wanted)
    assert result.ok
    assert rs.writes()[route("POST", "Category")] == 3
    assert_converged(rs, wanted)


def test_the_steps_request_count_is_what_the_store_receives(rs: Harness) -> None:
    from reconciler.providers.rseries.writes import total_cost

    wanted = shop(3)
    rs.store.reset_stats()
    _, result = rs.apply(wanted)
    assert result.ok
    compiled = rs.compiled[-1]
    assert compiled.requests == rs.write_count() == result.writes
    # 2 categories at 10 units, 16 other writes at 1 plus 0.5 per nested entity.
    assert total_cost(compiled) == pytest.approx(sum(s.cost for s in rs.steps()))
    assert total_cost(compiled) > compiled.requests + 18


def test_answers_lost_after_commit_make_no_duplicate(rs: Harness) -> None:
    wanted = shop(3)
    rs.store.set_faults(timeout_rate=0.4)
    for _ in range(6):
        _, result = rs.apply(wanted)
        if result.ok:
            break
    rs.store.set_faults(timeout_rate=0.0)
    assert rs.store.stats()["faults_injected"] > 0
    assert_converged(rs, wanted)


def test_apply_over_a_real_socket(
    rseries_url: str, rseries: RSeriesStore, state: State, tmp_path: Path
) -> None:
    from reconciler.providers.rseries.client import client_from_environment

    environ = {
        "LIGHTSPEED_BASE_URL": rseries_url,
        "LIGHTSPEED_TOKEN": RSERIES_TOKEN,
    }
    with client_from_environment(environ, token_file=tmp_path / "tokens.json") as client:
        rs = Harness(rseries, client, state)
        wanted = shop(2)
        _, result = rs.apply(wanted)
        assert result.ok, [c for c in result.changes if c.outcome != "applied"]
        assert_converged(rs, wanted)
