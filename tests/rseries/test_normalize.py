"""R-Series objects -> the catalog's shape: on the recorded bodies in ../shared/reference/rseries
and on sandbox data put there from a catalog, which must then plan no change at all."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from reconciler.model import Catalog
from reconciler.plan import Kind
from reconciler.planner import make_plan
from reconciler.providers.rseries.client import RSeriesClient, normalize, rows
from reconciler.providers.rseries.normalize import (
    NO_STAMP,
    canonical_stamp,
    normalize_live,
    tag_key,
    trim,
)
from reconciler.providers.rseries.refresh import load_live, refresh
from reconciler.state.cache import Cache

from .cassettes import REFERENCE, cassettes, load
from .helpers import CATALOG, seed

KINDS = ("Item", "ItemMatrix", "ItemAttributeSet", "Category", "Manufacturer", "Vendor")


def recorded(kind: str) -> list[dict[str, object]]:
    """Every record of `kind` in the recorded answers (and nested in matrices), trimmed."""
    out: dict[str, dict[str, object]] = {}
    bodies = [ex.response for name in cassettes() for ex in load(name)]
    bodies.append(json.loads((REFERENCE / "tap-lightspeedretail" / "data.json").read_text()))
    for body in bodies:
        if not isinstance(body, dict) or "httpCode" in body:
            continue
        for record in rows(body, kind):
            obj = trim(kind, normalize(record))
            out[str(obj["id"])] = obj
        if kind == "Item":
            for matrix in rows(body, "ItemMatrix"):
                for record in normalize(matrix).get("Items") or []:
                    out[str(record["itemID"])] = trim(kind, record)
    return list(out.values())


def test_every_recorded_body_normalizes() -> None:
    live = normalize_live(
        items=recorded("Item"),
        matrices=recorded("ItemMatrix"),
        attribute_sets=recorded("ItemAttributeSet"),
        categories=recorded("Category"),
        vendors=recorded("Vendor"),
    )
    # The recorded matrix 1 (set 2, "Size" in slot 2 alone) with its one recorded item.
    family = live.products["test-matrix"]
    assert family.is_family and family.product.options == ("Size",)
    assert family.product.name == "Test Matrix" and family.remote_id == "1"
    assert list(family.rows) == ["SKU2341(10)"]
    assert family.rows["SKU2341(10)"].values.price == Decimal("2.50")  # Default, not MSRP
    # A simple item keeps its SKU as the handle; Default price, 2 places, active.
    simple = live.products["302683AB"]
    assert not simple.is_family and simple.product.sku == "302683AB"
    assert simple.product.name == "Antique Brass 'Elbow' Studs - 3/4\" CasePack"
    assert simple.product.active is True
    assert live.sku_owner["SKU2341(10)"] == "test-matrix"
    # The recorded shirt dress: set 1 slots, matrix Default price, category id 621 unknown.
    dress = live.products["fd1770-raw-hem-stripe-shirt-dress"]
    assert dress.product.options == ("Color", "Size") and dress.product.category is None
    # Two recorded categories share the name "Category One": both named, the oldest used.
    assert ("category", "category one") in live.names.duplicates
    # The recorded categories: a path per id, each level by name.
    assert all(c.path and all(c.path) for c in live.names.categories.values())
    # Archived vendors (the recorded archive.yml) name nothing.
    assert all(live.names.suppliers[k].name for k in live.names.suppliers)
    held = {str(v["name"]).casefold() for v in recorded("Vendor") if not v["archived"]}
    assert len(live.names.suppliers) == len(held - {""})


def test_the_archived_recorded_item_is_inactive() -> None:
    archived = [
        trim("Item", normalize(ex.response["Item"]))
        for ex in load("lightspeed_pos/account/items/archive.yml")
        if ex.method == "DELETE"
    ]
    live = normalize_live(items=archived)
    (found,) = live.products.values()
    # Archived, not gone: an inactive product (recorded without a customSku: no row to own).
    assert found.product.active is False and found.product.name == "Item to destroy"
    assert found.rows == {} and "item-428" in live.products


def test_a_catalog_put_into_the_store_plans_no_change(
    rs_client: RSeriesClient, cache: Cache
) -> None:
    handles = seed(rs_client, CATALOG)
    refresh(rs_client, cache)
    live = load_live(
        cache, handles=handles, tag_spellings=[t for p in CATALOG.products for t in p.tags or ()]
    )
    assert sorted(live.products) == sorted(p.handle for p in CATALOG.products)
    plan = make_plan(CATALOG, live, store="rseries", managed=_managed(CATALOG))
    assert not plan.has_changes, [c for c in plan.all_changes() if c.action != "no-op"]
    tee = live.products["classic-tee"].product
    assert tee.tags == ("cotton", "Summer Sale")  # the store holds "summersale"
    assert tee.category == ("Apparel", "Tops") and tee.supplier_code == "ACME-TEE"
    assert [v.active for v in tee.variants] == [False, True, True]  # L archived
    wrap = live.products["gift-wrap"].product
    assert wrap.supply_price == Decimal("0.50") and wrap.barcode == "012345678905"


def test_money_is_read_at_the_stores_two_places() -> None:
    item = {"itemID": 1, "customSku": "A", "defaultCost": Decimal("0.125")}
    item["Prices"] = [{"amount": Decimal("3.5"), "useTypeID": 2}, {"amount": "2", "useTypeID": 1}]
    (found,) = normalize_live(items=[trim("Item", item)]).products.values()
    assert found.product.supply_price == Decimal("0.13")  # half up, as the store rounds
    assert found.product.price == Decimal("2.00")  # level 1 (Default), whatever comes first


def test_versions_are_the_time_stamp_text_in_one_canonical_form() -> None:
    # As the store sends it (any offset), or as the client parsed it: one form, in UTC, so a
    # plan shows when the record changed and equal moments are equal versions.
    for sent in ("2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00+00:00"):
        item = {"itemID": 1, "customSku": "A", "timeStamp": sent}
        (found,) = normalize_live(items=[trim("Item", item)]).products.values()
        assert found.version == "2024-05-01T10:00:00+00:00"
        assert found.rows["A"].version == "2024-05-01T10:00:00+00:00"
    assert (
        canonical_stamp(datetime(2024, 5, 1, 10, 0, 0, 750000, tzinfo=UTC))
        == "2024-05-01T10:00:00+00:00"
    )
    assert canonical_stamp(None) == canonical_stamp("not a time") == NO_STAMP


def test_handles_are_made_up_for_what_the_caller_does_not_know(
    rs_client: RSeriesClient, cache: Cache
) -> None:
    seed(rs_client, CATALOG)
    second = rs_client.create("ItemMatrix", {"description": "Classic Tee", "itemAttributeSetID": 3})
    rs_client.create("Item", {"description": "No SKU"})
    refresh(rs_client, cache)
    live = load_live(cache)
    assert "classic-tee" in live.products  # the first "Classic Tee" matrix
    # The second: its matrix id added.
    assert live.products[f"classic-tee-{second['itemMatrixID']}"].remote_id == str(
        second["itemMatrixID"]
    )
    assert "GIFT-WRAP" in live.products  # a simple item by its SKU
    assert any(h.startswith("item-") and not p.rows for h, p in live.products.items())
    # The catalog's handle wins over a made-up one, whichever comes first.
    known = load_live(cache, handles={"TEE-S-BLK": "tee"})
    assert known.products["tee"].product.name == "Classic Tee"
    assert known.sku_owner["TEE-S-BLK"] == "tee"


def test_tags_compare_ignoring_case_and_spaces() -> None:
    assert tag_key("Summer Sale") == tag_key("summersale") == tag_key(" SUMMER  sale")


@dataclass(frozen=True)
class Managed:
    remote_id: str | None = None
    applied: Mapping[str, object] = field(default_factory=dict)


def _managed(catalog: Catalog) -> dict[str, dict[str, Managed]]:
    """What an apply of `catalog` would have recorded: every product and variant managed."""
    out: dict[str, dict[str, Managed]] = {str(Kind.PRODUCT): {}, str(Kind.VARIANT): {}}
    for p in catalog.products:
        out[str(Kind.PRODUCT)][p.handle] = Managed()
        for v in p.variants:
            out[str(Kind.VARIANT)][v.sku] = Managed()
    return out
