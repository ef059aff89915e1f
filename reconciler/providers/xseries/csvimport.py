"""Reading a Lightspeed X-Series product export: rows (split into cells, with the physical line
each starts on, by `reconciler.csvexport`) -> a `Catalog` plus every problem found, each naming
its CSV line. A bad row is skipped, never guessed at, so the catalog that comes out is one the
loader accepts. `XSeriesExport` is the provider's `ExportReader`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from reconciler.csvexport import ExportTable
from reconciler.importer import (
    MAX_VARIANTS,
    CsvRow,
    ImportResult,
    Problem,
    Severity,
    undeclarable,
)
from reconciler.model import (
    Product,
    Variant,
    name_key,
)
from reconciler.providers.csvrows import (
    Row,
    RowError,
    build_product,
    import_result,
    name_warnings,
    parse_flag,
    read_rows,
    unique_names,
)
from reconciler.rules import gtin_valid

MONEY_PLACES = 5  # the store keeps prices to 5 decimal places

# ---------------------------------------------------------------------------------------------
# The export's columns: what is read, and what is deliberately left alone.
# ---------------------------------------------------------------------------------------------

OPTION_ORDINALS = ("one", "two", "three")

COLUMNS_READ: dict[str, str] = {
    "handle": "family identity; rows sharing it form one family (required)",
    "sku": "SKU of the variant or simple product (required)",
    "name": "product name, without variant values (required)",
    "description": "description (HTML kept as is)",
    "product_category": 'category path, levels split at " / " only ("Spirits / Bourbon/Whiskey")',
    "type": "legacy type: the category when product_category is blank (split the same way)",
    "variant_option_one_name": "first option name (Size); _two_ and _three_ likewise",
    "variant_option_one_value": "first option value (S); _two_ and _three_ likewise",
    "tags": 'tag names separated by ";" (a tag may hold a comma)',
    "brand_name": "brand (name)",
    "supplier_name": "supplier (name)",
    "supplier_code": "supplier code",
    "supply_price": "supply price",
    "retail_price": "price, in the store's tax mode",
    "price_including_tax": "the price with --tax-mode inclusive",
    "price_excluding_tax": "the price with --tax-mode exclusive",
    "active": "1/0, true/false, yes/no (only false is written)",
    "barcode": "GTIN-8/12/13/14 (a wrong check digit is left out)",
}
# Every option column is read; the table above names only the first pair to stay short.
_OPTION_COLUMNS = {
    f"variant_option_{n}_{part}" for n in OPTION_ORDINALS for part in ("name", "value")
}
READ_COLUMNS = frozenset(COLUMNS_READ) | _OPTION_COLUMNS

# Columns of the export that the catalog does not manage (they stay as they are in the store).
COLUMNS_IGNORED: dict[str, str] = {
    "id": "the store's own id; identity is the handle and SKU",
    "composite_handle, composite_sku, composite_quantity": (
        "composite products (bundles) are left unmanaged, listed in one notice"
    ),
    "tax_name, tax_value, outlet_tax_<outlet>": "taxes are the store's settings",
    "account_code, account_code_purchase": "accounting codes are not managed",
    "track_inventory, inventory_<outlet>, reorder_point_<outlet>, restock_level_<outlet>": (
        "stock is not catalog data"
    ),
    "loyalty_value, active_online, weight, length, width, height, *_unit": "not managed",
    "any other column": "reported once as ignored",
}


class TaxMode(StrEnum):
    INCLUSIVE = "inclusive"
    EXCLUSIVE = "exclusive"


# ---------------------------------------------------------------------------------------------
# CSV rows -> catalog
# ---------------------------------------------------------------------------------------------


def _parse_money(text: str, column: str) -> Decimal | None:
    if text == "":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RowError(f"{column} {text!r} is not a number (write e.g. 25.00)") from None
    if not value.is_finite() or value < 0:
        raise RowError(f"{column} {text!r} is not a price (a number of at least 0)")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MONEY_PLACES:
        # The store keeps 5 decimals; rounding here would import a price nobody set.
        raise RowError(f"{column} {text!r} has more than {MONEY_PLACES} decimals")
    return value


# Exports put " / " between category levels; a "/" without spaces is part of a name
# ("Bourbon/Whiskey"), as the store itself shows it.
_LEVEL_SEPARATOR = re.compile(r"\s+/\s+")


def split_category(text: str) -> tuple[str, ...] | None:
    parts = tuple(p.strip() for p in _LEVEL_SEPARATOR.split(text) if p.strip())
    return parts or None


def split_tags(text: str) -> tuple[str, ...] | None:
    """Exports join tags with ";" (a comma may be part of a tag: "Kids, Boys")."""
    return unique_names(text.split(";"), name_key)


@dataclass
class _Row(Row):
    """A row that parsed, with the handle of the product it belongs to."""

    handle: str


def _price_column(columns: Iterable[str], tax_mode: TaxMode | None) -> str:
    present = set(columns)
    if tax_mode is TaxMode.INCLUSIVE and "price_including_tax" in present:
        return "price_including_tax"
    if tax_mode is TaxMode.EXCLUSIVE and "price_excluding_tax" in present:
        return "price_excluding_tax"
    if "retail_price" in present:
        return "retail_price"
    if present & {"price_including_tax", "price_excluding_tax"}:
        # Both prices are in the export but nothing says which one the store writes
        # (lightspeed-xseries.md §6.2): guessing would put a wrong price in every product.
        raise ValueError(
            "the export has no retail_price column: pass --tax-mode inclusive or exclusive "
            "to say which of its price columns the store uses"
        )
    return ""


def _parse_row(row: CsvRow, price_column: str, warnings: list[Problem]) -> _Row:
    cell = row.cells.get
    handle = cell("handle", "")
    if not handle:
        raise RowError("handle is blank (every row needs the handle of its product)")
    sku = cell("sku", "")
    if not sku:
        raise RowError(f'sku is blank for "{handle}" (every row needs its SKU)')

    options: list[tuple[str, str]] = []
    gap = False
    for ordinal in OPTION_ORDINALS:
        opt_name = cell(f"variant_option_{ordinal}_name", "")
        opt_value = cell(f"variant_option_{ordinal}_value", "")
        if not opt_name and not opt_value:
            gap = True
            continue
        if not opt_name:
            raise RowError(f"variant_option_{ordinal}_value {opt_value!r} has no option name")
        if not opt_value:
            raise RowError(f"variant option {opt_name!r} has no value")
        if gap:
            raise RowError(f"variant_option_{ordinal}_name is set but an earlier option is not")
        if any(name_key(n) == name_key(opt_name) for n, _ in options):
            raise RowError(f"variant option {opt_name!r} is named twice")
        options.append((opt_name, opt_value))

    family: dict[str, Any] = {}
    if cell("description", ""):
        family["description"] = cell("description", "")
    for column, key in (
        ("brand_name", "brand"),
        ("supplier_name", "supplier"),
        ("supplier_code", "supplier_code"),
    ):
        if cell(column, ""):
            family[key] = cell(column, "")
    category = split_category(cell("product_category", "")) or split_category(cell("type", ""))
    if category:
        family["category"] = category
    tags = split_tags(cell("tags", ""))
    if tags:
        family["tags"] = tags

    barcode = cell("barcode", "") or None
    if barcode is not None and not gtin_valid(barcode):
        warnings.append(
            Problem(
                f'barcode {barcode!r} of "{sku}" is not a GTIN-8/12/13/14 with a valid check '
                "digit; left out of the catalog",
                row.line,
                Severity.WARNING,
            )
        )
        barcode = None

    problem = undeclarable(
        Product(
            handle=handle,
            name=cell("name", "") or "-",  # a blank name is reported once the family is known
            sku=sku,
            brand=family.get("brand"),
            supplier=family.get("supplier"),
            supplier_code=family.get("supplier_code"),
            description=family.get("description"),
            category=family.get("category"),
            tags=family.get("tags"),
            options=tuple(n for n, _ in options),
            variants=(Variant(sku=sku, options=tuple(options)),) if options else (),
        )
    )
    if problem:
        raise RowError(problem)
    return _Row(
        line=row.line,
        handle=handle,
        sku=sku,
        name=cell("name", ""),
        options=tuple(options),
        family=family,
        price=_parse_money(cell(price_column, ""), price_column) if price_column else None,
        supply_price=_parse_money(cell("supply_price", ""), "supply_price"),
        active=parse_flag(cell("active", ""), "active", "1/0, true/false, yes/no"),
        barcode=barcode,
    )


def catalog_from_csv(
    columns: Sequence[str], rows: Sequence[CsvRow], *, tax_mode: TaxMode | None = None
) -> ImportResult:
    """Build a catalog from export rows; every row that cannot be imported is reported and left out.

    `columns` are the normalized header names. Rows sharing a handle become one family, in row
    order; a handle on one row without options is a simple product.
    """
    problems: list[Problem] = []
    missing = [c for c in ("handle", "sku", "name") if c not in columns]
    if missing:
        raise ValueError(
            f"the header has no {', '.join(missing)} column: is this a Lightspeed X-Series "
            "product export? (the first line must name the columns)"
        )
    price_column = _price_column(columns, tax_mode)
    ignored = tuple(c for c in columns if c not in READ_COLUMNS and c not in _COMPOSITE_COLUMNS)
    notices: list[str] = []
    if tax_mode is not None and price_column == "retail_price":
        notices.append(
            f"--tax-mode {tax_mode} does not apply: the export has a retail_price column, which "
            "is the price in the store's own tax mode, so that column is imported."
        )
    composites = composite_handles(rows)
    if composites:
        shown = ", ".join(f'"{h}"' for h in composites)
        notices.append(
            f"{len(composites)} composite product(s) (bundles) left unmanaged, as they are in "
            f"the store (the catalog does not declare composites yet): {shown}."
        )

    # 1. Each row on its own.
    parsed = read_rows(
        rows,
        lambda row: _parse_row(row, price_column, problems),
        problems,
        skip=lambda row: row.cells.get("handle", "") in composites or _composite_row(row),
    )

    # 2. Rows sharing a handle, checked against the family's first row.
    families: dict[str, list[_Row]] = {}
    for r in parsed:
        group = families.setdefault(r.handle, [])
        if group:
            first = group[0]
            option_keys = [name_key(n) for n, _ in r.options]
            if not first.options:
                problems.append(
                    Problem(
                        f'handle "{r.handle}" is also on line {first.line}, which has no variant '
                        "options: rows sharing a handle must all name their options; row skipped",
                        r.line,
                    )
                )
                continue
            if option_keys != [name_key(n) for n, _ in first.options]:
                problems.append(
                    Problem(
                        f"options {[n for n, _ in r.options]} differ from "
                        f"{[n for n, _ in first.options]} on line {first.line} of the same "
                        f'product "{r.handle}"; row skipped',
                        r.line,
                    )
                )
                continue
            values = tuple(name_key(v) for _, v in r.options)
            clash = next(
                (o for o in group if tuple(name_key(v) for _, v in o.options) == values), None
            )
            if clash is not None:
                problems.append(
                    Problem(
                        f'options {dict(r.options)} of "{r.sku}" repeat line {clash.line} of '
                        f'"{r.handle}"; row skipped',
                        r.line,
                    )
                )
                continue
            if len(group) >= MAX_VARIANTS:
                problems.append(
                    Problem(
                        f'"{r.handle}" already has {MAX_VARIANTS} variants, the most a family may '
                        "have; row skipped",
                        r.line,
                    )
                )
                continue
            if r.name and r.name != first.name:
                problems.append(
                    Problem(
                        f"name {r.name!r} differs from {first.name!r} on line {first.line} of the "
                        "same product; the catalog keeps the first",
                        r.line,
                        Severity.WARNING,
                    )
                )
        elif not r.name:
            problems.append(
                Problem(
                    f'name is blank for "{r.handle}" (its first row needs it); row skipped', r.line
                )
            )
            continue
        group.append(r)

    # 3. Families. A name shared with another family, or one holding a line break, is the
    # store's own: imported as it is, with a warning (identity is the handle and the SKUs).
    products: list[Product] = []
    names: dict[str, tuple[int, str]] = {}
    for handle, group in families.items():
        if not group:
            continue
        name_warnings(handle, group[0], names, problems)
        products.append(build_product(handle, group, problems, group="product"))
    return import_result(products, problems, ignored=ignored, notices=notices)


_COMPOSITE_COLUMNS = ("composite_handle", "composite_sku", "composite_quantity")


def _composite_row(row: CsvRow) -> bool:
    return any(row.cells.get(c, "") for c in _COMPOSITE_COLUMNS)


def composite_handles(rows: Sequence[CsvRow]) -> tuple[str, ...]:
    """Handles of the export's composite products, in row order.

    An export lists a composite (a bundle) as its own row plus one row per component, each
    naming the component in `composite_handle` / `composite_sku` / `composite_quantity`; a
    component row may repeat the bundle's handle or leave it blank (then it belongs to the row
    above). The API can set components only as a whole list in a 2.1 update and has no call
    that reads them back, so the catalog could not diff them: composites stay unmanaged.
    """
    found: dict[str, None] = {}
    last = ""
    for row in rows:
        handle = row.cells.get("handle", "")
        if _composite_row(row) and (handle or last):
            found[handle or last] = None
        if handle:
            last = handle
    return tuple(found)


class XSeriesExport:
    """The X-Series export as the provider's `ExportReader` (`catalog import --from-csv`)."""

    columns_read: Mapping[str, str] = COLUMNS_READ
    columns_ignored: Mapping[str, str] = COLUMNS_IGNORED
    tax_modes: tuple[str, ...] = tuple(m.value for m in TaxMode)

    def read(self, table: ExportTable, *, tax_mode: str | None = None) -> ImportResult:
        """The catalog in `table`; ValueError when its header cannot be an X-Series export."""
        return catalog_from_csv(
            table.columns, table.rows, tax_mode=TaxMode(tax_mode) if tax_mode else None
        )
