"""`settings.stores` entries may name their platform (`rseries:boutique`): the CI matrix gets
the store names, and a command run for a store (LIGHTSPEED_STORE) talks to its platform unless
LIGHTSPEED_PLATFORM says otherwise."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.cli.common import with_platform
from reconciler.github import store_platforms

ROOT = "settings:\n  stores: [acme, 'rseries:Boutique']\n"
# A GTIN-8: X-Series holds it, R-Series cannot.
PRODUCTS = "products:\n  - handle: mug\n    name: Mug\n    sku: MUG\n    barcode: '96385074'\n"


def catalog(tmp_path: Path) -> Path:
    directory = tmp_path / "catalog"
    directory.mkdir()
    (directory / "catalog.yaml").write_text(ROOT)
    (directory / "mug.yaml").write_text(PRODUCTS)
    return directory


def test_the_matrix_gets_the_store_names(tmp_path: Path) -> None:
    directory = catalog(tmp_path)
    assert store_platforms(directory) == {"acme": None, "Boutique": "rseries"}
    result = CliRunner().invoke(
        cli,
        ["--catalog", str(directory), "ci", "stores"],
        env={"LIGHTSPEED_STORE": "", "CATALOG_STORES": "", "GITHUB_OUTPUT": ""},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == ["acme", "boutique"]


def test_a_store_runs_on_the_platform_its_entry_names(tmp_path: Path) -> None:
    directory = catalog(tmp_path)

    def problems(**env: str) -> int:
        base = {"LIGHTSPEED_PLATFORM": "", "LIGHTSPEED_STORE": ""}
        args = ["--catalog", str(directory), "--state", str(tmp_path / "s.db"), "validate"]
        out = CliRunner().invoke(cli, [*args, "--no-cache", "--format", "json"], env=base | env)
        return len(json.loads(out.stdout)["problems"])

    assert problems() == 0
    assert problems(LIGHTSPEED_STORE="acme") == 0
    assert problems(LIGHTSPEED_STORE="boutique") == 1  # R-Series: the GTIN-8 is refused
    assert problems(LIGHTSPEED_STORE="boutique", LIGHTSPEED_PLATFORM="xseries") == 0
    assert with_platform({"LIGHTSPEED_STORE": "Boutique"}, directory)["LIGHTSPEED_PLATFORM"] == (
        "rseries"
    )
    assert "LIGHTSPEED_PLATFORM" not in with_platform({"LIGHTSPEED_STORE": "acme"}, directory)
