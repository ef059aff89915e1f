"""X-Series store objects -> the catalog's own shape, so the diff compares like with like.

Pure: takes the store's JSON (as the cache holds it) and returns values. Rules
(lightspeed-xseries.md §6):

- A family is the set of rows sharing a handle; simple products are one row.
- Ids become names: brand, supplier, tags (sorted like the model sorts them), the category as
  its path of names, variant attribute names. An embedded `brand`/`supplier`/`type` object may
  be `{}` or `null`: both mean "none"; one with an id and no id field is read by its id.
- Tags come from `tag_ids`, or from the embedded `categories` array (2.0 embeds the product's
  tags there) when a row has no `tag_ids`.
- A variant option name repeated on one row (the spec's own example has one) is read once,
  its first value, and reported in `LiveProduct.notices`, never collapsed without a word.
- Only the price field the store's tax mode writes is read (the other is computed and carries
  5 decimals); money is quantized to the store's precision and written like the model writes it.
- `is_active` (older rows: `active`) gives `active`; the barcode is the first non-CUSTOM product
  code (the store keeps the SKU itself among the codes as CUSTOM); `variant_options` give the
  variant's options.

The values it returns (`Live` and its parts) are the core's, in `reconciler.live`.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, NamedTuple

from reconciler.live import (
    Category,
    Live,
    LiveProduct,
    LiveRow,
    Named,
    Names,
    opaque_version,
    path_key,
    quantize_money,
)
from reconciler.model import (
    Json,
    Product,
    Variant,
    clean_text,
    name_key,
    sorted_names,
)
from reconciler.plan import Kind

# X-Series keeps prices to 5 decimal places (computed prices read back like 2.63158).
MONEY_PLACES = 5

# Product code types that are barcodes; CUSTOM codes hold the SKU and store-made codes.
BARCODE_TYPES = ("EAN", "UPC", "JAN", "ISBN", "ITF")


def store_money(value: Decimal) -> Decimal:
    """A price as the store keeps it (5 decimal places); apply sends exactly this."""
    return quantize_money(value, MONEY_PLACES)


def parse_money(raw: Json) -> Decimal | None:
    """A JSON number or string from the store as Decimal (via str, never via float math)."""
    if raw is None or raw == "" or isinstance(raw, bool):
        return None
    if isinstance(raw, (str, int, float)):
        # A store holds few distinct prices across many rows: each is parsed once per run.
        return _parse_scalar_money(raw)
    return _parse_money(raw)


@lru_cache(maxsize=8192, typed=True)
def _parse_scalar_money(raw: str | int | float) -> Decimal | None:
    return _parse_money(raw)


def _parse_money(raw: Json) -> Decimal | None:
    try:
        value = Decimal(str(raw))
        # The catalog's amounts are bounded (the schema's `money`); a store's answer is not, and
        # one too long to quantize in 28 digits is no price the catalog could have written.
        return store_money(value) if value.is_finite() else None
    except InvalidOperation:
        return None


def barcode_type(code: str) -> str:
    """The product-code type a GTIN is sent as: 12 digits UPC, 14 ITF, 8/13 EAN."""
    return {12: "UPC", 14: "ITF"}.get(len(code), "EAN")


def price_field(tax_exclusive: bool) -> str:
    """The one price field the store's tax mode writes (lightspeed-xseries.md §6.2)."""
    return "price_excluding_tax" if tax_exclusive else "price_including_tax"


def oldest_first(obj: Json) -> tuple[int, str, str]:
    """The order among live objects holding one name: the oldest (lowest version, then
    creation time, then id) is the one used, by plan and apply alike, in every run. Versions
    come from one store-wide counter, so whoever creates a name second sees the first one,
    and any two applies racing to create it settle on the same object."""
    return (int(obj.get("version") or 0), str(obj.get("created_at") or ""), str(obj.get("id")))


def _duplicates(objects: Iterable[Json], key: Callable[[Json], str]) -> dict[str, tuple[str, ...]]:
    held: dict[str, list[str]] = {}
    for obj in sorted(objects, key=oldest_first):
        if obj.get("deleted_at") or not obj.get("name") or not obj.get("id"):
            continue
        held.setdefault(key(obj), []).append(str(obj["id"]))
    return {k: tuple(ids) for k, ids in held.items() if len(ids) > 1}


def _live_named(objects: Iterable[Json]) -> dict[str, Named]:
    out: dict[str, Named] = {}
    # Oldest first, so when the store holds two "Acme"s (names are not unique there) the
    # lowest version wins, consistently across runs.
    for obj in sorted(objects, key=oldest_first):
        if obj.get("deleted_at") or not obj.get("name"):
            continue
        named = Named(
            id=str(obj["id"]),
            name=str(obj["name"]),
            description=obj.get("description"),
            version=opaque_version(obj.get("version")),
        )
        out.setdefault(name_key(named.name), named)
    return out


def normalize_categories(objects: Iterable[Json]) -> dict[tuple[str, ...], Category]:
    """Categories by path key. The path comes from `category_path`, else the parent chain.

    Two categories on one path (the store does not prevent it): the one used is chosen top
    down, so a path's category always sits under its parent path's: at each level the oldest
    (`oldest_first`; categories carry no version, so by creation time when given, else by id)
    among the children of the chosen parent; a path found only under a duplicate parent is
    taken from there. The same choice in every run, by plan and apply alike."""
    by_id = {str(o["id"]): o for o in objects if o.get("id") and not o.get("deleted_at")}
    paths = {cid: _category_path(obj, by_id) for cid, obj in by_id.items()}
    out: dict[tuple[str, ...], Category] = {}
    ranked = sorted(
        ((cid, obj) for cid, obj in by_id.items() if paths[cid]),
        key=lambda item: (len(paths[item[0]]), oldest_first(item[1])),
    )
    later: list[tuple[str, Json]] = []
    for cid, obj in ranked:
        path = paths[cid]
        key = path_key(path)
        if key in out:
            continue
        parent = out.get(key[:-1]) if len(path) > 1 else None
        if len(path) > 1 and (parent is None or parent.id != category_parent(obj)):
            later.append((cid, obj))  # under a duplicate parent: only if nothing better
            continue
        out[key] = Category(id=cid, path=path, leaf=bool(obj.get("leaf_category", True)))
    for cid, obj in later:
        out.setdefault(
            path_key(paths[cid]),
            Category(id=cid, path=paths[cid], leaf=bool(obj.get("leaf_category", True))),
        )
    return out


def category_parent(obj: Json) -> str | None:
    """A category's parent id, from `parent_category_id` or else its `category_path`."""
    parent = obj.get("parent_category_id")
    if parent:
        return str(parent)
    steps = obj.get("category_path") or []
    return str(steps[-2].get("id")) if len(steps) > 1 and steps[-2].get("id") else None


def _category_path(obj: Json, by_id: Mapping[str, Json]) -> tuple[str, ...]:
    steps = obj.get("category_path") or []
    if steps:
        return tuple(str(s.get("name", "")) for s in steps)
    names: list[str] = []
    seen: set[str] = set()
    node: Json = obj
    while node is not None and str(node.get("id")) not in seen:
        seen.add(str(node.get("id")))
        names.append(str(node.get("name", "")))
        parent = node.get("parent_category_id")
        node = by_id.get(str(parent)) if parent else None
    return tuple(reversed(names))


def normalize_names(
    *,
    brands: Iterable[Json] = (),
    suppliers: Iterable[Json] = (),
    tags: Iterable[Json] = (),
    attributes: Iterable[Json] = (),
    categories: Iterable[Json] = (),
) -> Names:
    brands, suppliers, tags = list(brands), list(suppliers), list(tags)
    attributes, categories = list(attributes), list(categories)
    duplicates: dict[tuple[str, str], tuple[str, ...]] = {}
    for kind, objects in (
        ("brand", brands),
        ("supplier", suppliers),
        ("tag", tags),
        (str(Kind.ATTRIBUTE), attributes),
    ):
        for key, ids in _duplicates(objects, lambda o: name_key(str(o["name"]))).items():
            duplicates[(kind, key)] = ids
    by_id = {str(o["id"]): o for o in categories if o.get("id") and not o.get("deleted_at")}
    paths = {cid: path_key(_category_path(o, by_id)) for cid, o in by_id.items()}
    for key, ids in _duplicates(by_id.values(), lambda o: " / ".join(paths[str(o["id"])])).items():
        duplicates[(str(Kind.CATEGORY), key)] = ids
    return Names(
        brands=_live_named(brands),
        suppliers=_live_named(suppliers),
        tags=_live_named(tags),
        attributes=_live_named(attributes),
        categories=normalize_categories(categories),
        duplicates=duplicates,
    )


class _Ids:
    """id -> name indexes built once per normalization.

    Every live brand, supplier and tag is indexed, not only the one `Names` uses for a name the
    store holds twice: a product pointing at the other one still reads its current name, not
    the name embedded in its (possibly cached, older) payload. Renaming a brand does not change
    the products that point at it."""

    def __init__(
        self,
        names: Names,
        *,
        brands: Iterable[Json] = (),
        suppliers: Iterable[Json] = (),
        tags: Iterable[Json] = (),
        gone: Collection[str] = (),
    ) -> None:
        self.brand = _id_index(names.brands, brands, gone)
        self.supplier = _id_index(names.suppliers, suppliers, gone)
        self.tag = _id_index(names.tags, tags)
        self.category = {c.id: c.path for c in names.categories.values()}


def _id_index(
    named: Mapping[str, Named], objects: Iterable[Json], gone: Collection[str] = ()
) -> dict[str, str | None]:
    """id -> name; None for an id known to be deleted (its products' cached payloads may
    still embed its name: the store stops embedding it without a new product version)."""
    index: dict[str, str | None] = dict.fromkeys(gone)
    index.update((n.id, n.name) for n in named.values())
    for obj in objects:
        if obj.get("id") and obj.get("name") and not obj.get("deleted_at"):
            index.setdefault(str(obj["id"]), str(obj["name"]))
    return index


def _embedded_name(obj: Json) -> str | None:
    # `{}` and `null` both mean "none" (lightspeed-xseries.md §6.1).
    if isinstance(obj, dict) and obj.get("name") and not obj.get("deleted_at"):
        return str(obj["name"])
    return None


def _ref_name(
    row: Json, id_field: str, embedded: str, index: Mapping[str, str | None]
) -> str | None:
    # The id field, else the embedded object's id (the spec's examples carry one, the other or
    # both); an id the name list does not know takes the embedded name, one known deleted none.
    # `{}` / `null`: none.
    obj = row.get(embedded)
    ref = row.get(id_field) or (obj.get("id") if isinstance(obj, dict) else None)
    found = index.get(str(ref), "") if ref else ""
    return None if found is None else found or _embedded_name(obj)


def _category(row: Json, ids: _Ids) -> tuple[str, ...] | None:
    # Only what the spec declares on a product: the embedded `type` (its `category_path` when
    # the store sends one) and `product_type_id`, resolved through the category list.
    obj = row.get("type")
    if isinstance(obj, dict) and obj.get("category_path"):
        return tuple(str(s.get("name", "")) for s in obj["category_path"] if isinstance(s, dict))
    ref = row.get("product_type_id") or (obj.get("id") if isinstance(obj, dict) else None)
    if ref and str(ref) in ids.category:
        return ids.category[str(ref)]
    name = _embedded_name(obj)
    return (name,) if name else None


def _barcode(row: Json) -> str | None:
    for code in row.get("product_codes") or []:
        if str(code.get("type", "")).upper() in BARCODE_TYPES and code.get("code"):
            return str(code["code"])
    return None


def _active(row: Json) -> bool:
    value = row.get("is_active")
    if value is None:
        value = row.get("active", True)
    return bool(value)


def _tags(row: Json, ids: _Ids) -> tuple[str, ...]:
    """Tag names from `tag_ids`, or, when a row has none, from the embedded `categories` array
    (2.0 products embed their tags there as {id, name}; some real rows carry only that). An id
    the tag list does not know takes its embedded name; one known nowhere stays as the id."""
    embedded = {
        str(t["id"]): str(t["name"])
        for t in row.get("categories") or []
        if isinstance(t, dict) and t.get("id") and t.get("name") and not t.get("deleted_at")
    }
    refs = row.get("tag_ids")
    if refs is None:
        refs = list(embedded)
    return sorted_names([ids.tag.get(str(t)) or embedded.get(str(t), str(t)) for t in refs])


def _supplier_code(row: Json) -> str:
    code = row.get("supplier_code")
    if code is None:
        for ps in row.get("product_suppliers") or []:
            if ps.get("code"):
                return clean_text(str(ps["code"]))
    return clean_text(str(code or ""))


def _is_family_row(row: Json) -> bool:
    return bool(
        row.get("has_variants") or row.get("variant_parent_id") or row.get("variant_options")
    )


class _Member(NamedTuple):
    """One live row reduced as it is read: its own values, not the whole object."""

    id: str
    sku: str
    version: int
    family_id: str | None
    has_variants: bool
    is_child: bool
    is_family_row: bool
    option_names: tuple[str, ...]
    row: LiveRow | None
    repeated: tuple[str, ...] = ()  # option names the row holds more than once


def _options(row: Json) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """A row's (name, value) options, each name once (the first), and the names repeated."""
    options: list[tuple[str, str]] = []
    seen: set[str] = set()
    repeated: list[str] = []
    for o in row.get("variant_options") or []:
        if not isinstance(o, dict):
            continue
        name, value = clean_text(str(o.get("name") or "")), clean_text(str(o.get("value") or ""))
        if name_key(name) in seen:
            repeated.append(name)
            continue
        seen.add(name_key(name))
        options.append((name, value))
    return tuple(options), tuple(dict.fromkeys(repeated))


def _member(row: Json, price_key: str, shared: dict[object, Any]) -> _Member:
    """One row. `shared`: the options tuples met before in this normalization, reused (a
    store repeats a few hundred over all its rows; a 100,000-family store holds 500,000)."""
    sku = str(row.get("sku") or "")
    options, repeated = _options(row)
    options = shared.setdefault(options, options)
    is_child = bool(row.get("variant_parent_id")) and not row.get("has_variants")
    live_row = None
    if sku:
        live_row = LiveRow(
            id=str(row["id"]),
            sku=sku,
            version=str(int(row.get("version") or 0)),
            values=Variant(
                sku=sku,
                options=options,
                price=parse_money(row.get(price_key)),
                supply_price=parse_money(row.get("supply_price")),
                barcode=_barcode(row),
                active=_active(row),
            ),
        )
    return _Member(
        id=str(row["id"]),
        sku=sku,
        version=int(row.get("version") or 0),
        family_id=row.get("family_id"),
        has_variants=bool(row.get("has_variants")),
        is_child=is_child,
        is_family_row=_is_family_row(row),
        option_names=shared.setdefault(("names", options), tuple(n for n, _ in options if n)),
        row=live_row,
        repeated=repeated,
    )


def normalize_products(
    rows: Iterable[Json], *, names: Names, tax_exclusive: bool, ids: _Ids | None = None
) -> tuple[dict[str, LiveProduct], dict[str, str], dict[str, str]]:
    """Group live rows into products by handle, each in the catalog's shape.

    Returns (products by handle, sku -> handle, family-name key -> handle). Deleted rows and
    rows without a handle are left out. `rows` may be a stream: each is reduced as it comes.
    """
    ids = ids or _Ids(names)
    price_key = price_field(tax_exclusive)
    groups: dict[str, list[_Member]] = {}
    # Family-wide fields are read from the family's most recently changed row: every row
    # carries them, and an update sent to one member bumps at least that member's version.
    # The newest row seen is read as soon as the stream moves on to another handle, and only
    # what it gives is kept: a decoded row is several kilobytes, and holding one per family
    # until the end cost most of a 100,000-family plan's memory. A newer row of a family met
    # later (rows arrive in version order, not grouped) is read in turn and replaces it.
    newest: dict[str, int] = {}
    family: dict[str, _Family] = {}
    pending: tuple[str, Json] | None = None
    shared: dict[object, Any] = {}
    for row in rows:
        if row.get("deleted_at") or not row.get("handle"):
            continue
        handle = str(row["handle"])
        member = _member(row, price_key, shared)
        if pending is not None and pending[0] != handle:
            family[pending[0]] = _family(pending[1], ids)
            pending = None
        if handle not in newest or member.version >= newest[handle]:
            newest[handle] = member.version
            pending = (handle, row)
        groups.setdefault(handle, []).append(member)
    if pending is not None:
        family[pending[0]] = _family(pending[1], ids)
    products: dict[str, LiveProduct] = {}
    sku_owner: dict[str, str] = {}
    name_owner: dict[str, str] = {}
    for handle, members in groups.items():
        live = _product(handle, members, family[handle])
        products[handle] = live
        for sku in live.rows:
            sku_owner[sku] = handle
        name_owner.setdefault(name_key(live.product.name), handle)
    return products, sku_owner, name_owner


def normalize_live(
    *,
    products: Iterable[Json],
    brands: Iterable[Json] = (),
    suppliers: Iterable[Json] = (),
    tags: Iterable[Json] = (),
    attributes: Iterable[Json] = (),
    categories: Iterable[Json] = (),
    tax_exclusive: bool,
    gone: Collection[str] = (),
) -> Live:
    """The whole live store (as cached) in the catalog's shape (`gone`: ids of brands and
    suppliers known to be deleted)."""
    brands, suppliers, tags = list(brands), list(suppliers), list(tags)
    with _no_cycle_collection():
        names = normalize_names(
            brands=brands,
            suppliers=suppliers,
            tags=tags,
            attributes=attributes,
            categories=categories,
        )
        ids = _Ids(names, brands=brands, suppliers=suppliers, tags=tags, gone=gone)
        by_handle, sku_owner, name_owner = normalize_products(
            products, names=names, tax_exclusive=tax_exclusive, ids=ids
        )
    return Live(
        products=by_handle,
        sku_owner=sku_owner,
        names=names,
        tax_exclusive=tax_exclusive,
        name_owner=name_owner,
    )


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Normalizing builds a few objects per row and no reference cycles; the cyclic collector,
    left on, walks the whole growing heap again and again while it does (a third of the time
    at 10,000 families). Reference counting still frees everything; collection resumes after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Family(NamedTuple):
    """A family's own fields, as its newest row gives them."""

    name: str
    description: str
    brand: str | None
    supplier: str | None
    supplier_code: str
    category: tuple[str, ...] | None
    tags: tuple[str, ...]
    composite: bool
    image_ids: tuple[str, ...]


def _family(raw: Json, ids: _Ids) -> _Family:
    return _Family(
        # The text as every side spells it (model.clean_text): a store's CRLF or trailing
        # space is not a change.
        name=clean_text(str(raw.get("name") or "")),
        description=clean_text(str(raw.get("description") or "")),
        brand=_ref_name(raw, "brand_id", "brand", ids.brand),
        supplier=_ref_name(raw, "supplier_id", "supplier", ids.supplier),
        supplier_code=_supplier_code(raw),
        category=_category(raw, ids),
        tags=_tags(raw, ids),
        composite=bool(raw.get("is_composite")),
        image_ids=tuple(
            str(i["id"])
            for i in sorted(raw.get("images") or [], key=lambda i: i.get("position") or 0)
            if i.get("id")
        ),
    )


def _product(handle: str, members: list[_Member], own_fields: _Family) -> LiveProduct:
    members = sorted(members, key=lambda m: (not m.has_variants, m.sku))
    parent = next((m for m in members if m.has_variants), None)
    if parent is None:
        parent = next((m for m in members if not m.is_child), members[0])
    problems: list[str] = []
    family_ids = {m.family_id for m in members if m.family_id}
    if len(family_ids) > 1:
        problems.append(
            f"the store holds {len(family_ids)} separate product families with handle "
            f'"{handle}"; merge or rename them in the store'
        )
    is_family = any(m.is_family_row for m in members)
    # The family's attribute order is the order of the parent's options.
    option_names: list[str] = []
    seen: set[str] = set()
    for names in dict.fromkeys(m.option_names for m in [parent, *members]):
        for name in names:
            if name_key(name) not in seen:
                seen.add(name_key(name))
                option_names.append(name)
    notices: list[str] = []
    for m in members:
        for name in m.repeated:
            notices.append(
                f'the store holds variant option "{name}" more than once on '
                f"{f'SKU {m.sku!r}' if m.sku else f'row {m.id}'}; only its first value is read "
                "(remove the repeat in the store)"
            )
    rows: dict[str, LiveRow] = {}
    for m in members:
        if m.row is None:
            continue
        if m.sku in rows:
            problems.append(f'SKU "{m.sku}" is held by more than one row of "{handle}"')
            continue
        rows[m.sku] = m.row
    simple = not is_family
    own = rows.get(parent.sku)
    product = Product(
        handle=handle,
        name=own_fields.name,
        description=own_fields.description,
        brand=own_fields.brand,
        supplier=own_fields.supplier,
        supplier_code=own_fields.supplier_code,
        category=own_fields.category,
        tags=own_fields.tags,
        active=own.values.active if simple and own else None,
        price=own.values.price if simple and own else None,
        supply_price=own.values.supply_price if simple and own else None,
        options=tuple(option_names) if is_family else (),
        variants=tuple(rows[s].values for s in sorted(rows)) if is_family else (),
        sku=own.sku if simple and own else None,
        barcode=own.values.barcode if simple and own else None,
    )
    return LiveProduct(
        product=product,
        remote_id=parent.id,
        family_id=parent.family_id,
        version=str(max(m.version for m in members)),
        rows=rows,
        is_family=is_family,
        problems=tuple(problems),
        composite=own_fields.composite,
        notices=tuple(notices),
        image_ids=own_fields.image_ids,
    )


# Fields worth keeping per kind; everything else the store sends is dropped.
KEEP: Mapping[str, frozenset[str]] = {
    "product": frozenset(
        {
            "id",
            "family_id",
            "name",
            "handle",
            "sku",
            "description",
            "is_active",
            "active",
            "has_variants",
            "variant_parent_id",
            "variant_options",
            "price_excluding_tax",
            "price_including_tax",
            "supply_price",
            "brand_id",
            "brand",
            "supplier_id",
            "supplier",
            "supplier_code",
            "product_suppliers",
            "product_type_id",
            "type",
            "tag_ids",
            "categories",
            "product_codes",
            "images",
            "deleted_at",
            "version",
        }
    ),
}


def trim(kind: str, obj: Json) -> Json:
    """What the cache keeps of an object: the fields planning reads, embedded objects cut to
    the names in them (ids resolve through the cached lists; these are the fallbacks)."""
    keep = KEEP.get(kind)
    if keep is None or not isinstance(obj, dict):
        return obj
    out = {k: v for k, v in obj.items() if k in keep and v not in (None, [], {})}
    for key in ("brand", "supplier"):
        if isinstance(out.get(key), dict):
            out[key] = {
                k: v for k, v in out[key].items() if k in ("id", "name", "deleted_at") and v
            }
    if isinstance(out.get("categories"), list):
        # 2.0 embeds the product's tags here; a row without `tag_ids` is read from them.
        out["categories"] = [
            {k: t.get(k) for k in ("id", "name", "deleted_at") if t.get(k)}
            for t in out["categories"]
            if isinstance(t, dict)
        ]
    found = out.get("type")
    if isinstance(found, dict):
        path = [{"name": step.get("name")} for step in found.get("category_path") or []]
        kept = {k: found.get(k) for k in ("id", "name") if found.get(k)}
        out["type"] = {**kept, **({"category_path": path} if path else {})}
    if isinstance(out.get("variant_options"), list):
        out["variant_options"] = [
            {"name": o.get("name"), "value": o.get("value")} for o in out["variant_options"]
        ]
    if isinstance(out.get("product_suppliers"), list):
        out["product_suppliers"] = [{"code": ps.get("code")} for ps in out["product_suppliers"]]
    if isinstance(out.get("images"), list):
        # Only ids and order matter for planning; the size URLs are large and change often.
        out["images"] = [
            {k: i.get(k) for k in ("id", "position") if k in i}
            for i in out["images"]
            if isinstance(i, dict)
        ]
    return out
