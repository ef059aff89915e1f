"""`catalog merge`: a supplier's CSV with its own column names into the catalog, in place."""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.catalog import validate_directory

EXAMPLE = Path(__file__).resolve().parents[2] / "catalog"

# Shaped like a real supplier export: Excel's byte-order mark, ';' between cells, decimal
# commas, CRLF, and column names with their own spaces and capitals.
SUPPLIER = (
    "\ufeff  Item Code ;Description; Unit Cost (ex GST) ;RRP;EAN\r\n"
    "TEE-S-BLK;Classic Tee S;8,40;;\r\n"
    "TEE-M-BLK;Classic Tee M;8,40;;\r\n"
    "GIFT-WRAP;Gift wrap;1,10;3,95;\r\n"
    "TRAIL-8-BLK;Trail Runner;71.00;;\r\n"
    "TRAIL-9-BLK;Trail Runner;71.00;;\r\n"
    "TRAIL-10-BLK;Trail Runner;71.00;;\r\n"
    "TRAIL-9-RED;Trail Runner;71.00;;\r\n"
    "TRAIL-10-RED;Trail Runner;71.00;;\r\n"
    "NEW-SOCK-1;Wool sock;2.00;6.00;96385074\r\n"
)
MAPS = ("--map", "unit cost (ex gst)=supply_price", "--map", "RRP=price", "--map", "ean=barcode")


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, target)
    return target


def _run(catalog: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTSPEED_", "CATALOG_"))}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "reconciler",
            "--catalog",
            str(catalog),
            "--state",
            str(catalog.parent / "state.db"),
            "merge",
            *args,
        ],
        env={**env, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _supplier(tmp: Path, text: str = SUPPLIER) -> Path:
    path = tmp / "supplier.csv"
    path.write_bytes(text.encode("utf-8"))
    return path


def _diff(catalog: Path, name: str) -> tuple[list[str], list[str]]:
    before = (EXAMPLE / name).read_text().splitlines()
    after = (catalog / name).read_text().splitlines()
    lines = list(difflib.unified_diff(before, after, lineterm="", n=0))
    return (
        [d[1:] for d in lines if d.startswith("-") and not d.startswith("---")],
        [d[1:] for d in lines if d.startswith("+") and not d.startswith("+++")],
    )


def test_odd_column_names_update_the_right_skus_with_a_minimal_diff(catalog_dir: Path) -> None:
    csv = _supplier(catalog_dir.parent)
    done = _run(catalog_dir, str(csv), "--key", "item code", *MAPS)
    assert done.returncode == 0, done.stderr
    assert _diff(catalog_dir, "apparel.yaml") == (
        [
            '      - {sku: TEE-S-BLK, options: {Size: S, Colour: Black}, barcode: "9300000000057"}',
            '      - {sku: TEE-M-BLK, options: {Size: M, Colour: Black}, barcode: "9300000000064"}',
        ],
        [
            '      - {sku: TEE-S-BLK, options: {Size: S, Colour: Black}, barcode: "9300000000057", '
            "supply_price: 8.40}",
            '      - {sku: TEE-M-BLK, options: {Size: M, Colour: Black}, barcode: "9300000000064", '
            "supply_price: 8.40}",
        ],
    )
    # Every variant of the trail runner took the same cost: the family's value changes once.
    assert _diff(catalog_dir, "footwear.yaml") == (
        ["    supply_price: 70.00"],
        ["    supply_price: 71.00"],
    )
    assert _diff(catalog_dir, "home.yaml") == (
        ["    price: 3.50"],
        ["    price: 3.95", "    supply_price: 1.10"],
    )
    for same in ("accessories.yaml", "catalog.yaml"):
        assert (catalog_dir / same).read_bytes() == (EXAMPLE / same).read_bytes()
    out = done.stdout
    assert "catalog/footwear.yaml:12: trail-runner: supply price 70.00 -> 71.00 (from " in out
    assert f"{csv}:5 and 4 more rows)" in out
    assert f"{csv}:10: NEW-SOCK-1: skipped: SKU not in the catalog" in out
    assert "Wrote 5 changes to 3 files." in out
    assert not validate_directory(catalog_dir).problems
    again = _run(catalog_dir, str(csv), "--key", "item code", *MAPS)
    assert "Nothing to write" in again.stdout


def test_create_in_adds_unknown_skus_as_simple_products(catalog_dir: Path) -> None:
    csv = _supplier(catalog_dir.parent)
    done = _run(
        catalog_dir,
        str(csv),
        "--key",
        "Item Code",
        *MAPS,
        "--create-in",
        "home.yaml",
        "--format",
        "json",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["created"] == ["NEW-SOCK-1"] and report["written"] is True
    removed, added = _diff(catalog_dir, "home.yaml")
    assert added[-7:] == [
        "",
        "  - handle: new-sock-1",
        "    name: NEW-SOCK-1",
        "    sku: NEW-SOCK-1",
        "    supply_price: 2.00",
        "    price: 6.00",
        '    barcode: "96385074"',
    ]
    assert removed == ["    price: 3.50"]
    assert not validate_directory(catalog_dir).problems


def test_a_bad_row_writes_nothing_unless_partial(catalog_dir: Path) -> None:
    csv = _supplier(catalog_dir.parent, SUPPLIER.replace("8,40;;\r\nTEE-M", "call us;;\r\nTEE-M"))
    refused = _run(catalog_dir, str(csv), "--key", "item code", *MAPS)
    assert refused.returncode == 1
    assert f"{csv}:2: TEE-S-BLK: supply_price: error: 'call us'" in refused.stdout
    assert "nothing was written" in refused.stderr
    for name in ("apparel.yaml", "footwear.yaml", "home.yaml"):
        assert (catalog_dir / name).read_bytes() == (EXAMPLE / name).read_bytes()
    partial = _run(catalog_dir, str(csv), "--key", "item code", *MAPS, "--partial")
    assert partial.returncode == 1 and "the rest was written" in partial.stderr
    assert "supply_price: 71.00" in (catalog_dir / "footwear.yaml").read_text()
    assert (
        'TEE-S-BLK, options: {Size: S, Colour: Black}, barcode: "9300000000057"}'
        in (catalog_dir / "apparel.yaml").read_text()
    )


def test_a_file_that_would_become_invalid_is_left_untouched(catalog_dir: Path) -> None:
    csv = _supplier(catalog_dir.parent, "sku,ean\nTEE-S-BLK,9300000000058\nGIFT-WRAP,96385074\n")
    done = _run(catalog_dir, str(csv), "--map", "EAN=barcode", "--partial")
    assert done.returncode == 1
    line = next(x for x in done.stdout.splitlines() if "left untouched" in x)
    shown = (catalog_dir / "apparel.yaml").as_posix()
    assert line == (
        f"{shown} was left untouched: with these changes it would be invalid ({shown}:15:70: "
        'products[0].variants[0].barcode: barcode "9300000000058" has a wrong check digit: the '
        "last digit should be 7 (check the barcode for a typo))."
    )
    assert "check digit" in line
    assert (catalog_dir / "apparel.yaml").read_bytes() == (EXAMPLE / "apparel.yaml").read_bytes()
    assert 'barcode: "96385074"' in (catalog_dir / "home.yaml").read_text()


def test_usage_and_column_errors_are_one_sentence(catalog_dir: Path) -> None:
    csv = _supplier(catalog_dir.parent)
    wrong_field = _run(catalog_dir, str(csv), "--key", "item code", "--map", "RRP=cost")
    assert wrong_field.returncode == 64 and "not a field merge can write" in wrong_field.stderr
    no_column = _run(catalog_dir, str(csv), "--map", "RRP=price")
    assert no_column.returncode == 1
    assert f"{csv}:1: no column 'sku' in the header" in no_column.stderr
    assert len(no_column.stderr.strip().splitlines()) == 1


def test_a_legacy_encoded_supplier_file_is_read_and_said_so(catalog_dir: Path) -> None:
    csv = catalog_dir.parent / "supplier.csv"
    csv.write_bytes("SKU;Coût unitaire\nGIFT-WRAP;1,25\n".encode("cp1252"))
    done = _run(catalog_dir, str(csv), "--map", "coût unitaire=supply_price")
    assert done.returncode == 0, done.stderr
    assert "GIFT-WRAP: supply price (none) -> 1.25" in done.stdout
    assert "cp1252" in done.stderr.lower() or "windows-1252" in done.stderr.lower()


def test_lines_are_those_of_the_edited_file(catalog_dir: Path) -> None:
    """A key added above shifts what follows: each change names its line after the edit."""
    csv = _supplier(catalog_dir.parent, "sku,cost,rrp\nGIFT-WRAP,1.10,3.95\nGIFT-CARD-50,40.00,\n")
    done = _run(catalog_dir, str(csv), "--map", "cost=supply_price", "--map", "rrp=price")
    assert done.returncode == 0, done.stderr
    lines = (catalog_dir / "home.yaml").read_text().splitlines()
    for out in done.stdout.splitlines()[:-1]:
        where, _, rest = out.partition(": ")
        number = int(where.rsplit(":", 1)[1])
        _key, _, change = rest.partition(": ")
        field = "supply_price" if change.startswith("supply price") else "price"
        assert lines[number - 1].strip().startswith(f"{field}: "), out
    assert "home.yaml:17: GIFT-CARD-50: supply price (none) -> 40.00" in done.stdout
