"""The shape the design promises: a core that knows no platform, providers behind one interface
and one registry, I/O at the edges, click only in the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from reconciler import providers
from reconciler.providers import REGISTRY, SANDBOXES

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"
PROVIDERS = PACKAGE / "providers"
PROVIDER_PACKAGES = sorted(p.parent.name for p in PROVIDERS.glob("*/__init__.py"))
MODULES = sorted(PACKAGE.rglob("*.py"))

# Modules that decide things: values in, values out, no platform.
PURE = [
    "model",
    "rules",
    "diff",
    "live",
    "plan",
    "planner",
    "render",
    "staleness",
    "importer",
    "guardrails",
    "ownership",
]
IO_LIBRARIES = {"httpx", "sqlite_utils", "sqlite3", "click", "starlette", "uvicorn"}
# Where httpx may be imported: the HTTP edges.
HTTPX_SHARED = {"providers/http.py", "providers/asgi.py", "github/rest.py"}
HTTPX_IN_A_PROVIDER = ("client.py", "auth.py", "sandbox/")
# Provider packages not registered yet, and why: each is a decision, not an oversight.
NOT_YET_REGISTERED: dict[str, str] = {}
# Modules that still reach a provider directly, and why (each one is work left).
DIRECT: dict[str, str] = {}
# Every registered provider has the same modules (pre-commit's languages are all alike).
SAME_SHAPE = {"__init__.py", "provider.py", "target.py", "client.py", "refresh.py", "normalize.py"}


def rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def module_name(path: Path) -> str:
    return "reconciler." + rel(path).removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def imported(path: Path) -> set[str]:
    """Every module (and `from package import name` target) the file imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def roots(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported(path)}


def provider_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] == ["reconciler", "providers"] and len(parts) > 2:
        return parts[2] if parts[2] in PROVIDER_PACKAGES else None
    return None


def test_the_registry_lists_every_provider_package() -> None:
    assert sorted(SANDBOXES) == sorted(REGISTRY)
    assert sorted([*REGISTRY, *NOT_YET_REGISTERED]) == PROVIDER_PACKAGES


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_provider_loads_and_is_named_so(name: str) -> None:
    provider = providers.get(name)
    assert provider.name == name
    assert providers.sandbox(name) is provider.sandbox()


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_no_module_imports_a_provider_it_is_not_part_of(path: Path) -> None:
    if rel(path) in DIRECT:
        return
    own = provider_of(module_name(path))
    foreign = sorted(m for m in imported(path) if provider_of(m) not in (None, own))
    assert not foreign, (
        f"reconciler/{rel(path)} imports {foreign}: the core reaches a provider only through "
        "reconciler.providers.get(), and a provider never imports another"
    )


@pytest.mark.parametrize("name", PURE)
def test_pure_modules_import_no_io_library_and_no_edge(name: str) -> None:
    path = PACKAGE / f"{name}.py"
    assert path.exists(), f"reconciler/{name}.py is part of the pure core and must exist"
    assert not roots(path) & IO_LIBRARIES, f"reconciler/{name}.py imports an I/O library"
    edges = ("reconciler.providers", "reconciler.state", "reconciler.cli", "reconciler.api")
    leaked = sorted(m for m in imported(path) if m.startswith(edges))
    assert not leaked, f"reconciler/{name}.py imports {leaked}; keep I/O and platforms at the edges"


def test_the_provider_interface_imports_no_io_library() -> None:
    assert not roots(PROVIDERS / "base.py") & IO_LIBRARIES


def test_only_the_http_edges_import_httpx() -> None:
    def allowed(path: Path) -> bool:
        parts = rel(path).split("/", 2)  # providers/<name>/<inside>
        inside = parts[2] if parts[0] == "providers" and len(parts) == 3 else ""
        return rel(path) in HTTPX_SHARED or inside.startswith(HTTPX_IN_A_PROVIDER)

    offenders = [rel(p) for p in MODULES if "httpx" in roots(p) and not allowed(p)]
    assert offenders == []


def test_only_the_cli_imports_click() -> None:
    offenders = [rel(p) for p in MODULES if "click" in roots(p) and not rel(p).startswith("cli/")]
    assert offenders == []


def test_only_diff_imports_deepdiff() -> None:
    assert [rel(p) for p in MODULES if "deepdiff" in roots(p)] == ["diff.py"]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_provider_has_the_same_modules(name: str) -> None:
    package = PROVIDERS / name
    present = {p.name for p in package.iterdir()}
    assert present >= SAME_SHAPE, f"providers/{name} lacks {sorted(SAME_SHAPE - present)}"
    assert (package / "sandbox" / "__init__.py").exists(), f"providers/{name} has no sandbox"
