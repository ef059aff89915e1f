"""The in-place YAML editor: only the edited values change, everything else stays byte for byte."""

from __future__ import annotations

import difflib
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.catalog import catalog_files, parse_yaml, validate_directory
from reconciler.yamledit import Edit, EditError, edit_text

from .strategies import any_text

EXAMPLE = Path(__file__).resolve().parents[2] / "catalog"


def _diff(before: str, after: str) -> tuple[list[str], list[str]]:
    lines = list(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0))
    removed = [d[1:] for d in lines if d.startswith("-") and not d.startswith("---")]
    added = [d[1:] for d in lines if d.startswith("+") and not d.startswith("+++")]
    return removed, added


def _gtin8(n: int) -> str:
    """A valid GTIN-8 (check digit computed), different for each n."""
    body = f"{9600000 + n:07d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def _example_edits(data: dict[str, Any], serial: list[int]) -> list[Edit]:
    """In every product: the price up by 1.11 (added when missing), the first variant's
    supply price set (usually added), a tag added, the barcode of the last variant changed."""
    edits: list[Edit] = []
    for i, p in enumerate(data.get("products") or ()):
        price = Decimal(str(p.get("price", "1"))) + Decimal("1.11")
        edits.append(Edit(("products", i, "price"), price))
        edits.append(Edit(("products", i, "tags"), [*(p.get("tags") or []), "edited"]))
        variants = p.get("variants") or []
        if variants:
            edits.append(Edit(("products", i, "variants", 0, "supply_price"), Decimal("2.50")))
            serial[0] += 1
            last = ("products", i, "variants", len(variants) - 1, "barcode")
            edits.append(Edit(last, _gtin8(serial[0])))
    for j, _brand in enumerate(data.get("brands") or ()):
        edits.append(Edit(("brands", j, "description"), f"Edited: {j}"))
    return edits


def test_every_example_catalog_changes_only_the_edited_values(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, catalog)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "-A"], check=True)
    total = 0
    serial = [0]
    for path in catalog_files(catalog):
        text = path.read_text()
        edits = _example_edits(parse_yaml(text), serial)  # type: ignore[arg-type]
        path.write_text(edit_text(text, edits))
        total += len(edits)
    assert total > 40
    assert not validate_directory(catalog).problems
    diff = subprocess.run(
        ["git", "-C", str(tmp_path), "diff", "--unified=0", "--no-color"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    removed = [d[1:] for d in diff.splitlines() if d.startswith("-") and not d.startswith("---")]
    added = [d[1:] for d in diff.splitlines() if d.startswith("+") and not d.startswith("+++")]
    # Every changed line holds an edited value; nothing else moved.
    for line in added:
        assert any(mark in line for mark in ("price", "edited", 'barcode: "960', "Edited:")), line
    # A removed line comes back with only its values changed (same key, same indentation).
    for line in removed:
        key = line.split(":", 1)[0]
        assert any(a.split(":", 1)[0] == key for a in added), line
    # Added lines without a removed twin are new keys, each written where the mapping is.
    apparel = (catalog / "apparel.yaml").read_text()
    assert "# yaml-language-server" in apparel.splitlines()[0]
    assert (
        '{sku: TEE-S-BLK, options: {Size: S, Colour: Black}, barcode: "9300000000057", '
        "supply_price: 2.50}" in apparel
    )
    assert "    tags: [summer, cotton, organic, bestseller, edited]" in apparel
    home = (catalog / "home.yaml").read_text()
    assert "  - handle: gift-wrap              # a simple product: a sku, no options" in home


def test_comments_quotes_and_line_endings_are_kept() -> None:
    text = (
        "\ufeffproducts:\r\n"
        "  - handle: a   # the first\r\n"
        "    name: 'A'\r\n"
        '    price: "25.00"   # in quotes on purpose\r\n'
        "    tags:\r\n"
        "      - summer   # keep me\r\n"
        "      - old\r\n"
        "    sku: A-1\r\n"
    )
    out = edit_text(
        text,
        [
            Edit(("products", 0, "price"), Decimal("27.50")),
            Edit(("products", 0, "name"), "It's A"),
            Edit(("products", 0, "tags"), ["summer", "new"]),
            Edit(("products", 0, "barcode"), "0012345678905"),
        ],
    )
    assert out == (
        "\ufeffproducts:\r\n"
        "  - handle: a   # the first\r\n"
        "    name: 'It''s A'\r\n"
        '    price: "27.50"   # in quotes on purpose\r\n'
        "    tags:\r\n"
        "      - summer   # keep me\r\n"
        "      - new\r\n"
        "    sku: A-1\r\n"
        '    barcode: "0012345678905"\r\n'
    )


def test_an_alias_is_replaced_and_its_anchor_kept() -> None:
    text = "a: &p 25.00\nb: *p\n"
    assert edit_text(text, [Edit(("b",), Decimal("26.00"))]) == "a: &p 25.00\nb: 26.00\n"


def test_a_merged_value_is_overridden_in_the_mapping() -> None:
    text = "base: &base {price: 1.00, name: x}\nitem:\n  <<: *base\n  sku: A\n"
    out = edit_text(text, [Edit(("item", "price"), Decimal("2.00"))])
    assert (
        out == "base: &base {price: 1.00, name: x}\nitem:\n  <<: *base\n  sku: A\n  price: 2.00\n"
    )


def test_a_value_shared_through_an_anchor_is_refused() -> None:
    text = "a: &p {price: 1.00}\nb: *p\n"
    with pytest.raises(EditError, match="alias"):
        edit_text(text, [Edit(("b", "price"), Decimal("2.00"))])
    with pytest.raises(EditError, match="change other values"):
        edit_text(text, [Edit(("a", "price"), Decimal("2.00"))])


def test_text_that_plain_would_misread_is_quoted() -> None:
    text = "k: abc\nn: 'x'\n"
    out = edit_text(text, [Edit(("k",), "yes"), Edit(("n",), "0123"), Edit(("m",), "a: b")])
    assert parse_yaml(out) == {"k": "yes", "n": "0123", "m": "a: b"}
    assert out == 'k: "yes"\nn: \'0123\'\nm: "a: b"\n'


def test_a_block_scalar_becomes_a_quoted_value_on_its_line() -> None:
    text = "d: |\n  one\n  two\nnext: 1\n"
    out = edit_text(text, [Edit(("d",), "three")])
    assert out == 'd: "three"\nnext: 1\n'


def test_removed_diff_is_one_line_per_value_in_a_flow_mapping() -> None:
    text = "v:\n  - {sku: A, price: 1.00}  # note\n  - {sku: B}\n"
    out = edit_text(
        text, [Edit(("v", 0, "price"), Decimal("2")), Edit(("v", 1, "price"), Decimal("3.00"))]
    )
    removed, added = _diff(text, out)
    assert added == ["  - {sku: A, price: 2}  # note", "  - {sku: B, price: 3.00}"]
    assert len(removed) == 2


# Where a value can stand: plain in a block mapping, double-quoted and plain inside flow
# mappings, and a key the mapping lacks (block and flow).
PLACES = [
    ("products", 0, "supplier_code"),
    ("products", 0, "variants", 0, "barcode"),
    ("products", 0, "variants", 1, "options", "Size"),
    ("products", 3, "supplier_code"),
    ("products", 1, "variants", 0, "supplier_code"),
    ("products", 0, "variants", 2, "supplier_code"),
]


@settings(max_examples=300, deadline=None)
@given(value=any_text, place=st.sampled_from(PLACES))
@example(value="M", place=PLACES[2])  # the value the file already holds there
def test_any_text_is_written_exactly_on_one_line(value: str, place: tuple[str | int, ...]) -> None:
    """Whatever text a store or supplier hands us, it reads back exactly, on one line."""
    text = (EXAMPLE / "apparel.yaml").read_text()
    out = edit_text(text, [Edit(place, value)])
    got: Any = parse_yaml(out)
    before: Any = parse_yaml(text)
    for part in place:
        got = got[part]
        before = before.get(part) if isinstance(before, dict) else before[part]
    assert got == value
    removed, added = _diff(text, out)
    if before == value:  # the file already says it: nothing to write
        assert out == text
    else:
        assert len(added) == 1 and len(removed) <= 1
