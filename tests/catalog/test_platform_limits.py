"""Validate reads the platform's `Limits` as a value: what the catalog declares but the platform
LIGHTSPEED_PLATFORM selects cannot hold is a problem or a warning at its file:line, never a
silent drop. The same catalog is valid for X-Series."""

from __future__ import annotations

import json

import pytest

from reconciler import providers
from reconciler.catalog import load_catalog, validate_directory
from reconciler.cli import main
from reconciler.errors import CatalogInvalid

from .helpers import Write

CATALOG = """\
brands:
  - name: Acme
    description: Makers of things
products:
  - handle: tee
    name: Tee
    description: Soft
    brand: Acme
    price: 0.125
    options: [Size]
    variants:
      - sku: TEE-S
        options: {Size: S}
        barcode: "96385074"
      - sku: TEE-M
        options: {Size: M}
        barcode: "9300000000019"
"""
ROOT = "settings:\n  prune: delete\n"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["--color", "never", *args])
    out, _ = capsys.readouterr()
    code = exit_info.value.code
    assert isinstance(code, int)
    return code, out


def test_rseries_refuses_a_gtin8_and_warns_of_what_it_does_not_keep(
    write: Write, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write("a.yaml", CATALOG)
    write("catalog.yaml", ROOT)
    monkeypatch.setenv("LIGHTSPEED_PLATFORM", "rseries")
    code, out = run(capsys, "validate", "--no-cache")
    assert code == 1
    assert out.splitlines() == [
        'catalog/a.yaml:14:18: products[0].variants[0].barcode: barcode "96385074" has 8 '
        "digits, and R-Series holds barcodes of 11 to 14 digits only (use the product's 12- "
        "or 13-digit barcode (UPC or EAN), or leave it out)",
        "catalog/a.yaml:3:18: warning: brands[0].description: R-Series keeps no brand "
        "description; it is never written or compared (remove it, or keep it as a note)",
        "catalog/a.yaml:7:18: warning: products[0].description: R-Series has no field for a "
        "product description; it is never written or compared (remove it, or keep it as a "
        "note)",
        "catalog/a.yaml:9:12: warning: products[0].price: 0.125 has more than 2 decimals; "
        "R-Series keeps 0.13 (write 0.13 to say what the store holds)",
        "catalog/catalog.yaml:2:10: warning: settings.prune: R-Series cannot delete a "
        "product: prune archives it instead, which sets its stock to zero and cannot be "
        "undone (use prune: deactivate to say what happens, or none to keep them)",
        "1 problem in 1 file; 1 product, 2 variants checked (4 warnings)",
    ]


def test_the_same_catalog_is_valid_for_xseries(
    write: Write, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write("a.yaml", CATALOG)
    write("catalog.yaml", ROOT)
    monkeypatch.delenv("LIGHTSPEED_PLATFORM", raising=False)
    code, out = run(capsys, "validate", "--no-cache", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["problems"] == [] and doc["warnings"] == []


def test_plan_loads_the_catalog_under_the_same_limits(write: Write) -> None:
    write("a.yaml", CATALOG)
    from pathlib import Path

    limits = providers.get("rseries").limits
    with pytest.raises(CatalogInvalid, match=r"96385074.*11 to 14 digits"):
        load_catalog(Path("catalog"), limits=limits)
    assert load_catalog(Path("catalog")).products[0].handle == "tee"


def test_too_many_options_or_variants_for_the_platform(write: Write) -> None:
    from dataclasses import replace
    from pathlib import Path

    write(
        "a.yaml",
        CATALOG.replace('"96385074"', '"9300000000019"').replace(
            '"9300000000019"\n', '"9300000000026"\n', 1
        ),
    )
    tight = replace(providers.get("rseries").limits, max_options=0, max_variants=1)
    report = validate_directory(Path("catalog"), limits=tight)
    assert [str(p) for p in report.problems] == [
        "catalog/a.yaml:10:14: products[0].options: 1 options, and R-Series holds at most 0 "
        "(combine options, or split the product)",
        "catalog/a.yaml:12:7: products[0].variants: 2 variants, and R-Series holds at most 1 "
        "per product (split the product)",
    ]
