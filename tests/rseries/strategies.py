"""Hypothesis strategies for R-Series apply tests (all in one place): catalogs R-Series can
hold (no descriptions, money at 2 places, 12- or 13-digit barcodes, options a system set or a
set of their own holds), with real-store spellings mixed in."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from reconciler.model import Brand, Catalog, Product, Prune, Settings, Variant, sorted_names

BRANDS = ("Acme", "Zeta", "Harbour & Co")
SUPPLIERS = ("Acme Supply", "Northwind")
TAGS = ("summer", "Winter Sale", "cotton", "gift")
OPTION_SETS = (("Color", "Size"), ("Size",), ("Color",), ("Material", "Weight"), ("Fit",))
VALUES = ("S", "M", "L", "Red", "Blue", "Wool / Silk")
CATEGORIES = (("Apparel", "Tops"), ("Apparel",), ("Home & Gifts",), ("Spirits", "Bourbon/Whiskey"))

money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999.99"), places=2)


def gtin(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def barcode_for(n: int) -> str:
    """A unique valid barcode: 12 digits (UPC-A) or 13 (EAN-13) in turn."""
    width = (11, 12)[n % 2]
    return gtin(f"8{n:0{width - 1}d}")


@st.composite
def products(draw: st.DrawFn, index: int) -> Product:
    common: dict[str, Any] = {
        "handle": draw(st.sampled_from([f"product-{index}", f"WATSON{index}", f"{index:04d}"])),
        "name": f"Product {index}",
        "brand": draw(st.none() | st.sampled_from(BRANDS)),
        "supplier": draw(st.none() | st.sampled_from(SUPPLIERS)),
        "category": draw(st.none() | st.sampled_from(CATEGORIES)),
        "tags": draw(
            st.none()
            | st.lists(st.sampled_from(TAGS), unique=True, max_size=2).map(
                lambda t: tuple(sorted_names(t))
            )
        ),
        "price": draw(money),
        "supply_price": draw(st.none() | money),
    }
    if common["supplier"] is not None:
        common["supplier_code"] = draw(st.none() | st.just(f"SUP-{index}"))
    if draw(st.booleans()):
        return Product(
            **common,
            sku=f"SKU-{index}",
            barcode=draw(st.none() | st.just(barcode_for(index * 100))),
            active=draw(st.none() | st.booleans()),
        )
    options = draw(st.sampled_from(OPTION_SETS))
    rows = []
    for j in range(draw(st.integers(1, 3))):
        values = [draw(st.sampled_from(VALUES)) for _ in options]
        values[0] = f"{values[0]} {j}"  # a unique combination within the family
        rows.append(
            Variant(
                sku=f"SKU-{index}-{j}",
                options=tuple(zip(options, values, strict=True)),
                price=draw(st.none() | money),
                barcode=draw(st.none() | st.just(barcode_for(index * 100 + j + 1))),
                active=draw(st.none() | st.booleans()),
            )
        )
    return Product(**common, options=options, variants=tuple(rows))


@st.composite
def catalogs(draw: st.DrawFn) -> Catalog:
    count = draw(st.integers(1, 5))
    return Catalog.build(
        products=[draw(products(i)) for i in range(count)],
        brands=[Brand(n) for n in draw(st.sets(st.sampled_from(BRANDS)))],
        settings=Settings(prune=draw(st.sampled_from([Prune.NONE, Prune.DEACTIVATE]))),
    )


@st.composite
def edited(draw: st.DrawFn, catalog: Catalog) -> Catalog:
    """`catalog` as someone might edit it next: fields changed, variants added, dropped or
    made inactive, products dropped; never a product's shape or options (R-Series cannot
    change a family's attribute set)."""
    out: list[Product] = []
    for index, p in enumerate(catalog.products):
        if draw(st.integers(0, 5)) == 0:
            continue  # dropped from the catalog (prune decides what happens in the store)
        fresh = draw(products(index))
        changes: dict[str, Any] = {
            "brand": fresh.brand if draw(st.booleans()) else p.brand,
            "category": fresh.category if draw(st.booleans()) else p.category,
            "tags": fresh.tags if draw(st.booleans()) else p.tags,
            "price": fresh.price if draw(st.booleans()) else p.price,
            "name": f"{p.name} v2" if draw(st.booleans()) else p.name,
        }
        if not p.is_family:
            changes["active"] = draw(st.none() | st.booleans())
            out.append(replace(p, **changes))
            continue
        rows = [
            replace(v, price=draw(st.none() | money), active=draw(st.none() | st.booleans()))
            for v in p.variants
            if draw(st.integers(0, 4)) > 0
        ]
        if draw(st.booleans()):
            values = [draw(st.sampled_from(VALUES)) for _ in p.options]
            values[0] = f"{values[0]} new"
            rows.append(
                Variant(sku=f"SKU-{index}-new", options=tuple(zip(p.options, values, strict=True)))
            )
        out.append(replace(p, variants=tuple(rows or p.variants[:1]), **changes))
    return Catalog.build(products=out, brands=catalog.brands, settings=catalog.settings)
