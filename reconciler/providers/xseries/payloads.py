"""X-Series request bodies from plan changes: the family-wide `common` and per-row `details`
of the 2.1 product API, the 2.0 create, and `Ids`, which resolves the names, categories, handles
and SKUs a payload references to the store's ids (seeded from `Live`, taught by the engine).

Apart from `steps.py` because the steps need these and the compile needs the steps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from reconciler.live import Live, family_values
from reconciler.model import Json
from reconciler.plan import Change, Kind
from reconciler.planner import new_family_active
from reconciler.providers import ids as shared
from reconciler.providers.xseries.normalize import (
    barcode_type,
    price_field,
)

# -- ids of live objects, growing as creates finish --------------------------------------------


class Ids(shared.Ids):
    """Name -> id and handle/SKU -> id for everything a payload may reference
    (`providers.ids.Ids`): brands, suppliers, tags and variant attributes by name."""

    NAMED = (Kind.BRAND, Kind.SUPPLIER, Kind.TAG, Kind.ATTRIBUTE)


# -- the family as it will be once this plan's family-wide changes are applied -----------------


@dataclass(frozen=True)
class Family:
    """What a row's payload needs to know about its family: name, supplier, options."""

    handle: str
    name: str
    supplier: str | None
    supplier_code: str | None
    options: tuple[str, ...]
    is_family: bool

    @staticmethod
    def of(change: Change, live: Live) -> Family:
        after = {f.field: f.after for f in change.fields}
        found = live.products.get(change.key)
        current = family_values(found.product, declared_only=False) if found else {}
        merged = {**current, **after}
        return Family(
            handle=change.key,
            name=str(merged.get("name") or ""),
            supplier=merged.get("supplier") or None,
            supplier_code=merged.get("supplier_code") or None,
            options=tuple(merged.get("options") or ()),
            is_family=found.is_family if found else bool(change.children),
        )


def _money(text: Json) -> float:
    # Prices arrive as decimal strings at the store's precision; JSON carries numbers, and a
    # float's shortest repr gives those digits back exactly.
    return float(Decimal(str(text)))


def _codes(sku: str, barcode: str | None) -> list[dict[str, str]]:
    # The whole list is replaced (lightspeed-xseries.md §6.4): keep the SKU as the first CUSTOM
    # code.
    codes = [{"type": "CUSTOM", "code": sku}]
    if barcode:
        codes.append({"type": barcode_type(barcode), "code": barcode})
    return codes


def common_payload(values: Mapping[str, Json], family: Family, ids: Ids) -> dict[str, Json]:
    """Family-wide catalog fields -> the 2.1 PUT's `common` section."""
    out: dict[str, Json] = {}
    for name, value in values.items():
        if name == "name":
            out["name"] = value
        elif name == "description":
            out["description"] = value or ""
        elif name == "brand":
            out["brand_id"] = ids.name(Kind.BRAND, value) if value else ""
        elif name == "category":
            out["product_category_id"] = ids.category(value) if value else ""
        elif name == "tags":
            out["tag_ids"] = [ids.name(Kind.TAG, t) for t in value or []]
        elif name == "options":
            out["variant_attributes"] = [
                {"attribute_id": ids.name(Kind.ATTRIBUTE, o)} for o in value or []
            ]
    if "supplier" in values or "supplier_code" in values:
        # Supplier and its code travel together as the family's first product supplier.
        entry: dict[str, Json] = {}
        if family.supplier:
            entry["supplier_id"] = ids.name(Kind.SUPPLIER, family.supplier)
        if family.supplier_code is not None:
            entry["code"] = family.supplier_code
        out["product_suppliers"] = [entry] if entry else []
    return out


def details_payload(
    values: Mapping[str, Json], sku: str, family: Family, ids: Ids, *, tax_exclusive: bool
) -> dict[str, Json]:
    """A row's own catalog fields -> the 2.1 PUT's (or POST's) `details` section."""
    out: dict[str, Json] = {}
    for name, value in values.items():
        if name == "price" and value is not None:
            out[price_field(tax_exclusive)] = _money(value)
        elif name == "supply_price" and value is not None:
            entry: dict[str, Json] = {"price": _money(value)}
            if family.supplier:
                entry["supplier_id"] = ids.name(Kind.SUPPLIER, family.supplier)
            out["product_suppliers"] = [entry]
        elif name == "barcode":
            out["product_codes"] = _codes(sku, value)
        elif name == "active" and value is not None:
            out["is_active"] = bool(value)
        elif name == "options" and value:
            out["variant_attribute_values"] = [
                {"attribute_id": ids.name(Kind.ATTRIBUTE, k), "attribute_value": v}
                for k, v in value.items()
            ]
    return out


def create_payload(change: Change, ids: Ids, *, tax_exclusive: bool) -> dict[str, Json]:
    """A new product (with all its variants) -> the 2.0 create body."""
    values = {f.field: f.after for f in change.fields}
    body: dict[str, Json] = {"name": values["name"], "handle": change.key}
    if values.get("description") is not None:
        body["description"] = values["description"]
    if values.get("brand"):
        body["brand_id"] = ids.name(Kind.BRAND, values["brand"])
    if values.get("supplier"):
        body["supplier_id"] = ids.name(Kind.SUPPLIER, values["supplier"])
    if values.get("supplier_code") is not None:
        body["supplier_code"] = values["supplier_code"]
    if values.get("category"):
        body["product_category_id"] = ids.category(values["category"])
    if values.get("tags") is not None:
        body["tag_ids"] = [ids.name(Kind.TAG, t) for t in values["tags"]]
    price_key = price_field(tax_exclusive)
    variants = [c for c in change.children if c.kind is Kind.VARIANT]
    if not variants:
        sku = values.get("sku")
        if sku:
            body["sku"] = sku
            body["product_codes"] = _codes(sku, values.get("barcode"))
        if values.get("price") is not None:
            body[price_key] = _money(values["price"])
        if values.get("supply_price") is not None:
            body["supply_price"] = _money(values["supply_price"])
        body["is_active"] = values.get("active") is not False
        return body
    body["is_active"] = family_active(change)
    rows = []
    for v in variants:
        own = {f.field: f.after for f in v.fields}
        row: dict[str, Json] = {"sku": v.key, "product_codes": _codes(v.key, own.get("barcode"))}
        if own.get("price") is not None:
            row[price_key] = _money(own["price"])
        if own.get("supply_price") is not None:
            row["supply_price"] = _money(own["supply_price"])
        row["variant_definitions"] = [
            {"attribute_id": ids.name(Kind.ATTRIBUTE, k), "value": val}
            for k, val in (own.get("options") or {}).items()
        ]
        rows.append(row)
    body["variants"] = rows
    return body


def family_active(change: Change) -> bool:
    """The `is_active` a new family is created with (see `plan.new_family_active`)."""
    return new_family_active(
        [
            {f.field: f.after for f in v.fields}.get("active")
            for v in change.children
            if v.kind is Kind.VARIANT
        ]
    )
