"""Hypothesis strategies for the catalog tests, in one place."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from reconciler.guardrails import import_allowances
from reconciler.model import (
    OWNABLE_FIELDS,
    Brand,
    Catalog,
    Guardrails,
    Owner,
    Product,
    Prune,
    Settings,
    Supplier,
    Variant,
    clean_text,
)

# Text people could type in a name: anything printable on one line, no spaces at either end.
# YAML-significant spellings are mixed in on purpose: they must come back as the same text.
_TRICKY = [
    "yes",
    "No",
    "null",
    "~",
    "10",
    "0123",
    "1.50",
    "1e3",
    "<<",
    "- a",
    "a: b",
    "#x",
    "'q'",
    '"dq"',
    "@at",
    "`bt",
    "%pc",
    "!bang",
    "&amp",
    "*star",
    "2024-01-01",
    ".inf",
    "=",
    "?",
]
name_text = st.one_of(
    st.sampled_from(_TRICKY),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
        min_size=1,
        max_size=12,
    ).filter(lambda s: s == s.strip() and s),
)
# Free text (descriptions): anything, including newlines, control characters and spaces.
free_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)  # no surrogates
# A product's text as the model holds it: the one spelling every side compares (clean_text).
product_text = free_text.map(clean_text)
money = st.decimals(min_value=0, max_value=10**7, places=2, allow_nan=False) | st.decimals(
    min_value=0, max_value=1000, places=5, allow_nan=False
)
# Category paths are spelled one way across a catalog, so they come from a fixed set.
# Leaves only: the store (and validate) refuse a product on a category with subcategories.
CATEGORIES = [
    ("Apparel", "Tops"),
    ("Apparel", "Socks"),
    ("Home & Gifts",),
    ("Ünï", "10", "yes"),
    ("Spirits", "Bourbon/Whiskey"),  # a level whose name holds "/"
]

OPTION_NAMES = ["Size", "Colour", "Fit"]
BRANDS = ["Acme", "Northwind", "Harbour & Co", "yes"]
TAGS = ["summer", "winter", "10", "null", "Ünïcode tag"]


def _gtin13(n: int) -> str:
    from reconciler.rules import gtin_check_digit

    body = f"{n:012d}"
    return body + str(gtin_check_digit(body))


@st.composite
def products(draw: st.DrawFn, index: int) -> Product:
    """A valid product whose handle, name, SKUs and barcodes are unique by `index`."""
    family = draw(st.booleans())
    common: dict[str, Any] = {
        # Handles as real stores hold them, not only slugs.
        "handle": draw(
            st.sampled_from(
                [
                    f"p{index}-x",
                    f"WATSON{index}",
                    f"Mulcher-life{index}",
                    f"{index:04d}",
                    f"tee--{index}-",
                    f"CamelCase{index}",
                ]
            )
        ),
        "name": draw(st.sampled_from([f"Product {index}", f"Lamp {index}\nWarm White"])),
        "description": draw(st.none() | product_text),
        "brand": draw(st.none() | st.sampled_from(BRANDS)),
        "supplier": draw(st.none() | st.sampled_from(["Acme Supply", "Trading Co"])),
        "supplier_code": draw(st.none() | product_text),
        "category": draw(st.none() | st.sampled_from(CATEGORIES)),
        "tags": draw(
            st.none()
            | st.lists(st.sampled_from(TAGS), unique=True, max_size=3).map(
                lambda t: tuple(sorted(t, key=lambda n: (n.casefold(), n)))
            )
        ),
        "active": draw(st.none() | st.booleans()),
        "price": draw(st.none() | money),
        "supply_price": draw(st.none() | money),
    }
    if not family:
        return Product(
            **common,
            sku=draw(st.none() | st.just(f"SKU-{index}")),
            barcode=draw(st.none() | st.just(_gtin13(index * 1000))),
        )
    options = tuple(OPTION_NAMES[: draw(st.integers(1, 3))])
    count = draw(st.integers(1, 4))
    variants = []
    for j in range(count):
        values = [draw(name_text) for _ in options]
        values[0] = f"{values[0]} {j}"  # unique combinations within the family
        variants.append(
            Variant(
                sku=f"SKU-{index}-{j}",
                options=tuple(zip(options, values, strict=True)),
                price=draw(st.none() | money),
                supply_price=draw(st.none() | money),
                barcode=draw(st.none() | st.just(_gtin13(index * 1000 + j + 1))),
                active=draw(st.none() | st.booleans()),
            )
        )
    return Product(**common, options=options, variants=tuple(variants))


percents = st.integers(0, 200).map(Decimal) | st.decimals(
    min_value=0, max_value=99, places=1, allow_nan=False
)
guardrail_settings = st.builds(
    Guardrails,
    price_jump=st.none() | percents,
    margin=st.none() | st.integers(0, 99).map(Decimal),
    removals=st.none() | st.integers(0, 500),
    zero_price=st.booleans(),
) | st.builds(
    Guardrails,
    removals=st.none(),
    removals_percent=st.integers(1, 100).map(Decimal),
)
field_owners = st.dictionaries(st.sampled_from(OWNABLE_FIELDS), st.sampled_from(list(Owner))).map(
    lambda owners: tuple(sorted((f, o) for f, o in owners.items() if o is not Owner.CATALOG))
)


@st.composite
def catalogs(draw: st.DrawFn) -> Catalog:
    count = draw(st.integers(0, 6))
    prune = draw(st.sampled_from(list(Prune)))
    owners = draw(field_owners)
    if prune is Prune.DEACTIVATE:  # prune writes active: the store cannot own it then
        owners = tuple((f, o) for f, o in owners if (f, o) != ("active", Owner.STORE))
    # Products whose own prices break a guardrail say so (`allow:`), as an import writes them.
    return import_allowances(
        Catalog.build(
            products=[draw(products(i)) for i in range(count)],
            brands=[
                Brand(n, draw(st.none() | free_text))
                for n in draw(st.sets(st.sampled_from(BRANDS)))
            ],
            suppliers=[Supplier(n) for n in draw(st.sets(st.sampled_from(["Acme Supply"])))],
            tags=sorted(draw(st.sets(st.sampled_from(TAGS)))),
            settings=Settings(prune=prune, guardrails=draw(guardrail_settings), fields=owners),
        )
    )


# Arbitrary YAML-able documents, shaped a little like catalogs so they get past the first check.
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    name_text,
    free_text,
)
_keys = (
    st.sampled_from(
        [
            "products",
            "brands",
            "suppliers",
            "tags",
            "settings",
            "handle",
            "name",
            "sku",
            "price",
            "options",
            "variants",
            "images",
            "barcode",
            "prune",
            "active",
            "category",
            "Size",
        ]
    )
    | name_text
)
documents = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=25,
)


# Any text at all, as a store or a supplier's file may hand it over (controls, line separators,
# quotes, YAML syntax), short of lone surrogates, which no file can hold.
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
