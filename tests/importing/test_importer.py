"""The pure half of import: rows -> catalog decisions, and catalog -> file layout."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from reconciler.catalog import schema_text
from reconciler.importer import NAME_PATTERN, PRODUCT_NAME_PATTERN, CsvRow, Severity, hoist, layout
from reconciler.model import Catalog, Product, slugify
from reconciler.providers.xseries.csvimport import TaxMode, catalog_from_csv
from reconciler.rules import gtin_valid

COLUMNS = (
    "handle",
    "sku",
    "name",
    "variant_option_one_name",
    "variant_option_one_value",
    "variant_option_two_name",
    "variant_option_two_value",
    "retail_price",
    "product_category",
    "brand_name",
    "barcode",
)


def rows(*records: dict[str, str]) -> list[CsvRow]:
    return [
        CsvRow(line=i + 2, cells={c: r.get(c, "") for c in COLUMNS}) for i, r in enumerate(records)
    ]


def tee(sku: str, size: str, **extra: str) -> dict[str, str]:
    return {
        "handle": "tee",
        "sku": sku,
        "name": "Tee",
        "variant_option_one_name": "Size",
        "variant_option_one_value": size,
        "retail_price": "10.00",
        **extra,
    }


def errors(result_rows: list[CsvRow]) -> list[tuple[int | None, str]]:
    result = catalog_from_csv(COLUMNS, result_rows)
    return [(p.line, p.message) for p in result.errors]


def test_rows_of_a_family_must_name_the_same_options() -> None:
    found = errors(
        rows(
            tee("T-S", "S"),
            tee("T-M", "M", variant_option_one_name="size"),  # case-insensitive: same option
            tee("T-L", "L", variant_option_one_name="Colour"),
            {"handle": "tee", "sku": "T-X", "name": "Tee", "retail_price": "1"},
        )
    )
    assert [line for line, _ in found] == [4, 5]
    assert "options ['Colour'] differ from ['Size'] on line 2" in found[0][1]
    assert "must name their options" not in found[1][1]  # the family's first row has options


def test_a_repeated_option_combination_is_skipped() -> None:
    found = errors(rows(tee("T-S", "S"), tee("T-S2", "s")))
    assert found == [(3, "options {'Size': 's'} of \"T-S2\" repeat line 2 of \"tee\"; row skipped")]


def test_option_cells_must_pair_up_and_not_skip() -> None:
    found = errors(
        rows(
            {"handle": "a", "sku": "A", "name": "A", "variant_option_one_name": "Size"},
            {
                "handle": "b",
                "sku": "B",
                "name": "B",
                "variant_option_two_name": "Size",
                "variant_option_two_value": "S",
            },
        )
    )
    assert [line for line, _ in found] == [2, 3]
    assert "variant option 'Size' has no value" in found[0][1]
    assert "an earlier option is not" in found[1][1]


def test_a_simple_products_handle_cannot_be_reused() -> None:
    found = errors(
        rows(
            {"handle": "mug", "sku": "M-1", "name": "Mug"},
            {"handle": "mug", "sku": "M-2", "name": "Mug"},
        )
    )
    assert found[0][0] == 3 and "which has no variant options" in found[0][1]


def test_families_sharing_a_name_are_all_imported_with_a_warning() -> None:
    # Real stores hold several families under one name: the export is the store's truth.
    result = catalog_from_csv(
        COLUMNS,
        rows(
            {"handle": "mug", "sku": "M-1", "name": "Mug"},
            {"handle": "mug-2", "sku": "M-2", "name": "MUG"},
        ),
    )
    assert [p.handle for p in result.catalog.products] == ["mug", "mug-2"]
    assert result.errors == ()
    (warning,) = result.problems
    assert warning.severity is Severity.WARNING and warning.line == 3
    assert 'is also the name of "mug" (line 2)' in warning.message


def test_a_wrong_barcode_is_left_out_with_a_warning() -> None:
    result = catalog_from_csv(
        COLUMNS,
        rows(
            {"handle": "a", "sku": "A", "name": "A", "barcode": "9300000000019"},
            {"handle": "b", "sku": "B", "name": "B", "barcode": "9300000000011"},
        ),
    )
    a, b = result.catalog.products
    assert a.barcode == "9300000000019" and b.barcode is None
    assert [(p.line, p.severity) for p in result.problems] == [(3, Severity.WARNING)]
    assert gtin_valid("96385074") and not gtin_valid("96385075") and not gtin_valid("12345")


def test_the_tax_mode_picks_the_price_column() -> None:
    columns = ("handle", "sku", "name", "price_including_tax", "price_excluding_tax")
    row = [
        CsvRow(
            line=2,
            cells={
                "handle": "mug",
                "sku": "M",
                "name": "Mug",
                "price_including_tax": "11.50",
                "price_excluding_tax": "10.00",
            },
        )
    ]
    with pytest.raises(ValueError, match="--tax-mode"):
        catalog_from_csv(columns, row)
    inclusive = catalog_from_csv(columns, row, tax_mode=TaxMode.INCLUSIVE).catalog.products[0]
    exclusive = catalog_from_csv(columns, row, tax_mode=TaxMode.EXCLUSIVE).catalog.products[0]
    assert (inclusive.price, exclusive.price) == (Decimal("11.50"), Decimal("10.00"))


def test_hoist_says_a_shared_value_once() -> None:
    assert hoist([1, 1, 2]) == (1, [None, None, 2])
    assert hoist([2, 1]) == (2, [None, 1])  # a tie keeps the first
    assert hoist([1, None]) == (None, [1, None])  # never starts managing an undeclared value
    assert hoist([]) == (None, [])


def test_a_family_of_inactive_variants_is_inactive_as_a_whole() -> None:
    result = catalog_from_csv(
        (*COLUMNS, "active"),
        [
            CsvRow(line=2, cells={**tee("T-S", "S"), "active": "0"}),
            CsvRow(line=3, cells={**tee("T-M", "M"), "active": "false"}),
        ],
    )
    (product,) = result.catalog.products
    assert product.active is False
    assert [v.active for v in product.variants] == [None, None]


def test_layout_file_names_are_slugs_and_never_collide() -> None:
    catalog = Catalog.build(
        products=[
            Product(handle="a", name="A", category=("Tops & Tees",)),
            Product(handle="b", name="B", category=("Tops", "Tees")),
            Product(handle="c", name="C", category=("TOPS & TEES",)),  # same category as "a"
            Product(handle="d", name="D", brand="Tops-Tees"),
            Product(handle="e", name="E", category=("日本",)),
            Product(handle="f", name="F", category=("../../etc",)),
            Product(handle="g", name="G"),
        ]
    )
    files = {f.path: [p["handle"] for p in f.data["products"]] for f in layout(catalog)}
    assert files == {
        "products/category.yaml": ["e"],
        "products/etc.yaml": ["f"],
        "products/tops-tees.yaml": ["b"],
        "products/tops-tees-2.yaml": ["a", "c"],
        "products/brand-tops-tees.yaml": ["d"],
        "products/uncategorized.yaml": ["g"],
    }
    assert slugify("Café / Crème") == "cafe-creme"


def test_layout_is_independent_of_declaration_order() -> None:
    products = [
        Product(handle=f"p{i}", name=f"P{i}", category=(f"C{i % 3}",), brand=f"B{i % 2}")
        for i in range(12)
    ]
    forward = layout(Catalog.build(products=products))
    backward = layout(Catalog.build(products=list(reversed(products))))
    assert forward == backward


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("1.123456", "more than 5 decimals"),
        ("-1", "is not a price"),
        ("NaN", "is not a price"),
        ("$5", "is not a number"),
    ],
)
def test_prices_the_store_cannot_hold_are_refused(cell: str, problem: str) -> None:
    found = errors(rows({"handle": "a", "sku": "A", "name": "A", "retail_price": cell}))
    assert found[0][0] == 2 and problem in found[0][1]


def test_the_patterns_are_the_schemas() -> None:
    schema = json.loads(schema_text())["$defs"]
    assert NAME_PATTERN.pattern == schema["name"]["pattern"] == schema["sku"]["pattern"]
    # A handle is any one-line text the store holds, not only a slug.
    assert NAME_PATTERN.pattern == schema["handle"]["pattern"]
    assert PRODUCT_NAME_PATTERN.pattern == schema["product_name"]["pattern"]


def test_values_the_catalog_cannot_hold_are_refused_with_their_line() -> None:
    found = errors(
        rows(
            {"handle": "a", "sku": "A", "name": "Two\nlines"},  # a store's name: imported
            {"handle": "b", "sku": "B\x07", "name": "Bell"},
            {"handle": "c", "sku": "C", "name": "C", "brand_name": "x" * 256},
            tee("T-1", "S\u2028M"),
            {"handle": "d", "sku": "D", "name": "D", "product_category": "Home / Kit\x00chen"},
        )
    )
    assert [line for line, _ in found] == [3, 4, 5, 6]
    assert "more than 255" in found[1][1]
    assert "option 'Size' value" in found[2][1]
    assert "category level" in found[3][1]
