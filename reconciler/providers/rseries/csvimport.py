"""Reading a Lightspeed R-Series item export: rows (split into cells, with the physical line each
starts on, by `reconciler.csvexport`) -> a `Catalog` plus every problem found, each naming its CSV
line. A bad row is skipped, never guessed at, so the catalog that comes out is one the loader
accepts. `RSeriesExport` is the provider's `ExportReader`.

Two files R-Series users have, read by one reader (header names are matched case-insensitively):

- The item list export (Inventory > Item Search > Export): `System ID, UPC, EAN, Custom SKU,
  Manufact. SKU, Item, Vendor ID, Qty., Price, Tax, Brand, Publish to eCom, Season, Department,
  MSRP, Tax Class, Default Cost, Vendor, Category, Subcategory 1..9`; prices carry the currency
  symbol (`€19.90`, `$1,299.00`), costs up to 9 decimals (`11.080000000`). It has no matrix
  columns: every row is an item on its own.
- The item import template filled from the store (the file R-Series' own item import reads, and
  the shape export tools write for a round trip): `Description, System ID, UPC, EAN, Custom SKU,
  Manufacturer SKU, Brand, Matrix Description, Matrix Attribute Set, Attribute 1..3, Price, MSRP,
  Default Cost, Tags / Add Tags, Vendor, Vendor ID, Category, Subcategory 1..9, Archived, ...`.
  Rows sharing a `Matrix Description` are one family (an `ItemMatrix`), as the store groups them.

Identity follows the live normalizer (`normalize.py`), so an imported catalog names things the
way `catalog plan` reads the store: the SKU is the `Custom SKU` (its `System ID` when blank, with a
warning), a family's handle is its matrix description as a slug, a simple item's its SKU.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from reconciler.csvexport import ExportTable, normalize_column
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
    slugify,
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
from reconciler.providers.rseries.normalize import MONEY_PLACES, store_money, tag_key
from reconciler.rules import gtin_valid

# ---------------------------------------------------------------------------------------------
# The export's columns: what is read, and what is deliberately left alone. Keys are spelled as
# the export spells them; `_column` gives the name `csvexport.normalize_column` makes of them.
# ---------------------------------------------------------------------------------------------

SUBCATEGORY_LEVELS = 9  # Category plus Subcategory 1..9: the ten levels R-Series imports

COLUMNS_READ: dict[str, str] = {
    "Custom SKU": "SKU of the item (Item.customSku)",
    "System ID": "the SKU when Custom SKU is blank (the number on Lightspeed's labels; warned)",
    "Item / Description": "name of a simple item (a matrix variant's is the store's own)",
    "Matrix Description": "family name; rows sharing it form one family (ItemMatrix)",
    "Matrix Attribute Set": 'option names: "Color/Size", "Size", "Color", "3 Attributes", custom',
    "Attribute 1..3": "option values, in the attribute set's order",
    "Brand": "brand (Manufacturer)",
    "Vendor": "supplier (Vendor)",
    "Vendor ID": "supplier code (the item's number at that vendor, ItemVendorNums)",
    "Category, Subcategory 1..9": "category path, one level per column",
    "Tags / Add Tags": 'tag names separated by ","',
    "Price / Default - Price": 'price (the Default price level); "$", "€" and "1,299" are read',
    "Default Cost": "supply price",
    "UPC, EAN": "barcode, UPC first (a wrong check digit is left out)",
    "Archived": "Yes/No, true/false, 1/0: an archived item is imported with active: false",
}

COLUMNS_IGNORED: dict[str, str] = {
    "Manufact. SKU / Manufacturer SKU": "not a catalog field",
    "Qty., Remaining, <shop> - Quantity on Hand / Unit Cost / Reorder Point / Reorder Level": (
        "stock is not catalog data"
    ),
    "MSRP, Online Price, Sale Price, other price levels": "only the Default price is managed",
    "Tax, Taxable, Tax Class, Discountable": "taxes are the store's settings",
    "Item Type, Serialized, Publish to eCom, Season, Department, Note, Display Note": (
        "not managed"
    ),
    "Clear Existing Tags": "an instruction to R-Series' own import, not data",
    "any other column": "reported once as ignored",
}


def _column(label: str) -> str:
    return normalize_column(label)


SKU, SYSTEM_ID = _column("Custom SKU"), _column("System ID")
NAME_COLUMNS = (_column("Item"), _column("Description"))
MATRIX, ATTRIBUTE_SET = _column("Matrix Description"), _column("Matrix Attribute Set")
ATTRIBUTES = tuple(_column(f"Attribute {n}") for n in (1, 2, 3))
PRICE_COLUMNS = (_column("Price"), _column("Default - Price"), _column("Default Price"))
COST = _column("Default Cost")
TAG_COLUMNS = (_column("Tags"), _column("Add Tags"))
CATEGORY_COLUMNS = (
    (_column("Category"),),
    *(
        (_column(f"Subcategory {n}"), _column(f"Sub Category {n}"))
        + ((_column("Sub Category"),) if n == 1 else ())
        for n in range(1, SUBCATEGORY_LEVELS + 1)
    ),
)
BRAND, VENDOR, VENDOR_CODE = _column("Brand"), _column("Vendor"), _column("Vendor ID")
UPC, EAN, ARCHIVED = _column("UPC"), _column("EAN"), _column("Archived")

READ_COLUMNS = frozenset(
    {SKU, SYSTEM_ID, MATRIX, ATTRIBUTE_SET, COST, BRAND, VENDOR, VENDOR_CODE, UPC, EAN, ARCHIVED}
    | set(NAME_COLUMNS)
    | set(ATTRIBUTES)
    | set(PRICE_COLUMNS)
    | set(TAG_COLUMNS)
    | {c for level in CATEGORY_COLUMNS for c in level}
)

# The system attribute sets every account has (lightspeed-rseries.md §7.2, recorded in
# reference/rseries/lightspeed_pos/account/ItemAttributeSet/index.yml), by the name the export
# writes in Matrix Attribute Set, with their attribute names in slot order.
SYSTEM_SETS: Mapping[str, tuple[str, ...]] = {
    "color/size": ("Color", "Size"),
    "size": ("Size",),
    "color": ("Color",),
    "3 attributes": ("Attribute 1", "Attribute 2", "Attribute 3"),
}


# ---------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------


def _first(row: CsvRow, columns: Sequence[str]) -> str:
    """The first non-blank cell among columns that mean the same thing."""
    return next((row.cells[c] for c in columns if row.cells.get(c, "")), "")


# Spaces a spreadsheet puts in amounts (no-break and thin spaces too), and an apostrophe, the
# Swiss thousands separator.
_AMOUNT_NOISE = re.compile(r"[\s\u00a0\u202f\u2009']")
_CURRENCY_CODE = re.compile(r"^[A-Z]{3}|[A-Z]{3}$")
_GROUPED = {",": re.compile(r"\d{1,3}(,\d{3})+"), ".": re.compile(r"\d{1,3}(\.\d{3}){2,}")}


def parse_amount(text: str, column: str) -> Decimal | None:
    """An amount as a store export or a spreadsheet writes it: `€19.90`, `$1,299.00`,
    `1.299,00`, `USD 12`, `11.080000000`; None when blank.

    A currency symbol or a three-letter code at either end is dropped. With both separators the
    last one is the decimal point; a lone "," followed by groups of three digits groups
    thousands ("1,299"), otherwise it is the decimal point ("19,90"); a lone "." is the decimal
    point (R-Series writes "€19.90" in every locale), unless it groups thousands twice.
    """
    raw = text
    text = _AMOUNT_NOISE.sub("", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Sc")
    text = _CURRENCY_CODE.sub("", text)
    if text == "":
        if raw.strip() == "":
            return None
        raise RowError(f"{column} {raw!r} is not an amount (write e.g. 25.00)")
    if text.startswith("-") or (text.startswith("(") and text.endswith(")")):
        raise RowError(f"{column} {raw!r} is not a price (a number of at least 0)")
    if "," in text and "." in text:
        decimal_point = "," if text.rfind(",") > text.rfind(".") else "."
        grouping = "." if decimal_point == "," else ","
        text = text.replace(grouping, "").replace(",", ".")
    elif "," in text:
        text = text.replace(",", "") if _GROUPED[","].fullmatch(text) else text.replace(",", ".")
    elif _GROUPED["."].fullmatch(text):
        text = text.replace(".", "")
    if not re.fullmatch(r"\d+(\.\d+)?|\.\d+", text):
        raise RowError(f"{column} {raw!r} is not an amount (write e.g. 25.00)")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern above admits only numbers
        raise RowError(f"{column} {raw!r} is not an amount (write e.g. 25.00)") from None


def _money(
    row: CsvRow, columns: Sequence[str], label: str, warnings: list[Problem]
) -> Decimal | None:
    """An amount at the store's precision (2 places, as the API is read); a warning when the
    rounding drops a digit that is not zero (costs are exported with 9 decimals)."""
    column = next((c for c in columns if row.cells.get(c, "")), "")
    value = parse_amount(row.cells.get(column, ""), label) if column else None
    if value is None:
        return None
    stored = store_money(value)
    if stored != value:
        warnings.append(
            Problem(
                f"{label} {row.cells[column]!r} has more than {MONEY_PLACES} decimals; the "
                f"store's API reads it as {stored}, which the catalog declares",
                row.line,
                Severity.WARNING,
            )
        )
    return stored


def split_tags(text: str) -> tuple[str, ...] | None:
    """R-Series joins an item's tags with ","; tags are one when they differ only in case and
    spaces (the store keeps "Summer Sale" as "summersale")."""
    return unique_names(text.split(","), tag_key)


def _category(row: CsvRow) -> tuple[str, ...] | None:
    levels: list[str] = []
    gap = ""
    for n, columns in enumerate(CATEGORY_COLUMNS):
        label = "Category" if n == 0 else f"Subcategory {n}"
        value = _first(row, columns)
        if not value:
            gap = gap or label
            continue
        if gap:
            raise RowError(f"{label} {value!r} is set but {gap} is blank")
        levels.append(value)
    return tuple(levels) or None


def option_names(attribute_set: str) -> tuple[tuple[str, ...], bool]:
    """The option names of an attribute set the export names, and whether they are a guess.

    System sets have known names. A custom set's attribute names are not in the export: its
    name split at "/" is taken ("Color/Size/Material" -> three options), the way R-Series names
    its own sets; a name without "/" is one option named like the set.
    """
    system = SYSTEM_SETS.get(name_key(attribute_set))
    if system is not None:
        return system, False
    parts = tuple(p.strip() for p in attribute_set.split("/") if p.strip())
    return (parts if 1 <= len(parts) <= 3 else (attribute_set,)), True


def _options(row: CsvRow) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """A matrix row's (option, value) pairs and the custom set they were guessed from."""
    set_name = row.cells.get(ATTRIBUTE_SET, "")
    if not set_name:
        raise RowError(
            "Matrix Attribute Set is blank (the family's option names come from it: Color/Size, "
            "Size, Color, 3 Attributes or the custom set's name)"
        )
    names, guessed = option_names(set_name)
    values = [row.cells.get(c, "") for c in ATTRIBUTES]
    if len(names) == 1:
        # One-attribute sets: the system "Size" set keeps its value in slot 2 in the API, and
        # files put it in Attribute 1 or Attribute 2; either is read.
        given = [v for v in values if v]
        if len(given) != 1:
            raise RowError(
                f"attribute set {set_name!r} has one attribute ({names[0]}) but the row gives "
                f"{len(given)} attribute values"
            )
        return ((names[0], given[0]),), set_name if guessed else None
    for n, value in enumerate(values):
        if n < len(names) and not value:
            raise RowError(f"Attribute {n + 1} ({names[n]}) is blank")
        if n >= len(names) and value:
            raise RowError(
                f"Attribute {n + 1} {value!r} is set but attribute set {set_name!r} has only "
                f"{len(names)} attributes"
            )
    pairs = tuple(zip(names, values, strict=False))
    keys = [name_key(n) for n in names]
    if len(set(keys)) != len(keys):
        raise RowError(f"attribute set {set_name!r} names an option twice")
    return pairs, set_name if guessed else None


def _barcode(row: CsvRow, sku: str, warnings: list[Problem]) -> str | None:
    # The store is read UPC first (normalize._barcode); a file may hold both.
    code = row.cells.get(UPC, "") or row.cells.get(EAN, "")
    if not code:
        return None
    if not gtin_valid(code):
        warnings.append(
            Problem(
                f'barcode {code!r} of "{sku}" is not a GTIN-12/13/14 with a valid check digit; '
                "left out of the catalog",
                row.line,
                Severity.WARNING,
            )
        )
        return None
    return code


# ---------------------------------------------------------------------------------------------
# Rows -> families and simple products
# ---------------------------------------------------------------------------------------------


@dataclass
class _Row(Row):
    """A row that parsed (`name`: the matrix description for a variant, the item description
    otherwise), and whether it is a matrix's."""

    matrix: bool


def _parse_row(row: CsvRow, warnings: list[Problem], guessed: dict[str, int]) -> _Row:
    cell = row.cells.get
    sku = cell(SKU, "")
    if not sku:
        system_id = cell(SYSTEM_ID, "")
        if not system_id:
            raise RowError("Custom SKU and System ID are both blank (the row needs a SKU)")
        warnings.append(
            Problem(
                f"Custom SKU is blank; the catalog uses the System ID {system_id!r} (the number "
                "on the item's Lightspeed labels) as its sku: set it as the item's Custom SKU "
                "in the store so plan finds the item by it",
                row.line,
                Severity.WARNING,
            )
        )
        sku = system_id
    matrix = cell(MATRIX, "")
    options: tuple[tuple[str, str], ...] = ()
    if matrix:
        options, custom = _options(row)
        if custom is not None:
            guessed.setdefault(custom, row.line)
        name = matrix
    else:
        name = _first(row, NAME_COLUMNS)
        if not name:
            raise RowError(f'Item (Description) is blank for "{sku}" (every item needs a name)')
    family: dict[str, Any] = {}
    for column, key in ((BRAND, "brand"), (VENDOR, "supplier"), (VENDOR_CODE, "supplier_code")):
        if cell(column, ""):
            family[key] = cell(column, "")
    category = _category(row)
    if category:
        family["category"] = category
    tags = split_tags(_first(row, TAG_COLUMNS))
    if tags:
        family["tags"] = tags
    problem = undeclarable(
        Product(
            handle=slugify(name) or "product",
            name=name,
            sku=sku,
            brand=family.get("brand"),
            supplier=family.get("supplier"),
            supplier_code=family.get("supplier_code"),
            category=family.get("category"),
            tags=family.get("tags"),
            options=tuple(n for n, _ in options),
            variants=(Variant(sku=sku, options=options),) if options else (),
        )
    )
    if problem:
        raise RowError(problem)
    archived = parse_flag(cell(ARCHIVED, ""), "Archived", "Yes/No, true/false, 1/0")
    return _Row(
        line=row.line,
        sku=sku,
        name=name,
        matrix=bool(matrix),
        options=options,
        family=family,
        price=_money(row, PRICE_COLUMNS, "Price", warnings),
        supply_price=_money(row, (COST,), "Default Cost", warnings),
        active=None if archived is None else not archived,
        barcode=_barcode(row, sku, warnings),
    )


def _admit(group: list[_Row], r: _Row, problems: list[Problem]) -> bool:
    """Whether a matrix row may join its family (same option names, new values, room left)."""
    first = group[0]
    if [name_key(n) for n, _ in r.options] != [name_key(n) for n, _ in first.options]:
        problems.append(
            Problem(
                f"options {[n for n, _ in r.options]} differ from "
                f"{[n for n, _ in first.options]} on line {first.line} of the same matrix "
                f"{r.name!r} (its Matrix Attribute Set); row skipped",
                r.line,
            )
        )
        return False
    values = tuple(name_key(v) for _, v in r.options)
    clash = next((o for o in group if tuple(name_key(v) for _, v in o.options) == values), None)
    if clash is not None:
        problems.append(
            Problem(
                f'options {dict(r.options)} of "{r.sku}" repeat line {clash.line} of the matrix '
                f"{r.name!r}; row skipped",
                r.line,
            )
        )
        return False
    if len(group) >= MAX_VARIANTS:
        problems.append(
            Problem(
                f"matrix {r.name!r} already has {MAX_VARIANTS} variants, the most a family may "
                "have; row skipped",
                r.line,
            )
        )
        return False
    return True


def catalog_from_export(columns: Sequence[str], rows: Sequence[CsvRow]) -> ImportResult:
    """Build a catalog from R-Series export rows; every row that cannot be imported is reported
    and left out. `columns` are the normalized header names (`csvexport.normalize_column`)."""
    present = set(columns)
    if not present & {SKU, SYSTEM_ID} or not present & {*NAME_COLUMNS, MATRIX}:
        raise ValueError(
            "the header has no Custom SKU or System ID column, or no Item, Description or Matrix "
            "Description column: is this a Lightspeed R-Series item export? (the first line "
            "must name the columns)"
        )
    problems: list[Problem] = []
    notices: list[str] = []
    ignored = tuple(c for c in columns if c not in READ_COLUMNS)
    if MATRIX not in present:
        notices.append(
            "the export has no Matrix Description column, so every row is imported as a simple "
            "item; matrix variants come out as families only from a file with Matrix "
            "Description and Attribute columns (or from the store: catalog import)."
        )

    # 1. Each row on its own.
    guessed: dict[str, int] = {}
    parsed = read_rows(rows, lambda row: _parse_row(row, problems, guessed), problems)
    if guessed:
        shown = ", ".join(f"{name!r} (line {line})" for name, line in guessed.items())
        notices.append(
            f"the export names custom attribute sets without their attribute names: {shown}; "
            'their option names are read from the set name split at "/". Check them against '
            "the store's Matrix Attribute Sets."
        )

    # 2. Matrix rows grouped by their matrix description (the store's family), in row order;
    # every other row is a simple item.
    groups: dict[tuple[bool, str], list[_Row]] = {}
    for r in parsed:
        key = (r.matrix, r.name if r.matrix else f"{r.line}")
        group = groups.setdefault(key, [])
        if group and not _admit(group, r, problems):
            continue
        group.append(r)

    # 3. Handles, as the live normalizer makes them: a family's description as a slug, a simple
    # item's SKU; a clash takes a number.
    products: list[Product] = []
    taken: set[str] = set()
    names: dict[str, tuple[int, str]] = {}
    for (matrix, _), group in groups.items():
        first = group[0]
        wanted = (slugify(first.name) or "family") if matrix else first.sku
        handle, n = wanted, 1
        while handle in taken:
            n += 1
            handle = f"{wanted}-{n}"
        taken.add(handle)
        name_warnings(handle, first, names, problems)
        products.append(build_product(handle, group, problems, group="family"))
    return import_result(products, problems, ignored=ignored, notices=notices)


class RSeriesExport:
    """The R-Series item export as the provider's `ExportReader` (`catalog import --from-csv`)."""

    columns_read: Mapping[str, str] = COLUMNS_READ
    columns_ignored: Mapping[str, str] = COLUMNS_IGNORED
    # One price column (the Default price level): nothing to choose between.
    tax_modes: tuple[str, ...] = ()

    def read(self, table: ExportTable, *, tax_mode: str | None = None) -> ImportResult:
        """The catalog in `table`; ValueError when its header cannot be an R-Series export."""
        result = catalog_from_export(table.columns, table.rows)
        if tax_mode is None:
            return result
        notice = (
            f"--tax-mode {tax_mode} does not apply to an R-Series export: its Price column is "
            "the item's Default price, imported as it is."
        )
        return replace(result, notices=(notice, *result.notices))
