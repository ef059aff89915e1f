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
    Catalog,
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


def money_text(value: Decimal | None, places: int = DEFAULT_MONEY_PLACES) -> str | None:
    """A price as the plan shows and compares it: the store's precision (`places`, the
    provider's `Limits.money_places`), then the model's format. A catalog's 0.125 is 0.13 to a
    2-place store, so the two are no change there."""
    return None if value is None else _money_text(value, places)


@lru_cache(maxsize=65_536)
def _money_text(value: Decimal, places: int) -> str:
    # A catalog repeats few distinct prices over many rows: format each once.
    return format_money(quantize_money(value, places))


@dataclass(frozen=True, slots=True)
class Named:
    """A brand, supplier, tag or variant attribute as the store holds it."""

    id: str
    name: str
    description: str | None = None
    version: str | None = None  # opaque: the provider's, compared only for equality


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    path: tuple[str, ...]  # names, root first
    leaf: bool = True


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True)
class CatalogKeys:
    """What this catalog and its ledger call the store's objects. A store that keeps no handle
    (R-Series) keys `Live.products` by them and spells tags as the catalog does; a store with
    handles ignores them. Identity, surest first: a family this catalog manages by its remote
    id, then a product by its SKUs, then a family by its exact name."""

    handles: Mapping[str, str] = field(default_factory=dict)  # sku -> handle
    names: Mapping[str, str] = field(default_factory=dict)  # exact family name -> handle
    family_ids: Mapping[str, str] = field(default_factory=dict)  # managed family's id -> handle
    tags: tuple[str, ...] = ()  # tag names as the catalog spells them

    @staticmethod
    def of(catalog: Catalog | None, managed: Mapping[str, object] | None = None) -> CatalogKeys:
        """The keys of `catalog`, and of the products the ledger says this catalog manages
        (`managed`: handle -> a row with `remote_id` and `applied`), so a product dropped from
        the catalog keeps its handle and prune finds it. A name two families share names
        neither; the catalog wins over the ledger."""
        handles: dict[str, str] = {}
        names: dict[str, str] = {}
        shared: set[str] = set()
        tags: dict[str, str] = {}
        for p in catalog.products if catalog is not None else ():
            for row in p.sellables():
                handles.setdefault(row.sku, p.handle)
            if p.is_family:
                if p.name in names:
                    shared.add(p.name)
                names.setdefault(p.name, p.handle)
            for t in p.tags or ():
                tags.setdefault(name_key(t), t)
        for t in catalog.tags if catalog is not None else ():
            tags.setdefault(name_key(t), t)
        family_ids: dict[str, str] = {}
        for handle, held in sorted((managed or {}).items()):
            applied = getattr(held, "applied", None) or {}
            remote = getattr(held, "remote_id", None)
            sku = applied.get("sku") if isinstance(applied, Mapping) else None
            if isinstance(sku, str) and sku:
                handles.setdefault(sku, handle)  # a simple product: its SKU is its identity
            elif remote and isinstance(applied, Mapping) and applied.get("options"):
                family_ids.setdefault(str(remote), handle)
        return CatalogKeys(
            handles=handles,
            names={n: h for n, h in names.items() if n not in shared},
            family_ids=family_ids,
            tags=tuple(tags[k] for k in sorted(tags)),
        )


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


def row_values(
    v: Variant, *, declared_only: bool, family: bool, places: int = DEFAULT_MONEY_PLACES
) -> dict[str, Json]:
    """A sellable row's own fields as JSON values (`options` only for family members); money
    at `places` decimals (the store's)."""
    values: dict[str, Json] = {
        "price": money_text(v.price, places),
        "supply_price": money_text(v.supply_price, places),
        "barcode": v.barcode,
        "active": v.active,
    }
    if family:
        values["options"] = dict(v.options) if v.options else None
    if declared_only:
        return {k: v for k, v in values.items() if v is not None}
    return values
