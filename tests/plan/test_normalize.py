"""Normalization of live JSON (shaped like the OpenAPI examples) into the catalog's shape."""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from reconciler.diff import diff_fields
from reconciler.live import family_values, money_text, row_values
from reconciler.providers.xseries.normalize import normalize_live, parse_money, store_money

from .livedata import family_rows, live, simple_row


def test_a_family_in_the_catalogs_shape() -> None:
    got = live(family_rows()).products["classic-tee"]
    assert got.is_family and got.remote_id == "v1" and got.version == "105"
    assert family_values(got.product, declared_only=True) == {
        "name": "Classic Tee",
        "description": "<p>Soft</p>",
        "brand": "Acme",
        "supplier": "Acme Supply",
        "supplier_code": "ACME-TEE",
        "category": "Apparel / Tops",
        "tags": ["Cotton", "summer"],  # names, sorted case-insensitively like the model
        "options": ["Size", "Colour"],  # the family's attribute order
    }
    s, m = got.rows["TEE-S"].values, got.rows["TEE-M"].values
    assert row_values(s, declared_only=True, family=True) == {
        "price": "27.00",
        "supply_price": "8.00",
        "barcode": "9300000000011",
        "active": True,
        "options": {"Size": "S", "Colour": "Black"},
    }
    assert (m.barcode, m.active, money_text(m.price)) == (None, False, "25.00")


@pytest.mark.parametrize(("tax_exclusive", "expected"), [(False, "6.05263"), (True, "5.26316")])
def test_only_the_tax_modes_price_field_is_read(tax_exclusive: bool, expected: str) -> None:
    got = live([simple_row()], tax_exclusive=tax_exclusive).products["0006"].product
    assert money_text(got.price) == expected


def test_empty_objects_and_nulls_both_mean_none() -> None:
    empties: list[dict[str, object] | None] = [{}, None]
    for empty in empties:
        row = simple_row(brand=empty, supplier=empty, type=empty, brand_id=None, description=None)
        got = live([row]).products["0006"].product
        assert (got.brand, got.supplier, got.category, got.description) == (None, None, None, "")


def test_a_custom_code_is_the_sku_not_a_barcode() -> None:
    got = live([simple_row()]).products["0006"].product
    assert got.barcode is None and got.sku == "0006"


def test_brand_falls_back_to_the_embedded_object_when_the_id_is_unknown() -> None:
    row = simple_row(brand_id="b9", brand={"id": "b9", "name": "Zeta"})
    assert live([row]).products["0006"].product.brand == "Zeta"


def test_a_brand_the_store_names_twice_is_read_by_id_not_from_the_stale_embedded_name() -> None:
    # Two live brands renamed to one name: `Names` keeps the first, but a product pointing at
    # the second reads that brand's current name, not the one its cached payload embeds (a
    # brand's rename does not change the products pointing at it, so their rows stay cached).
    brands = [
        {"id": "b1", "name": "Zeta", "version": 1},
        {"id": "b2", "name": "zeta", "version": 2},
    ]
    row = simple_row(brand_id="b2", brand={"id": "b2", "name": "Acme"})
    got = live([row], brands=brands)
    assert got.names.brands["zeta"].id == "b1"
    assert got.products["0006"].product.brand == "zeta"


def test_category_from_the_id_when_no_path_is_embedded() -> None:
    row = simple_row(product_type_id="c2")
    assert live([row]).products["0006"].product.category == ("Apparel", "Tops")


def test_deleted_rows_are_gone() -> None:
    rows = [simple_row(deleted_at="2024-01-01T00:00:00+00:00")]
    assert live(rows).products == {}


@pytest.mark.parametrize(
    ("raw", "text"),
    [(25, "25.00"), (25.0, "25.00"), ("25.5", "25.50"), (2.63158, "2.63158"), (0.1 + 0.2, "0.30")],
)
def test_money_is_exact_at_the_stores_precision(raw: object, text: str) -> None:
    assert money_text(parse_money(raw)) == text


@pytest.mark.parametrize("raw", [1e25, "9" * 24, "1e999999", 123456789012345678901234])
def test_a_store_amount_too_long_for_any_catalog_is_no_price(raw: object) -> None:
    # No InvalidOperation from quantizing past 28 digits: the plan writes the catalog's price.
    assert parse_money(raw) is None


@pytest.mark.parametrize("raw", [999999999.99999, "999999999.99999"])
def test_the_largest_catalog_amount_reads_back_exactly(raw: object) -> None:
    assert money_text(parse_money(raw)) == money_text(Decimal("999999999.99999"))


def test_catalog_and_live_money_agree_whatever_the_spelling() -> None:
    assert money_text(Decimal("27")) == money_text(parse_money(27.0)) == "27.00"


def test_diff_reports_whole_fields_and_ignores_undeclared_ones() -> None:
    live_values = {"name": "Tee", "tags": ["a", "b"], "brand": "Acme", "description": "x"}
    desired = {"name": "Tee", "tags": ["a", "c"]}  # brand and description not declared
    [change] = diff_fields(desired, live_values)
    assert (change.field, change.before, change.after) == ("tags", ["a", "b"], ["a", "c"])


def test_diff_reports_a_changed_key_of_a_dict_field_as_the_whole_field() -> None:
    [change] = diff_fields(
        {"options": {"Size": "M", "Colour": "Red"}}, {"options": {"Size": "S", "Colour": "Red"}}
    )
    assert change.before == {"Size": "S", "Colour": "Red"}


def test_diff_does_not_take_true_for_one() -> None:
    [change] = diff_fields({"active": True}, {"active": 1})
    assert change.field == "active"


def test_diff_orders_fields_as_asked() -> None:
    got = diff_fields(
        {"price": "2.00", "active": False, "barcode": "1"}, {}, order=("price", "barcode")
    )
    assert [c.field for c in got] == ["price", "barcode", "active"]


def test_family_fields_come_from_the_most_recently_changed_row() -> None:
    rows = family_rows()
    rows[1]["description"] = "<p>Edited through the M variant</p>"  # version 105 > parent's 100
    got = live(rows).products["classic-tee"]
    assert got.product.description == "<p>Edited through the M variant</p>"
    assert got.remote_id == "v1"  # still the parent row


@pytest.mark.parametrize("order", list(itertools.permutations(range(5))))
def test_family_fields_come_from_the_newest_row_whatever_order_the_rows_arrive_in(
    order: tuple[int, ...],
) -> None:
    # The change feed interleaves families (an edit moves one row to the end), and a family's
    # fields are read from its newest row as the stream moves on: a newer row met later, after
    # other families' rows, is read in its turn; an older one met later changes nothing.
    tee = family_rows()
    tee[0]["version"], tee[1]["version"] = 100, 300
    tee[1]["description"] = "<p>Edited through the M variant</p>"
    tee[1]["tag_ids"] = ["t2"]
    other = simple_row(version=200)
    old_tee = {**tee[0], "id": "v3", "sku": "TEE-L", "version": 50, "name": "Old Tee"}
    old_tee["variant_parent_id"], old_tee["has_variants"] = "v1", False
    rows = [
        tee[0],
        other,
        tee[1],
        old_tee,
        simple_row(id="p7", handle="0007", sku="0007", name="Product 0007"),
    ]
    got = live([rows[i] for i in order])
    product = got.products["classic-tee"].product
    assert (product.name, product.description, product.tags) == (
        "Classic Tee",
        "<p>Edited through the M variant</p>",
        ("Cotton",),
    )
    assert got.products["classic-tee"].version == "300"
    assert sorted(got.products["classic-tee"].rows) == ["TEE-L", "TEE-M", "TEE-S"]
    assert got == live(rows)


def test_a_rows_new_price_is_read_when_the_store_held_the_old_one_before() -> None:
    # Prices parsed once per run are shared across rows: a row that changed since the last
    # normalization reads its own new value, never the one a row held before.
    before = live([simple_row(price_including_tax="6.05263")]).products["0006"]
    after = live([simple_row(price_including_tax="7.5", version=59780758)]).products["0006"]
    assert (money_text(before.product.price), money_text(after.product.price)) == (
        "6.05263",
        "7.50",
    )
    assert after.version == "59780758"


@pytest.mark.parametrize("raw", ["25.5", 25.5, "25.50", 25, 25.0, "25", "0.1", 0.1, 1e25])
def test_money_read_once_per_spelling_reads_like_a_fresh_parse(raw: object) -> None:
    # The memo is keyed by type as well as value: 25 and 25.0 and "25" are each parsed as
    # themselves, and an amount too long for the store stays no price on every read.
    fresh = Decimal(str(raw))
    expected = None if fresh.adjusted() > 20 else store_money(fresh)
    assert parse_money(raw) == expected and parse_money(raw) == expected
    got = parse_money(raw)
    assert got is None or str(got) == str(expected)


def test_normalizing_pauses_the_cyclic_collector_and_restores_it() -> None:
    # Rows build no reference cycles; the collector, left on, would walk the whole heap again
    # and again while a large store is read. It runs again afterwards, as it was.
    seen: list[bool] = []

    def rows() -> Iterator[dict[str, Any]]:
        seen.append(gc.isenabled())
        yield simple_row()

    assert gc.isenabled()
    normalize_live(products=rows(), tax_exclusive=False)
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        normalize_live(products=rows(), tax_exclusive=False)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_rows_with_the_same_options_share_one_options_tuple() -> None:
    # A store repeats a few hundred option combinations over all its rows: each is kept once.
    tee = family_rows()
    other = [
        {**row, "id": f"o{n}", "family_id": "f2", "handle": "other-tee", "sku": f"O-{n}"}
        for n, row in enumerate(family_rows())
    ]
    got = live(tee + other).products
    for sku, other_sku in (("TEE-S", "O-0"), ("TEE-M", "O-1")):
        mine, theirs = got["classic-tee"].rows[sku].values, got["other-tee"].rows[other_sku].values
        assert mine.options == theirs.options and mine.options is theirs.options
