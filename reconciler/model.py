"""The catalog's canonical model: what the YAML declares, validated and normalized.

Pure values only (no I/O). Conventions every other module relies on:

- `None` on an optional field means "the YAML does not declare it": such a field is never written
  to the store and never diffed (design invariant 3). An explicit empty value (`description: ""`,
  `tags: []`) is declared and managed.
- Money is `Decimal`, never float.
- Lists whose order has no meaning (tags) are sorted case-insensitively; lists whose order means
  something (options, variants as declared, images) keep the declared order.
- Products are sorted by handle, brands/suppliers/tags by case-folded name, so two catalogs that
  declare the same things in different files or orders are equal and share a digest.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Any

Json = Any  # a JSON-ready value: None, bool, int, str, list, dict
# Of every JSON document this tool writes (plans, validate, apply and history reports).
FORMAT_VERSION = 2  # 2: plans name their provider; a version-1 plan is planned again


class Prune(StrEnum):
    NONE = "none"
    DEACTIVATE = "deactivate"
    DELETE = "delete"


class Rule(StrEnum):
    """A guardrail (`settings.guardrails`): a kind of change apply refuses unless allowed."""

    PRICE_JUMP = "price-jump"  # a price moves by more than a percentage, up or down
    MARGIN = "margin"  # a price below the supply price plus a margin floor
    REMOVALS = "removals"  # too many products deactivated or deleted in one apply
    ZERO_PRICE = "zero-price"  # a price of 0


class Owner(StrEnum):
    """Who owns a field (`settings.fields`)."""

    CATALOG = "catalog"  # the catalog writes and diffs it (the default)
    STORE = "store"  # never written, never diffed: a team edits it in the store
    INIT = "init"  # written when the object is created, never updated


# Fields whose owner `settings.fields` can set: a product's (or variant's) own values. Identity
# and shape (handle, name, sku, options, variants) always belong to the catalog.
OWNABLE_FIELDS = (
    "description",
    "brand",
    "supplier",
    "supplier_code",
    "category",
    "tags",
    "active",
    "price",
    "supply_price",
    "barcode",
    "images",
)


def name_key(name: str) -> str:
    """The identity of a brand, supplier, tag or attribute name: case-insensitive, trimmed."""
    return name.strip().casefold()


def clean_text(text: str) -> str:
    """The one spelling of a text value that every side compares (catalog file, CSV export,
    live store): line endings as "\\n" (stores and spreadsheets write CR or CRLF), no
    whitespace at either end (exports trim cells, stores keep what was typed). Two values with
    the same clean text are the same value, so neither can plan a change to the other."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.strip()


def category_to_data(path: tuple[str, ...]) -> str | list[str]:
    """A category path as the catalog writes it: `"A / B"`, or a list when a level's own name
    holds a "/" (`[Spirits, Bourbon/Whiskey]`), since in the string form every "/" separates."""
    if any("/" in level for level in path):
        return list(path)
    return " / ".join(path)


def category_from_data(value: str | list[str]) -> tuple[str, ...]:
    """The path a catalog file declares: a list names its levels, a string splits at "/"."""
    if isinstance(value, list):
        return tuple([clean_text(level) for level in value])
    return tuple([level.strip() for level in value.split("/")])


@dataclass(frozen=True, slots=True)
class Image:
    """A family image: a file in the catalog directory, identified by the sha256 of its bytes."""

    path: str  # posix path relative to the catalog directory
    sha256: str

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Variant:
    """One sellable row of a family, identified by `sku`."""

    sku: str
    options: tuple[tuple[str, str], ...] = ()  # (attribute name, value) in the family's order
    price: Decimal | None = None  # None: the family price applies
    supply_price: Decimal | None = None  # None: the family supply price applies
    barcode: str | None = None
    active: bool | None = None  # None: the family's `active` applies


@dataclass(frozen=True)
class Product:
    """A family (with `options` and `variants`) or a simple product (with `sku`), by `handle`."""

    handle: str
    name: str
    description: str | None = None
    brand: str | None = None
    supplier: str | None = None
    supplier_code: str | None = None
    category: tuple[str, ...] | None = None  # category path, root first; the leaf is assigned
    tags: tuple[str, ...] | None = None
    active: bool | None = None  # None: not managed; a create sends true
    price: Decimal | None = None
    supply_price: Decimal | None = None
    options: tuple[str, ...] = ()  # variant attribute names; empty for a simple product
    variants: tuple[Variant, ...] = ()
    images: tuple[Image, ...] | None = None
    sku: str | None = None  # simple products only
    barcode: str | None = None  # simple products only
    allow: tuple[Rule, ...] = ()  # guardrails this product may break (an intended exception)

    @property
    def is_family(self) -> bool:
        return bool(self.options)

    def sellables(self) -> tuple[Variant, ...]:
        """Every sellable row with family-level values folded in (what the store holds per row).

        A simple product is one row whose sku/barcode/price come from the product itself.
        A variant's own `price`, `supply_price` and `active` win over the family's.
        """
        if not self.is_family:
            return (
                Variant(
                    sku=self.sku or "",
                    price=self.price,
                    supply_price=self.supply_price,
                    barcode=self.barcode,
                    active=self.active,
                ),
            )
        return tuple(
            Variant(
                sku=v.sku,
                options=v.options,
                price=v.price if v.price is not None else self.price,
                supply_price=v.supply_price if v.supply_price is not None else self.supply_price,
                barcode=v.barcode,
                active=v.active if v.active is not None else self.active,
            )
            for v in self.variants
        )


@dataclass(frozen=True)
class Brand:
    name: str
    description: str | None = None


@dataclass(frozen=True)
class Supplier:
    name: str
    description: str | None = None


@dataclass(frozen=True)
class Guardrails:
    """`settings.guardrails`: each rule is on with its default unless the catalog turns it off
    (None / False). Percentages are of the price before the change (price-jump) and of the
    price (margin: (price - supply price) / price)."""

    price_jump: Decimal | None = Decimal(50)  # largest price change per variant, in percent
    margin: Decimal | None = Decimal(0)  # lowest margin, in percent of the price
    removals: int | None = 25  # most products deactivated or deleted in one apply ...
    removals_percent: Decimal | None = None  # ... or this percentage of the managed products
    zero_price: bool = True  # a price of 0 is refused

    def on(self, rule: Rule) -> bool:
        if rule is Rule.PRICE_JUMP:
            return self.price_jump is not None
        if rule is Rule.MARGIN:
            return self.margin is not None
        if rule is Rule.REMOVALS:
            return self.removals is not None or self.removals_percent is not None
        return self.zero_price

    def to_data(self) -> dict[str, str]:
        """Every rule as the YAML would say it (`off` when turned off): what a plan binds."""
        removals = (
            f"{_number(self.removals_percent)}%"
            if self.removals_percent is not None
            else (str(self.removals) if self.removals is not None else "off")
        )
        return {
            str(Rule.PRICE_JUMP): _percent(self.price_jump),
            str(Rule.MARGIN): _percent(self.margin),
            str(Rule.REMOVALS): removals,
            str(Rule.ZERO_PRICE): "on" if self.zero_price else "off",
        }


def _number(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _percent(value: Decimal | None) -> str:
    return "off" if value is None else f"{_number(value)}%"


@dataclass(frozen=True)
class Settings:
    prune: Prune = Prune.NONE
    stores: tuple[str, ...] = ()  # store domain prefixes for multi-store CI (issue 8)
    guardrails: Guardrails = field(default_factory=Guardrails)
    fields: tuple[tuple[str, Owner], ...] = ()  # (field, owner) for fields not the catalog's

    def owner(self, name: str) -> Owner:
        for f, who in self.fields:
            if f == name:
                return who
        return Owner.CATALOG


@dataclass(frozen=True)
class Catalog:
    products: tuple[Product, ...] = ()
    brands: tuple[Brand, ...] = ()
    suppliers: tuple[Supplier, ...] = ()
    tags: tuple[str, ...] = ()
    settings: Settings = field(default_factory=Settings)

    @staticmethod
    def build(
        *,
        products: list[Product] | tuple[Product, ...] = (),
        brands: list[Brand] | tuple[Brand, ...] = (),
        suppliers: list[Supplier] | tuple[Supplier, ...] = (),
        tags: list[str] | tuple[str, ...] = (),
        settings: Settings | None = None,
    ) -> Catalog:
        """A catalog in canonical order, whatever order its parts were declared in."""
        return Catalog(
            products=tuple(sorted(products, key=lambda p: p.handle)),
            brands=tuple(sorted(brands, key=lambda b: name_key(b.name))),
            suppliers=tuple(sorted(suppliers, key=lambda s: name_key(s.name))),
            tags=sorted_names(tags),
            settings=settings or Settings(),
        )

    def product(self, handle: str) -> Product | None:
        return self._by_handle.get(handle)

    @cached_property
    def _by_handle(self) -> dict[str, Product]:
        # Built once per catalog value: callers look a product up per change, and a scan each
        # time made a 100,000-family plan quadratic. The first declaration of a handle wins.
        index: dict[str, Product] = {}
        for p in self.products:
            index.setdefault(p.handle, p)
        return index

    def digest(self) -> str:
        """A stable sha256 of the whole catalog, independent of file, key and declaration order:
        its declarations and settings, then each product's own digest (`product_digest`), so an
        incremental plan can make it from the digests of what it did not read again."""
        return combined_digest(
            head_digest(self), ((p.handle, product_digest(p)) for p in self.products)
        )


def _sha256_json(data: object) -> str:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def product_digest(p: Product) -> str:
    """A stable sha256 of one product as the catalog declares it, its images' bytes included."""
    return product_record(p)[1]


def product_record(p: Product) -> tuple[str, str]:
    """One product as canonical JSON text (its images' sha256 included) and that text's sha256:
    what an incremental plan keeps of each family (`reconciler.catalog.product_from_data`)."""
    data = product_to_data(p)
    if p.images:
        data["image_hashes"] = [[i.path, i.sha256] for i in p.images]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text, hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def head_digest(c: Catalog) -> str:
    """A stable sha256 of what the catalog declares besides its products."""
    return _sha256_json(catalog_to_data(replace(c, products=())))


def combined_digest(head: str, products: Iterable[tuple[str, str]]) -> str:
    """The catalog's digest from its head's and its products' (handle, digest), in any order."""
    digest = hashlib.sha256(head.encode())
    for handle, product in sorted(products):
        digest.update(f"\n{handle}\0{product}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def sorted_names(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Names in canonical order (case-insensitive, then exact for a stable tie-break)."""
    return tuple(sorted(names, key=lambda n: (name_key(n), n)))


def format_money(value: Decimal) -> str:
    """A price as people read it: at least two decimals, no trailing zeros beyond that."""
    text = format(value.normalize(), "f")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    return f"{whole}.{frac.ljust(2, '0')}"


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format_money(value)


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def variant_to_data(v: Variant) -> dict[str, Any]:
    return _drop_none(
        {
            "sku": v.sku,
            "options": dict(v.options) if v.options else None,
            "price": _money(v.price),
            "supply_price": _money(v.supply_price),
            "barcode": v.barcode,
            "active": v.active,
        }
    )


def product_to_data(p: Product) -> dict[str, Any]:
    """The product as YAML-shaped data, keys in the catalog format's order, undeclared omitted."""
    return _drop_none(
        {
            "handle": p.handle,
            "name": p.name,
            "sku": p.sku,
            "barcode": p.barcode,
            "description": p.description,
            "brand": p.brand,
            "supplier": p.supplier,
            "supplier_code": p.supplier_code,
            "category": category_to_data(p.category) if p.category is not None else None,
            "tags": list(p.tags) if p.tags is not None else None,
            "active": p.active,
            "price": _money(p.price),
            "supply_price": _money(p.supply_price),
            "options": list(p.options) if p.options else None,
            "variants": [variant_to_data(v) for v in p.variants] if p.variants else None,
            "images": [i.path for i in p.images] if p.images is not None else None,
            "allow": [str(r) for r in p.allow] if p.allow else None,
        }
    )


def catalog_to_data(c: Catalog) -> dict[str, Any]:
    """The whole catalog as one YAML-shaped document (used for dumps and the digest)."""
    data: dict[str, Any] = {
        "products": [product_to_data(p) for p in c.products],
        "brands": [_drop_none({"name": b.name, "description": b.description}) for b in c.brands],
        "suppliers": [
            _drop_none({"name": s.name, "description": s.description}) for s in c.suppliers
        ],
        "tags": list(c.tags),
        "settings": {"prune": str(c.settings.prune)},
    }
    if c.settings.stores:
        data["settings"]["stores"] = list(c.settings.stores)
    if c.settings.guardrails != Guardrails():
        data["settings"]["guardrails"] = c.settings.guardrails.to_data()
    if c.settings.fields:
        data["settings"]["fields"] = {f: str(o) for f, o in c.settings.fields}
    # Image bytes are part of the catalog's identity: a changed file must change the digest.
    images = {i.path: i.sha256 for p in c.products for i in (p.images or ())}
    if images:
        data["image_hashes"] = dict(sorted(images.items()))
    return data


def slugify(text: str) -> str:
    """An ASCII file-name slug: accents folded, anything else a single '-'; may be empty."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:80].strip("-")
