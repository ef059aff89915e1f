"""`catalog import` from a live store with images: the files are downloaded, recorded as
uploaded, and the next plan and apply neither upload nor write anything."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "catalog"


def catalog(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTSPEED_", "CATALOG_"))}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_downloads_images_and_the_round_trip_uploads_nothing(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE, tmp_path / "catalog")
    seeded = catalog(tmp_path, "apply", "--auto-approve")
    assert seeded.returncode == 0, seeded.stderr
    declared = {
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (tmp_path / "catalog" / "images").rglob("*")
        if p.is_file()
    }

    # A new team: a fresh state file beside the same store, importing into an empty directory.
    (tmp_path / ".catalog" / "state.db").unlink()
    imported = catalog(tmp_path, "--catalog", "imported", "import", "--out", "imported")
    assert imported.returncode == 0, imported.stderr
    files = [p for p in (tmp_path / "imported" / "images").rglob("*") if p.is_file()]
    assert {hashlib.sha256(p.read_bytes()).hexdigest() for p in files} == declared
    assert len(files) == len(declared)

    planned = catalog(tmp_path, "--catalog", "imported", "plan", "--format", "json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["summary"] == {"adopt": 23}
    assert plan["estimate"]["requests"] == 0
    kinds = {c["kind"] for top in plan["changes"] for c in top.get("children", [])}
    actions = {
        c["action"]
        for top in plan["changes"]
        for c in top.get("children", [])
        if c["kind"] == "image"
    }
    assert "image" not in kinds or actions <= {"adopt", "no-op"}

    applied = catalog(tmp_path, "--catalog", "imported", "apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert "0 write requests" in applied.stdout + applied.stderr
    again = catalog(tmp_path, "--catalog", "imported", "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
