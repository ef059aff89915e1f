"""Test helpers: put a catalog into a sandbox store through its HTTP API, and plan against it.

`seed_store` is a deliberately plain "apply" for tests (one family per POST, names first) so the
planner can be tested before, and independently of, the real apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler.api import make_plan
from reconciler.model import Catalog, Product, name_key
from reconciler.plan import Kind, Plan
from reconciler.providers.base import RefreshMode
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.normalize import barcode_type, price_field, store_money
from reconciler.providers.xseries.refresh import load_live, refresh, store_facts
from reconciler.state import State
from reconciler.state.cache import Cache


@dataclass(frozen=True)
class FakeManaged:
    remote_id: str | None
    applied: Mapping[str, Any]


def _money(value: Any) -> float:
    return float(store_money(value))


def seed_store(client: Client, catalog: Catalog, *, tax_exclusive: bool = False) -> None:
    """Create every brand, supplier, tag, attribute, category and product of `catalog`."""
    brands: dict[str, str] = {}
    suppliers: dict[str, str] = {}
    tags: dict[str, str] = {}
    attributes: dict[str, str] = {}
    descriptions = {name_key(b.name): b.description for b in catalog.brands}
    for name in sorted({*(b.name for b in catalog.brands), *_used(catalog, "brand")}, key=name_key):
        if name_key(name) not in brands:
            brands[name_key(name)] = client.create_brand(name, descriptions.get(name_key(name)))
    sdesc = {name_key(s.name): s.description for s in catalog.suppliers}
    for name in sorted(
        {*(s.name for s in catalog.suppliers), *_used(catalog, "supplier")}, key=name_key
    ):
        if name_key(name) not in suppliers:
            suppliers[name_key(name)] = client.create_supplier(name, sdesc.get(name_key(name)))
    all_tags = {*catalog.tags, *(t for p in catalog.products for t in p.tags or ())}
    for name in sorted(all_tags, key=name_key):
        if name_key(name) not in tags:
            tags[name_key(name)] = client.create_tag(name)
    for p in catalog.products:
        for o in p.options:
            if name_key(o) not in attributes:
                attributes[name_key(o)] = client.create_variant_attribute(o)["id"]
    categories = _seed_categories(client, catalog)
    price_key = price_field(tax_exclusive)
    for p in catalog.products:
        body: dict[str, Any] = {"name": p.name, "handle": p.handle}
        if p.description is not None:
            body["description"] = p.description
        if p.brand:
            body["brand_id"] = brands[name_key(p.brand)]
        if p.supplier:
            body["supplier_id"] = suppliers[name_key(p.supplier)]
        if p.supplier_code is not None:
            body["supplier_code"] = p.supplier_code
        if p.category:
            body["product_category_id"] = categories[tuple(name_key(c) for c in p.category)]
        if p.tags is not None:
            body["tag_ids"] = [tags[name_key(t)] for t in p.tags]
        if p.active is not None:
            body["is_active"] = p.active
        rows = p.sellables()
        if p.is_family:
            body["variants"] = [
                {
                    "sku": v.sku,
                    price_key: _money(v.price if v.price is not None else 1),
                    **({"supply_price": _money(v.supply_price)} if v.supply_price else {}),
                    **_codes(v.sku, v.barcode),
                    "variant_definitions": [
                        {"attribute_id": attributes[name_key(a)], "value": val}
                        for a, val in v.options
                    ],
                }
                for v in rows
            ]
        else:
            v = rows[0]
            body.update({"sku": v.sku, price_key: _money(v.price if v.price is not None else 1)})
            if v.supply_price is not None:
                body["supply_price"] = _money(v.supply_price)
            body.update(_codes(v.sku, v.barcode))
        ids = client.create_product(body)
        # A create sets one `is_active` for the family; variants that differ need an update.
        for row_id, v in zip(ids, rows, strict=True):
            if v.active is not None and v.active != (p.active if p.active is not None else True):
                client.update_product(row_id, details={"is_active": v.active})


def _codes(sku: str, barcode: str | None) -> dict[str, Any]:
    if not barcode:
        return {}
    return {
        "product_codes": [
            {"type": "CUSTOM", "code": sku},
            {"type": barcode_type(barcode), "code": barcode},
        ]
    }


def _used(catalog: Catalog, attr: str) -> set[str]:
    return {getattr(p, attr) for p in catalog.products if getattr(p, attr)}


def _seed_categories(client: Client, catalog: Catalog) -> dict[tuple[str, ...], str]:
    paths = sorted(
        {
            p.category[:d]
            for p in catalog.products
            if p.category
            for d in range(1, len(p.category) + 1)
        },
        key=len,
    )
    if not paths:
        return {}
    entries = []
    for path in paths:
        entry: dict[str, Any] = {"name": path[-1], "payload_id": "/".join(path)}
        if len(path) > 1:
            entry["payload_parent_category_id"] = "/".join(path[:-1])
        entries.append(entry)
    created = client.bulk_categories(entries)
    by_payload = {c["payload_id"]: c["id"] for c in created}
    return {tuple(name_key(s) for s in path): by_payload["/".join(path)] for path in paths}


def managed_from(plan_or_catalog: Catalog) -> dict[str, dict[str, FakeManaged]]:
    """What a successful apply of `catalog` would have recorded: every product and variant."""
    out: dict[str, dict[str, FakeManaged]] = {str(Kind.PRODUCT): {}, str(Kind.VARIANT): {}}
    for p in plan_or_catalog.products:
        out[str(Kind.PRODUCT)][p.handle] = FakeManaged(None, {})
        if p.is_family:
            for v in p.variants:
                out[str(Kind.VARIANT)][v.sku] = FakeManaged(None, {})
    return out


def plan_store(
    client: Client,
    state: State,
    catalog: Catalog,
    *,
    managed: Mapping[str, Mapping[str, Any]] | None = None,
    mode: RefreshMode = "auto",
    **kwargs: Any,
) -> Plan:
    """Refresh the cache from the store and plan `catalog` against it."""
    cache = Cache(state)
    refresh(client, cache, mode=mode)
    facts = store_facts(cache)
    return make_plan(
        catalog,
        load_live(cache),
        store="sandbox",
        managed=managed,
        rate_limit=facts.rate_limit,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        **kwargs,
    )


def product(handle: str, **fields: Any) -> Product:
    return Product(
        handle=handle, name=fields.pop("name", handle.replace("-", " ").title()), **fields
    )
