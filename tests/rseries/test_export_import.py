"""An R-Series item export imported into a catalog plans clean against the account it came from
(issue 14): the export reader names families, options, prices and names exactly as the live
normalizer reads the store, so adopting a store from its export writes nothing."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

from reconciler.csvexport import read_export
from reconciler.importer import Severity
from reconciler.planner import make_plan
from reconciler.providers.rseries.client import RSeriesClient
from reconciler.providers.rseries.csvimport import RSeriesExport
from reconciler.providers.rseries.normalize import category_paths
from reconciler.providers.rseries.refresh import load_live, refresh
from reconciler.state.cache import Cache

from .helpers import CATALOG, seed
from .test_normalize import _managed

HEADER = [
    "Description",
    "System ID",
    "UPC",
    "EAN",
    "Custom SKU",
    "Manufacturer SKU",
    "Brand",
    "Matrix Description",
    "Matrix Attribute Set",
    "Attribute 1",
    "Attribute 2",
    "Attribute 3",
    "Price",
    "MSRP",
    "Default Cost",
    "Tags",
    "Vendor",
    "Vendor ID",
    "Category",
    "Subcategory 1",
    "Subcategory 2",
    "Archived",
    "Qty.",
]


def _dollars(amount: Any) -> str:
    return f"${Decimal(str(amount)):,.2f}"


def export_items(client: RSeriesClient) -> str:
    """The account's items as R-Series' item template holds them when filled from a store: one
    row per item (archived ones too), matrix rows naming their matrix and attribute set, prices
    with the currency symbol, costs to 9 decimals, CRLF."""
    names = {
        kind: {str(r[key]): str(r.get("name") or "") for r in client.query(kind)}
        for kind, key in (
            ("Manufacturer", "manufacturerID"),
            ("Vendor", "vendorID"),
            ("ItemAttributeSet", "itemAttributeSetID"),
        )
    }
    paths = category_paths(
        {"id": str(c["categoryID"]), "name": c["name"], "parentID": str(c.get("parentID") or "")}
        for c in client.query("Category")
    )
    matrices = {str(m["itemMatrixID"]): m for m in client.query("ItemMatrix", {"archived": "true"})}
    items = client.query(
        "Item", {"archived": "true"}, load_relations=["ItemAttributes", "ItemVendorNums", "Tags"]
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for item in items:
        matrix = matrices.get(str(item.get("itemMatrixID") or ""))
        attributes = item.get("ItemAttributes") or {}
        set_id = str(matrix["itemAttributeSetID"]) if matrix else ""
        values = [str(attributes.get(f"attribute{n}") or "") for n in (1, 2, 3)] if matrix else []
        vendor = str(item.get("defaultVendorID") or "")
        code = next(
            (
                str(n["value"])
                for n in item.get("ItemVendorNums") or []
                if str(n["vendorID"]) == vendor
            ),
            "",
        )
        price = next(p["amount"] for p in item["Prices"] if int(p["useTypeID"]) == 1)
        path = paths.get(str(item.get("categoryID") or ""), ())
        # A variant's tags are its matrix's (the normalizer reads a family's from the matrix).
        tagged = (
            client.read("ItemMatrix", matrix["itemMatrixID"], load_relations=["Tags"])
            if matrix
            else item
        )
        tags = tagged.get("Tags") or []
        writer.writerow(
            [
                item["description"],
                item["systemSku"],
                item.get("upc") or "",
                item.get("ean") or "",
                item.get("customSku") or "",
                "",
                names["Manufacturer"].get(str(item.get("manufacturerID") or ""), ""),
                matrix["description"] if matrix else "",
                names["ItemAttributeSet"].get(set_id, ""),
                *[*values, "", "", ""][:3],
                _dollars(price),
                "",
                f"{Decimal(str(item.get('defaultCost') or 0)):.9f}",
                ", ".join(str(t) for t in tags),
                names["Vendor"].get(vendor, ""),
                code,
                *[*path, "", "", ""][:3],
                "Yes" if item.get("archived") else "No",
                "3",
            ]
        )
    return out.getvalue()


def test_an_imported_export_plans_no_change_against_its_account(
    rs_client: RSeriesClient, cache: Cache, tmp_path: Path
) -> None:
    seed(rs_client, CATALOG)
    path = tmp_path / "items.csv"
    path.write_bytes(export_items(rs_client).encode("utf-8"))
    result = RSeriesExport().read(read_export(path))
    assert [p for p in result.problems if p.severity is Severity.ERROR] == []
    imported = result.catalog
    assert sorted(p.name for p in imported.products) == sorted(p.name for p in CATALOG.products)

    refresh(rs_client, cache)
    handles = {
        sku: p.handle for p in imported.products for sku in [p.sku, *(v.sku for v in p.variants)]
    }
    live = load_live(
        cache,
        handles={k: v for k, v in handles.items() if k},
        tag_spellings=[t for p in imported.products for t in p.tags or ()],
    )
    plan = make_plan(imported, live, store="rseries", managed=_managed(imported))
    assert not plan.has_changes, [c for c in plan.all_changes() if c.action != "no-op"]
    # What the export says is what the catalog declares.
    tee = next(p for p in imported.products if p.name == "Classic Tee")
    assert tee.handle == "classic-tee" and tee.options == ("Color", "Size")
    assert tee.supplier_code == "ACME-TEE" and tee.category == ("Apparel", "Tops")
    assert [v.active for v in tee.variants if v.sku == "TEE-L-BLK"] == [False]
    care = next(p for p in imported.products if p.name == "Fabric / Care Kit")
    assert care.options == ("Material", "Weight")  # a custom set, named by splitting its name
