"""Helpers shared by the catalog tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reconciler.catalog import Report, validate_directory

EXAMPLE_CATALOG = Path(__file__).resolve().parents[2] / "catalog"

Write = Callable[[str, "str | bytes"], Path]


def problems(directory: Path = Path("catalog"), *, cache_path: Path | None = None) -> list[str]:
    """Every problem in the directory, as the one-line text `catalog validate` prints."""
    report = validate_directory(directory, cache_path=cache_path)
    return [str(p) for p in report.problems]


def check(directory: Path = Path("catalog"), *, cache_path: Path | None = None) -> Report:
    return validate_directory(directory, cache_path=cache_path)
