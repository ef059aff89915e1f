"""A changed catalog file read item by item (`catalog.split_products`, `file_facts`,
`check_changed_items`): only a plain block list of products at the end of a file is split, and a
file is taken item by item only when its items are exactly its products."""

from __future__ import annotations

from pathlib import Path

from reconciler.catalog import (
    check_changed_items,
    load_report,
    split_products,
)

HEAD = "settings:\n  prune: none\n"
ITEMS = [
    "  - handle: a\n    name: A\n    sku: A-1\n    price: '1.00'\n",
    "  # a comment belongs to the item above it\n",
    "  - handle: b\n    name: B\n    sku: B-1\n    price: '2.00'\n"
    "    description: |\n      Two\n      - lines\n",
]


def test_a_block_list_at_the_end_is_split_into_items() -> None:
    text = HEAD + "products:\n" + "".join(ITEMS)
    split = split_products(text)
    assert split is not None
    prefix, items = split
    assert prefix == HEAD + "products:\n"
    assert items == [ITEMS[0] + ITEMS[1], ITEMS[2]]
    assert "".join([prefix, *items]) == text


def test_other_layouts_are_not_split() -> None:
    items = "".join(ITEMS)
    assert split_products(HEAD) is None  # no products
    assert split_products("products: []\n") is None  # flow style
    assert split_products("products:\n" + items + "brands:\n  - name: X\n") is None
    assert split_products("products:\n" + items + "---\n") is None
    assert split_products("products:\n  handle: a\n") is None  # not a list
    unindented = "products:\n- handle: a\n  name: A\n- handle: b\n  name: B\n"
    split = split_products(unindented)
    assert split is not None and len(split[1]) == 2


def _write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "catalog.yaml").write_text(HEAD)
    path = tmp_path / "products.yaml"
    path.write_text("products:\n" + body)
    return path


def test_a_quoted_text_holding_an_item_like_line_is_not_taken_item_by_item(tmp_path: Path) -> None:
    # The parse has two products; the split sees three items: the file is checked whole.
    body = (
        '  - handle: a\n    name: A\n    sku: A-1\n    description: "one\n'
        '  - handle: ghost\n    two"\n'
        "  - handle: b\n    name: B\n    sku: B-1\n"
    )
    path = _write(tmp_path, body)
    report = load_report(tmp_path, facts=True)
    facts = next(f for f in report.facts if f.rel == "products.yaml")
    assert facts.handles == ("a", "b")
    assert facts.chunks is None
    assert (
        check_changed_items(
            tmp_path,
            "products.yaml",
            path.read_bytes(),
            facts,
            settings={"prune": "none"},
            limits=None,
        )
        is None
    )


def test_only_the_edited_item_is_parsed_and_it_must_keep_its_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, ITEMS[0] + ITEMS[2])
    report = load_report(tmp_path, facts=True)
    facts = next(f for f in report.facts if f.rel == "products.yaml")
    assert facts.chunks is not None and len(facts.chunks) == 2
    settings = {"prune": "none"}

    path.write_text("products:\n" + ITEMS[0].replace("'1.00'", "'1.50'") + ITEMS[2])
    got = check_changed_items(
        tmp_path, "products.yaml", path.read_bytes(), facts, settings=settings, limits=None
    )
    assert got is not None
    new_facts, products = got
    assert set(products) == {"a"} and str(products["a"].price) == "1.50"
    assert new_facts.signature == facts.signature and new_facts.chunks != facts.chunks
    whole = next(f for f in load_report(tmp_path, facts=True).facts if f.rel == "products.yaml")
    assert new_facts == whole  # the same facts as a whole load gives

    # A SKU is what other files' checks read: the file must be checked whole.
    path.write_text("products:\n" + ITEMS[0].replace("A-1", "A-2") + ITEMS[2])
    assert (
        check_changed_items(
            tmp_path, "products.yaml", path.read_bytes(), facts, settings=settings, limits=None
        )
        is None
    )
    # A problem in the item: checked whole (which reports it at its line).
    path.write_text("products:\n" + ITEMS[0].replace("'1.00'", "one") + ITEMS[2])
    assert (
        check_changed_items(
            tmp_path, "products.yaml", path.read_bytes(), facts, settings=settings, limits=None
        )
        is None
    )
