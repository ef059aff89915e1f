"""`catalog validate`: output on stdout, exit codes, JSON, and never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli import main

from .helpers import EXAMPLE_CATALOG, Write

BAD = 'products:\n  - handle: " Gift Wrap"\n    name: Gift Wrap\n    prcie: 3.50\n'


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["--color", "never", *args])
    out, err = capsys.readouterr()
    code = exit_info.value.code
    assert isinstance(code, int)
    return code, out, err


def test_valid_catalog_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--catalog", str(EXAMPLE_CATALOG), "validate", "--no-cache")
    assert code == 0
    assert out == "No problems in 5 files; 23 products, 61 variants checked\n"
    assert err == ""


def test_problems_one_per_line_then_summary_exit_1(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    write("a.yaml", BAD)
    write("b.yaml", "brands:\n  - name: Acme\n")
    code, out, _ = run(capsys, "validate")
    assert code == 1
    assert out.splitlines() == [
        'catalog/a.yaml:2:13: products[0].handle: " Gift Wrap" is not a handle '
        '(for example "gift-wrap")',
        'catalog/a.yaml:4:5: products[0].prcie: unknown key "prcie" (did you mean "price"?)',
        "2 problems in 1 file; 1 product, 0 variants checked",
    ]


def test_json_format(write: Write, capsys: pytest.CaptureFixture[str]) -> None:
    write("a.yaml", BAD)
    code, out, err = run(capsys, "validate", "--format", "json")
    assert code == 1 and err == ""
    doc = json.loads(out)
    assert doc["format_version"] == 2
    assert doc["valid"] is False
    assert (doc["files"], doc["products"], doc["variants"]) == (1, 1, 0)
    assert doc["problems"][1] == {
        "file": "catalog/a.yaml",
        "line": 4,
        "column": 5,
        "path": "products[0].prcie",
        "message": 'unknown key "prcie"',
        "hint": 'did you mean "price"?',
    }
    assert doc["summary"] == "2 problems in 1 file; 1 product, 0 variants checked"


def test_json_for_a_valid_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--catalog", str(EXAMPLE_CATALOG), "validate", "--format=json")
    assert code == 0
    doc = json.loads(out)
    assert doc["valid"] is True and doc["problems"] == [] and doc["variants"] == 61


def test_cache_is_kept_beside_the_state_file(
    write: Write, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write("a.yaml", "products:\n  - {handle: a, name: A, sku: A}\n")
    code, _, _ = run(capsys, "--state", "st/state.db", "validate")
    assert code == 0
    assert (workdir / "st" / "parse-cache").is_file()
    code, _, _ = run(capsys, "--state", "other/state.db", "validate", "--no-cache")
    assert code == 0 and not (workdir / "other").exists()


def test_colour_marks_the_location(write: Write, capsys: pytest.CaptureFixture[str]) -> None:
    write("a.yaml", BAD)
    with pytest.raises(SystemExit):
        main(["--color", "always", "validate"])
    out = capsys.readouterr().out
    assert "\x1b[1mcatalog/a.yaml:2:13:\x1b[0m" in out


def test_bad_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", "--format", "yaml")
    assert code == 64
    assert "'yaml' is not one of 'text', 'json'" in err


def test_as_a_process_no_traceback_on_hostile_input(write: Write, workdir: Path) -> None:
    write("a.yaml", b"\xff\xfe" + "products: [".encode("utf-16-le"))
    write("b.yaml", "[" * 10_000)
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("catalog/a.yaml:1:1: not valid UTF-8")
    assert lines[1].startswith("catalog/b.yaml:1:21: nested deeper than 20 levels")
    assert lines[2] == "2 problems in 2 files; 0 products, 0 variants checked"


LOOKALIKES = (
    'brands: [{name: "Acme\\u00a0Co"}]\n'
    "products:\n"
    '  - {handle: tee, name: "\\u0421lassic Tee", sku: "TEE\\u200b"}\n'
    "  - handle: a\n    name: A\n    options: [Size]\n    variants:\n"
    "      - {sku: TEE-S, options: {Size: S}}\n"
    '      - {sku: "TEE\\u2011S", options: {Size: M}}\n'
)


def test_lookalike_characters_warn_and_lookalike_skus_clash(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    write("a.yaml", LOOKALIKES)
    code, out, _ = run(capsys, "validate")
    assert code == 1
    hint = "(retype it with plain characters, unless the store holds it this way)"
    assert out.splitlines() == [
        'catalog/a.yaml:9:15: products[1].variants[1].sku: "TEE\u2011S" looks the same as the '
        'SKU "TEE-S" at catalog/a.yaml:8:15; they differ only by U+2011 NON-BREAKING HYPHEN '
        "(SKUs that cannot be told apart on a label or screen are refused: declare each SKU "
        "once, typed the same way)",
        'catalog/a.yaml:1:17: warning: brands[0].name: brand "Acme\\xa0Co" contains U+00A0 '
        f"NO-BREAK SPACE, which looks like plain text but is not {hint}",
        'catalog/a.yaml:3:25: warning: products[0].name: product name "\u0421lassic Tee" '
        "contains U+0421 CYRILLIC CAPITAL LETTER ES, which looks like plain text but is not "
        f"{hint}",
        'catalog/a.yaml:3:50: warning: products[0].sku: SKU "TEE\\u200b" contains U+200B ZERO '
        f"WIDTH SPACE, which looks like plain text but is not {hint}",
        # The clashing SKU's message names its character: no warning repeats it.
        "1 problem in 1 file; 2 products, 2 variants checked (3 warnings)",
    ]


def test_warnings_alone_leave_the_catalog_valid(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    # A real store's untidy names import as they are: a warning, never a refusal.
    write("a.yaml", LOOKALIKES.replace('"TEE\\u2011S"', "TEE-M"))
    code, out, _ = run(capsys, "validate", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["valid"] is True and doc["problems"] == []
    assert [(w["path"], w["line"]) for w in doc["warnings"]] == [
        ("brands[0].name", 1),
        ("products[0].name", 3),
        ("products[0].sku", 3),
    ]


def test_a_refused_value_gets_no_lookalike_warning_as_well(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    # A SKU may not start with a space of any kind: refused, so not warned about as well.
    write("a.yaml", 'products:\n  - {handle: tee, name: Tee, sku: "\\u00a0X"}\n')
    code, out, _ = run(capsys, "validate")
    assert code == 1
    assert [line.split(": ")[1] for line in out.splitlines()[:-1]] == ["products[0].sku"]
