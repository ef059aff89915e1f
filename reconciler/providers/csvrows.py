"""What reading any platform's product export shares once its cells are parsed: rows taken one
by one (a bad row reported and skipped, a SKU on two rows refused), a family's values merged
from its rows, the catalog product built from them, the warnings about family names, and the
`ImportResult` made of it all. Each platform's `csvimport.py` keeps its columns and how a row's
cells are read (`RowError` says why one cannot be), and how rows group into families.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, TypeVar

from reconciler.guardrails import import_allowances
from reconciler.importer import (
    CsvRow,
    ImportResult,
    Problem,
    Severity,
    _active_fields,
    _canonical_names,
    _comparable,
    hoist,
    hoist_supply,
    settle,
    untidy_name,
)
from reconciler.model import Brand, Catalog, Product, Supplier, Variant, name_key, sorted_names


class RowError(Exception):
    """A row that cannot be imported; the message says why and what to fix."""


@dataclass
class Row:
    """A row that parsed: its family-level and its own values."""

    line: int
    sku: str
    name: str
    options: tuple[tuple[str, str], ...]
    family: dict[str, Any]  # family-level values present on this row (blank cells left out)
    price: Decimal | None
    supply_price: Decimal | None
    active: bool | None
    barcode: str | None


AnyRow = TypeVar("AnyRow", bound=Row)

_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


def parse_flag(text: str, column: str, forms: str) -> bool | None:
    """A yes/no cell (None when blank); `forms` are the spellings the message suggests."""
    low = text.casefold()
    if low == "":
        return None
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise RowError(f"{column} {text!r} is not one of {forms}")


def unique_names(parts: Iterable[str], key: Callable[[str], str]) -> tuple[str, ...] | None:
    """The names among `parts`, stripped, the first spelling of each `key` kept, sorted."""
    seen: dict[str, str] = {}
    for raw in parts:
        name = raw.strip()
        if name and key(name) not in seen:
            seen[key(name)] = name
    return sorted_names(list(seen.values())) if seen else None


def read_rows(
    rows: Sequence[CsvRow],
    parse: Callable[[CsvRow], AnyRow],
    problems: list[Problem],
    *,
    skip: Callable[[CsvRow], bool] | None = None,
) -> list[AnyRow]:
    """Each row on its own: blank ones (spreadsheets leave them anywhere) and those `skip`
    names passed over, one that cannot be parsed or repeats an earlier row's SKU reported
    and left out."""
    parsed: list[AnyRow] = []
    skus: dict[str, int] = {}
    for row in rows:
        if not any(row.cells.values()):
            continue
        if skip is not None and skip(row):
            continue
        try:
            r = parse(row)
        except RowError as exc:
            problems.append(Problem(f"{exc}; row skipped", row.line))
            continue
        earlier = skus.get(name_key(r.sku))
        if earlier is not None:
            problems.append(
                Problem(f'sku "{r.sku}" is also on line {earlier}; row skipped', r.line)
            )
            continue
        skus[name_key(r.sku)] = r.line
        parsed.append(r)
    return parsed


def merged_family(
    rows: Sequence[Row], handle: str, warnings: list[Problem], *, group: str
) -> dict[str, Any]:
    """A family's values from its rows: the first row naming each wins; a row that names it
    differently is warned about (`group`: what the export calls a family, in the warning)."""
    family: dict[str, Any] = {}
    origin: dict[str, int] = {}
    for r in rows:
        for key, value in r.family.items():
            if key not in family:
                family[key], origin[key] = value, r.line
            elif _comparable(key, family[key]) != _comparable(key, value):
                shown = " / ".join(value) if isinstance(value, tuple) else value
                warnings.append(
                    Problem(
                        f'{key} {shown!r} of "{r.sku}" differs from line {origin[key]} of the '
                        f'same {group} "{handle}"; the catalog keeps line {origin[key]}\'s',
                        r.line,
                        Severity.WARNING,
                    )
                )
    return family


def build_product(
    handle: str, rows: Sequence[Row], warnings: list[Problem], *, group: str
) -> Product:
    """The catalog product of one family's rows (a simple product: one row without options)."""
    first = rows[0]
    family = merged_family(rows, handle, warnings, group=group)
    base = Product(
        handle=handle,
        name=first.name,
        description=family.get("description"),
        brand=family.get("brand"),
        supplier=family.get("supplier"),
        supplier_code=family.get("supplier_code"),
        category=family.get("category"),
        tags=family.get("tags"),
    )
    if not first.options:
        return replace(
            base,
            sku=first.sku,
            barcode=first.barcode,
            price=first.price,
            supply_price=first.supply_price or None,  # 0 is the store's default
            active=False if first.active is False else None,
        )
    price, prices = hoist([r.price for r in rows])
    supply, supplies = hoist_supply([r.supply_price for r in rows])
    active, actives = _active_fields([r.active for r in rows])
    options = tuple(n for n, _ in first.options)
    variants = tuple(
        Variant(
            sku=r.sku,
            # Option names as the family's first row spells them (names are case-insensitive).
            options=tuple((options[i], value) for i, (_, value) in enumerate(r.options)),
            price=prices[i],
            supply_price=supplies[i],
            barcode=r.barcode,
            active=actives[i],
        )
        for i, r in enumerate(rows)
    )
    return replace(
        base, options=options, variants=variants, price=price, supply_price=supply, active=active
    )


def name_warnings(
    handle: str, first: Row, names: dict[str, tuple[int, str]], problems: list[Problem]
) -> None:
    """A family name the store holds but a catalog would not choose: imported as it is, with a
    warning (identity is the handle and the SKUs). `names`: name key -> (line, handle) of the
    first family seen with it."""
    other = names.setdefault(name_key(first.name), (first.line, handle))
    if other[1] != handle:
        problems.append(
            Problem(
                f'name {first.name!r} of "{handle}" is also the name of "{other[1]}" '
                f"(line {other[0]}); the store holds both, so both are imported",
                first.line,
                Severity.WARNING,
            )
        )
    if untidy_name(first.name):
        problems.append(
            Problem(
                f'name {first.name!r} of "{handle}" holds a line break or a control '
                "character; imported as the store has it",
                first.line,
                Severity.WARNING,
            )
        )


def import_result(
    products: list[Product],
    problems: list[Problem],
    *,
    ignored: tuple[str, ...],
    notices: list[str],
) -> ImportResult:
    """The catalog of the products read, with every problem sorted by line."""
    products, brands, suppliers, tags = _canonical_names(products)
    products = settle(products, problems)
    # Store prices that break a guardrail are the store's as it is: kept, with an `allow:`.
    catalog = import_allowances(
        Catalog.build(
            products=products,
            brands=[Brand(name=b) for b in brands],
            suppliers=[Supplier(name=s) for s in suppliers],
            tags=tags,
        )
    )
    problems.sort(key=lambda p: (p.line or 0, p.severity != Severity.ERROR))
    return ImportResult(
        catalog=catalog, problems=tuple(problems), ignored_columns=ignored, notices=tuple(notices)
    )
