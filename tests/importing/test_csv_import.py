"""`catalog import --from-csv`: a Lightspeed export in, a catalog that validates out."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.catalog import load_catalog
from reconciler.cli import main
from reconciler.cli.import_ import write_atomic, write_files
from reconciler.csvexport import parse_export, read_export
from reconciler.errors import CatalogError
from reconciler.importer import layout
from reconciler.providers.xseries.csvimport import catalog_from_csv

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "csv" / "export.csv"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    code = exc.value.code
    return (code if isinstance(code, int) else 0), capsys.readouterr().err


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def load(directory: Path, relative: str) -> Any:
    return yaml.safe_load((directory / relative).read_text(encoding="utf-8"))


def products_by_handle(directory: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for path in sorted((directory / "products").glob("*.yaml")):
        for product in load(directory, str(path.relative_to(directory)))["products"]:
            assert product["handle"] not in found, "a handle is declared in two files"
            found[product["handle"]] = product
    return found


@pytest.fixture
def imported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, int, str]:
    out = tmp_path / "catalog"
    code, err = run(["import", "--from-csv", str(FIXTURE), "--out", str(out)], capsys)
    return out, code, err


def test_families_simple_products_and_names_come_through(
    imported: tuple[Path, int, str],
) -> None:
    out, _, _ = imported
    products = products_by_handle(out)
    assert sorted(products) == [
        "../../x",  # the store's handle, kept as it is (it never names a path)
        "beanie",
        "cafe-creme-mug",
        "classic-tee",
        "gift-wrap",
        "old-hat",
        "plain-socks",
        "sake-cup",
    ]
    # Rows sharing a handle are one family; the price most variants share is said once.
    assert products["classic-tee"] == {
        "handle": "classic-tee",
        "name": "Classic Tee",
        "description": '<p>Soft, "combed" cotton</p>',
        "brand": "Acme",
        "supplier": "Acme Supply",
        "supplier_code": "ACME-TEE",
        "category": "Apparel / Tops",
        "tags": ["cotton", "summer"],
        "price": "25.00",
        "supply_price": "8.00",
        "options": ["Size", "Colour"],
        "variants": [
            {"sku": "TEE-S-BLK", "options": {"Size": "S", "Colour": "Black"}},
            {"sku": "TEE-M-BLK", "options": {"Size": "M", "Colour": "Black"}},
            {
                "sku": "TEE-XL-BLK",
                "options": {"Size": "XL", "Colour": "Black"},
                "price": "27.00",
                "supply_price": "8.50",
            },
        ],
    }
    # A quoted cell spanning three lines, doubled quotes and UTF-8 survive unchanged.
    mug = products["cafe-creme-mug"]
    assert mug["name"] == "Café Crème Mug"
    assert mug["description"] == '<p>Stoneware mug.\nHolds 300 ml,\n"dishwasher" safe.</p>'
    assert mug["brand"] == "Müller & Söhne"
    assert products["sake-cup"]["name"] == "日本酒のカップ"
    assert products["sake-cup"]["category"] == "Küche 日本"
    # Blank cells are simply not declared; active: true is the store's default, so left out.
    assert products["plain-socks"] == {
        "handle": "plain-socks",
        "name": "Plain Socks",
        "sku": "SOCK-1",
    }
    assert "active" not in products["gift-wrap"]
    assert products["old-hat"]["active"] is False
    assert [v.get("active") for v in products["beanie"]["variants"]] == [None, False]


def test_names_files_are_shared_and_grouped(imported: tuple[Path, int, str]) -> None:
    out, _, _ = imported
    assert sorted(snapshot(out)) == [
        "brands.yaml",
        "products/apparel-hats.yaml",
        "products/apparel-tops.yaml",
        "products/brand-acme.yaml",  # uncategorized, so grouped by brand
        "products/kuche-2.yaml",  # "Küche 日本" slugs like "Küche": never overwritten
        "products/kuche.yaml",
        "products/uncategorized.yaml",
        "suppliers.yaml",
        "tags.yaml",
    ]
    # "acme" on a later row of the beanie is the same brand, spelled as first seen.
    assert load(out, "brands.yaml") == {"brands": [{"name": "Acme"}, {"name": "Müller & Söhne"}]}
    assert load(out, "tags.yaml") == {"tags": ["cotton", "Geschenk", "Küche", "summer", "winter"]}
    assert "Müller & Söhne" in (out / "brands.yaml").read_text(encoding="utf-8")  # not \\u-escaped


def test_bad_rows_are_reported_with_their_line_and_left_out(
    imported: tuple[Path, int, str],
) -> None:
    out, code, err = imported
    assert code == 1
    assert "Traceback" not in err
    # Line 9 comes after a cell spanning lines 6-8: physical lines are counted.
    assert f"{FIXTURE}:9: error: retail_price 'abc' is not a number" in err
    assert f'{FIXTURE}:14: error: sku "TEE-S-BLK" is also on line 2' in err
    assert "../../x" not in err  # a handle the store holds is no error
    assert "2 row(s)" in err and "re-run with --force" in err
    assert "Ignored 9 column(s)" in err and "inventory_main_outlet" in err  # composite_* are read
    assert "bad-price" not in products_by_handle(out)


def test_same_export_gives_byte_identical_files(
    tmp_path: Path, imported: tuple[Path, int, str], capsys: pytest.CaptureFixture[str]
) -> None:
    first, _, _ = imported
    again = tmp_path / "again"
    run(["import", "--from-csv", str(FIXTURE), "--out", str(again)], capsys)
    assert snapshot(again) == snapshot(first)
    run(["import", "--from-csv", str(FIXTURE), "--out", str(first), "--force"], capsys)
    assert snapshot(first) == snapshot(again)


def test_refuses_a_non_empty_out_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "catalog"
    (out / "products").mkdir(parents=True)
    stale = out / "products" / "old.yaml"
    stale.write_text("products: []\n")
    (out / "catalog.yaml").write_text("settings:\n  prune: none\n")
    (out / "README.md").write_text("ours\n")

    code, err = run(["import", "--from-csv", str(FIXTURE), "--out", str(out)], capsys)
    assert code == 1
    assert "is not empty: pass --force" in err
    assert stale.exists() and not (out / "brands.yaml").exists()

    code, err = run(["import", "--from-csv", str(FIXTURE), "--out", str(out), "--force"], capsys)
    assert not stale.exists(), "a previous import's file would declare its products twice"
    assert (out / "catalog.yaml").read_text() == "settings:\n  prune: none\n"
    assert (out / "README.md").read_text() == "ours\n"
    assert (out / "brands.yaml").exists()
    assert "1 old file(s) removed" in err


def test_nothing_is_written_outside_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    before = snapshot(tmp_path)
    run(["import", "--from-csv", str(FIXTURE), "--out", str(work / "out")], capsys)
    outside = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("a/b/out/")}
    assert outside == before
    for escape in ("../../x.yaml", "../evil/x.yaml", "/tmp/x.yaml", "link/evil/x.yaml"):
        if escape.startswith("link"):
            (work / "out" / "link").symlink_to(tmp_path)
        with pytest.raises(CatalogError, match="outside"):
            write_atomic(work / "out", escape, b"x")
    assert not (tmp_path / "x.yaml").exists()
    assert not (work / "evil").exists() and not (tmp_path / "evil").exists()
    assert write_atomic(work / "out", "a..b.yaml", b"ok").read_bytes() == b"ok"


def csv_file(tmp_path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    path = tmp_path / "export.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_broken_quoting_is_one_sentence_with_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = csv_file(tmp_path, 'handle,sku,name\na,A,Alpha\nb,B,"Beta" x\n')
    code, err = run(["import", "--from-csv", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 1
    assert f"{path}:3: the file is not valid CSV here" in err
    assert "Traceback" not in err


def test_a_file_not_in_the_encoding_given_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = csv_file(tmp_path, "handle,sku,name\nmug,M,Mug\ncafe,C,Café\n", encoding="latin-1")
    out = str(tmp_path / "o")
    code, err = run(
        ["import", "--from-csv", str(path), "--out", out, "--encoding", "utf-8"], capsys
    )
    assert code == 1
    assert f"{path}:3: the file is not utf-8 (byte 0xe9)" in err


def test_a_header_without_the_key_columns_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = csv_file(tmp_path, "Title,Variant SKU\nMug,M\n")
    code, err = run(["import", "--from-csv", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 64
    assert "no handle, sku, name column" in err


def test_semicolon_exports_and_a_byte_order_mark_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = csv_file(
        tmp_path, "\ufeffHandle;SKU;Name;Retail_Price\nmug;M-1;Mug;4,50\ncup;C-1;Cup;3.00\n"
    )
    out = tmp_path / "o"
    code, err = run(["import", "--from-csv", str(path), "--out", str(out)], capsys)
    assert code == 1  # "4,50" is not a number: decimals use a point
    assert f"{path}:2: error: retail_price '4,50' is not a number" in err
    assert products_by_handle(out) == {
        "cup": {"handle": "cup", "name": "Cup", "sku": "C-1", "price": "3.00"}
    }


def test_the_written_catalog_validates_and_loads_back_equal(
    imported: tuple[Path, int, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _, _ = imported
    code, err = run(["--catalog", str(out), "validate"], capsys)
    assert code == 0, err
    table = read_export(FIXTURE)
    expected = catalog_from_csv(table.columns, table.rows).catalog
    assert load_catalog(out) == expected


# -- property: any well-formed export imports completely and loads back equal -----------------

_text = (
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x85"
        ),
        min_size=1,
        max_size=12,
    )
    .map(str.strip)
    .filter(bool)
)
_description = st.text(alphabet="ab ,\"\n'é<>/p", max_size=30)


@st.composite
def exports(draw: st.DrawFn) -> tuple[str, list[tuple[str, list[str]]]]:
    """CSV text (random quoting, UTF-8, multi-line cells) and its families: handle -> SKUs."""
    header = [
        "handle",
        "sku",
        "name",
        "description",
        "variant_option_one_name",
        "variant_option_one_value",
        "retail_price",
        "brand_name",
        "tags",
    ]
    names = draw(st.lists(_text, min_size=1, max_size=5, unique_by=str.casefold))
    families: list[tuple[str, list[str]]] = []
    records: list[list[str]] = []
    for i, name in enumerate(names):
        handle, size = f"p-{i}", draw(st.integers(min_value=0, max_value=3))
        description = draw(_description)
        brand = draw(st.sampled_from(["", "Acme", "Müller"]))
        tags = ", ".join(draw(st.lists(st.sampled_from(["new", "eco", "Sale"]), max_size=2)))
        skus = [f"S{i}"] if size == 0 else [f"S{i}-{j}" for j in range(size)]
        for j, sku in enumerate(skus):
            price = str(draw(st.decimals(min_value=0, max_value=999, places=2)))
            option = ["Size", f"v{j}"] if size else ["", ""]
            records.append([handle, sku, name, description, *option, price, brand, tags])
        families.append((handle, skus))
    buffer = io.StringIO()
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    if draw(st.booleans()):
        writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator=ending)
    else:
        writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator=ending)
    writer.writerow(header)
    writer.writerows(draw(st.permutations(records)))
    return buffer.getvalue(), families


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(export=exports())
def test_any_well_formed_export_imports_whole_and_loads_back_equal(
    export: tuple[str, list[tuple[str, list[str]]]],
) -> None:
    text, families = export
    table = parse_export(text, source="export.csv")
    result = catalog_from_csv(table.columns, table.rows)
    assert result.errors == ()
    got = {p.handle: [v.sku for v in p.sellables()] for p in result.catalog.products}
    assert {h: sorted(s) for h, s in got.items()} == {h: sorted(s) for h, s in families}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "catalog"
        write_files(out, layout(result.catalog))
        assert load_catalog(out) == result.catalog
