"""The wheel a user installs: the schema inside it is the top-level schemas/ file, byte for byte,
and every module of the source tree is in it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_ships_the_one_schema_and_every_module(tmp_path: Path) -> None:
    # Built from a copy, so setuptools' build/ and egg-info never land in the checkout; no build
    # isolation: setuptools and wheel come from the lock, and nothing is downloaded.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for folder in ("reconciler", "schemas"):
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [
            sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
            "--quiet", "--wheel-dir", str(tmp_path), str(source),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for schema in sorted((ROOT / "schemas").glob("*.json")):
            inside = f"reconciler/schemas/{schema.name}"
            assert archive.read(inside) == schema.read_bytes(), inside
        assert "reconciler/py.typed" in names
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "reconciler").rglob("*.py")}
    assert modules - names == set()


def test_the_schema_exists_once_in_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "*.schema.json"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked == ["schemas/catalog-file.schema.json"]
