"""Incremental planning at its edges (issue 15): edits the basis might not notice, on the
catalog's side, the store's and the ledger's. Each case checks that the plan made from the
basis equals the plan made from scratch (`--refresh full`, no memo), and that a catalog with a
problem is refused as a full load refuses it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from reconciler.catalog import MAX_FILE_BYTES
from reconciler.model import Product, Settings
from reconciler.plan import Plan
from tests.plan.test_incremental import (
    FILES,
    POOL,
    Project,
    _applied_project,
    comparable,
    pool_product,
)

Products = dict[str, tuple[int, Product]]


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
