"""R-Series store objects -> the catalog's own shape, so the diff compares like with like.

Pure: `trim` reduces a record as the client normalised it (lists, Decimal, datetime, int) to
the small JSON the cache keeps; `normalize_live` turns those into the core's `Live`, exactly
as the X-Series normalizer shapes it (lightspeed-rseries.md §7, §9):

- A family is an `ItemMatrix` and its member `Item`s (`itemMatrixID`); an item with
  `itemMatrixID` 0 (or one whose matrix the store no longer holds) is a simple product.
- R-Series has no handle. A family is keyed by the handle the caller knows for one of its
  variants' `customSku`s (`handles`: the catalog's or the ledger's sku -> handle), else by a
  handle made from its description (`slugify`; a clash takes the matrix id as a suffix); a
  simple product by its `customSku` (else `item-<id>`).
- Ids become names: brand from `Manufacturer`, supplier from `Vendor`, the supplier code from
  the item's `ItemVendorNums` row for that vendor, the category as its path of names up the
  `parentID` chain (a name may hold "/", so `fullPathName` is not split), the options from the
  matrix's `ItemAttributeSet` names in slot order (set 2 "Size" is slot 2 alone) with each
  item's `ItemAttributes` values.
- Tags: the matrix's (family) or item's (simple) tag names, only those the Tag list still
  holds (deleting a tag does not touch the items' time stamps), each spelled as the catalog
  spells it when the store holds the same name ignoring case and spaces (the store keeps
  "summersale" for "Summer Sale").
- `active` = not `archived`; price = the `ItemPrice` with `useTypeID` 1 (Default; `useType` is
  a renamable level name); supply price = `defaultCost`; barcode = `upc`, else `ean`. Money is
  quantized to the store's 2 places; text goes through `model.clean_text`.
- Versions are the records' `timeStamp` as the store sent it, in one canonical ISO 8601 form
  (UTC, to the second: `2024-05-01T10:00:00+00:00`), so a plan shows when a record last
  changed; the core compares them only for equality. One form makes text order time order,
  which the refresh's cursor relies on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

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
from reconciler.model import Json, Product, Variant, clean_text, name_key, slugify, sorted_names
from reconciler.plan import Kind

# R-Series keeps prices to 2 decimal places.
MONEY_PLACES = 2
# The price level written as the price: `useTypeID` 1, "Default" (its name can be changed).
DEFAULT_PRICE_LEVEL = 1

# The kinds the cache holds, each with its id field.
ID_FIELDS: Mapping[str, str] = {
    "Item": "itemID",
    "ItemMatrix": "itemMatrixID",
    "ItemAttributeSet": "itemAttributeSetID",
    "Category": "categoryID",
    "Manufacturer": "manufacturerID",
    "Vendor": "vendorID",
    "Tag": "tagID",
    "Image": "imageID",
}


def store_money(value: Decimal) -> Decimal:
    """A price as the store keeps it (2 places); apply sends exactly this."""
    return quantize_money(value, MONEY_PLACES)


def parse_money(raw: Any) -> Decimal | None:
    """A store amount (Decimal, or its string from the cache) at the store's precision."""
    if raw is None or raw == "" or isinstance(raw, bool):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    return store_money(value) if value.is_finite() else None


def tag_key(name: str) -> str:
    """Tag identity in R-Series: case and spaces ignored (the store keeps "New Tag" as
    "newtag", lightspeed-rseries.md §6)."""
    return "".join(name_key(name).split())


NO_STAMP = "1970-01-01T00:00:00+00:00"  # a record without a (readable) time stamp


def canonical_stamp(value: Any) -> str:
    """A `timeStamp` (datetime, or ISO text) in the canonical form: UTC, to the second,
    `+00:00` (what `datetime.isoformat` writes); `NO_STAMP` when unset or unreadable."""
    moment: datetime | None = value if isinstance(value, datetime) else None
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
    if moment is None:
        return NO_STAMP
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _id(value: Any) -> str:
    """A foreign key as text; unset ("0", 0, "", None) is ""."""
    text = "" if value is None else str(value)
    return "" if text in {"0", ""} else text


def _text(value: Any) -> str:
    return "" if value is None else clean_text(str(value))


def _price(record: Json) -> str | None:
    for row in record.get("Prices") or []:
        if isinstance(row, dict) and str(row.get("useTypeID")) == str(DEFAULT_PRICE_LEVEL):
            return None if row.get("amount") in (None, "") else str(row["amount"])
    return None


def _tag_names(record: Json) -> list[str]:
    # The client reads `Tags.tag` as a list of names (one tag arrives as a bare string).
    return [str(t) for t in record.get("Tags") or [] if isinstance(t, str | int) and str(t)]


def trim(kind: str, record: Json) -> Json:
    """What the cache keeps of a record (the fields normalizing reads) as plain JSON: `id` and
    `version` (the `timeStamp` text, `canonical_stamp`) for the cache, money and ids as text."""
    out: dict[str, Any] = {
        "id": str(record[ID_FIELDS[kind]]),
        "version": canonical_stamp(record.get("timeStamp")),
    }
    if kind in {"Item", "ItemMatrix"}:
        out.update(
            description=_text(record.get("description")),
            archived=bool(record.get("archived")),
            categoryID=_id(record.get("categoryID")),
            manufacturerID=_id(record.get("manufacturerID")),
            defaultVendorID=_id(record.get("defaultVendorID")),
            itemMatrixID=_id(record.get("itemMatrixID")),
            defaultCost=None if record.get("defaultCost") is None else str(record["defaultCost"]),
            price=_price(record),
            tags=_tag_names(record),
        )
    if kind == "Item":
        attributes = record.get("ItemAttributes")
        attributes = attributes if isinstance(attributes, dict) else {}
        out.update(
            customSku=_text(record.get("customSku")),
            upc=_text(record.get("upc")),
            ean=_text(record.get("ean")),
            attributes=[_text(attributes.get(f"attribute{n}")) for n in (1, 2, 3)],
            vendorNums=[
                {"vendorID": _id(v.get("vendorID")), "value": _text(v.get("value"))}
                for v in record.get("ItemVendorNums") or []
                if isinstance(v, dict)
            ],
        )
    elif kind == "ItemMatrix":
        out["itemAttributeSetID"] = _id(record.get("itemAttributeSetID"))
    elif kind == "ItemAttributeSet":
        out.update(
            name=_text(record.get("name")),
            names=[_text(record.get(f"attributeName{n}")) for n in (1, 2, 3)],
            archived=bool(record.get("archived")),
        )
    elif kind == "Category":
        out.update(name=_text(record.get("name")), parentID=_id(record.get("parentID")))
    elif kind in {"Manufacturer", "Vendor", "Tag"}:
        out.update(name=_text(record.get("name")), archived=bool(record.get("archived")))
    elif kind == "Image":
        out.update(
            itemID=_id(record.get("itemID")),
            itemMatrixID=_id(record.get("itemMatrixID")),
            ordering=int(record.get("ordering") or 0),
        )
    return out


# -- names -------------------------------------------------------------------------------------


def _by_id_order(obj: Json) -> tuple[int, str]:
    # Among records holding one name the oldest is used: R-Series ids only grow.
    ident = str(obj.get("id"))
    return (int(ident) if ident.isdigit() else 0, ident)


def _named(objects: Iterable[Json], spelled: Mapping[str, str] | None = None) -> dict[str, Named]:
    out: dict[str, Named] = {}
    for obj in sorted(objects, key=_by_id_order):
        if obj.get("archived") or not obj.get("name"):
            continue
        name = str(obj["name"])
        name = (spelled or {}).get(tag_key(name), name)
        named = Named(id=str(obj["id"]), name=name, version=opaque_version(obj.get("version")))
        out.setdefault(name_key(named.name), named)
    return out


def category_paths(categories: Iterable[Json]) -> dict[str, tuple[str, ...]]:
    """Category id -> its path of names, root first, up the `parentID` chain (a cycle or a
    missing parent ends the path there)."""
    by_id = {str(c["id"]): c for c in categories}
    out: dict[str, tuple[str, ...]] = {}
    for cid in by_id:
        names: list[str] = []
        seen: set[str] = set()
        node: Json = by_id.get(cid)
        while node is not None and str(node["id"]) not in seen:
            seen.add(str(node["id"]))
            names.append(str(node.get("name") or ""))
            node = by_id.get(str(node.get("parentID") or ""))
        out[cid] = tuple(reversed(names))
    return out


def normalize_names(
    *,
    manufacturers: Iterable[Json] = (),
    vendors: Iterable[Json] = (),
    tags: Iterable[Json] = (),
    attribute_sets: Iterable[Json] = (),
    categories: Iterable[Json] = (),
    tag_spellings: Iterable[str] = (),
) -> Names:
    """Names by case-insensitive key; a store tag the catalog spells differently (only by case
    and spaces) is named as the catalog spells it."""
    categories = list(categories)
    manufacturers, vendors, tags = list(manufacturers), list(vendors), list(tags)
    duplicates: dict[tuple[str, str], tuple[str, ...]] = {}
    for kind, objects, key in (
        ("brand", manufacturers, name_key),
        ("supplier", vendors, name_key),
        ("tag", tags, tag_key),
    ):
        held: dict[str, list[str]] = {}
        for obj in sorted(objects, key=_by_id_order):
            if not obj.get("archived") and obj.get("name"):
                held.setdefault(key(str(obj["name"])), []).append(str(obj["id"]))
        for k, ids in held.items():
            if len(ids) > 1:
                duplicates[(kind, k)] = tuple(ids)
    attributes: dict[str, Named] = {}
    for s in sorted(attribute_sets, key=_by_id_order):
        if s.get("archived"):
            continue
        for name in s.get("names") or []:
            if name:
                attributes.setdefault(name_key(name), Named(id=str(s["id"]), name=name))
    paths = category_paths(categories)
    parents = {str(c.get("parentID") or "") for c in categories}
    by_path: dict[tuple[str, ...], Category] = {}
    held_paths: dict[str, list[str]] = {}
    for c in sorted(categories, key=_by_id_order):
        cid = str(c["id"])
        by_path.setdefault(
            path_key(paths[cid]), Category(id=cid, path=paths[cid], leaf=cid not in parents)
        )
        held_paths.setdefault(" / ".join(path_key(paths[cid])), []).append(cid)
    for k, ids in held_paths.items():
        if len(ids) > 1:
            duplicates[(str(Kind.CATEGORY), k)] = tuple(ids)
    return Names(
        brands=_named(manufacturers),
        suppliers=_named(vendors),
        tags=_named(tags, {tag_key(t): t for t in tag_spellings}),
        attributes=attributes,
        categories=by_path,
        duplicates=duplicates,
    )


# -- products ----------------------------------------------------------------------------------


class _Index:
    """id -> name indexes built once per normalization (archived vendors still name)."""

    def __init__(
        self,
        *,
        manufacturers: list[Json],
        vendors: list[Json],
        tags: list[Json],
        attribute_sets: list[Json],
        categories: list[Json],
        images: list[Json],
        tag_spellings: Iterable[str],
    ) -> None:
        self.brand = {str(o["id"]): str(o.get("name") or "") for o in manufacturers}
        self.supplier = {str(o["id"]): str(o.get("name") or "") for o in vendors}
        # A tag the store no longer lists was deleted (items keep no trace of it).
        self.tag = {tag_key(str(o.get("name") or "")): str(o.get("name") or "") for o in tags}
        for spelled in tag_spellings:
            if tag_key(spelled) in self.tag:
                self.tag[tag_key(spelled)] = spelled
        self.options = {str(s["id"]): list(s.get("names") or ["", "", ""]) for s in attribute_sets}
        self.category = category_paths(categories)
        self.images: dict[tuple[str, str], list[Json]] = {}
        for image in images:
            owner = ("ItemMatrix", image["itemMatrixID"]) if image.get("itemMatrixID") else None
            owner = owner or (("Item", image["itemID"]) if image.get("itemID") else None)
            if owner is not None:
                self.images.setdefault(owner, []).append(image)

    def tags(self, record: Json) -> tuple[str, ...]:
        found = (self.tag.get(tag_key(t)) for t in record.get("tags") or [])
        return sorted_names(list(dict.fromkeys(t for t in found if t)))

    def image_ids(self, kind: str, ident: str) -> tuple[str, ...]:
        held = sorted(
            self.images.get((kind, ident), []), key=lambda i: (i["ordering"], *_by_id_order(i))
        )
        return tuple(str(i["id"]) for i in held)


def _barcode(item: Json) -> str | None:
    return item.get("upc") or item.get("ean") or None


def _supplier_code(item: Json, vendor_id: str) -> str:
    for num in item.get("vendorNums") or []:
        if num.get("vendorID") == vendor_id and num.get("value"):
            return str(num["value"])
    return ""


def _row(item: Json, options: tuple[tuple[str, str], ...]) -> LiveRow:
    sku = str(item["customSku"])
    return LiveRow(
        id=str(item["id"]),
        sku=sku,
        version=str(item.get("version") or NO_STAMP),
        values=Variant(
            sku=sku,
            options=options,
            price=parse_money(item.get("price")),
            supply_price=parse_money(item.get("defaultCost")),
            barcode=_barcode(item),
            active=not item.get("archived"),
        ),
    )


def _options(names: list[str], item: Json) -> tuple[tuple[str, str], ...]:
    values = item.get("attributes") or ["", "", ""]
    return tuple((name, values[slot]) for slot, name in enumerate(names) if name and values[slot])


def _family(handle: str, matrix: Json, members: list[Json], index: _Index) -> LiveProduct:
    names = index.options.get(str(matrix.get("itemAttributeSetID") or ""), ["", "", ""])
    problems: list[str] = []
    notices: list[str] = []
    rows: dict[str, LiveRow] = {}
    for item in sorted(members, key=lambda i: (i["customSku"], *_by_id_order(i))):
        if not item["customSku"]:
            continue
        if item["customSku"] in rows:
            problems.append(
                f'SKU "{item["customSku"]}" is held by more than one item of "{handle}"'
            )
            continue
        rows[item["customSku"]] = _row(item, _options(names, item))
    vendor = matrix.get("defaultVendorID") or ""
    codes = {_supplier_code(i, vendor) for i in members if i["customSku"]} if vendor else set()
    code = min(codes - {""}, default="")
    if len(codes - {""}) > 1:
        notices.append(
            f'the items of "{handle}" hold {len(codes - {""})} different supplier codes for '
            f'one supplier; "{code}" is read (make them the same in the store)'
        )
    product = Product(
        handle=handle,
        name=str(matrix.get("description") or ""),
        brand=index.brand.get(matrix.get("manufacturerID") or "") or None,
        supplier=index.supplier.get(vendor) or None,
        supplier_code=code,
        category=index.category.get(matrix.get("categoryID") or ""),
        tags=index.tags(matrix),
        options=tuple(n for n in names if n),
        variants=tuple(rows[s].values for s in sorted(rows)),
    )
    return LiveProduct(
        product=product,
        remote_id=str(matrix["id"]),
        family_id=str(matrix["id"]),
        # Canonical stamps: text order is time order (see `canonical_stamp`).
        version=max(
            [
                str(matrix.get("version") or NO_STAMP),
                *(str(i.get("version") or NO_STAMP) for i in members),
            ]
        ),
        rows=rows,
        is_family=True,
        problems=tuple(problems),
        image_ids=index.image_ids("ItemMatrix", str(matrix["id"])),
        notices=tuple(notices),
    )


def _simple(handle: str, item: Json, index: _Index) -> LiveProduct:
    row = _row(item, ()) if item["customSku"] else None
    vendor = item.get("defaultVendorID") or ""
    product = Product(
        handle=handle,
        name=str(item.get("description") or ""),
        brand=index.brand.get(item.get("manufacturerID") or "") or None,
        supplier=index.supplier.get(vendor) or None,
        supplier_code=_supplier_code(item, vendor) if vendor else "",
        category=index.category.get(item.get("categoryID") or ""),
        tags=index.tags(item),
        active=not item.get("archived"),
        price=parse_money(item.get("price")),
        supply_price=parse_money(item.get("defaultCost")),
        sku=row.sku if row else None,
        barcode=_barcode(item),
    )
    return LiveProduct(
        product=product,
        remote_id=str(item["id"]),
        family_id=None,
        version=str(item.get("version") or NO_STAMP),
        rows={row.sku: row} if row else {},
        is_family=False,
        image_ids=index.image_ids("Item", str(item["id"])),
    )


def normalize_live(
    *,
    items: Iterable[Json],
    matrices: Iterable[Json] = (),
    attribute_sets: Iterable[Json] = (),
    categories: Iterable[Json] = (),
    manufacturers: Iterable[Json] = (),
    vendors: Iterable[Json] = (),
    tags: Iterable[Json] = (),
    images: Iterable[Json] = (),
    handles: Mapping[str, str] | None = None,
    family_names: Mapping[str, str] | None = None,
    family_ids: Mapping[str, str] | None = None,
    tag_spellings: Iterable[str] = (),
) -> Live:
    """The whole live account (as cached: `trim`med records) in the catalog's shape.

    The families and simple products the caller already knows are keyed by its handles, in
    this order: `family_ids` (the ledger's: matrix id -> handle), `handles` (sku ->
    handle, from the catalog or the ledger: a matrix by any of its items' `customSku`),
    `family_names`
    (a matrix by its exact description: one made by an apply whose items were never made);
    the rest get a made-up handle (module docstring). `tag_spellings` are the catalog's tag
    names, used for the store's tags that match them.
    """
    matrices, categories = list(matrices), list(categories)
    manufacturers, vendors, tags = list(manufacturers), list(vendors), list(tags)
    attribute_sets, spellings = list(attribute_sets), list(tag_spellings)
    index = _Index(
        manufacturers=manufacturers,
        vendors=vendors,
        tags=tags,
        attribute_sets=attribute_sets,
        categories=categories,
        images=list(images),
        tag_spellings=spellings,
    )
    names = normalize_names(
        manufacturers=manufacturers,
        vendors=vendors,
        tags=tags,
        attribute_sets=attribute_sets,
        categories=categories,
        tag_spellings=spellings,
    )
    known = dict(handles or {})
    by_name, by_id = dict(family_names or {}), dict(family_ids or {})
    by_matrix = {str(m["id"]): m for m in matrices}
    members: dict[str, list[Json]] = {}
    simple: list[Json] = []
    for item in items:
        matrix_id = str(item.get("itemMatrixID") or "")
        if matrix_id in by_matrix:
            members.setdefault(matrix_id, []).append(item)
        else:
            simple.append(item)
    products: dict[str, LiveProduct] = {}
    taken: set[str] = set()

    def claim(wanted: str, fallback: str) -> str:
        handle = wanted if wanted and wanted not in taken else fallback
        taken.add(handle)
        return handle

    # Handles the caller knows go first, the surest first (a remote id, then a SKU, then a
    # name), so a made-up one never takes a known one's place.
    pending: list[tuple[int, str, str, Json, list[Json] | None]] = []
    for mid in sorted(by_matrix, key=lambda m: _by_id_order(by_matrix[m])):
        own = members.get(mid, [])
        found = sorted({known[i["customSku"]] for i in own if i["customSku"] in known})
        description = str(by_matrix[mid].get("description") or "")
        slug = slugify(description) or "family"
        rank, wanted = (
            (0, by_id[mid])
            if mid in by_id
            else (1, found[0])
            if found
            else (2, by_name[description])
            if description in by_name
            else (3, slug)
        )
        pending.append((rank, wanted, f"{slug}-{mid}", by_matrix[mid], own))
    for item in sorted(simple, key=_by_id_order):
        sku, item_id = str(item["customSku"]), str(item["id"])
        rank, wanted = (1, known[sku]) if sku in known else (3, sku)
        pending.append((rank, wanted, f"item-{item_id}", item, None))
    pending.sort(key=lambda p: p[0])
    for _rank, wanted, fallback, record, family in pending:
        handle = claim(wanted, fallback)
        if family is not None:
            products[handle] = _family(handle, record, family, index)
        else:
            products[handle] = _simple(handle, record, index)
    sku_owner: dict[str, str] = {}
    name_owner: dict[str, str] = {}
    for handle in sorted(products):
        live = products[handle]
        for sku in live.rows:
            sku_owner.setdefault(sku, handle)
        name_owner.setdefault(name_key(live.product.name), handle)
    return Live(
        products=products,
        sku_owner=sku_owner,
        names=names,
        tax_exclusive=True,
        name_owner=name_owner,
    )
