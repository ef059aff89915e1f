"""Fixtures for the catalog tests: a scratch catalog directory to write files into."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import Write

# `bench` is a top-level package of the checkout, not installed: `python -m pytest` (./run test)
# has the checkout on sys.path, a bare `pytest` does not.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """tmp_path as the working directory, so problems name files as `catalog/x.yaml`."""
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


@pytest.fixture
def catalog_dir(workdir: Path) -> Path:
    path = workdir / "catalog"
    path.mkdir()
    return path


@pytest.fixture
def write(catalog_dir: Path) -> Write:
    """write("a.yaml", text) puts dedented text (or bytes) in the catalog directory."""

    def _write(name: str, text: str | bytes) -> Path:
        path = catalog_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write
