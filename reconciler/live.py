"""The live store in the catalog's own shape: what every provider's normalizer produces and
what the planner, staleness and import read (`Live`, its products, rows and names), plus the
helpers that render a model product as the flat {field: JSON value} dicts the diff compares.

Pure and platform-free: money is quantized to the store's places (`quantize_money`), category
labels split into paths (`label_path`), names compared by `name_key`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from reconciler.model import (
    Json,
    Product,
    Variant,
    format_money,
    name_key,
    sorted_names,
)

# Family-wide fields (one PUT `common` per family) and a row's own fields (one PUT `details`
# per changed row), in the order people read them.
FAMILY_FIELDS = (
    "name",
    "description",
    "brand",
    "supplier",
    "supplier_code",
    "category",
    "tags",
    "options",
)
ROW_FIELDS = ("price", "supply_price", "barcode", "active", "options")


# Decimal places prices are kept to unless a provider says otherwise (X-Series: 5).
DEFAULT_MONEY_PLACES = 5


def quantize_money(value: Decimal, places: int = DEFAULT_MONEY_PLACES) -> Decimal:
    """A price at a store's precision, rounded half up as stores round."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def label_path(label: str) -> tuple[str, ...]:
    """A category label ("A / B") as its path of names."""
    return tuple(part.strip() for part in label.split(" / "))


def opaque_version(value: object) -> str | None:
    """A live version or cache cursor as the core holds it: opaque text, compared only for
    equality. Plans and state files written before versions were opaque hold integers (and
    the state's version columns, declared integer, store digit-only text as one): each reads
    back as its text."""
    return None if value is None else str(value)


def money_text(value: Decimal | None) -> str | None:
    """A price as the plan shows and compares it: store precision, then the model's format."""
    return None if value is None else _money_text(value)


@lru_cache(maxsize=65_536)
def _money_text(value: Decimal) -> str:
    # A catalog repeats few distinct prices over many rows: format each once.
    return format_money(quantize_money(value))


@dataclass(frozen=True)
class Named:
    """A brand, supplier, tag or variant attribute as the store holds it."""

    id: str
    name: str
    description: str | None = None
    version: str | None = None  # opaque: the provider's, compared only for equality


@dataclass(frozen=True)
class Category:
    id: str
    path: tuple[str, ...]  # names, root first
    leaf: bool = True


@dataclass(frozen=True)
class LiveRow:
    """One sellable row in the store."""

    id: str
    sku: str
    version: str  # opaque: the provider's, compared only for equality
    values: Variant  # the row's own values in the catalog's shape


@dataclass(frozen=True)
class LiveProduct:
    """A live family or simple product in the catalog's shape, with what apply needs to write.

    `product` holds family-wide fields; per-row values live in `rows` (the store keeps them per
    row, so `product.variants` lists them too, in SKU order). `remote_id` is the family's parent
    row (any member's id is accepted by the 2.1 PUT).
    """

    product: Product
    remote_id: str
    family_id: str | None
    version: str  # opaque: the provider's, compared only for equality
    rows: Mapping[str, LiveRow]
    is_family: bool
    problems: tuple[str, ...] = ()  # why the catalog cannot declare it as it is
    image_ids: tuple[str, ...] = ()  # the family's images in the store's order
    composite: bool = False  # a bundle (`is_composite`): import leaves it unmanaged
    notices: tuple[str, ...] = ()  # remarks on what the store holds (read, but worth fixing)


@dataclass(frozen=True)
class Names:
    """Live names by case-insensitive key, and categories by path key."""

    brands: Mapping[str, Named] = field(default_factory=dict)
    suppliers: Mapping[str, Named] = field(default_factory=dict)
    tags: Mapping[str, Named] = field(default_factory=dict)
    attributes: Mapping[str, Named] = field(default_factory=dict)
    categories: Mapping[tuple[str, ...], Category] = field(default_factory=dict)
    # (kind as in plan.Kind, name key or lowercased path label) -> the ids of every live
    # object holding that name, the one used first: the store does not keep names unique,
    # and the plan says so (a notice).
    duplicates: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Live:
    """The live store in the catalog's shape: what planning compares the catalog with."""

    products: Mapping[str, LiveProduct]  # by handle
    sku_owner: Mapping[str, str]  # sku -> handle
    names: Names
    tax_exclusive: bool
    name_owner: Mapping[str, str] = field(default_factory=dict)  # name_key(family name) -> handle


def path_key(path: Iterable[str]) -> tuple[str, ...]:
    return tuple(name_key(p) for p in path)


# -- flat field values: what the diff compares ------------------------------------------------


def family_values(p: Product, *, declared_only: bool) -> dict[str, Json]:
    """A product's family-wide fields as JSON values. With `declared_only`, undeclared fields
    (None) are left out, so the diff never looks at them (design invariant 3)."""
    values: dict[str, Json] = {
        "name": p.name,
        "description": p.description,
        "brand": p.brand,
        "supplier": p.supplier,
        "supplier_code": p.supplier_code,
        "category": " / ".join(p.category) if p.category is not None else None,
        # Tag order means nothing: always compared (and shown) in the model's sorted order.
        "tags": list(sorted_names(p.tags)) if p.tags is not None else None,
        "options": list(p.options) if p.options else None,
    }
    if declared_only:
        return {k: v for k, v in values.items() if v is not None}
    return values


def row_values(v: Variant, *, declared_only: bool, family: bool) -> dict[str, Json]:
    """A sellable row's own fields as JSON values (`options` only for family members)."""
    values: dict[str, Json] = {
        "price": money_text(v.price),
        "supply_price": money_text(v.supply_price),
        "barcode": v.barcode,
        "active": v.active,
    }
    if family:
        values["options"] = dict(v.options) if v.options else None
    if declared_only:
        return {k: v for k, v in values.items() if v is not None}
    return values
