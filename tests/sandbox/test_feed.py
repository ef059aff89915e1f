"""Paging, the change feed and the store-wide version counter."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import httpx

from reconciler.providers.xseries.sandbox.store import MAX_PAGE_SIZE, ListQuery

from .builders import attribute, family, ok, simple


def _all_pages(client: httpx.Client, path: str, **params: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    after = params.pop("after", None)
    while True:
        query = {**params, **({"after": after} if after is not None else {})}
        body = ok(client.get(path, params=query))
        if not body["data"]:
            assert body["version"] == {"min": None, "max": None}
            return pages
        pages.append(body["data"])
        assert body["version"]["min"] == body["data"][0]["version"]
        after = body["version"]["max"]


def test_paging_walks_every_product_once_in_version_order(sandbox_client: httpx.Client) -> None:
    created = [simple(sandbox_client, f"Product {n}", f"SKU-{n:03}") for n in range(230)]
    pages = _all_pages(sandbox_client, "/api/2.0/products", page_size=40)
    assert [len(page) for page in pages] == [40] * 5 + [30]
    seen = [p["id"] for page in pages for p in page]
    assert seen == created
    versions = [p["version"] for page in pages for p in page]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_default_page_size_is_100_and_the_cap_is_10000(sandbox_client: httpx.Client) -> None:
    for n in range(105):
        simple(sandbox_client, f"P{n}", f"P{n}")
    assert len(ok(sandbox_client.get("/api/2.0/products"))["data"]) == 100
    assert ListQuery.parse({"page_size": "20000"}).page_size == MAX_PAGE_SIZE == 10_000
    assert len(ok(sandbox_client.get("/api/2.0/products?page_size=20000"))["data"]) == 105


def test_before_bounds_the_page_from_above(sandbox_client: httpx.Client) -> None:
    ids = [simple(sandbox_client, f"P{n}", f"P{n}") for n in range(5)]
    third = ok(sandbox_client.get(f"/api/2.0/products/{ids[2]}"))["data"]["version"]
    body = ok(sandbox_client.get("/api/2.0/products", params={"before": third}))
    assert [p["id"] for p in body["data"]] == ids[:2]


def test_change_feed_returns_exactly_what_changed_deletions_included(
    sandbox_client: httpx.Client,
) -> None:
    ids = [simple(sandbox_client, f"P{n}", f"P{n}") for n in range(6)]
    cursor = ok(sandbox_client.get("/api/2.0/products"))["version"]["max"]
    ok(sandbox_client.put(f"/api/2.1/products/{ids[1]}", json={"details": {"is_active": False}}))
    ok(sandbox_client.delete(f"/api/2.0/products/{ids[3]}"))
    new = simple(sandbox_client, "Fresh", "FRESH")
    # A change elsewhere in the store does not show up in the product feed.
    ok(sandbox_client.post("/api/2.0/brands", json={"name": "Unrelated"}))

    feed = ok(sandbox_client.get("/api/2.0/products", params={"after": cursor, "deleted": "true"}))
    assert [p["id"] for p in feed["data"]] == [ids[1], ids[3], new]
    deleted = feed["data"][1]
    assert deleted["deleted_at"] is not None
    assert feed["data"][0]["is_active"] is False and feed["data"][0]["deleted_at"] is None

    hidden = ok(sandbox_client.get("/api/2.0/products", params={"after": cursor}))
    assert [p["id"] for p in hidden["data"]] == [ids[1], new]
    assert sandbox_client.get(f"/api/2.0/products/{ids[3]}").status_code == 404
    caught_up = feed["version"]["max"]
    empty = ok(sandbox_client.get("/api/2.0/products", params={"after": caught_up}))
    assert empty == {"data": [], "version": {"min": None, "max": None}}


def test_versions_grow_on_every_change_with_gaps(sandbox_client: httpx.Client) -> None:
    size = attribute(sandbox_client, "Size")
    members = family(sandbox_client, "Tee", size, ["S", "M", "L"])
    versions = []
    for price in (26, 27, 28, 29, 30, 31):
        ok(
            sandbox_client.put(
                f"/api/2.1/products/{members[0]}", json={"details": {"price_including_tax": price}}
            )
        )
        versions.append(
            ok(sandbox_client.get(f"/api/2.0/products/{members[0]}"))["data"]["version"]
        )
    steps = [b - a for a, b in pairwise(versions)]
    assert all(step > 0 for step in steps)
    assert any(step > 1 for step in steps), "versions must not be a +1 sequence"


def test_an_update_that_changes_nothing_keeps_the_version(sandbox_client: httpx.Client) -> None:
    product = simple(sandbox_client, "Mug", "MUG", price=12)
    before = ok(sandbox_client.get(f"/api/2.0/products/{product}"))["data"]["version"]
    ok(sandbox_client.put(f"/api/2.1/products/{product}", json={"details": {"is_active": True}}))
    after = ok(sandbox_client.get(f"/api/2.0/products/{product}"))["data"]["version"]
    assert after == before


def test_other_collections_page_and_show_deletions(sandbox_client: httpx.Client) -> None:
    brands = [
        ok(sandbox_client.post("/api/2.0/brands", json={"name": f"B{n}"}))["data"] for n in range(5)
    ]
    ok(sandbox_client.delete(f"/api/2.0/brands/{brands[0]}"))
    visible = [
        b["id"] for page in _all_pages(sandbox_client, "/api/2.0/brands", page_size=2) for b in page
    ]
    assert visible == brands[1:]
    everything = _all_pages(sandbox_client, "/api/2.0/brands", page_size=2, deleted="true")
    flat = [b for page in everything for b in page]
    assert [b["id"] for b in flat] == [*brands[1:], brands[0]]
    assert flat[-1]["deleted_at"] is not None
    tags = [
        ok(sandbox_client.post("/api/2.0/tags", json={"name": f"t{n}"}))["data"] for n in range(3)
    ]
    assert [t["id"] for t in ok(sandbox_client.get("/api/2.0/tags?page_size=2"))["data"]] == tags[
        :2
    ]
