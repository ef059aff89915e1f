"""Field ownership (`settings.fields`): which product fields the catalog writes.

A field the store owns is taken out of the catalog before planning, so it is never written and
never diffed, even where the YAML declares it (design invariant 3 does the rest). A field that
is only initialised stays in for objects the store does not have yet (a new product, or a new
variant of an existing family) and is taken out for the ones it has. Pure: values in, values out;
the rules are in the catalog's terms, whatever platform the store is.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from reconciler.live import Live
from reconciler.model import Catalog, Owner, Product, Variant

# Fields a variant row carries itself (the family's value applies when it declares none).
_ROW_FIELDS = ("price", "supply_price", "barcode", "active")


def owned(catalog: Catalog, live: Live) -> Catalog:
    """The catalog with what it does not own left undeclared, for the store as it is now."""
    settings = catalog.settings
    store = {f for f, who in settings.fields if who is Owner.STORE}
    init = {f for f, who in settings.fields if who is Owner.INIT}
    if not store and not init:
        return catalog
    products = tuple(_owned(p, live, store, init) for p in catalog.products)
    return replace(catalog, products=products)


def not_owned(catalog: Catalog) -> dict[str, str]:
    """Fields that are not the catalog's, with their owner (what plans and reports show)."""
    return {f: str(who) for f, who in catalog.settings.fields if who is not Owner.CATALOG}


def describe(owners: dict[str, str]) -> str:
    """`price is the store's; description is set on create only` (empty when all are ours)."""
    parts = [
        f"{name} is the store's" if who == Owner.STORE else f"{name} is set on create only"
        for name, who in sorted(owners.items())
        if who != Owner.CATALOG
    ]
    return "; ".join(parts)


def _owned(p: Product, live: Live, store: set[str], init: set[str]) -> Product:
    found = live.products.get(p.handle)
    drop = store | (init if found is not None else set())
    variants = p.variants
    if p.is_family:
        rows = found.rows if found is not None else {}
        variants = tuple(_variant(p, v, store, init, v.sku in rows) for v in p.variants)
    undeclared: dict[str, Any] = dict.fromkeys(drop)
    return replace(p, variants=variants, **undeclared)


def _variant(p: Product, v: Variant, store: set[str], init: set[str], exists: bool) -> Variant:
    values: dict[str, Any] = {}
    for name in _ROW_FIELDS:
        if name in store or (name in init and exists):
            values[name] = None
        elif name in init and name != "barcode":
            # A new variant of an existing family is created with the family's value, which
            # the family itself no longer declares.
            own = getattr(v, name)
            values[name] = own if own is not None else getattr(p, name)
    return replace(v, **values)
