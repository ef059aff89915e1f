"""An R-Series item export in, a catalog that validates out (issue 14): the Item Search export
(no matrix columns, currency symbols, 9-decimal costs, CRLF) and the item import template filled
from a store (matrices, attribute sets, tags, archived), each problem named by its CSV line."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from reconciler.catalog import load_catalog
from reconciler.cli import main
from reconciler.cli.import_ import write_files
from reconciler.csvexport import parse_export, read_export
from reconciler.importer import ImportResult, Severity, layout
from reconciler.model import product_to_data
from reconciler.providers.csvrows import RowError
from reconciler.providers.rseries.csvimport import (
    RSeriesExport,
    option_names,
    parse_amount,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "csv"
ITEM_SEARCH = FIXTURES / "rseries_item_search.csv"
ITEMS = FIXTURES / "rseries_items.csv"


def read(path: Path) -> ImportResult:
    return RSeriesExport().read(read_export(path))


def read_text(text: str) -> ImportResult:
    return RSeriesExport().read(parse_export(text, source="export.csv"))


def by_handle(result: ImportResult) -> dict[str, dict[str, Any]]:
    return {p.handle: product_to_data(p) for p in result.catalog.products}


def lines(result: ImportResult, severity: Severity) -> dict[int, str]:
    return {p.line or 0: p.message for p in result.problems if p.severity is severity}


def test_the_item_search_export_imports_each_row_as_a_simple_item() -> None:
    result = read(ITEM_SEARCH)
    products = by_handle(result)
    assert sorted(products) == ["210000000003", "BOOK-001", "MUG-CAFE", "PEN-1"]
    # "€19.90", a 9-decimal cost, the vendor's item number as the supplier code.
    assert products["BOOK-001"] == {
        "handle": "BOOK-001",
        "name": "De zee van Marmara",
        "sku": "BOOK-001",
        "barcode": "9789462673359",
        "brand": "Uitgeverij Noord",
        "supplier": "EPO",
        "supplier_code": "EPO-4411",
        "category": "Boeken / Non-fictie",
        "price": "19.90",
        "supply_price": "11.08",
    }
    # "$1,299.00" is 1299; a level holding "/" stays one level; UTF-8 survives.
    mug = products["MUG-CAFE"]
    assert mug["price"] == "1299.00"
    assert mug["category"] == ["Home", "Kitchen", "Mugs/Cups"]
    assert (mug["name"], mug["brand"]) == ("Café Crème Mug", "Müller & Söhne")
    # A zero cost is the store's default, so it is not declared.
    assert "supply_price" not in products["210000000003"]
    assert result.notices and "no Matrix Description column" in result.notices[0]
    assert set(result.ignored_columns) >= {"manufact._sku", "qty.", "msrp", "tax_class"}


def test_item_search_problems_are_named_by_line() -> None:
    result = read(ITEM_SEARCH)
    errors, warnings = lines(result, Severity.ERROR), lines(result, Severity.WARNING)
    # The blank line 4 is skipped silently; CRLF line numbers are physical lines.
    assert sorted(errors) == [6, 7]
    assert errors[6] == 'sku "BOOK-001" is also on line 2; row skipped'
    assert errors[7].startswith("Price 'twelve' is not an amount")
    # No Custom SKU: the System ID is the sku, with a warning on its line.
    assert "System ID '210000000003'" in warnings[5]
    # A cost with a digit past the store's 2 places says what the catalog declares.
    assert "'9.125000000' has more than 2 decimals" in warnings[8]
    assert "9.13" in warnings[8]


def test_matrix_rows_become_families_grouped_by_matrix_description() -> None:
    result = read(ITEMS)
    products = by_handle(result)
    assert sorted(products) == ["HAT-OLD", "beanie", "classic-tee", "parka", "trail-sock"]
    assert products["classic-tee"] == {
        "handle": "classic-tee",
        "name": "Classic Tee",
        "brand": "Acme",
        "supplier": "Acme Supply",
        "supplier_code": "ACME-TEE",
        "category": "Apparel / Tops",
        "tags": ["cotton", "summer"],
        "price": "25.00",
        "supply_price": "8.00",
        "options": ["Color", "Size"],
        "variants": [
            {"sku": "TEE-BLK-S", "options": {"Color": "Black", "Size": "Small"}},
            {"sku": "TEE-BLK-M", "options": {"Color": "Black", "Size": "Medium"}},
            # Archived: Yes -> active: false; its own price and cost stay on the variant.
            {
                "sku": "TEE-BLK-XL",
                "options": {"Color": "Black", "Size": "XL"},
                "price": "27.00",
                "supply_price": "8.50",
                "active": False,
            },
            {"sku": "TEE-WHT-S", "options": {"Color": "White", "Size": "Small"}},
        ],
    }
    # The system "Size" set: the value is read from Attribute 1 or Attribute 2; "9,50" is 9.50.
    assert products["trail-sock"]["options"] == ["Size"]
    assert products["trail-sock"]["variants"] == [
        {"sku": "SOCK-M", "options": {"Size": "M"}},
        {"sku": "SOCK-L", "options": {"Size": "L"}},
    ]
    assert products["trail-sock"]["price"] == "9.50"
    # A custom set's names are its name split at "/"; "€1.249,00" is 1249.
    assert products["parka"]["options"] == ["Color", "Size", "Fill"]
    assert products["parka"]["price"] == "1249.00"
    assert any("'Color/Size/Fill' (line 12)" in n for n in result.notices)
    # A simple item archived in the store.
    assert products["HAT-OLD"]["active"] is False
    # A variant without Custom SKU keeps its System ID as the sku.
    assert products["beanie"]["variants"][0] == {"sku": "210000000020", "options": {"Color": "Red"}}


def test_template_problems_are_named_by_line() -> None:
    result = read(ITEMS)
    errors = lines(result, Severity.ERROR)
    assert sorted(errors) == [9, 13, 15, 16]
    assert errors[9].startswith("options {'Color': 'blue'} of \"BEANIE-BLU2\" repeat line 7")
    assert errors[13] == "Attribute 3 (Fill) is blank; row skipped"
    assert errors[15] == "Subcategory 2 'Rain' is set but Category is blank; row skipped"
    assert errors[16].startswith("Archived 'maybe' is not one of")
    # Tags that differ only in case and spaces, a brand only in case: one family, no warning.
    assert 5 not in lines(result, Severity.WARNING)


def test_imported_catalogs_validate_and_load_back_equal(tmp_path: Path) -> None:
    for source in (ITEM_SEARCH, ITEMS):
        result = read(source)
        out = tmp_path / source.stem
        write_files(out, layout(result.catalog))
        loaded = load_catalog(out)
        assert sorted(loaded.products, key=lambda p: p.handle) == sorted(
            result.catalog.products, key=lambda p: p.handle
        )


def test_a_family_value_that_differs_between_variants_keeps_the_first_with_a_warning() -> None:
    result = read_text(
        "Custom SKU,Matrix Description,Matrix Attribute Set,Attribute 1,Brand,Price\n"
        "A-1,Cap,Color,Red,Acme,10\n"
        "A-2,Cap,Color,Blue,Other,10\n"
    )
    assert by_handle(result)["cap"]["brand"] == "Acme"
    assert lines(result, Severity.WARNING)[3] == (
        'brand \'Other\' of "A-2" differs from line 2 of the same family "cap"; the catalog '
        "keeps line 2's"
    )


def test_a_handle_clash_takes_a_number_and_a_shared_name_is_warned() -> None:
    result = read_text(
        "Custom SKU,Item,Matrix Description,Matrix Attribute Set,Attribute 1\n"
        "cap,Cap,,,\n"
        "C-1,,Cap,Color,Red\n"
    )
    assert sorted(by_handle(result)) == ["cap", "cap-2"]
    assert "also the name of" in lines(result, Severity.WARNING)[3]


def test_rows_missing_what_identifies_them_are_skipped() -> None:
    result = read_text(
        "System ID,Custom SKU,Item,Matrix Description,Matrix Attribute Set,"
        "Attribute 1,Attribute 2\n"
        ",,Nameless SKU,,,,\n"
        "2100,,,,,,\n"
        "2101,X-1,,Cap,,Red,\n"
        "2102,X-2,,Cap,Color,Red,Big\n"
        "2103,X-3,,Cap,Color/Size,Red,\n"
    )
    assert result.catalog.products == ()
    errors = lines(result, Severity.ERROR)
    assert errors[2].startswith("Custom SKU and System ID are both blank")
    assert errors[3].startswith('Item (Description) is blank for "2100"')
    assert errors[4].startswith("Matrix Attribute Set is blank")
    assert errors[5].startswith("attribute set 'Color' has one attribute (Color) but the row")
    assert errors[6] == "Attribute 2 (Size) is blank; row skipped"


def test_a_header_that_is_no_rseries_export_is_refused() -> None:
    with pytest.raises(ValueError, match="is this a Lightspeed R-Series item export"):
        read_text("handle,sku,name\nx,X,Y\n")


def test_semicolons_and_a_byte_order_mark_are_read() -> None:
    result = read_text('\ufeff"Custom SKU";"Item";"Price"\r\n"S-1";"Scarf";"€ 12,50"\r\n')
    assert by_handle(result)["S-1"]["price"] == "12.50"


def test_tax_mode_does_not_apply_and_says_so() -> None:
    table = parse_export("Custom SKU,Item,Price\nS-1,Scarf,12\n", source="x.csv")
    result = RSeriesExport().read(table, tax_mode="inclusive")
    assert result.notices[0].startswith("--tax-mode inclusive does not apply")
    assert RSeriesExport().tax_modes == ()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("19.90", "19.90"),
        ("€19.90", "19.90"),
        ("$1,299.00", "1299.00"),
        ("1.249,00 €", "1249.00"),
        ("9,50", "9.50"),
        ("1,299", "1299"),
        ("USD 12", "12"),
        ("CHF 1'250.50", "1250.50"),
        ("1.234.567", "1234567"),
        ("11.080000000", "11.080000000"),
        ("\u00a312\u00a0000.00", "12000.00"),
        ("", None),
        ("  ", None),
    ],
)
def test_amounts_as_exports_and_spreadsheets_write_them(text: str, value: str | None) -> None:
    assert parse_amount(text, "Price") == (None if value is None else Decimal(value))


@pytest.mark.parametrize("text", ["twelve", "-5.00", "(5.00)", "$", "1.2.3,4,5", "12abc"])
def test_what_is_no_amount_is_a_row_error(text: str) -> None:
    with pytest.raises(RowError, match="Price"):
        parse_amount(text, "Price")


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False))
def test_every_amount_reads_back_in_the_formats_r_series_writes(value: Decimal) -> None:
    grouped = f"{value:,.2f}"
    for text in (f"${grouped}", f"€{value}", str(value), f"{grouped} USD"):
        assert parse_amount(text, "Price") == value


def test_attribute_set_names() -> None:
    assert option_names("Color/Size") == (("Color", "Size"), False)
    assert option_names("SIZE") == (("Size",), False)
    assert option_names("3 Attributes") == (("Attribute 1", "Attribute 2", "Attribute 3"), False)
    assert option_names("Colour / Length") == (("Colour", "Length"), True)
    assert option_names("Flavour") == (("Flavour",), True)


def test_the_reader_is_the_exportreader_protocol() -> None:
    from reconciler.providers.base import ExportReader

    reader: ExportReader = RSeriesExport()
    assert "Custom SKU" in reader.columns_read
    assert "any other column" in reader.columns_ignored


# -- through the CLI: LIGHTSPEED_PLATFORM=rseries catalog import --from-csv FILE ----------------


@pytest.fixture
def rseries_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory on R-Series, no account configured (the embedded sandbox)."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "LIGHTSPEED_STORE",
        "LIGHTSPEED_BASE_URL",
        "LIGHTSPEED_TOKEN",
        "LIGHTSPEED_ACCOUNT_ID",
        "LIGHTSPEED_CLIENT_ID",
        "LIGHTSPEED_CLIENT_SECRET",
        "LIGHTSPEED_REFRESH_TOKEN",
        "CATALOG_DIR",
        "CATALOG_STATE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LIGHTSPEED_PLATFORM", "rseries")
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_the_cli_imports_an_rseries_export_which_applies_and_converges(
    rseries_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "import", "--from-csv", str(ITEMS), "--out", "catalog")
    # Four rows could not be imported: each named by its line, and the exit code says so.
    assert code == 1
    assert f"{ITEMS}:9: error: options {{'Color': 'blue'}}" in err
    assert f"{ITEMS}:16: error: Archived 'maybe'" in err
    assert f"{ITEMS}:6: warning: Custom SKU is blank" in err
    assert "custom attribute sets" in err and "Ignored 4 column(s)" in err
    assert "4 row(s) of" in err
    written = sorted(
        p["handle"]
        for path in (rseries_project / "catalog" / "products").glob("*.yaml")
        for p in yaml.safe_load(path.read_text(encoding="utf-8"))["products"]
    )
    assert written == ["HAT-OLD", "beanie", "classic-tee", "parka", "trail-sock"]
    # What was written is a catalog R-Series can hold (its limits: barcodes, money places),
    # applies to the embedded R-Series sandbox, and then plans no change.
    code, _, err = cli(capsys, "validate")
    assert code == 0, err
    code, _, err = cli(capsys, "apply", "--auto-approve")
    assert code == 0, err
    code, out, err = cli(capsys, "plan", "--detailed-exitcode")
    assert code == 0, out + err


def test_the_cli_names_an_export_of_the_other_platform(
    rseries_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    xseries = FIXTURES / "export.csv"
    code, _, err = cli(capsys, "import", "--from-csv", str(xseries), "--out", "catalog")
    assert code == 64
    assert f"{xseries}:1: the header has no Custom SKU or System ID column" in err
    assert "is this a Lightspeed R-Series item export?" in err
