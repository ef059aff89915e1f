"""The shape the design promises: a pure core, I/O at the edges, click only in the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"

# Modules that decide things: they take values and return values.
PURE = [
    "live",
    "model",
    "plan",
    "planner",
    "rules",
    "normalize",
    "diff",
    "render",
    "importer",
    "guardrails",
    "ownership",
]
IO_LIBRARIES = {"httpx", "sqlite_utils", "sqlite3", "click", "starlette", "uvicorn"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("name", PURE)
def test_pure_modules_import_no_io_library(name: str) -> None:
    path = PACKAGE / f"{name}.py"
    assert path.exists(), f"reconciler/{name}.py is part of the pure core and must exist"
    leaked = imported_roots(path) & IO_LIBRARIES
    assert not leaked, f"reconciler/{name}.py imports {sorted(leaked)}; keep I/O at the edges"


@pytest.mark.parametrize("name", PURE)
def test_pure_modules_do_not_import_edges(name: str) -> None:
    edges = {
        "reconciler.providers.xseries.client",
        "reconciler.state",
        "reconciler.cli",
        "reconciler.providers.xseries.sandbox",
    }
    found = {m for m in imported_modules(PACKAGE / f"{name}.py") if m.split(".")[:2]}
    leaked = {m for m in found if any(m == e or m.startswith(e + ".") for e in edges)}
    assert not leaked, f"reconciler/{name}.py imports edge modules {sorted(leaked)}"


def test_only_the_cli_imports_click() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "cli" not in path.relative_to(PACKAGE).parts[:1] and "click" in imported_roots(path)
    ]
    assert offenders == []


def test_only_diff_imports_deepdiff() -> None:
    users = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "deepdiff" in imported_roots(path)
    )
    assert users == ["diff.py"]


def test_only_the_client_and_the_sandbox_import_httpx() -> None:
    allowed = {"client.py", "rest.py", "auth.py", "asgi.py"}
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "httpx" in imported_roots(path)
        and path.name not in allowed
        and "sandbox" not in path.relative_to(PACKAGE).parts
    ]
    assert offenders == []
