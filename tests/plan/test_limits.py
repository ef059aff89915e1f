"""The planner reads the provider's `Limits` as a value: prices compare at the store's money
places, the leaf-only category notice is given only where the store refuses parent categories,
and fields the store has no place for are never compared."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from reconciler import providers
from reconciler.limits import DEFAULT
from reconciler.live import Live, money_text, row_values
from reconciler.model import Brand, Catalog, Product, Variant
from reconciler.planner import make_plan
from reconciler.providers.rseries.normalize import normalize_live

RSERIES = providers.get("rseries").limits
XSERIES = providers.get("xseries").limits


def item(ident: str, sku: str, price: str, **fields: Any) -> dict[str, Any]:
    """An R-Series item as the cache keeps it (`normalize.trim`)."""
    return {
        "id": ident,
        "version": 1,
        "description": fields.pop("description", sku.title()),
        "archived": False,
        "categoryID": fields.pop("categoryID", ""),
        "manufacturerID": "",
        "defaultVendorID": "",
        "itemMatrixID": "",
        "defaultCost": "1.00",
        "price": price,
        "tags": [],
        "customSku": sku,
        "upc": "",
        "ean": "",
        "attributes": ["", "", ""],
        "vendorNums": [],
        **fields,
    }


CATEGORIES = [
    {"id": "1", "version": 1, "name": "Home", "parentID": ""},
    {"id": "2", "version": 1, "name": "Kitchen", "parentID": "1"},
]


def live(*items: dict[str, Any]) -> Live:
    return normalize_live(items=items, categories=CATEGORIES)


def mug(price: str, **fields: Any) -> Product:
    return Product(handle="MUG", name="Mug", sku="MUG", price=Decimal(price), **fields)


@dataclass
class Managed:
    remote_id: str | None
    applied: dict[str, Any] = field(default_factory=dict)


def test_money_text_quantizes_at_the_places_given() -> None:
    assert money_text(Decimal("0.125"), 2) == money_text(Decimal("0.13"), 2) == "0.13"
    assert money_text(Decimal("0.125")) == "0.125"  # 5 places, X-Series' and the default
    row = Variant(sku="A", price=Decimal("0.125"))
    assert row_values(row, declared_only=True, family=False, places=2)["price"] == "0.13"


def test_a_price_past_the_stores_places_is_no_change_on_rseries_only() -> None:
    catalog = Catalog.build(products=[mug("0.125")])
    store = live(item("1", "MUG", "0.13"))
    managed = {"product": {"MUG": Managed("1", {"sku": "MUG", "price": "0.13"})}}
    on_r = make_plan(catalog, store, store="r", managed=managed, limits=RSERIES)
    assert not on_r.has_changes and on_r.unchanged >= 1
    on_x = make_plan(catalog, store, store="x", managed=managed, limits=XSERIES)
    changed = [c for c in on_x.changes if c.key == "MUG"]
    assert [(f.field, f.before, f.after) for f in changed[0].fields] == [("price", "0.13", "0.125")]
    assert make_plan(catalog, store, store="x", managed=managed).has_changes  # the default


def test_a_parent_category_is_said_only_where_the_store_refuses_it() -> None:
    catalog = Catalog.build(
        products=[
            mug("0.13", category=("Home",)),
            Product(
                handle="PAN", name="Pan", sku="PAN", price=Decimal(5), category=("Home", "Kitchen")
            ),
        ]
    )
    store = live(item("1", "MUG", "0.13", categoryID="1"), item("2", "PAN", "5", categoryID="2"))
    assert not any(
        "subcategories" in n for n in make_plan(catalog, store, store="r", limits=RSERIES).notices
    )
    moved = Catalog.build(products=[mug("0.13", category=("Home",))])
    elsewhere = live(
        item("1", "MUG", "0.13", categoryID="2"), item("2", "PAN", "5", categoryID="2")
    )
    assert any(
        "subcategories" in n for n in make_plan(moved, elsewhere, store="x", limits=DEFAULT).notices
    )
    assert not any(
        "subcategories" in n for n in make_plan(moved, elsewhere, store="r", limits=RSERIES).notices
    )


def test_fields_the_platform_has_no_place_for_are_never_compared() -> None:
    catalog = Catalog.build(
        products=[mug("0.13", description="<p>Stoneware</p>", brand="Acme")],
        brands=[Brand(name="Acme", description="Makers")],
    )
    store = normalize_live(
        items=[item("1", "MUG", "0.13", manufacturerID="7")],
        manufacturers=[{"id": "7", "version": 1, "name": "Acme", "archived": False}],
    )
    managed = {"product": {"MUG": Managed("1", {"sku": "MUG", "price": "0.13"})}}
    assert not make_plan(catalog, store, store="r", managed=managed, limits=RSERIES).has_changes
    on_x = make_plan(catalog, store, store="x", managed=managed, limits=XSERIES)
    assert sorted(f.field for c in on_x.changes for f in c.fields) == [
        "description",
        "description",
    ]
