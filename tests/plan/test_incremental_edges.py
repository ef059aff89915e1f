"""Incremental planning at its edges (issue 15): edits the basis might not notice, on the
catalog's side, the store's and the ledger's. Each case checks that the plan made from the
basis equals the plan made from scratch (`--refresh full`, no memo), and that a catalog with a
problem is refused as a full load refuses it."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from reconciler import api
from reconciler.catalog import MAX_FILE_BYTES
from reconciler.model import Image, Product, Settings
from reconciler.plan import Plan
from reconciler.state import State
from reconciler.state.cache import Cache
from tests.apply.helpers import tee
from tests.apply.test_ledger_store import _old_shape
from tests.plan.test_incremental import (
    FILES,
    PNGS,
    POOL,
    SETTLE_SECONDS,
    Project,
    _applied_project,
    comparable,
    pool_product,
)

Products = dict[str, tuple[int, Product]]


def _image(n: int) -> Image:
    return Image(path=f"images/{n}.png", sha256="")


def _products() -> Products:
    return {h: (n % FILES, pool_product(h)) for n, h in enumerate(POOL)}


@pytest.fixture
def applied() -> Iterator[tuple[Project, Products]]:
    products = _products()
    project = _applied_project(products)
    try:
        yield project, products
    finally:
        shutil.rmtree(project.root, ignore_errors=True)


def _incremental(project: Project) -> bool:
    """Whether the last plan was made from the basis."""
    return any(s.startswith("Compared ") for s in project.said)


def _same_as_from_scratch(project: Project) -> Plan | str:
    plan = project.plan()
    assert comparable(plan) == comparable(project.from_scratch())
    # And the plan after it (from the basis it recorded) again.
    assert comparable(project.plan()) == comparable(plan)
    return plan


def _changes(plan: Plan | str) -> list[tuple[str, str]]:
    assert isinstance(plan, Plan), plan
    return [(c.key, str(c.action)) for c in plan.changes]


# -- catalog text: anchors and aliases across items ---------------------------------------------


def test_an_anchor_in_one_item_edited_changes_the_item_that_aliases_it() -> None:
    products = _products()
    products["card"] = (products["mug"][0], products["card"][1])  # card, then mug, in one file
    project = _applied_project(products)
    try:
        path = project.file(products["mug"][0])
        text = path.read_text()
        assert text.count("price: '4.00'") == 2
        # The card's price is anchored and the mug's aliases it: the same values.
        text = text.replace("price: '4.00'", "price: &p '4.00'", 1).replace(
            "price: '4.00'", "price: *p", 1
        )
        path.write_text(text)
        assert not _changes(_same_as_from_scratch(project))
        # Only the card's item changes its text; the mug's price changes with it.
        path.write_text(text.replace("&p '4.00'", "&p '5.00'"))
        plan = _same_as_from_scratch(project)
        assert sorted(_changes(plan)) == [("card", "update"), ("mug", "update")]
    finally:
        shutil.rmtree(project.root, ignore_errors=True)


# -- catalog files and images that are no longer plain files inside the directory ----------------


def _refused_alike(project: Project) -> str:
    refused = project.plan()
    assert isinstance(refused, str), refused
    assert refused == project.from_scratch()
    return refused


def test_a_file_replaced_by_a_link_out_of_the_directory_is_refused(
    applied: tuple[Project, Products],
) -> None:
    project, _ = applied
    path = project.file(1)
    outside = project.root / "outside.yaml"
    shutil.copyfile(path, outside)  # the same bytes
    path.unlink()
    path.symlink_to(outside)
    assert "a link to outside the catalog directory" in _refused_alike(project)


def _apply(project: Project) -> None:
    """Apply the plan, then let the store finish processing what was uploaded."""
    plan = project.plan()
    assert isinstance(plan, Plan), plan
    with State(project.state_path) as state, project.connect() as client:
        cache = Cache(state)
        api.apply_plan(
            plan,
            client,
            state,
            live=client.live(cache),
            catalog_dir=project.catalog_dir,
            refresh_live=lambda: (client.refresh(cache), client.live(cache))[1],
        )
    time.sleep(SETTLE_SECONDS)
    with project.connect() as client:
        client.retailer()  # any request settles what is due


def test_an_image_replaced_by_a_link_out_of_the_directory_is_refused(
    applied: tuple[Project, Products],
) -> None:
    project, products = applied
    file, mug = products["mug"]
    products["mug"] = (file, replace(mug, images=(_image(0),)))
    project.write(products, Settings())
    _apply(project)
    assert not _changes(_same_as_from_scratch(project))
    image = project.catalog_dir / "images" / "0.png"
    outside = project.root / "0.png"
    shutil.copyfile(image, outside)  # the same bytes
    image.unlink()
    image.symlink_to(outside)
    assert "outside the catalog directory" in _refused_alike(project)


def test_a_file_replaced_by_a_fifo_is_refused_not_read(applied: tuple[Project, Products]) -> None:
    project, _ = applied
    path = project.file(2)
    path.unlink()
    os.mkfifo(path)  # reading it would never end
    assert "not a regular file" in _refused_alike(project)


def test_a_file_made_unreadable_is_refused(applied: tuple[Project, Products]) -> None:
    project, _ = applied
    path = project.file(1)
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            return  # running as root: nothing is unreadable
        assert "cannot read the file" in _refused_alike(project)
    finally:
        path.chmod(0o644)


def test_a_file_grown_past_the_size_limit_is_refused(applied: tuple[Project, Products]) -> None:
    project, products = applied
    path = project.file(products["mug"][0])
    text = path.read_text()
    # A long comment in each of two items: each item is under the limit, the file is not.
    padding = ("    # " + "x" * 1000 + "\n") * (MAX_FILE_BYTES // 2000 + 1)
    grown = "".join(
        line + (padding if line.startswith("    name: ") else "")
        for line in text.splitlines(keepends=True)
    )
    assert grown.count(padding) == 2
    path.write_text(grown)
    assert "more than 32 MB" in _refused_alike(project)


# -- catalog text edited in ways a parser or a stat may see differently -------------------------

EDITS: dict[str, Callable[[str], str]] = {
    "unchanged": lambda t: t,
    "item moved within the file": lambda t: _swap_items(t),
    "comments and blank lines between items": lambda t: t.replace(
        "  - handle: mug", "\n  # the mug\n\n  - handle: mug"
    ),
    "text changed, value not": lambda t: t.replace("price: '4.00'", 'price: "4.00"'),
    "value changed, text of another spelling": lambda t: t.replace("price: '4.00'", "price: 4.5"),
    "CRLF line endings": lambda t: t.replace("\n", "\r\n"),
    "a BOM": lambda t: "\ufeff" + t,
    "a tab in an item": lambda t: t.replace("    price: '4.00'", "\tprice: '4.00'"),
    "a price that jumps past the guardrail": lambda t: t.replace("price: '4.00'", "price: '90.00'"),
    "a zero price": lambda t: t.replace("price: '4.00'", "price: '0'"),
    "a problem in an item": lambda t: t.replace("price: '4.00'", "price: four"),
    "a SKU another file uses": lambda t: t.replace("sku: MUG-1", "sku: CARD-1"),
    "a brand the head does not declare": lambda t: t.replace("brand: Acme", "brand: Nobody", 1),
    "an unknown key in an item": lambda t: t.replace(
        "    sku: MUG-1", "    sku: MUG-1\n    colour: red"
    ),
    "a handle renamed": lambda t: t.replace("handle: mug", "handle: mug-2"),
    "a handle another file uses": lambda t: t.replace("handle: mug", "handle: card"),
    "an item duplicated": lambda t: t + t[t.index("  - handle: mug") :],
    "a list item becomes a flow item": lambda t: t.replace(
        "  - handle: mug\n", "  - {handle: mug}\n  - handle: mug-x\n"
    ),
}


def _swap_items(text: str) -> str:
    head, items = text.split("products:\n", 1)
    parts = ["  - " + p for p in items.split("  - ")[1:]]
    return head + "products:\n" + "".join(reversed(parts))


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edit_to_the_mugs_file_plans_as_from_scratch(
    applied: tuple[Project, Products], edit: str
) -> None:
    project, products = applied
    path = project.file(products["mug"][0])
    text = path.read_text()
    edited = EDITS[edit](text)
    path.write_bytes(edited.encode())
    _same_as_from_scratch(project)


def test_a_file_edited_twice_with_its_size_and_mtime_kept(
    applied: tuple[Project, Products],
) -> None:
    project, products = applied
    path = project.file(products["mug"][0])
    text = path.read_text()
    before = path.stat()
    path.write_text(text.replace("price: '4.00'", "price: '5.00'"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    _same_as_from_scratch(
        project
    )  # prune none: the extra variant is left alone == [("mug", "update")]
    # Again, straight after a plan that recorded its stat (too recent: not kept).
    shown = path.stat()
    path.write_text(text.replace("price: '4.00'", "price: '6.00'"))
    os.utime(path, ns=(shown.st_atime_ns, shown.st_mtime_ns))
    _same_as_from_scratch(project)


def test_an_image_rewritten_with_its_size_and_mtime_kept(
    applied: tuple[Project, Products],
) -> None:
    project, products = applied
    file, mug = products["mug"]
    products["mug"] = (file, replace(mug, images=(_image(0),)))
    project.write(products, Settings())
    _apply(project)
    assert not _changes(_same_as_from_scratch(project))
    image = project.catalog_dir / "images" / "0.png"
    before = image.stat()
    image.write_bytes(PNGS[1])  # other bytes, the same size
    os.utime(image, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert _changes(_same_as_from_scratch(project)) != []


def test_an_image_newly_named_by_an_edited_item(applied: tuple[Project, Products]) -> None:
    project, products = applied
    file, mug = products["mug"]
    products["mug"] = (file, replace(mug, images=(_image(1),)))
    project.write(products, Settings())
    _same_as_from_scratch(project)
    (project.catalog_dir / "images" / "1.png").unlink()
    _refused_alike(project)


def test_head_edits_plan_as_from_scratch(applied: tuple[Project, Products]) -> None:
    project, _ = applied
    path = project.file(0)
    text = path.read_text()
    path.write_text(text.replace("name: Acme", "name: ACME Inc"))
    _same_as_from_scratch(project)  # the brand renamed in the head
    path.write_text(text.replace("prune: none", "prune: archive"))
    _same_as_from_scratch(project)
    path.write_text(text.replace("Makers of things", "Makers of more things"))
    _same_as_from_scratch(project)
    path.write_text(text)
    _same_as_from_scratch(project)


# -- edits made in the store ------------------------------------------------------------------


def _store_rows(project: Project) -> list[dict[str, Any]]:
    with project.connect() as client:
        rows = [r for page in client.iter_pages("product") for r in page.items]
    return sorted((r for r in rows if not r.get("deleted_at")), key=lambda r: str(r["sku"]))


def _row(project: Project, sku: str) -> dict[str, Any]:
    return next(r for r in _store_rows(project) if r["sku"] == sku)


def test_a_variant_deleted_in_the_store(applied: tuple[Project, Products]) -> None:
    project, _ = applied
    with project.connect() as client:
        client.delete_product(str(_row(project, "TEE-A-M")["id"]))
    assert _changes(_same_as_from_scratch(project))


def test_a_variant_added_in_the_store_to_a_declared_family(
    applied: tuple[Project, Products],
) -> None:
    project, _ = applied
    parent = _row(project, "TEE-A-S")
    values = [
        {"attribute_id": o["id"], "attribute_value": "XL" if o["name"] == "Size" else o["value"]}
        for o in parent["variant_options"]
    ]
    before = len(_store_rows(project))
    with project.connect() as client:
        client.add_variant(
            common={"name": parent["name"]},
            details={
                "sku": "TEE-A-XL",
                "price_including_tax": 25.0,
                "variant_attribute_values": values,
            },
        )
    assert len(_store_rows(project)) == before + 1
    _same_as_from_scratch(project)  # prune none: the extra variant is left alone


def test_a_handle_changed_in_the_store(applied: tuple[Project, Products]) -> None:
    project, _ = applied
    with project.connect() as client:
        client.update_product(str(_row(project, "MUG-1")["id"]), common={"handle": "mug-old"})
        client.update_product(str(_row(project, "TEE-B-S")["id"]), common={"handle": "mug"})
    _same_as_from_scratch(project)


def test_an_unmanaged_product_with_a_declared_handle_is_created_in_the_store(
    applied: tuple[Project, Products],
) -> None:
    project, _ = applied
    with project.connect() as client:
        client.create_product(
            {"name": "Mug", "handle": "mug", "sku": "MUG-9", "price_including_tax": 5}
        )
    _same_as_from_scratch(project)


def test_a_brand_renamed_in_the_store(applied: tuple[Project, Products]) -> None:
    project, _ = applied
    with project.connect() as client:
        brands = [b for b in client.get("/api/2.0/brands")["data"] if not b.get("deleted_at")]
        client.update_brand(str(brands[0]["id"]), {"name": "ACME Inc"})
    _same_as_from_scratch(project)


# -- the ledger and the options between plans ----------------------------------------------------


def _apply_plan(project: Project, plan: Plan) -> None:
    with State(project.state_path) as state, project.connect() as client:
        cache = Cache(state)
        api.apply_plan(plan, client, state, live=client.live(cache))


def _edit_two(project: Project, products: Products) -> None:
    for handle in ("mug", "card"):
        file, p = products[handle]
        products[handle] = (file, replace(p, description=f"<p>New {handle}</p>"))
    project.write(products, Settings())


def test_part_of_a_plan_applied(applied: tuple[Project, Products]) -> None:
    project, products = applied
    _edit_two(project, products)
    plan = _same_as_from_scratch(project)
    assert isinstance(plan, Plan)
    assert sorted(_changes(plan)) == [("card", "update"), ("mug", "update")]
    _apply_plan(project, replace(plan, changes=plan.changes[:1]))  # the other step failed
    assert len(_changes(_same_as_from_scratch(project))) == 1


def test_a_targeted_plan_applied_between_two_whole_plans(
    applied: tuple[Project, Products],
) -> None:
    project, products = applied
    _edit_two(project, products)
    _same_as_from_scratch(project)
    targeted = project.plan(targets=("mug",))
    assert _changes(targeted) == [("mug", "update")]
    assert not _incremental(project)
    assert isinstance(targeted, Plan)
    _apply_plan(project, targeted)
    assert _changes(_same_as_from_scratch(project)) == [("card", "update")]


def test_refresh_off_and_full_after_incremental_plans(applied: tuple[Project, Products]) -> None:
    project, products = applied
    _edit_two(project, products)
    incremental = comparable(project.plan())
    assert _incremental(project)
    assert comparable(project.plan(refresh_mode="off")) == incremental
    assert comparable(project.plan(refresh_mode="full")) == incremental
    with project.connect() as client:
        client.update_product(
            str(_row(project, "PIN-1")["id"]), details={"price_including_tax": 99.0}
        )
    stale = project.plan(refresh_mode="off")  # the cache does not know the store edit yet
    assert sorted(_changes(stale)) == [("card", "update"), ("mug", "update")]
    assert comparable(project.plan(refresh_mode="full")) == comparable(project.from_scratch())
    _same_as_from_scratch(project)


def test_a_state_file_from_before_the_basis(applied: tuple[Project, Products]) -> None:
    project, products = applied
    _old_shape(project.state_path)
    _edit_two(project, products)
    _same_as_from_scratch(project)
    file, mug = products["mug"]
    products["mug"] = (file, replace(mug, price=Decimal("5.00")))
    project.write(products, Settings())
    _same_as_from_scratch(project)


@pytest.mark.parametrize(
    "guardrails",
    [
        "    zero-price: 'off'\n    margin: 20%\n",
        "    zero-price: false\n    margin: '50'\n",
        "    price-jump: 'off'\n",
    ],
)
def test_items_are_checked_under_the_catalogs_own_guardrails(guardrails: str) -> None:
    products = _products()
    project = _applied_project(products)
    try:
        root = project.file(0)
        root.write_text(
            root.read_text().replace(
                "  prune: none\n", "  prune: none\n  guardrails:\n" + guardrails
            )
        )
        _same_as_from_scratch(project)
        path = project.file(products["mug"][0])
        text = path.read_text()
        for price in ("'0'", "'0.00'", "'4.00'\n    supply_price: '3.90'", "'400.00'"):
            path.write_text(text.replace("price: '4.00'", f"price: {price}"))
            _same_as_from_scratch(project)
    finally:
        shutil.rmtree(project.root, ignore_errors=True)


def test_one_state_file_for_two_copies_of_the_catalog(applied: tuple[Project, Products]) -> None:
    project, _ = applied
    first = project.catalog_dir
    second = project.root / "copy"
    shutil.copytree(first, second)
    text = (second / "part-1.yaml").read_text()
    assert "name: Card" in text
    (second / "part-1.yaml").write_text(text.replace("name: Card", "name: Card 2"))
    for directory in (second, first, second):
        project.catalog_dir = directory
        _same_as_from_scratch(project)


def test_a_brand_deleted_in_the_store(applied: tuple[Project, Products]) -> None:
    # The store keeps its products' `brand_id` and stops embedding the brand, with no new
    # product version: the change feed returns only the deleted brand, and the cached rows still
    # embed its name. A plan with that cache must read as one made from a full read.
    project, _ = applied
    with project.connect() as client:
        brands = [b for b in client.get("/api/2.0/brands")["data"] if not b.get("deleted_at")]
        client.delete_named("brand", str(brands[0]["id"]))
    plan = _same_as_from_scratch(project)
    assert ("mug", "update") in _changes(plan)  # its brand is to be set again


def test_an_unmanaged_product_takes_the_sku_of_a_variant_to_be_added(
    applied: tuple[Project, Products],
) -> None:
    project, products = applied
    file, _ = products["tee-a"]
    grown = tee(
        "tee-a",
        tags=("cotton",),
        variants={
            "TEE-A-S": ("S", "27.00"),
            "TEE-A-M": ("M", None),
            "TEE-A-L": ("L", None),
            "TEE-A-XL": ("XL", None),
        },
    )
    products["tee-a"] = (file, grown)
    project.write(products, Settings())
    assert ("tee-a", "update") in _changes(_same_as_from_scratch(project))
    with project.connect() as client:
        client.create_product(
            {"name": "Stray", "handle": "stray", "sku": "TEE-A-XL", "price_including_tax": 5}
        )
    _same_as_from_scratch(project)
    with project.connect() as client:
        client.create_product(
            {"name": "Stray 2", "handle": "stray-2", "sku": "MUG-2", "price_including_tax": 5}
        )
    file, mug = products["mug"]
    products["mug"] = (file, replace(mug, sku="MUG-2"))
    project.write(products, Settings())
    _same_as_from_scratch(project)
