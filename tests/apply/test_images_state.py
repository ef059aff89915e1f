"""Images when the state file is lost: no re-upload storm, adoption by catalog order, and an
upload whose answer was lost is neither forgotten nor duplicated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from reconciler.catalog import load_catalog
from reconciler.plan import Action, Kind
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State
from reconciler.state.cache import Cache

from .helpers import Cli, Harness, example_catalog

UPLOAD = "POST /api/2.0/products/{id}/actions/image_upload"
IMAGE_ROUTES = (
    UPLOAD,
    "PUT /api/2.0/product_images/{id}",
    "DELETE /api/2.0/product_images/{id}",
    "GET /api/2.0/product_images/{id}",
)


def image_requests(cli: Cli) -> dict[str, int]:
    """Image requests the store has received since the last reset, by route (its own stats)."""
    with httpx.Client(base_url=cli.env["LIGHTSPEED_BASE_URL"]) as http:
        routes = http.get("/_sandbox/stats").json()["requests"]["by_route"]
    return {r: n for r, n in routes.items() if r in IMAGE_ROUTES and n}


def reset_stats(cli: Cli) -> None:
    with httpx.Client(base_url=cli.env["LIGHTSPEED_BASE_URL"]) as http:
        http.post("/_sandbox/stats/reset").raise_for_status()


def plan_json(cli: Cli, *args: str) -> dict[str, Any]:
    done = cli.run("plan", "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def image_changes(plan: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    stack = list(plan["changes"])
    while stack:
        c = stack.pop()
        stack.extend(c.get("children") or ())
        if c["kind"] == str(Kind.IMAGE):
            out.append((c["action"], c["key"], str(c.get("remote_id"))))
    return sorted(out)


def families_with_images(cli: Cli) -> int:
    return sum(1 for p in load_catalog(cli.catalog).products if p.images)


def product_images(cli: Cli) -> dict[str, list[str]]:
    """handle -> the store's image ids in order, for families (read from the API)."""
    with httpx.Client(
        base_url=cli.env["LIGHTSPEED_BASE_URL"],
        headers={"Authorization": f"Bearer {cli.env['LIGHTSPEED_TOKEN']}"},
    ) as http:
        rows = http.get("/api/2.0/products", params={"page_size": 1000}).json()["data"]
    out: dict[str, list[str]] = {}
    for r in rows:
        if r.get("images"):
            out.setdefault(r["handle"], [str(i["id"]) for i in r["images"]])
    return out


def test_a_lost_state_file_plans_no_uploads_and_says_so(cli: Cli, store: SandboxStore) -> None:
    assert cli.run("apply", "--auto-approve").returncode == 0
    families = families_with_images(cli)
    assert families > 0
    cli.state.unlink()
    plan = plan_json(cli)
    assert image_changes(plan) == []
    notice = [n for n in plan["notices"] if "no record of" in n]
    assert len(notice) == 1, plan["notices"]
    assert notice[0].startswith(f"{families} products have images in the store")
    assert "--adopt-images" in notice[0]
    # The same in the text a person reads.
    text = cli.run("plan")
    assert "state lost?" in text.stdout and "+ new image" not in text.stdout


def test_adopt_images_records_the_store_images_without_a_request(
    cli: Cli, store: SandboxStore
) -> None:
    assert cli.run("apply", "--auto-approve").returncode == 0
    before = product_images(cli)
    cli.state.unlink()
    reset_stats(cli)
    saved = cli.tmp / "adopt.json"
    planned = cli.run("plan", "--adopt-images", "--format", "json", "--out", str(saved))
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    declared = sum(len(p.images or ()) for p in load_catalog(cli.catalog).products)
    adopted = [c for c in image_changes(plan) if c[0] == str(Action.ADOPT)]
    assert len(adopted) == declared == len(image_changes(plan))
    assert plan["estimate"]["requests"] == 0
    done = cli.run("apply", str(saved))
    assert done.returncode == 0, done.stderr
    assert image_requests(cli) == {}  # not one upload, move, delete or status read
    assert product_images(cli) == before
    with State(cli.state) as state:
        recorded = Cache(state).uploaded_images()
    catalog = load_catalog(cli.catalog)
    for p in catalog.products:
        if p.images:  # each file's hash maps to the store's image at its catalog position
            assert [recorded[p.handle][i.sha256] for i in p.images] == before[p.handle]
    again = cli.run("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr

    # Adopted images are judged by content like uploaded ones: new bytes, one delete + upload.
    tee = next(p for p in catalog.products if p.handle == "classic-tee")
    assert tee.images
    target = cli.catalog / tee.images[0].path
    target.write_bytes(target.read_bytes() + b"\0changed")
    changed = plan_json(cli)
    kinds = [c[0] for c in image_changes(changed)]
    assert sorted(kinds) == [str(Action.CREATE), str(Action.DELETE)]
    reset_stats(cli)
    assert cli.run("apply", "--auto-approve").returncode == 0
    writes = {r: n for r, n in image_requests(cli).items() if not r.startswith("GET")}
    assert writes == {UPLOAD: 1, "DELETE /api/2.0/product_images/{id}": 1}


def test_adopt_images_via_apply_uploads_only_what_the_store_lacks(
    cli: Cli, store: SandboxStore
) -> None:
    assert cli.run("apply", "--auto-approve").returncode == 0
    tee = next(p for p in load_catalog(cli.catalog).products if p.handle == "classic-tee")
    assert tee.images and len(tee.images) >= 2
    ids = product_images(cli)["classic-tee"]
    with httpx.Client(
        base_url=cli.env["LIGHTSPEED_BASE_URL"],
        headers={"Authorization": f"Bearer {cli.env['LIGHTSPEED_TOKEN']}"},
    ) as http:
        http.delete(f"/api/2.0/product_images/{ids[-1]}").raise_for_status()
    cli.state.unlink()
    reset_stats(cli)
    done = cli.run("apply", "--auto-approve", "--adopt-images")
    assert done.returncode == 0, done.stderr
    writes = {r: n for r, n in image_requests(cli).items() if not r.startswith("GET")}
    assert writes == {UPLOAD: 1}  # only the catalog image the store no longer had
    assert len(product_images(cli)["classic-tee"]) == len(tee.images)
    again = cli.run("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr


def test_commit_then_timeout_on_an_upload_makes_no_duplicate(
    harness: Harness, store: SandboxStore, tmp_path: Path
) -> None:
    directory = example_catalog(tmp_path)
    wanted = load_catalog(directory)
    plan, live = harness.plan(wanted)
    assert any(c.kind is Kind.IMAGE for c in plan.all_changes())
    store.set_faults(timeout_rate=1.0)  # every write commits, then its answer is lost
    lost = harness.apply_plan(plan, live, catalog_dir=directory, parallelism=1)
    store.set_faults(timeout_rate=0.0)
    assert any(c.kind == str(Kind.IMAGE) and c.outcome == "failed" for c in lost.changes)
    landed = [r["handle"] for r in harness.raw_products() if r.get("images")]
    assert landed, "no upload reached the store: the test would prove nothing"

    again, live = harness.plan(wanted)
    assert again.notices == ()  # the sent uploads are on record: not a lost state file
    result = harness.apply_plan(again, live, catalog_dir=directory)
    assert result.ok, [c for c in result.changes if c.outcome != "applied"]
    rows = {r["handle"]: r for r in harness.raw_products()}
    recorded = Cache(harness.state).uploaded_images()
    for p in wanted.products:
        if not p.images:
            continue
        ids = [str(i["id"]) for i in rows[p.handle]["images"]]
        assert len(ids) == len(set(ids)) == len(p.images), (p.handle, ids)
        assert [recorded[p.handle][i.sha256] for i in p.images] == ids
    final, _ = harness.plan(wanted)
    assert not final.has_changes
