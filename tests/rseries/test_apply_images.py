"""R-Series image steps: each image uploaded once (multipart, on the matrix or the item, with
its ordering), then only moved or deleted; a lost answer or a crash never uploads it twice."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.catalog import load_catalog
from reconciler.providers.rseries.sandbox import RSeriesStore
from reconciler.state import State
from tests.conftest import RSERIES_TOKEN

from .applying import Harness, assert_converged, example_catalog
from .helpers import connect

UPLOAD_MATRIX = "POST /API/V3/Account/{accountID}/ItemMatrix/{id}/Image.json"
UPLOAD_ITEM = "POST /API/V3/Account/{accountID}/Item/{id}/Image.json"
MOVE = "PUT /API/V3/Account/{accountID}/Image/{id}.json"
DELETE = "DELETE /API/V3/Account/{accountID}/Image/{id}.json"


@pytest.fixture
def rs(rseries: RSeriesStore, state: State, tmp_path: Path) -> Iterator[Harness]:
    with connect(rseries, RSERIES_TOKEN, tmp_path) as client:
        yield Harness(rseries, client, state, catalog_dir=example_catalog(tmp_path))


def apply_dir(rs: Harness) -> dict[str, int]:
    """Apply the catalog directory; the image writes it made; the next plan is empty."""
    assert rs.catalog_dir is not None
    wanted = load_catalog(rs.catalog_dir)
    rs.store.reset_stats()
    _, result = rs.apply(wanted)
    assert result.ok, [c for c in result.changes if c.outcome != "applied"]
    assert_converged(rs, wanted)
    return {r: n for r, n in rs.writes().items() if "Image" in r}


def image_count(rs: Harness) -> int:
    return len(rs.client.query("Image"))


def test_uploaded_once_then_moved_or_deleted_only(rs: Harness) -> None:
    assert rs.catalog_dir is not None
    wanted = load_catalog(rs.catalog_dir)
    families = sum(len(p.images or ()) for p in wanted.products if p.is_family)
    simples = sum(len(p.images or ()) for p in wanted.products if not p.is_family)
    first = apply_dir(rs)
    assert first == {UPLOAD_MATRIX: families, **({UPLOAD_ITEM: simples} if simples else {})}
    assert image_count(rs) == families + simples
    assert apply_dir(rs) == {}  # nothing changed: not one image request

    apparel = rs.catalog_dir / "apparel.yaml"
    text = apparel.read_text(encoding="utf-8")
    front, back = "      - images/classic-tee/front.jpg\n", "      - images/classic-tee/back.png\n"
    assert front + back in text
    apparel.write_text(text.replace(front + back, back + front), encoding="utf-8")
    assert apply_dir(rs) == {MOVE: 2}  # a swap moves, never re-uploads
    tee = rs.plan(load_catalog(rs.catalog_dir))[1].products["classic-tee"]
    held = {i["imageID"]: i for i in rs.client.query("Image")}
    assert [held[int(i)]["filename"] for i in tee.image_ids] == ["back.png", "front.jpg"]

    apparel.write_text(apparel.read_text(encoding="utf-8").replace(front, ""), encoding="utf-8")
    assert apply_dir(rs) == {DELETE: 1}
    assert [i["path"] for i in rs.ledger.images("classic-tee")] == ["images/classic-tee/back.png"]
    assert image_count(rs) == families + simples - 1


def test_lost_upload_answers_upload_each_image_once(rs: Harness) -> None:
    assert rs.catalog_dir is not None
    wanted = load_catalog(rs.catalog_dir)
    declared = sum(len(p.images or ()) for p in wanted.products)
    rs.store.set_faults(timeout_rate=0.5)
    for _ in range(8):
        _, result = rs.apply(wanted)
        if result.ok:
            break
    rs.store.set_faults(timeout_rate=0.0)
    assert result.ok
    assert image_count(rs) == declared
    assert_converged(rs, wanted)


def test_a_product_found_in_the_store_with_only_images_to_add_becomes_managed(
    rs: Harness,
) -> None:
    # As a run killed between a simple product's create and its record leaves it: in the
    # store, identical, unmanaged, its image not uploaded yet.
    assert rs.catalog_dir is not None
    wanted = load_catalog(rs.catalog_dir)
    mug = next(p for p in wanted.products if p.handle == "stoneware-mug")
    only = type(wanted).build(products=[mug], brands=wanted.brands, settings=wanted.settings)
    without_images = type(wanted).build(
        products=[replace(mug, images=None)], brands=wanted.brands, settings=wanted.settings
    )
    _, result = rs.apply(without_images)
    assert result.ok
    for kind in ("product", "variant"):
        for key in list(rs.ledger.managed(kind)):
            rs.ledger.forget_managed(kind, key)
    plan, _ = rs.plan(only)
    (change,) = plan.changes
    assert change.action == "update" and not change.fields
    _, result = rs.apply(only)
    assert result.ok
    assert "stoneware-mug" in rs.ledger.managed("product")
    assert_converged(rs, only)
