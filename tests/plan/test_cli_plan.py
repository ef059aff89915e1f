"""`catalog plan` end to end: the contract's exit codes, one JSON document, saved plans, secrets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reconciler.catalog import load_catalog
from reconciler.cli import main
from reconciler.planfile import read_plan
from reconciler.providers.asgi import SandboxTransport, serve_in_thread
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.sandbox import SandboxStore

from .helpers import seed_store

EXAMPLE = Path(__file__).resolve().parents[2] / "catalog"
SECRET = "tok-3c9b1f0e-never-print-me"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a copy of the example catalog and no store configured."""
    shutil.copytree(EXAMPLE, tmp_path / "catalog")
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


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["plan", *args])
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_plan_against_the_embedded_sandbox(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys)
    assert code == 0
    assert "Using the embedded sandbox store" in err and err.count("embedded sandbox store") == 1
    assert out.splitlines()[-1].startswith("Plan: 54 to create, 0 to update, 0 to deactivate.")
    assert "has subcategories" not in out  # the example catalog puts products on leaves only
    assert (project / ".catalog" / "sandbox.db").exists()


def test_detailed_exitcode(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--detailed-exitcode")[0] == 2
    (project / "empty").mkdir()
    (project / "empty" / "catalog.yaml").write_text("settings: {prune: none}\n")
    with pytest.raises(SystemExit) as info:
        main(["--catalog", "empty", "plan", "--detailed-exitcode"])
    assert info.value.code == 0
    assert "No changes." in capsys.readouterr().out


def test_json_is_exactly_one_document_on_stdout(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["format_version"] == 2 and doc["summary"]["create"] == 54
    assert "Read embedded sandbox" in err  # progress goes to stderr


def test_markdown(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--format", "markdown", "--target", "classic-tee")
    assert code == 0
    assert out.startswith("### Catalog plan")
    assert "<code>classic-tee</code>" in out and "<code>gift-wrap</code>" not in out


def test_usage_errors_exit_64(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--target", "NO-SUCH-SKU")[0] == 64
    assert run(capsys, "--format", "yaml")[0] == 64


def test_errors_exit_1_with_one_sentence(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--refresh", "off")
    assert code == 1 and out == ""
    assert err.splitlines()[-1] == (
        "Error: --refresh off needs a cache of this store, but it has never been read: run "
        "`catalog plan` without --refresh off first."
    )
    assert "Traceback" not in err
    (project / "catalog" / "broken.yaml").write_text("products: [{handle: X}]\n")
    code, _, err = run(capsys)
    assert code == 1 and "catalog validate" in err


def test_refresh_off_plans_from_the_cache_and_says_how_old(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys)
    code, out, err = run(capsys, "--refresh", "off")
    assert code == 0 and "Plan: 54 to create" in out
    assert "Planning from the cache only (--refresh off): the store was last read" in err


def test_saved_plan_against_a_live_store_over_a_socket_holds_no_secret(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SandboxStore(":memory:", token=SECRET, rate_limit=None)
    catalog = load_catalog(project / "catalog")
    with Client("http://seed.test", SECRET, transport=SandboxTransport(store)) as seeding:
        seed_store(seeding, catalog)
        [row] = seeding.products_by_sku("GIFT-WRAP")
        seeding.update_product(row["id"], details={"price_including_tax": 4.0})
    with serve_in_thread(store) as url:
        monkeypatch.setenv("LIGHTSPEED_BASE_URL", url)
        monkeypatch.setenv("LIGHTSPEED_TOKEN", SECRET)
        code, out, err = run(capsys, "--out", "plans/plan.json", "--detailed-exitcode")
    assert code == 2
    plan = read_plan(project / "plans" / "plan.json")
    [wrap] = [c for c in plan.changes if c.key == "gift-wrap"]
    assert [(f.field, f.before, f.after) for f in wrap.fields] == [("price", "4.00", "3.50")]
    assert plan.live_versions()["product:gift-wrap"] == wrap.live_version
    assert plan.store == url
    for blob in (
        (project / "plans" / "plan.json").read_bytes(),
        (project / ".catalog" / "state.db").read_bytes(),
        out.encode(),
        err.encode(),
    ):
        assert SECRET.encode() not in blob
    store.close()


def test_an_unchanged_replan_is_remembered_and_any_change_invalidates_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plan memo: same inputs give the same plan without recomputing; a store edit, a
    ledger change or a catalog edit each give a fresh plan."""
    from reconciler.state import State
    from reconciler.state.ledger import Ledger

    accessories = project / "catalog" / "accessories.yaml"
    accessories.write_text(
        accessories.read_text().replace(
            "category: Accessories\n", "category: Accessories / Small\n"
        )
    )
    (project / ".catalog").mkdir()
    store = SandboxStore(project / ".catalog" / "sandbox.db", rate_limit=None)
    with Client("http://seed.test", "sandbox-token", transport=SandboxTransport(store)) as seeding:
        seed_store(seeding, load_catalog(project / "catalog"))
        first = json.loads(run(capsys, "--format", "json")[1])
        # Adoptions, and image uploads (the seeding sent no images); nothing for gift-wrap.
        assert "gift-wrap" in {c["key"] for c in first["changes"] if c["action"] == "adopt"}
        again = json.loads(run(capsys, "--format", "json")[1])
        assert again["plan_digest"] == first["plan_digest"]

        [row] = seeding.products_by_sku("GIFT-WRAP")
        seeding.update_product(row["id"], details={"price_including_tax": 4.0})
        after_edit = json.loads(run(capsys, "--format", "json")[1])
    wrap = next(c for c in after_edit["changes"] if c["key"] == "gift-wrap")
    assert [(f["field"], f["before"], f["after"]) for f in wrap["fields"]] == [
        ("price", "4.00", "3.50")
    ]

    with State(project / ".catalog" / "state.db") as state:
        Ledger(state).record_managed(
            "product", "gift-wrap", remote_id=row["id"], applied={"price": "3.50"}
        )
    after_ledger = json.loads(run(capsys, "--format", "json")[1])
    wrap = next(c for c in after_ledger["changes"] if c["key"] == "gift-wrap")
    assert wrap["action"] == "update" and wrap["fields"][0]["drift"] is True

    home = project / "catalog" / "home.yaml"
    home.write_text(home.read_text().replace("price: 3.50", "price: 3.95"))
    after_catalog = json.loads(run(capsys, "--format", "json")[1])
    wrap = next(c for c in after_catalog["changes"] if c["key"] == "gift-wrap")
    assert wrap["fields"][0]["after"] == "3.95"
    store.close()
