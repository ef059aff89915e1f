"""The library's public surface (`reconciler.__all__`), checked like httpx's exported-members
test: every name is listed once, resolves to the object its home module defines, and shows in
`dir()`; and importing the package loads no HTTP library, server or provider."""

from __future__ import annotations

import importlib
import subprocess
import sys

import reconciler


def test_all_lists_exactly_the_exported_names_once() -> None:
    assert len(reconciler.__all__) == len(set(reconciler.__all__))
    assert set(reconciler.__all__) == set(reconciler._EXPORTS)


def test_every_public_name_is_its_home_modules_object() -> None:
    for name in reconciler.__all__:
        home = importlib.import_module(f"reconciler.{reconciler._EXPORTS[name]}")
        assert getattr(reconciler, name) is getattr(home, name), name
        assert name in dir(reconciler)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        reconciler.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("reconciler.no_such_name resolved")


def test_importing_the_package_loads_no_provider_or_io_library() -> None:
    code = (
        "import sys, reconciler; print(sorted(m for m in sys.modules if m.startswith("
        "('httpx', 'starlette', 'uvicorn', 'reconciler.providers', 'reconciler.cli'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
