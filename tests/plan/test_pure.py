"""The planning core is pure: no network, database, CLI or file access in these modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "reconciler"
PURE = ["live", "diff", "plan", "planner", "render", "staleness"]
FORBIDDEN_MODULES = {"httpx", "sqlite_utils", "sqlite3", "click", "os", "pathlib", "shutil", "io"}
FORBIDDEN_CALLS = {
    "open",
    "read_text",
    "write_text",
    "read_bytes",
    "write_bytes",
    "unlink",
    "mkdir",
}


@pytest.mark.parametrize("name", PURE)
def test_pure_module_touches_no_io(name: str) -> None:
    tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
    imported: set[str] = set()
    calls: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
            if node.module.startswith(
                ("reconciler.providers.xseries.client", "reconciler.state", "reconciler.cli")
            ):
                imported.add(node.module)
        elif isinstance(node, ast.Call):
            func = node.func
            calls.add(func.id if isinstance(func, ast.Name) else getattr(func, "attr", ""))
    assert not imported & FORBIDDEN_MODULES, f"{name} imports {imported & FORBIDDEN_MODULES}"
    assert not {m for m in imported if m.startswith("reconciler.")}, f"{name} imports an edge"
    assert not calls & FORBIDDEN_CALLS, f"{name} calls {calls & FORBIDDEN_CALLS}"
