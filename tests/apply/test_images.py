"""Image steps of apply: uploaded once, then only moved or deleted; never uploaded again."""

from __future__ import annotations

from pathlib import Path

from reconciler.catalog import load_catalog
from reconciler.providers.xseries.sandbox import SandboxStore

from .helpers import Harness, example_catalog

UPLOAD = "POST /api/2.0/products/{id}/actions/image_upload"
MOVE = "PUT /api/2.0/product_images/{id}"
DELETE = "DELETE /api/2.0/product_images/{id}"


def apply_dir(harness: Harness, directory: Path) -> dict[str, int]:
    """Apply the catalog in `directory`; the image writes it made; the next plan is empty."""
    wanted = load_catalog(directory)
    plan, live = harness.plan(wanted)
    harness.store.reset_stats()
    result = harness.apply_plan(plan, live, catalog_dir=directory)
    assert result.ok, [c for c in result.changes if c.outcome != "applied"]
    assert result.writes == plan.estimate.requests
    after, _ = harness.plan(wanted)
    assert not after.has_changes, [(c.kind, c.key, c.action) for c in after.all_changes()]
    return {r: n for r, n in harness.writes().items() if "image" in r}


def test_uploaded_once_then_moved_or_deleted_only(
    harness: Harness, store: SandboxStore, tmp_path: Path
) -> None:
    directory = example_catalog(tmp_path)
    first = apply_dir(harness, directory)
    declared = sum(len(p.images or ()) for p in load_catalog(directory).products)
    assert first == {UPLOAD: declared}
    assert apply_dir(harness, directory) == {}  # nothing changed: not one image request

    apparel = directory / "apparel.yaml"
    text = apparel.read_text(encoding="utf-8")
    front, back = "      - images/classic-tee/front.jpg\n", "      - images/classic-tee/back.png\n"
    assert front + back in text
    apparel.write_text(text.replace(front + back, back + front), encoding="utf-8")
    assert apply_dir(harness, directory) == {MOVE: 2}  # a swap moves, never re-uploads

    apparel.write_text(apparel.read_text(encoding="utf-8").replace(front, ""), encoding="utf-8")
    assert apply_dir(harness, directory) == {DELETE: 1}
    rows = {r["handle"]: r for r in harness.raw_products()}
    assert len(rows["classic-tee"]["images"]) == 1
    assert [i["path"] for i in harness.ledger.images("classic-tee")] == [back.strip()[2:]]


def test_identical_bytes_under_two_paths_upload_once_and_converge(
    harness: Harness, store: SandboxStore, tmp_path: Path
) -> None:
    # The store reuses the existing image when the same file is uploaded again to the same
    # product (lightspeed-xseries.md §7): the family gets one image, the plan says why, and it
    # converges.
    directory = example_catalog(tmp_path)
    images = directory / "images" / "classic-tee"
    (images / "copy.jpg").write_bytes((images / "front.jpg").read_bytes())
    apparel = directory / "apparel.yaml"
    front = "      - images/classic-tee/front.jpg\n"
    text = apparel.read_text(encoding="utf-8")
    apparel.write_text(text.replace(front, front + "      - images/classic-tee/copy.jpg\n"))
    first = apply_dir(harness, directory)
    declared = sum(len(p.images or ()) for p in load_catalog(directory).products)
    assert first == {UPLOAD: declared - 1}
    plan, _ = harness.plan(load_catalog(directory))
    assert any("copy.jpg" in n and "front.jpg" in n for n in plan.notices), plan.notices
    assert apply_dir(harness, directory) == {}
    rows = {r["handle"]: r for r in harness.raw_products()}
    assert len(rows["classic-tee"]["images"]) == 2  # front (and copy) + back
