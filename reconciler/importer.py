"""Turning what already exists into a catalog: normalized live products, or export rows.

Pure and platform-free: values in, values out (no files, HTTP, SQLite or click). A platform's
own export columns are its provider's (X-Series: `providers/xseries/csvimport.py`, which builds
on the values and helpers here: `CsvRow`, `Problem`, `ImportResult`, `settle`). Here:

- `catalog_from_live(...)`: live products as the provider normalized them into `reconciler.live`
  (the very values `catalog plan` compares) -> a `Catalog`, made short by `compact_live` (store
  defaults left out, a price shared by the variants said once on the family) without changing
  what it declares, so it plans clean against the store it came from.
- `layout(...)`: split a catalog into files, one per category (or brand when uncategorized), with
  collision-free ASCII file names and a stable order, so the same input gives byte-identical
  files.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

from reconciler.guardrails import import_allowances
from reconciler.model import (
    Brand,
    Catalog,
    Image,
    Product,
    Supplier,
    Variant,
    name_key,
    product_to_data,
    slugify,
    sorted_names,
)
from reconciler.rules import gtin_valid

# A handle is whatever the store holds (API spec: any string; real stores hold `WATSON`,
# `Mulcher-life`, `0003`, `tee--black`), kept exactly as it is: it is the family's identity
# (design invariant 1). A lowercase slug is only advice for new products.
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
MAX_VARIANTS = 200  # lightspeed-xseries.md §6.1
# A name, SKU, option, brand, supplier or tag as catalog-file.schema.json's `name` and `sku`
# allow it: one line, no control characters, no spaces at either end, at most 255 characters.
# (tests/importing checks this stays the schema's pattern.)
NAME_PATTERN = re.compile(
    r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f\u2028\u2029]*[^\s\x00-\x1f\x7f-\x9f])?$"
)
MAX_NAME = 255
# A product name as catalog-file.schema.json's `product_name` allows it: a store's name may hold
# a line break or a control character, which the catalog keeps (it is the store's name).
PRODUCT_NAME_PATTERN = re.compile(r"^\S([\s\S]*\S)?$")
MAX_TEXT = 65535


class Severity(StrEnum):
    ERROR = "error"  # the row (or its family) was skipped
    WARNING = "warning"  # the row was imported; something in it was left out or reconciled


@dataclass(frozen=True)
class CsvRow:
    """One record of the export: `line` is the physical line it starts on (header = line 1)."""

    line: int
    cells: Mapping[str, str]  # normalized column name -> cell text, stripped


@dataclass(frozen=True)
class Problem:
    """Something wrong with the input, tied to where it is (a CSV line, or a live product)."""

    message: str
    line: int | None = None
    severity: Severity = Severity.ERROR

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.severity}: {self.message}"


@dataclass(frozen=True)
class ImportResult:
    catalog: Catalog
    problems: tuple[Problem, ...] = ()
    ignored_columns: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()  # one line each: what was left alone on purpose, and why

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)


_NAME_FIELDS = ("brand", "supplier", "category", "tags")


def name_problem(what: str, value: str) -> str | None:
    """Why `value` cannot be declared as a name-like field (None when it can)."""
    if len(value) > MAX_NAME:
        return f"{what} is {len(value)} characters long, more than {MAX_NAME}"
    if not NAME_PATTERN.match(value):
        return f"{what} {value!r} has a line break, a control character or spaces at an end"
    return None


def product_name_problem(name: str) -> str | None:
    """Why `name` cannot be a product name (None when it can); see PRODUCT_NAME_PATTERN."""
    if len(name) > MAX_NAME:
        return f"name is {len(name)} characters long, more than {MAX_NAME}"
    if not PRODUCT_NAME_PATTERN.match(name):
        return f"name {name!r} is blank"
    return None


def untidy_name(name: str) -> bool:
    """A name a store may hold but nobody would type: a line break or a control character."""
    return NAME_PATTERN.match(name) is None


def undeclarable(p: Product) -> str | None:
    """Why the catalog format cannot declare this product as it is (None when it can)."""
    problem = product_name_problem(p.name) or name_problem("handle", p.handle)
    if problem:
        return problem
    checks: list[tuple[str, str | None]] = [("sku", p.sku)]
    checks += [("brand", p.brand), ("supplier", p.supplier)]
    checks += [("tag", t) for t in p.tags or ()]
    checks += [("category level", c) for c in p.category or ()]
    checks += [("option", o) for o in p.options]
    for v in p.variants:
        checks += [("sku", v.sku)]
        checks += [(f"option {n!r} value", value) for n, value in v.options]
    for what, value in checks:
        problem = name_problem(what, value) if value is not None else None
        if problem:
            return problem
    for what, text in (("description", p.description), ("supplier_code", p.supplier_code)):
        if text is not None and len(text) > MAX_TEXT:
            return f"{what} is longer than {MAX_TEXT} characters"
    return None


def hoist(values: Sequence[Any]) -> tuple[Any, list[Any]]:
    """Say a value shared by variants once on the family, keeping only the differing overrides.

    Only when every variant has a value: hoisting onto a family where some variant leaves it
    undeclared would start managing that variant's value. The family gets the most common value
    (the first one seen on a tie), so the YAML lists only the exceptions.
    """
    if not values or any(v is None for v in values):
        return None, list(values)
    counts = Counter(values)
    best = max(counts.values())
    family = next(v for v in values if counts[v] == best)
    return family, [None if v == family else v for v in values]


def hoist_supply(values: Sequence[Decimal | None]) -> tuple[Decimal | None, list[Decimal | None]]:
    """`hoist` for supply prices, where 0 is the store's default and so not written."""
    family, own = hoist(values)
    if family is not None and family == 0:
        family = None
    return family, own


def _active_fields(values: Sequence[bool | None]) -> tuple[bool | None, list[bool | None]]:
    """`active: true` is the store's default: only `false` is written (on the family if all)."""
    if values and all(v is False for v in values):
        return False, [None] * len(values)
    return None, [False if v is False else None for v in values]


def _comparable(key: str, value: Any) -> Any:
    """Brand, supplier, tag and category names are case-insensitive: "acme" is "Acme"."""
    if key not in _NAME_FIELDS:
        return value
    if isinstance(value, tuple):
        return tuple(name_key(v) for v in value)
    return name_key(value) if isinstance(value, str) else value


def _canonical_names(
    products: list[Product],
    *,
    brands_known: Iterable[str] = (),
    suppliers_known: Iterable[str] = (),
    tags_known: Iterable[str] = (),
) -> tuple[list[Product], list[str], list[str], list[str]]:
    """One spelling per brand/supplier/tag/option name and category level (the first seen),
    used everywhere it appears: the store's names are case-insensitive, the catalog's are
    spelled one way (real exports write "Size" on one family and "SIZE" on the next)."""
    brands: dict[str, str] = {}
    suppliers: dict[str, str] = {}
    tags: dict[str, str] = {}
    for names, known in ((brands, brands_known), (suppliers, suppliers_known), (tags, tags_known)):
        for n in known:
            names.setdefault(name_key(n), n)
    options: dict[str, str] = {}
    levels: dict[tuple[str, ...], str] = {}
    out: list[Product] = []
    for p in products:
        brand = brands.setdefault(name_key(p.brand), p.brand) if p.brand else None
        supplier = suppliers.setdefault(name_key(p.supplier), p.supplier) if p.supplier else None
        product_tags = (
            sorted_names([tags.setdefault(name_key(t), t) for t in p.tags]) if p.tags else None
        )
        category = p.category
        if category:
            keys = [name_key(level) for level in category]
            category = tuple(
                levels.setdefault(tuple(keys[: i + 1]), level) for i, level in enumerate(category)
            )
        spelled = {name_key(o): options.setdefault(name_key(o), o) for o in p.options}
        out.append(
            replace(
                p,
                brand=brand,
                supplier=supplier,
                tags=product_tags,
                category=category,
                options=tuple(spelled[name_key(o)] for o in p.options),
                variants=tuple(
                    replace(v, options=tuple((spelled[name_key(n)], x) for n, x in v.options))
                    for v in p.variants
                ),
            )
        )
    return out, list(brands.values()), list(suppliers.values()), list(tags.values())


def settle(products: list[Product], problems: list[Problem]) -> list[Product]:
    """What a store's data may hold but a catalog cannot declare, reconciled without losing a
    product: a barcode another product already uses is left out (the first keeps it), and a
    category that other products' categories go below is left out of the products placed on it
    (the store only puts products on a leaf). Each is a warning; the product is imported."""
    below = {
        tuple(name_key(x) for x in p.category[:i])
        for p in products
        if p.category
        for i in range(1, len(p.category))
    }
    used: set[str] = set()
    out: list[Product] = []

    def once(handle: str, sku: str | None, code: str | None) -> str | None:
        if code is None or code not in used:
            if code is not None:
                used.add(code)
            return code
        problems.append(
            Problem(
                f'barcode {code!r} of "{sku}" ("{handle}") is also the barcode of an earlier '
                "product; left out of the catalog (so it is not managed)",
                severity=Severity.WARNING,
            )
        )
        return None

    for p in products:
        if p.category and tuple(name_key(x) for x in p.category) in below:
            problems.append(
                Problem(
                    f'category "{" / ".join(p.category)}" of "{p.handle}" has subcategories, and '
                    "the store only puts products on a leaf category; the category is left out "
                    "of the catalog (so it is not managed)",
                    severity=Severity.WARNING,
                )
            )
            p = replace(p, category=None)
        out.append(
            replace(
                p,
                barcode=once(p.handle, p.sku, p.barcode),
                variants=tuple(
                    replace(v, barcode=once(p.handle, v.sku, v.barcode)) for v in p.variants
                ),
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# Live store (normalized) -> catalog
# ---------------------------------------------------------------------------------------------

IMAGES_DIR = "images"


def image_folder(handle: str) -> str:
    """One safe, distinct folder name per handle: the handle itself when it is a lowercase slug,
    else its slug plus a hash of the exact handle (a handle may hold "/", "..", or differ from
    another only in case, which a case-insensitive file system would merge)."""
    if SLUG_PATTERN.match(handle) and len(handle) <= 80:
        return handle
    digest = hashlib.sha256(handle.encode()).hexdigest()[:10]
    return f"{slugify(handle) or 'product'}-{digest}"


def image_path(handle: str, position: int, ext: str) -> str:
    """Where a downloaded family image goes: `images/<folder>/<position>.<ext>`, 1-based."""
    return f"{IMAGES_DIR}/{image_folder(handle)}/{position:02d}.{ext}"


def _variant_order(options: tuple[str, ...], v: Variant) -> Variant:
    """A variant's options in the family's order (the store lists each row's in its own)."""
    own = {name_key(n): value for n, value in v.options}
    ordered = tuple((n, own[name_key(n)]) for n in options if name_key(n) in own)
    extra = tuple((n, value) for n, value in v.options if name_key(n) not in map(name_key, options))
    return replace(v, options=ordered + extra)


def compact_live(p: Product) -> Product:
    """A normalized live product as short YAML: store defaults left out, shared prices hoisted.

    Every value left out is the store's default or is said on the family instead, so the
    imported product plans clean against the store it came from: undeclared fields are never
    diffed (design invariant 3), and a hoisted price folds back into each variant.
    """
    base = replace(
        p,
        description=p.description or None,
        supplier_code=p.supplier_code or None,
        tags=p.tags or None,
    )
    if not p.is_family:
        return replace(
            base,
            active=False if p.active is False else None,
            supply_price=p.supply_price or None,  # 0 is the store's default
        )
    variants = [_variant_order(p.options, v) for v in p.variants]
    price, prices = hoist([v.price for v in variants])
    supply, supplies = hoist_supply([v.supply_price for v in variants])
    active, actives = _active_fields([v.active for v in variants])
    return replace(
        base,
        price=price,
        supply_price=supply,
        active=active,
        variants=tuple(
            replace(v, price=prices[i], supply_price=supplies[i], active=actives[i])
            for i, v in enumerate(variants)
        ),
    )


def _live_problem(handle: str, product: Product) -> str | None:
    if not product.name:
        return f'"{handle}" has no name in the store'
    if product.is_family and not product.variants:
        return f'"{handle}" is a family without a variant that has a SKU'
    if not product.is_family and not product.sku:
        return f'"{handle}" has no SKU in the store'
    problem = undeclarable(product)
    if problem:
        return f'"{handle}": {problem}, which the catalog format cannot declare'
    return None


def _drop_bad_barcodes(p: Product, problems: list[Problem]) -> Product:
    """The catalog only declares valid GTINs; a store may hold others (then left unmanaged)."""

    def keep(sku: str | None, code: str | None) -> str | None:
        if code is None or gtin_valid(code):
            return code
        problems.append(
            Problem(
                f'barcode {code!r} of "{sku}" ("{p.handle}") has a wrong check digit or length; '
                "left out of the catalog (so it is not managed)",
                severity=Severity.WARNING,
            )
        )
        return None

    return replace(
        p,
        barcode=keep(p.sku, p.barcode),
        variants=tuple(replace(v, barcode=keep(v.sku, v.barcode)) for v in p.variants),
    )


def catalog_from_live(
    products: Mapping[str, Product],
    *,
    brands: Iterable[Brand] = (),
    suppliers: Iterable[Supplier] = (),
    tags: Iterable[str] = (),
    problems: Mapping[str, Sequence[str]] | None = None,
    images: Mapping[str, Sequence[Image]] | None = None,
    composites: Iterable[str] = (),
) -> ImportResult:
    """The live store (normalized: products by handle, in the catalog's shape) as a catalog.

    Every brand, supplier and tag of the store is declared, so they are managed from now on.
    A product the catalog cannot declare (a handle that is no slug, two families under one
    handle: `problems` from normalization) is reported and left out, never renamed.
    `images` are the downloaded family images by handle, in the store's order. `composites`
    (handles of bundles) are left out and named in one notice: the catalog does not manage them.
    Handles and names are kept exactly as the store holds them; a name another family shares
    or one holding a line break is imported with a warning.
    """
    found: list[Problem] = []
    out: list[Product] = []
    bundles = sorted(set(composites) & set(products))
    notices: list[str] = []
    if bundles:
        shown = ", ".join(f'"{h}"' for h in bundles)
        notices.append(
            f"{len(bundles)} composite product(s) (bundles) left unmanaged, as they are in the "
            f"store (the catalog does not declare composites yet): {shown}."
        )
    names: dict[str, str] = {}
    for handle in sorted(products):
        if handle in bundles:
            continue
        product = products[handle]
        reasons = list((problems or {}).get(handle, ()))
        own = _live_problem(handle, product)
        if own:
            reasons.append(own)
        if reasons:
            found.extend(Problem(f"{r}; product left out") for r in reasons)
            continue
        other = names.setdefault(name_key(product.name), handle)
        if other != handle:
            found.append(
                Problem(
                    f'name {product.name!r} of "{handle}" is also the name of "{other}" in the '
                    "store; both are imported",
                    severity=Severity.WARNING,
                )
            )
        if untidy_name(product.name):
            found.append(
                Problem(
                    f'name {product.name!r} of "{handle}" holds a line break or a control '
                    "character; imported as the store has it",
                    severity=Severity.WARNING,
                )
            )
        product = _drop_bad_barcodes(compact_live(product), found)
        family_images = (images or {}).get(handle)
        if family_images:
            product = replace(product, images=tuple(family_images))
        out.append(product)
    brands, suppliers = list(brands), list(suppliers)
    # The store's own spellings win; a product naming one another way is respelled to it.
    out, brand_names, supplier_names, tag_names = _canonical_names(
        out,
        brands_known=[b.name for b in brands],
        suppliers_known=[s.name for s in suppliers],
        tags_known=tags,
    )
    out = settle(out, found)
    described = {name_key(b.name): b.description for b in brands}
    supplied = {name_key(s.name): s.description for s in suppliers}
    catalog = import_allowances(
        Catalog.build(
            products=out,
            brands=[Brand(b, described.get(name_key(b)) or None) for b in brand_names],
            suppliers=[Supplier(s, supplied.get(name_key(s)) or None) for s in supplier_names],
            tags=tag_names,
        )
    )
    return ImportResult(catalog=catalog, problems=tuple(found), notices=tuple(notices))


# ---------------------------------------------------------------------------------------------
# Catalog -> files
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogFile:
    """One file to write: `path` is relative to the output directory (posix), `data` its YAML."""

    path: str
    data: dict[str, Any] = field(default_factory=dict)


PRODUCTS_DIR = "products"
RESERVED_FILES = ("brands.yaml", "suppliers.yaml", "tags.yaml", "catalog.yaml")


def _group_key(p: Product) -> tuple[int, tuple[str, ...]]:
    if p.category:
        return (0, p.category)
    if p.brand:
        return (1, (p.brand,))
    return (2, ())


def _group_stem(key: tuple[int, tuple[str, ...]]) -> str:
    kind, parts = key
    if kind == 0:
        return slugify("-".join(parts)) or "category"
    if kind == 1:
        return "brand-" + (slugify(parts[0]) or "unnamed")
    return "uncategorized"


def layout(catalog: Catalog) -> list[CatalogFile]:
    """The files of an imported catalog, in a stable order with stable, collision-free names.

    Products go to `products/<category>.yaml` (or `products/brand-<brand>.yaml` when they have no
    category, `products/uncategorized.yaml` when they have neither), sorted by handle; names,
    brands, suppliers and tags each get their own file. File names are ASCII slugs made here,
    never taken from a handle, so nothing in the input can name a path outside the output.
    """
    groups: dict[tuple[int, tuple[str, ...]], list[Product]] = {}
    for p in catalog.products:
        kind, parts = _group_key(p)
        # Category paths and brand names are case-insensitive names: one file per name.
        groups.setdefault((kind, tuple(name_key(x) for x in parts)), []).append(p)

    files: list[CatalogFile] = []
    taken: set[str] = set()
    for key in sorted(groups):
        stem = _group_stem(key)
        name, n = stem, 1
        while name in taken:
            n += 1
            name = f"{stem}-{n}"
        taken.add(name)
        products = sorted(groups[key], key=lambda p: p.handle)
        files.append(
            CatalogFile(
                path=f"{PRODUCTS_DIR}/{name}.yaml",
                data={"products": [product_to_data(p) for p in products]},
            )
        )
    if catalog.brands:
        files.append(CatalogFile("brands.yaml", {"brands": [_named(b) for b in catalog.brands]}))
    if catalog.suppliers:
        files.append(
            CatalogFile("suppliers.yaml", {"suppliers": [_named(s) for s in catalog.suppliers]})
        )
    if catalog.tags:
        files.append(CatalogFile("tags.yaml", {"tags": list(catalog.tags)}))
    return sorted(files, key=lambda f: f.path)


def _named(obj: Brand | Supplier) -> dict[str, Any]:
    data: dict[str, Any] = {"name": obj.name}
    if obj.description:
        data["description"] = obj.description
    return data
