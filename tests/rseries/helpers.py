"""R-Series test helpers: a client on an in-process sandbox, and a catalog put into it through
its HTTP API the way lightspeed-rseries.md §9 maps it (a deliberately plain "apply", so the
normalizer and refresh are tested before, and independently of, the real one)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from reconciler.model import Catalog, Product, Variant, name_key
from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.rseries.client import RSeriesClient, client_from_environment
from reconciler.providers.rseries.sandbox import RSeriesStore


class Frozen:
    """A store's wall clock, stopped: every write lands in the same second until moved."""

    def __init__(self) -> None:
        self.now = 1_714_557_600.0  # 2024-05-01T10:00:00+00:00

    def __call__(self) -> float:
        return self.now


def connect(store: RSeriesStore, token: str, tmp_path: Path) -> RSeriesClient:
    """A client on `store` in process, the account id given (no discovery request)."""
    environ = {
        "LIGHTSPEED_BASE_URL": "http://rseries.invalid",
        "LIGHTSPEED_TOKEN": token,
        "LIGHTSPEED_ACCOUNT_ID": store.account_id,
    }
    return client_from_environment(
        environ, token_file=tmp_path / "tokens.json", transport=SandboxTransport(store)
    )


def _money(value: Decimal | None) -> str:
    return str(value) if value is not None else "0"


def _prices(value: Decimal | None) -> dict[str, Any]:
    return {"ItemPrice": [{"amount": _money(value), "useTypeID": "1"}]}


def attribute_set(client: RSeriesClient, options: tuple[str, ...]) -> tuple[str, list[str]]:
    """A system set whose named slots are exactly `options` in order, else a new set."""
    for found in client.query("ItemAttributeSet"):
        slots = [str(found.get(f"attributeName{n}") or "") for n in (1, 2, 3)]
        if [n for n in slots if n] == list(options):
            return str(found["itemAttributeSetID"]), slots
    slots = [*options, "", "", ""][:3]
    body = {"name": "/".join(options), **{f"attributeName{n + 1}": s for n, s in enumerate(slots)}}
    return str(client.create("ItemAttributeSet", body)["itemAttributeSetID"]), slots


def seed(client: RSeriesClient, catalog: Catalog) -> dict[str, str]:
    """Create every brand, supplier, category and product of `catalog`; returns the catalog's
    sku -> handle (what the caller knows of its own products)."""
    brands: dict[str, int] = {}
    vendors: dict[str, int] = {}
    categories: dict[tuple[str, ...], int] = {}

    def brand(name: str | None) -> int:
        if not name:
            return 0
        if name_key(name) not in brands:
            brands[name_key(name)] = client.create("Manufacturer", {"name": name})["manufacturerID"]
        return brands[name_key(name)]

    def vendor(name: str | None) -> int:
        if not name:
            return 0
        if name_key(name) not in vendors:
            vendors[name_key(name)] = client.create("Vendor", {"name": name})["vendorID"]
        return vendors[name_key(name)]

    def category(path: tuple[str, ...] | None) -> int:
        if not path:
            return 0
        for depth in range(1, len(path) + 1):
            if path[:depth] not in categories:
                parent = categories.get(path[: depth - 1], 0)
                body = {"name": path[depth - 1], "parentID": str(parent)}
                categories[path[:depth]] = client.create("Category", body)["categoryID"]
        return categories[path]

    handles: dict[str, str] = {}
    for p in catalog.products:
        common: dict[str, Any] = {
            "manufacturerID": str(brand(p.brand)),
            "defaultVendorID": str(vendor(p.supplier)),
            "categoryID": str(category(p.category)),
        }
        if p.tags:
            common["Tags"] = {"tag": list(p.tags)}
        nums = (
            {"ItemVendorNum": [{"vendorID": common["defaultVendorID"], "value": p.supplier_code}]}
            if p.supplier and p.supplier_code
            else None
        )
        if not p.is_family:
            handles[str(p.sku)] = p.handle
            item = {
                **common,
                "description": p.name,
                "customSku": p.sku,
                "defaultCost": _money(p.supply_price),
                "Prices": _prices(p.price),
                **_barcode(p.barcode),
            }
            if nums:
                item["ItemVendorNums"] = nums
            made = client.create("Item", item)
            if p.active is False:
                client.delete("Item", made["itemID"])
            continue
        set_id, slots = attribute_set(client, p.options)
        matrix = client.create(
            "ItemMatrix",
            {
                **common,
                "description": p.name,
                "itemAttributeSetID": set_id,
                "defaultCost": _money(p.supply_price),
                "Prices": _prices(p.price),
            },
        )
        for v in p.variants:
            handles[v.sku] = p.handle
            values = dict(v.options)
            attributes = {f"attribute{n + 1}": values[name] for n, name in enumerate(slots) if name}
            item = {
                **{k: w for k, w in common.items() if k != "Tags"},
                "description": " ".join([p.name, *(values[n] for n in slots if n)]),
                "customSku": v.sku,
                "itemMatrixID": str(matrix["itemMatrixID"]),
                "defaultCost": _money(v.supply_price or p.supply_price),
                "Prices": _prices(v.price or p.price),
                "ItemAttributes": {"itemAttributeSetID": set_id, **attributes},
                **_barcode(v.barcode),
            }
            if nums:
                item["ItemVendorNums"] = nums
            made = client.create("Item", item)
            if v.active is False:
                client.delete("Item", made["itemID"])
    return handles


def _barcode(code: str | None) -> dict[str, str]:
    if not code:
        return {}
    return {"upc": code} if len(code) == 12 else {"ean": code}


def product(handle: str, **fields: Any) -> Product:
    return Product(
        handle=handle, name=fields.pop("name", handle.replace("-", " ").title()), **fields
    )


# A catalog with what the mapping must read back exactly: a Color/Size family (brand, supplier
# and code, a two-level category, a tag the store respells, a barcode, a variant's own price, an
# archived variant), a Size-only family (set 2, slot 2), a family on a set of its own, a
# simple product with a 12-digit barcode, and an archived one.
CATALOG = Catalog.build(
    products=[
        product(
            "classic-tee",
            name="Classic Tee",
            brand="Acme",
            supplier="Acme Supply",
            supplier_code="ACME-TEE",
            category=("Apparel", "Tops"),
            tags=("cotton", "Summer Sale"),
            price=Decimal("25.00"),
            supply_price=Decimal("8.00"),
            options=("Color", "Size"),
            variants=(
                Variant(
                    sku="TEE-S-BLK",
                    options=(("Color", "Black"), ("Size", "S")),
                    barcode="9300000000019",
                ),
                Variant(
                    sku="TEE-M-BLK",
                    options=(("Color", "Black"), ("Size", "M")),
                    price=Decimal("27.50"),
                ),
                Variant(
                    sku="TEE-L-BLK",
                    options=(("Color", "Black"), ("Size", "L")),
                    active=False,
                ),
            ),
        ),
        product(
            "socks",
            name="Socks",
            options=("Size",),
            price=Decimal("5"),
            variants=(Variant(sku="SOCK-1", options=(("Size", "One"),)),),
        ),
        product(
            "fabric-care",
            name="Fabric / Care Kit",
            options=("Material", "Weight"),
            price=Decimal("9.99"),
            variants=(Variant(sku="CARE-1", options=(("Material", "Wool"), ("Weight", "1 kg"))),),
        ),
        product(
            "gift-wrap",
            name="Gift Wrap",
            sku="GIFT-WRAP",
            price=Decimal("3.50"),
            supply_price=Decimal("0.5"),
            barcode="012345678905",
            tags=("Gifts",),
            category=("Extras",),
            active=True,
        ),
        product("old-mug", name="Old Mug", sku="MUG-1", price=Decimal("12"), active=False),
    ]
)
