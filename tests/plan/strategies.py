"""Hypothesis strategies for catalogs the planner is tested with (all in one place)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from reconciler.guardrails import import_allowances
from reconciler.model import Brand, Catalog, Product, Supplier, Variant, sorted_names

BRANDS = ("Acme", "Zeta", "Harbour & Co")
SUPPLIERS = ("Acme Supply", "Northwind")
TAGS = ("summer", "Winter", "cotton", "Wool", "gift")
OPTIONS = ("Size", "Colour", "Material")
VALUES = ("S", "M", "L", "Red", "Blue")
LEAVES = (("Apparel", "Tops"), ("Apparel", "Bottoms"), ("Home",), ("Spirits", "Bourbon/Whiskey"))
# Handles as real stores hold them (issue 18): capitals, "--", a trailing "-", all digits.
HANDLES = ("product-{}", "WATSON{}", "Mulcher-life-{}", "tee--{}-", "{:04d}")


def gtin(body: str) -> str:
    """`body` with its GTIN check digit (weights 3,1,3,... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def barcode_for(n: int) -> str:
    """A unique valid barcode for row `n`: GTIN-8, -12, -13 and -14 in turn (sent as EAN, UPC,
    EAN and ITF product codes)."""
    width = (7, 11, 12, 13)[n % 4]
    return gtin(f"9{n:0{width - 1}d}")


def case_of(name: str) -> st.SearchStrategy[str]:
    """The same name, spelled as a person might (names are case-insensitive identities)."""
    return st.sampled_from([name, name.lower(), name.upper()])


money = st.builds(
    lambda units, places: Decimal(units) / (10**places),
    st.integers(min_value=1, max_value=99_999_999),
    st.integers(min_value=0, max_value=5),
).filter(lambda d: d <= Decimal("99999"))
maybe_money = st.none() | money
maybe_bool = st.none() | st.booleans()
descriptions = st.none() | st.sampled_from(["", "<p>Soft</p>", "Plain text, with | pipe"])
tag_sets = st.none() | st.lists(st.sampled_from(TAGS), unique=True, max_size=3).map(tuple)


@st.composite
def products(draw: st.DrawFn, index: int, skus: list[str]) -> Product:
    """Product number `index`; its SKUs are appended to `skus` (unique across the catalog)."""

    def sku() -> str:
        skus.append(f"SKU-{len(skus):04d}")
        return skus[-1]

    common = {
        "handle": draw(st.sampled_from(HANDLES)).format(index),
        # Two families may share a name, as in real stores.
        "name": f"Product {index // 2}",
        "description": draw(descriptions),
        "brand": draw(st.none() | st.sampled_from(BRANDS)),
        "supplier": draw(st.none() | st.sampled_from(SUPPLIERS)),
        "supplier_code": draw(st.none() | st.sampled_from(["", "SC-1"])),
        "category": draw(st.none() | st.sampled_from(LEAVES)),
        "tags": draw(tag_sets),
        "active": draw(maybe_bool),
    }
    if draw(st.booleans()):
        return Product(
            **common,
            sku=sku(),
            price=draw(money),
            supply_price=draw(maybe_money),
            barcode=barcode_for(len(skus)) if draw(st.booleans()) else None,
        )
    options = tuple(draw(st.lists(st.sampled_from(OPTIONS), min_size=1, max_size=2, unique=True)))
    combos = draw(
        st.lists(
            st.tuples(*(st.sampled_from(VALUES) for _ in options)),
            min_size=1,
            max_size=4,
            unique_by=lambda t: tuple(v.casefold() for v in t),
        )
    )
    variants = tuple(
        Variant(
            sku=sku(),
            options=tuple(zip(options, combo, strict=True)),
            price=draw(maybe_money),
            supply_price=draw(maybe_money),
            barcode=barcode_for(len(skus)) if draw(st.booleans()) else None,
            active=draw(maybe_bool),
        )
        for combo in combos
    )
    return Product(**common, price=draw(money), options=options, variants=variants)


@st.composite
def catalogs(draw: st.DrawFn, *, max_products: int = 5) -> Catalog:
    """A valid, canonical catalog: unique handles, names and SKUs; products on leaf categories."""
    count = draw(st.integers(min_value=1, max_value=max_products))
    skus: list[str] = []
    items = [draw(products(i, skus)) for i in range(count)]
    # The loader sorts tags; so does the canonical model.
    items = [
        p if p.tags is None else Product(**{**p.__dict__, "tags": sorted_names(p.tags)})
        for p in items
    ]
    brands = draw(st.lists(st.sampled_from(BRANDS), unique=True, max_size=2))
    # Rows priced under their supply price are intended exceptions here (`allow: [margin]`).
    return import_allowances(
        Catalog.build(
            products=items,
            brands=[Brand(b, draw(st.none() | st.just(f"About {b}"))) for b in brands],
            suppliers=[
                Supplier(s)
                for s in draw(st.lists(st.sampled_from(SUPPLIERS), unique=True, max_size=1))
            ],
            tags=list(draw(st.lists(st.sampled_from(TAGS), unique=True, max_size=2))),
        )
    )
