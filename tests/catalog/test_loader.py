"""Reading YAML safely: syntax, encoding, duplicate keys, limits, anchors, tags; and the model."""

from __future__ import annotations

import os
import time
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from reconciler.catalog import (
    MAX_ALIAS_VALUES,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    _careful_build,
    load_catalog,
)
from reconciler.errors import CatalogInvalid
from reconciler.model import Prune

from .helpers import EXAMPLE_CATALOG, Write, check, problems


def test_the_example_catalog_is_valid() -> None:
    report = check(EXAMPLE_CATALOG)
    assert report.problems == []
    assert report.catalog is not None
    assert (report.files, report.products, report.variants) == (5, 23, 61)
    assert report.summary() == "No problems in 5 files; 23 products, 61 variants checked"


def test_syntax_error_has_file_line_column(write: Write) -> None:
    write("a.yaml", 'products:\n  - handle: x\n    name: "unterminated\n')
    assert problems() == [
        "catalog/a.yaml:4:1: YAML syntax error: found unexpected end of stream "
        "(while scanning a quoted scalar at line 3)"
    ]


def test_tabs_get_a_hint(write: Write) -> None:
    write("a.yaml", "products:\n\t- handle: x\n")
    assert problems() == [
        "catalog/a.yaml:2:1: YAML syntax error: found character '\\t' that cannot start any "
        "token "
        "(indent with spaces: YAML does not allow tabs there)"
    ]


def test_invalid_utf8_is_located(write: Write) -> None:
    write("a.yaml", b"products:\n  - handle: caf\xe9\n")
    assert problems() == [
        "catalog/a.yaml:2:16: not valid UTF-8 (byte 0xe9) (save the file as UTF-8)"
    ]


def test_control_characters_are_located(write: Write) -> None:
    write("a.yaml", b'products:\n  - handle: a\n    name: "a\x00b"\n')
    assert problems() == [
        "catalog/a.yaml:3:13: the character U+0000 is not allowed in YAML (control characters "
        "are not allowed) (remove it, or write it as an escape inside double quotes)"
    ]


def test_a_utf8_bom_and_unicode_text_are_fine(write: Write) -> None:
    write(
        "a.yaml", "\ufeffproducts:\n  - {handle: creme, name: Crème brûlée ☕, sku: C}\n".encode()
    )
    catalog = check().catalog
    assert catalog is not None and catalog.products[0].name == "Crème brûlée ☕"


def test_duplicate_keys_are_refused(write: Write) -> None:
    write("a.yaml", "products:\n  - handle: a\n    name: A\n    handle: b\n")
    assert problems() == [
        'catalog/a.yaml:4:5: duplicate key "handle" (each key may appear once in a mapping)'
    ]


def test_keys_must_be_text(write: Write) -> None:
    write("a.yaml", "products:\n  - handle: a\n    name: A\n    yes: 1\n    [x]: 2\n")
    assert problems() == [
        "catalog/a.yaml:4:5: a key must be text, not the yes/no value true (put the key in quotes)",
        "catalog/a.yaml:5:5: a key must be text, not a list or mapping",
    ]


def test_one_document_per_file(write: Write) -> None:
    write("a.yaml", "products: []\n---\nbrands: []\n")
    assert problems() == [
        "catalog/a.yaml:2:1: a catalog file holds one YAML document; this is a second one "
        "(remove the --- line, or move this part to a file of its own)"
    ]


def test_empty_and_comment_only_files_declare_nothing(write: Write) -> None:
    write("a.yaml", "")
    write("b.yml", "# nothing yet\n")
    report = check()
    assert report.problems == [] and report.files == 2


def test_hidden_files_and_other_extensions_are_ignored(write: Write) -> None:
    write(".hidden.yaml", "nonsense: [")
    write(".git/x.yaml", "nonsense: [")
    write("notes.txt", "nonsense: [")
    assert check().files == 0


def test_unsafe_tags_are_refused(write: Write) -> None:
    write("a.yaml", "products: !!python/object/apply:os.system ['echo hacked']\n")
    found = problems()
    assert found[0] == (
        "catalog/a.yaml:1:11: unsupported YAML tag tag:yaml.org,2002:python/object/apply:os.system "
        "(catalog files use plain YAML: remove the tag)"
    )


def test_standard_tags_work(write: Write) -> None:
    write(
        "a.yaml", "products:\n  - {handle: a, name: !!str 2024, sku: !!str 0123, price: !!str 5}\n"
    )
    catalog = check().catalog
    assert catalog is not None
    p = catalog.products[0]
    assert (p.name, p.sku, p.price) == ("2024", "0123", Decimal("5"))


def test_unreadable_numbers_and_dates(write: Write) -> None:
    write("a.yaml", f"products:\n  - handle: a\n    name: 2024-02-30\n    price: {'9' * 5000}\n")
    found = problems()
    assert found == [
        'catalog/a.yaml:3:11: "2024-02-30" cannot be read as a date',
        f'catalog/a.yaml:4:12: "{"9" * 57}..." cannot be read as a whole number',
    ]


def test_files_over_the_size_limit_are_refused_unread(catalog_dir: Path) -> None:
    with (catalog_dir / "huge.yaml").open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    assert problems() == [
        "catalog/huge.yaml:1:1: the file is 32.0 MB, more than 32 MB (split it into several files)"
    ]


def test_only_regular_files_are_read(catalog_dir: Path) -> None:
    (catalog_dir / "zero.yaml").symlink_to("/dev/zero")
    os.mkfifo(catalog_dir / "pipe.yaml")
    (catalog_dir / "inner").mkdir()
    os.mkfifo(catalog_dir / "inner" / "pipe")
    (catalog_dir / "inner.yaml").symlink_to(catalog_dir / "inner" / "pipe")
    assert problems() == [
        "catalog/inner.yaml:1:1: not a regular file (catalog files must be plain files)",
        "catalog/pipe.yaml:1:1: not a regular file (catalog files must be plain files)",
        "catalog/zero.yaml:1:1: a link to outside the catalog directory (copy the file into the "
        "catalog directory, or remove the link)",
    ]


def test_links_out_of_the_catalog_directory_are_refused(
    write: Write, catalog_dir: Path, workdir: Path
) -> None:
    outside = workdir / "elsewhere"
    outside.mkdir()
    (outside / "x.yaml").write_text("products:\n  - {handle: x, name: X, sku: X}\n")
    (catalog_dir / "x.yaml").symlink_to(outside / "x.yaml")
    (catalog_dir / "more").symlink_to(outside)
    write(".shared/a.yaml", "products:\n  - {handle: a, name: A, sku: A}\n")  # hidden
    (catalog_dir / "a-link.yml").symlink_to(catalog_dir / ".shared" / "a.yaml")  # inside: read
    report = check()
    assert [str(p) for p in report.problems] == [
        "catalog/more:1:1: a link to outside the catalog directory (copy the file into the "
        "catalog directory, or remove the link)",
        "catalog/x.yaml:1:1: a link to outside the catalog directory (copy the file into the "
        "catalog directory, or remove the link)",
    ]
    assert report.files == 3


def test_extensions_are_matched_in_any_case(write: Write) -> None:
    write("b.YAML", "products:\n  - {handle: b, name: B, sku: B}\n")
    write("c.Yml", "products:\n  - {handle: c, name: C, sku: C}\n")
    catalog = check().catalog
    assert catalog is not None
    assert sorted(p.handle for p in catalog.products) == ["b", "c"]


DEEP_FLOW = "[" * 100_000 + "]" * 100_000
DEEP_BLOCK = "".join(f"{' ' * depth}k{depth}:\n" for depth in range(2_000))


@pytest.mark.parametrize(
    ("text", "at"), [(DEEP_FLOW, "1:21"), (DEEP_BLOCK, "21:21")], ids=["flow", "block"]
)
def test_deep_nesting_is_refused_where_it_starts(write: Write, text: str, at: str) -> None:
    write("a.yaml", text)
    found = problems()
    assert len(found) == 1
    assert found[0].startswith(f"catalog/a.yaml:{at}: nested deeper than {MAX_DEPTH} levels")


@pytest.mark.parametrize(
    "parser", [p for p in (yaml.SafeLoader, getattr(yaml, "CSafeLoader", None)) if p is not None]
)
def test_the_depth_rule_speaks_before_any_parser_limit(parser: object) -> None:
    """libyaml 0.2.6 (PyYAML 6.0.4 wheels) refuses flow nesting past 1,000 levels while scanning
    ahead; older releases and the pure-Python parser do not. Either way the loader's own rule,
    at the place the 21st level opens, is the one problem reported."""
    parsed = _careful_build(DEEP_FLOW, parser)
    assert [(line, col, message) for line, col, message, _ in parsed.findings] == [
        (1, MAX_DEPTH + 1, f"nested deeper than {MAX_DEPTH} levels")
    ]


def test_billion_laughs_is_refused_at_once(write: Write) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    write("a.yaml", "\n".join(lines) + "\n")
    start = time.perf_counter()
    found = problems()
    assert time.perf_counter() - start < 5.0  # expanding it would take minutes and gigabytes
    assert found == [
        f"catalog/a.yaml:6:8: aliases add more than {MAX_ALIAS_VALUES:,} values to this file "
        "(write the values out, or use fewer aliases)"
    ]


def test_recursive_and_unknown_aliases(write: Write) -> None:
    write("a.yaml", "products: &p [*p]\n")
    write("b.yaml", "products: *nowhere\n")
    assert problems() == [
        "catalog/a.yaml:1:15: alias *p refers to a list or mapping that contains it "
        "(recursive aliases are not allowed)",
        "catalog/b.yaml:1:11: alias *nowhere has no anchor &nowhere before it",
    ]


def test_anchors_aliases_and_merge_keys_work(write: Write) -> None:
    write(
        "a.yaml",
        """
        products:
          - &tee
            handle: tee-one
            name: Tee One
            brand: Acme
            price: 25.00
            options: &opts [Size]
            variants:
              - {sku: T1-S, options: {Size: S}}
          - <<: *tee
            handle: tee-two
            name: Tee Two
            options: *opts
            variants:
              - {sku: T2-S, options: {Size: S}, price: 26}
        """,
    )
    catalog = check().catalog
    assert catalog is not None
    two = catalog.product("tee-two")
    assert two is not None
    assert (two.brand, two.price, two.options) == ("Acme", Decimal("25.00"), ("Size",))
    assert two.variants[0].price == Decimal("26")


def test_repeated_values_are_read_once_and_each_price_keeps_its_spelling(write: Write) -> None:
    # The model shares one copy of each repeated options tuple, category, tag list and price
    # (a large catalog holds millions, few distinct); a price is shared only with the same
    # spelling: 15.0 and 15.00 are equal numbers that print differently.
    write(
        "a.yaml",
        """
        products:
          - {handle: a, name: A, price: '15.00', category: X / Y, tags: [b, a], options: [Size],
             variants: [{sku: A-S, options: {Size: S}, price: 15.0},
                        {sku: A-M, options: {Size: M}}]}
          - {handle: b, name: B, price: 15.0, category: X / Y, tags: [a, b], options: [Size],
             variants: [{sku: B-S, options: {Size: S}, price: '15.00'}]}
        """,
    )
    catalog = check().catalog
    assert catalog is not None
    a, b = catalog.product("a"), catalog.product("b")
    assert a is not None and b is not None
    assert [str(x) for x in (a.price, a.variants[0].price, b.price, b.variants[0].price)] == [
        "15.00",
        "15.0",
        "15.0",
        "15.00",
    ]
    assert a.price is b.variants[0].price and a.variants[0].price is b.price
    assert a.category == b.category == ("X", "Y") and a.category is b.category
    assert a.tags == ("a", "b") and a.tags is b.tags
    assert (
        a.variants[0].options == (("Size", "S"),) and a.variants[0].options is b.variants[0].options
    )


def test_problem_in_merged_content_points_at_the_merging_mapping(write: Write) -> None:
    write(
        "a.yaml",
        """
        products:
          - &base {handle: one, name: One, sku: ONE}
          - <<: *base
            name: Two
        """,
    )
    assert problems() == [
        'catalog/a.yaml:3:5: products[1].handle: "one" is also declared in catalog/a.yaml:2:20 '
        "(declare each handle once)",
        'catalog/a.yaml:3:5: products[1].sku: "ONE" is also declared in catalog/a.yaml:2:41 '
        "(declare each SKU once)",
    ]


def test_prices_never_go_through_float(write: Write) -> None:
    write(
        "a.yaml",
        """
        products:
          - {handle: a, name: A, sku: A, price: 0.1, supply_price: 1_000.12345,
             allow: [margin]}
          - {handle: b, name: B, sku: B, price: "19.99", supply_price: 7}
          - {handle: c, name: C, sku: C, price: 1.5e+2, supply_price: -0.0}
        """,
    )
    catalog = check().catalog
    assert catalog is not None
    prices = [(p.price, p.supply_price) for p in catalog.products]
    assert prices == [
        (Decimal("0.1"), Decimal("1000.12345")),
        (Decimal("19.99"), Decimal("7")),
        (Decimal("150"), Decimal("0.0")),
    ]
    assert all(isinstance(x, Decimal) for pair in prices for x in pair)
    assert str(catalog.products[2].supply_price) == "0.0"  # not -0.0


def test_model_fields(write: Write) -> None:
    write("catalog.yaml", "settings: {prune: deactivate, stores: [acme]}\ntags: [b, A]\n")
    write(
        "a.yaml",
        """
        products:
          - handle: tee
            name: Tee
            category: Apparel/ Tops
            tags: [summer, Cotton]
            active: false
            options: [Size, Colour]
            variants:
              - {sku: T-S-B, options: {Colour: Black, Size: S}, active: true, barcode: "96385074"}
        """,
    )
    catalog = check().catalog
    assert catalog is not None
    tee = catalog.products[0]
    assert tee.category == ("Apparel", "Tops")
    assert tee.tags == ("Cotton", "summer")
    assert tee.active is False and tee.description is None and tee.images is None
    assert tee.variants[0].options == (("Size", "S"), ("Colour", "Black"))
    assert tee.variants[0].active is True and tee.variants[0].barcode == "96385074"
    assert catalog.tags == ("A", "b")
    assert catalog.settings.prune is Prune.DEACTIVATE and catalog.settings.stores == ("acme",)


def test_load_catalog_raises_with_every_problem(write: Write) -> None:
    write("a.yaml", 'products:\n  - {handle: " A", name: A}\n  - {handle: b}\n')
    with pytest.raises(CatalogInvalid) as info:
        load_catalog(Path("catalog"))
    assert len(info.value.problems) == 2
    assert str(info.value) == (
        'catalog/a.yaml:2:14: products[0].handle: " A" is not a handle '
        '(for example "a") (and 1 more problem); run "catalog validate" to see every problem'
    )


def test_missing_directory(workdir: Path) -> None:
    (workdir / "file").write_text("")
    assert problems(Path("nope")) == [
        "nope:1:1: the catalog directory does not exist (pass --catalog DIR)"
    ]
    assert problems(Path("file")) == [
        "file:1:1: the catalog directory is not a directory (pass --catalog DIR)"
    ]


def test_absolute_directory_inside_cwd_is_shown_relative(write: Write, workdir: Path) -> None:
    write("a.yaml", "products: 5\n")
    assert problems(workdir / "catalog") == [
        "catalog/a.yaml:1:11: products: expected a list, got the number 5"
    ]
