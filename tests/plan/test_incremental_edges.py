"""Incremental planning at its edges (issue 15): edits the basis might not notice, on the
catalog's side, the store's and the ledger's. Each case checks that the plan made from the
basis equals the plan made from scratch (`--refresh full`, no memo), and that a catalog with a
problem is refused as a full load refuses it."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from reconciler import api
from reconciler.catalog import MAX_FILE_BYTES
from reconciler.model import Image, Product, Settings
from reconciler.plan import Plan
from reconciler.state import State
from reconciler.state.cache import Cache
from tests.plan.test_incremental import (
    FILES,
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
