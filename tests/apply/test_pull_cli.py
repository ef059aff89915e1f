"""`catalog pull` as people run it: apply, someone edits the store, pull, and the plan is empty."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import httpx

from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State
from reconciler.state.ledger import Ledger

from .helpers import EXAMPLE, TOKEN, Cli, writes


def _edit_store(cli: Cli, remote_id: str, body: dict[str, object]) -> None:
    """An out-of-band edit, as the store's back office would make it."""
    with httpx.Client(base_url=cli.env["LIGHTSPEED_BASE_URL"]) as http:
        answer = http.put(
            f"/api/2.1/products/{remote_id}",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert answer.status_code == 200, answer.text


def _remote_id(cli: Cli, kind: str, key: str) -> str:
    with State(cli.state) as state:
        found = Ledger(state).managed(kind)[key].remote_id
    assert found is not None
    return found


def _changed_lines(name: str, catalog: Path) -> tuple[list[str], list[str]]:
    before = (EXAMPLE / name).read_text().splitlines()
    after = (catalog / name).read_text().splitlines()
    diff = list(difflib.unified_diff(before, after, lineterm="", n=0))
    removed = [d[1:] for d in diff if d.startswith("-") and not d.startswith("---")]
    added = [d[1:] for d in diff if d.startswith("+") and not d.startswith("+++")]
    return removed, added


def test_pull_after_a_store_edit_makes_the_next_plan_empty(cli: Cli, store: SandboxStore) -> None:
    assert cli.run("apply", "--auto-approve").returncode == 0
    _edit_store(
        cli, _remote_id(cli, "variant", "TEE-M-BLK"), {"details": {"price_including_tax": 29.5}}
    )
    _edit_store(
        cli,
        _remote_id(cli, "product", "v-neck-tee"),
        {"common": {"description": "<p>Edited in the back office</p>"}},
    )
    drift = cli.run("plan", "--detailed-exitcode")
    assert drift.returncode == 2, drift.stdout + drift.stderr
    store.reset_stats()
    pulled = cli.run("pull", "--format", "json")
    assert pulled.returncode == 0, pulled.stderr
    assert writes(store) == 0  # pull never writes to the store
    report = json.loads(pulled.stdout)
    assert report["format_version"] == 2
    assert sorted((c["key"], c["field"], c["after"]) for c in report["changes"]) == [
        ("TEE-M-BLK", "price", "29.50"),
        ("v-neck-tee", "description", "<p>Edited in the back office</p>"),
    ]
    removed, added = _changed_lines("apparel.yaml", cli.catalog)
    assert removed == [
        '      - {sku: TEE-M-BLK, options: {Size: M, Colour: Black}, barcode: "9300000000064"}',
        '    description: "<p>The Classic Tee with a relaxed V neck.</p>"',
    ]
    assert added == [
        '      - {sku: TEE-M-BLK, options: {Size: M, Colour: Black}, barcode: "9300000000064", '
        "price: 29.50}",
        '    description: "<p>Edited in the back office</p>"',
    ]
    for other in ("accessories.yaml", "footwear.yaml", "home.yaml", "catalog.yaml"):
        assert (cli.catalog / other).read_bytes() == (EXAMPLE / other).read_bytes()
    after = cli.run("plan", "--detailed-exitcode")
    assert after.returncode == 0, after.stdout + after.stderr


def test_pull_keeps_catalog_edits_not_yet_applied(cli: Cli) -> None:
    assert cli.run("apply", "--auto-approve").returncode == 0
    apparel = cli.catalog / "apparel.yaml"
    apparel.write_text(apparel.read_text().replace("supply_price: 8.00", "supply_price: 8.25", 1))
    pulled = cli.run("pull")
    assert pulled.returncode == 0, pulled.stderr
    assert "supply_price: 8.25" in apparel.read_text()
    assert "not drift" in pulled.stdout and "Nothing to write" in pulled.stdout


def test_pull_only_the_targeted_product_and_field(cli: Cli) -> None:
    assert cli.run("apply", "--auto-approve").returncode == 0
    _edit_store(
        cli, _remote_id(cli, "variant", "TEE-M-BLK"), {"details": {"price_including_tax": 29.5}}
    )
    _edit_store(
        cli,
        _remote_id(cli, "product", "v-neck-tee"),
        {"common": {"description": "<p>Edited in the back office</p>"}},
    )
    pulled = cli.run("pull", "--target", "v-neck-tee", "--field", "price")
    assert pulled.returncode == 0, pulled.stderr
    assert "Nothing to write" in pulled.stdout
    pulled = cli.run("pull", "--target", "TEE-M-BLK", "--field", "price")
    assert pulled.returncode == 0, pulled.stderr
    assert "TEE-M-BLK: price 25.00 -> 29.50" in pulled.stdout
    assert "Edited in the back office" not in (cli.catalog / "apparel.yaml").read_text()
    unknown = cli.run("pull", "--field", "colour")
    assert unknown.returncode == 64 and "--field 'colour'" in unknown.stderr


def test_a_file_that_would_become_invalid_is_left_untouched(cli: Cli) -> None:
    """A barcode typed in the back office with a wrong check digit: the catalog refuses it."""
    assert cli.run("apply", "--auto-approve").returncode == 0
    codes = [{"type": "CUSTOM", "code": "TEE-S-BLK"}, {"type": "EAN", "code": "9300000000058"}]
    _edit_store(cli, _remote_id(cli, "variant", "TEE-S-BLK"), {"details": {"product_codes": codes}})
    _edit_store(
        cli,
        _remote_id(cli, "product", "trail-runner"),
        {"common": {"description": "<p>Edited in the back office</p>"}},
    )
    pulled = cli.run("pull")
    assert pulled.returncode == 1
    assert (cli.catalog / "apparel.yaml").read_bytes() == (EXAMPLE / "apparel.yaml").read_bytes()
    [sentence] = [line for line in pulled.stdout.splitlines() if "left untouched" in line]
    assert "apparel.yaml was left untouched: with these changes it would be invalid (" in sentence
    assert 'barcode "9300000000058" has a wrong check digit' in sentence
    # The other file's drift was taken.
    assert "Edited in the back office" in (cli.catalog / "footwear.yaml").read_text()
