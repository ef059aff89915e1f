"""Real exports as real stores make them (issue 18): mixed handles, `;` tags, `/` inside
category names, composites, CRLF, duplicate and untidy names, legacy encodings. Each is imported
without refusal or rewrite, applied to the sandbox, and plans empty afterwards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.cli import main
from reconciler.csvexport import read_export
from reconciler.importer import catalog_from_live, image_path
from reconciler.providers.xseries.csvimport import catalog_from_csv
from reconciler.providers.xseries.normalize import normalize_live

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "csv"
REAL = FIXTURES / "real_store.csv"
# The handles of real_store.csv as the store holds them: none is rewritten into a slug.
REAL_HANDLES = [
    "0003",
    "BlueSuedeShoes",
    "Mulcher-life",
    "Two-Line-Name",
    "WATSON",
    "apron",
    "bulleit-bourbon",
    "café-au-lait",
    "gift-card-25",
    "gift-card-50",
    "makers-mark",
    "mug-heart",
    "salt--pepper-mill",
    "tee-shirt-",
]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, no store configured: commands use the embedded sandbox."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "LIGHTSPEED_STORE",
        "LIGHTSPEED_BASE_URL",
        "LIGHTSPEED_TOKEN",
        "CATALOG_DIR",
        "CATALOG_STATE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out, err


def declared(directory: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((directory / "products").glob("*.yaml")):
        for product in yaml.safe_load(path.read_text(encoding="utf-8"))["products"]:
            found[product["handle"]] = product
    return found


def store_rows(project: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The sandbox's product rows, read back through a fresh live import's cache."""
    code, _, err = cli(capsys, "import", "--out", "live", "--force")
    assert code == 0, err
    return [
        p
        for path in sorted((project / "live" / "products").glob("*.yaml"))
        for p in yaml.safe_load(path.read_text(encoding="utf-8"))["products"]
    ]


# -- point 1 and 2: the export imports whole, as the store has it ------------------------------


def test_a_real_export_imports_every_sellable_row_with_its_handle_unchanged(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "import", "--from-csv", str(REAL), "--out", "catalog")
    assert code == 0, err
    assert " error: " not in err
    products = declared(project / "catalog")
    assert sorted(products) == REAL_HANDLES
    rows = sum(len(p.get("variants", [])) or 1 for p in products.values())
    sellable = 17  # every row of the export but the composite's two
    assert rows == sellable
    # Two families share a name and one name spans two lines: warnings, never refusals.
    assert products["gift-card-25"]["name"] == products["gift-card-50"]["name"] == "Gift Card"
    assert "is also the name of" in err and "warning" in err
    assert products["Two-Line-Name"]["name"] == "Lamp\nWarm White"


def test_tags_split_on_semicolons_and_categories_on_spaced_slashes(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli(capsys, "import", "--from-csv", str(REAL), "--out", "catalog")
    products = declared(project / "catalog")
    assert products["Mulcher-life"]["tags"] == ["Garden", "Outdoor, Summer"]
    assert products["tee-shirt-"]["tags"] == ["CHILDRENS WEARABLES", "Kids", "Tops"]
    assert products["apron"]["tags"] == ["Kitchen", "Textiles"]  # spaces around ";" trimmed
    assert products["Mulcher-life"]["category"] == "Garden / Soil & Mulch"
    # "Bourbon/Whiskey" is one level: declared in the list form.
    assert products["makers-mark"]["category"] == ["Spirits", "Bourbon/Whiskey"]
    assert products["makers-mark"]["tags"] == ["Bourbon/Whiskey", "Kentucky, USA", "Spirits"]


def test_composites_are_left_unmanaged_with_one_notice_and_no_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "import", "--from-csv", str(REAL), "--out", "catalog")
    assert code == 0
    assert "gift-pack" not in declared(project / "catalog")
    notices = [line for line in err.splitlines() if "composite" in line]
    assert notices == [
        f"{REAL}: 1 composite product(s) (bundles) left unmanaged, as they are in the store "
        '(the catalog does not declare composites yet): "gift-pack".'
    ]
    assert "composite_handle" not in err  # read, so not listed among the ignored columns


def test_a_composite_component_row_without_a_handle_belongs_to_the_row_above() -> None:
    columns = ("handle", "sku", "name", "retail_price", "composite_handle", "composite_sku")
    from reconciler.importer import CsvRow

    rows = [
        CsvRow(2, {"handle": "mug", "sku": "M", "name": "Mug", "retail_price": "5"}),
        CsvRow(3, {"handle": "set", "sku": "S", "name": "Set", "retail_price": "9"}),
        CsvRow(4, {"composite_handle": "mug", "composite_sku": "M"}),
    ]
    result = catalog_from_csv(columns, rows)
    assert [p.handle for p in result.catalog.products] == ["mug"]
    assert result.problems == () and '"set"' in result.notices[0]


def test_a_live_composite_is_left_unmanaged_with_one_notice() -> None:
    rows = [
        {"id": "1", "handle": "Mug", "name": "Mug", "sku": "M", "price_including_tax": 5},
        {
            "id": "2",
            "handle": "gift-set",
            "name": "Gift Set",
            "sku": "GS",
            "price_including_tax": 9,
            "is_composite": True,
        },
    ]
    live = normalize_live(products=rows, tax_exclusive=False)
    result = catalog_from_live(
        {h: lp.product for h, lp in live.products.items()},
        composites=[h for h, lp in live.products.items() if lp.composite],
    )
    assert [p.handle for p in result.catalog.products] == ["Mug"]
    assert result.problems == ()
    assert result.notices == (
        "1 composite product(s) (bundles) left unmanaged, as they are in the store (the catalog "
        'does not declare composites yet): "gift-set".',
    )


def test_applied_export_names_tags_categories_and_handles_as_the_export_does(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "import", "--from-csv", str(REAL), "--out", "catalog")[0] == 0
    code, _, err = cli(capsys, "apply", "--auto-approve")
    assert code == 0, err
    code, out, err = cli(capsys, "plan", "--detailed-exitcode")
    assert code == 0, out + err
    assert "No changes." in out
    live = {p["handle"]: p for p in store_rows(project, capsys)}
    assert sorted(live) == REAL_HANDLES
    assert live["makers-mark"]["category"] == ["Spirits", "Bourbon/Whiskey"]
    assert live["makers-mark"]["tags"] == ["Bourbon/Whiskey", "Kentucky, USA", "Spirits"]
    assert live["Mulcher-life"]["tags"] == ["Garden", "Outdoor, Summer"]
    tags = yaml.safe_load((project / "live" / "tags.yaml").read_text(encoding="utf-8"))["tags"]
    assert "Kids;Tops;CHILDRENS WEARABLES" not in tags and "CHILDRENS WEARABLES" in tags


# -- point 2: encodings and the tax mode --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "label"), [("windows-1252.csv", "Windows-1252"), ("mac-roman.csv", "Mac Roman")]
)
def test_a_legacy_encoding_is_detected_and_named_in_one_notice(
    project: Path, capsys: pytest.CaptureFixture[str], name: str, label: str
) -> None:
    path = FIXTURES / name
    code, _, err = cli(capsys, "import", "--from-csv", str(path), "--out", "catalog")
    assert code == 0, err
    assert err.count("not UTF-8") == 1
    assert f"{path}: the file is not UTF-8; read it as {label} (detected)" in err
    products = declared(project / "catalog")
    assert products["cafe-creme"]["name"] == "Café Crème 250 g"
    assert products["Pate-Campagne"]["category"] == "Épicerie / Charcuterie"
    assert products["senor-nino"]["description"] == "¿Qué? ¡Fiesta! \u2013 50 € value"


def test_encoding_option_overrides_detection(project: Path) -> None:
    table = read_export(FIXTURES / "windows-1252.csv", encoding="mac_roman")
    assert table.notice == "read as mac_roman (--encoding)."
    names = [r.cells["name"] for r in table.rows]
    assert "Café Crème 250 g" not in names  # read as told, even though it is wrong


def test_an_unknown_encoding_name_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(
        capsys, "import", "--from-csv", str(REAL), "--out", "c", "--encoding", "klingon"
    )
    assert code == 64
    assert "--encoding 'klingon' is not a text encoding" in err


def test_tax_mode_that_does_not_apply_is_said(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(
        capsys, "import", "--from-csv", str(REAL), "--out", "catalog", "--tax-mode", "exclusive"
    )
    assert code == 0
    assert "--tax-mode exclusive does not apply: the export has a retail_price column" in err


# -- point 3: a category level whose name holds "/" ---------------------------------------------


def test_a_live_category_with_a_slash_imports_as_a_list_and_plans_clean(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "catalog").mkdir()
    (project / "catalog" / "p.yaml").write_text(
        "products:\n"
        "  - {handle: bulleit, name: Bulleit, sku: B1, price: 5, "
        "category: [Spirits, Bourbon/Whiskey]}\n"
        "  - {handle: rye, name: Rye, sku: R1, price: 5, category: Spirits / Bourbon / Rye}\n",
        encoding="utf-8",
    )
    code, out, err = cli(capsys, "plan")
    assert code == 0, err
    assert "new category Spirits / Bourbon/Whiskey (inside category Spirits)" in out
    assert "new category Spirits / Bourbon (inside category Spirits)" in out  # for Rye only
    assert cli(capsys, "apply", "--auto-approve")[0] == 0
    live = {p["handle"]: p for p in store_rows(project, capsys)}
    assert live["bulleit"]["category"] == ["Spirits", "Bourbon/Whiskey"]
    assert live["rye"]["category"] == "Spirits / Bourbon / Rye"
    code, out, _ = cli(capsys, "--catalog", "live", "plan", "--detailed-exitcode")
    assert code == 0 and "No changes." in out


# -- point 5: one text normalization ------------------------------------------------------------


def test_crlf_and_end_spaces_in_the_store_plan_no_change(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reconciler.providers.asgi import SandboxTransport
    from reconciler.providers.xseries.client import Client
    from reconciler.providers.xseries.sandbox import SandboxStore

    (project / ".catalog").mkdir()
    store = SandboxStore(project / ".catalog" / "sandbox.db", token="sandbox-token")
    with Client("http://sandbox", "sandbox-token", transport=SandboxTransport(store)) as client:
        client.create_product(
            {
                "name": "Mulcher Life 20L ",
                "handle": "Mulcher-life",
                "sku": "MUL-01",
                "description": "Garden mulcher.\r\nKeeps roots cool.\r\n",
                "supplier_code": "GW-T1\r",
                "price_including_tax": 24,
            }
        )
    store.close()
    export = project / "export.csv"
    export.write_bytes(
        b"handle,sku,name,description,supplier_code,retail_price\r\n"
        b'Mulcher-life,MUL-01,Mulcher Life 20L ,"Garden mulcher.\r\nKeeps roots cool.\r\n",'
        b"GW-T1,24.00\r\n"
    )
    assert cli(capsys, "import", "--from-csv", str(export), "--out", "catalog")[0] == 0
    code, out, err = cli(capsys, "plan")
    assert code == 0, err
    # Adopted as it is: nothing to write, no phantom update of name, description or code.
    assert "= Mulcher-life: already in the store and identical" in out
    assert "0 to update" in out and "~" not in out
    # The live import reads the store the same way.
    assert cli(capsys, "import", "--out", "live")[0] == 0
    code, out, _ = cli(capsys, "--catalog", "live", "plan")
    assert code == 0 and "0 to update" in out and "~" not in out, out


# -- point 1: what a handle may be --------------------------------------------------------------


@pytest.mark.parametrize("handle", ["../../x", "WATSON", "watson", "a/b", "Café", "."])
def test_image_folders_are_safe_and_distinct_whatever_the_handle(handle: str) -> None:
    path = image_path(handle, 1, "jpg")
    folder = path.split("/")[1]
    assert path.count("/") == 2 and folder not in (".", "..") and folder.isascii()
    assert image_path("WATSON", 1, "jpg") != image_path("watson", 1, "jpg")


def test_json_plan_keeps_real_handles(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "import", "--from-csv", str(REAL), "--out", "catalog")
    code, out, _ = cli(capsys, "plan", "--format", "json")
    assert code == 0
    keys = {c["key"] for c in json.loads(out)["changes"] if c["kind"] == "product"}
    assert keys == set(REAL_HANDLES)


# -- point 4: no user text is interpreted -------------------------------------------------------


def test_csv_messages_and_errors_print_literally(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ["handle,sku,name,retail_price"]
    lines += [f"p{i},S{i},Mug [red]{i}:heart:,5" for i in range(2, 100)]
    lines.append("bad,B,Mug :heart: Edition [red] [/],abc")  # line 100
    (project / "products.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, err = cli(capsys, "import", "--from-csv", "products.csv", "--out", "catalog")
    assert code == 1
    assert "products.csv:100: error: retail_price 'abc' is not a number" in err
    assert "💯" not in err and "❤" not in err
    code, _, err = cli(capsys, "import", "--from-csv", "[red]x:heart:.csv", "--out", "o2")
    assert code == 1
    assert "CSV file [red]x:heart:.csv does not exist" in err


def test_apply_shows_the_plan_with_names_as_written(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "catalog").mkdir()
    (project / "catalog" / "p.yaml").write_text(
        "products:\n"
        "  - handle: mug-heart\n"
        "    name: 'Mug :heart: Edition [red]'\n"
        "    description: 'Says [bold]love[/] :smile:'\n"
        "    sku: MUG-H\n"
        "    price: 12\n"
        "    tags: ['[red]']\n",
        encoding="utf-8",
    )
    code, _, err = cli(capsys, "apply", "--auto-approve")
    assert code == 0, err
    assert '+ name "Mug :heart: Edition [red]"' in err
    assert '+ description "Says [bold]love[/] :smile:"' in err
    assert "+ new tag [red]" in err
    assert "❤" not in err and "😄" not in err
    code, out, _ = cli(capsys, "plan", "--format", "markdown")
    assert code == 0 and "❤" not in out


# -- what real stores hold but a catalog cannot declare: reconciled, never a failed import -------


def test_spellings_parent_categories_and_shared_barcodes_import_as_warnings(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "messy.csv").write_text(
        "handle,sku,name,product_category,variant_option_one_name,variant_option_one_value,"
        "retail_price,barcode\n"
        "a,A1,A,Apparel / Tops,Size,S,5,9300000000019\n"
        "a,A2,A,Apparel / Tops,Size,M,5,\n"
        "b,B1,B,apparel / TOPS / Tees,SIZE,S,5,9300000000019\n"
        "c,C1,C,Home,,,5,\n",
        encoding="utf-8",
    )
    code, _, err = cli(capsys, "import", "--from-csv", "messy.csv", "--out", "catalog")
    assert code == 0, err  # the written catalog validates
    products = declared(project / "catalog")
    assert sorted(products) == ["a", "b", "c"]
    assert products["b"]["options"] == ["Size"]  # one spelling per option name
    assert products["b"]["category"] == "Apparel / Tops / Tees"  # levels spelled as first seen
    assert "category" not in products["a"]  # a product cannot sit on a parent category
    assert "barcode" not in products["b"]["variants"][0]  # the first product keeps it
    assert 'category "Apparel / Tops" of "a" has subcategories' in err
    assert 'barcode \'9300000000019\' of "B1" ("b") is also the barcode' in err


def test_a_utf16_export_with_tabs_is_read(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Excel's "Unicode text": UTF-16 with a byte-order mark, tab-separated.
    text = "handle\tsku\tname\tretail_price\r\nCafe\tC1\tCafé Crème\t4.50\r\n"
    (project / "export.txt").write_bytes(text.encode("utf-16"))
    code, _, err = cli(capsys, "import", "--from-csv", "export.txt", "--out", "catalog")
    assert code == 0, err
    assert "export.txt: the file is UTF-16; read it as such." in err
    assert declared(project / "catalog")["Cafe"]["name"] == "Café Crème"
