"""Live JSON shaped like the OpenAPI examples, for pure tests of normalization and planning."""

from __future__ import annotations

from typing import Any

from reconciler.live import Live
from reconciler.providers.xseries.normalize import normalize_live

BRAND = {"id": "b1", "name": "Acme", "version": 10}
SUPPLIER = {"id": "s1", "name": "Acme Supply", "description": "", "version": 11}
TAGS = [
    {"id": "t1", "name": "summer", "version": 12},
    {"id": "t2", "name": "Cotton", "version": 13},
]
ATTRS = [{"id": "a1", "name": "Size"}, {"id": "a2", "name": "Colour"}]
CATEGORIES = [
    {
        "id": "c1",
        "name": "Apparel",
        "leaf_category": False,
        "category_path": [{"id": "c1", "name": "Apparel"}],
    },
    {
        "id": "c2",
        "name": "Tops",
        "parent_category_id": "c1",
        "leaf_category": True,
        "category_path": [{"id": "c1", "name": "Apparel"}, {"id": "c2", "name": "Tops"}],
    },
]


def simple_row(**overrides: Any) -> dict[str, Any]:
    """A product like the 2.0 list example ("Product 0006")."""
    row: dict[str, Any] = {
        "id": "p6",
        "name": "Product 0006",
        "variant_name": "Product 0006",
        "handle": "0006",
        "sku": "0006",
        "active": True,
        "is_active": True,
        "supply_price": 0,
        "version": 59780757,
        "type": {},
        "supplier": {},
        "brand": {},
        "variant_options": [],
        "images": [],
        "has_variants": False,
        "price_including_tax": 6.05263,
        "price_excluding_tax": 5.26316,
        "tag_ids": [],
        "product_codes": [{"type": "custom", "code": "123456"}],
    }
    row.update(overrides)
    return row


def family_rows() -> list[dict[str, Any]]:
    common = {
        "family_id": "f1",
        "name": "Classic Tee",
        "handle": "classic-tee",
        "description": "<p>Soft</p>",
        "brand_id": "b1",
        "brand": {"id": "b1", "name": "Acme"},
        "supplier_id": "s1",
        "supplier_code": "ACME-TEE",
        "product_type_id": "c2",
        "type": {"id": "c2", "name": "Tops", "category_path": CATEGORIES[1]["category_path"]},
        "tag_ids": ["t1", "t2"],
        "is_active": True,
        "supply_price": 8,
    }
    return [
        {
            **common,
            "id": "v1",
            "sku": "TEE-S",
            "has_variants": True,
            "variant_parent_id": None,
            "variant_options": [
                {"id": "a1", "name": "Size", "value": "S"},
                {"id": "a2", "name": "Colour", "value": "Black"},
            ],
            "price_including_tax": 27.0,
            "price_excluding_tax": 23.47826,
            "product_codes": [
                {"type": "CUSTOM", "code": "TEE-S"},
                {"type": "EAN", "code": "9300000000011"},
            ],
            "version": 100,
        },
        {
            **common,
            "id": "v2",
            "sku": "TEE-M",
            "has_variants": False,
            "variant_parent_id": "v1",
            "variant_options": [
                {"id": "a1", "name": "Size", "value": "M"},
                {"id": "a2", "name": "Colour", "value": "Black"},
            ],
            "price_including_tax": 25,
            "price_excluding_tax": 21.73913,
            "is_active": False,
            "version": 105,
        },
    ]


def live(rows: list[dict[str, Any]], *, tax_exclusive: bool = False, **names: Any) -> Live:
    return normalize_live(
        products=rows,
        brands=names.get("brands", [BRAND]),
        suppliers=names.get("suppliers", [SUPPLIER]),
        tags=names.get("tags", TAGS),
        attributes=names.get("attributes", ATTRS),
        categories=names.get("categories", CATEGORIES),
        tax_exclusive=tax_exclusive,
    )
