"""Every kind of bad request gets the real store's status and a JSON error body, never a 500
or an HTML page."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from .builders import ok, simple

MISSING = "00000000-0000-4000-8000-000000000000"
Send = Callable[[httpx.Client], httpx.Response]

BAD_REQUESTS: list[tuple[str, int, Send]] = [
    ("malformed json", 400, lambda c: c.post("/api/2.0/brands", content=b'{"name": ')),
    ("json not an object", 400, lambda c: c.post("/api/2.0/products", json=["name"])),
    ("empty body", 400, lambda c: c.post("/api/2.0/tags", content=b"")),
    ("NaN is not json", 400, lambda c: c.post("/api/2.0/products", content=b'{"name": NaN}')),
    ("not utf-8", 400, lambda c: c.post("/api/2.0/brands", content=b'{"name": "\xff"}')),
    ("after not an int", 400, lambda c: c.get("/api/2.0/products?after=abc")),
    ("negative after", 400, lambda c: c.get("/api/2.0/brands?after=-1")),
    ("page_size zero", 400, lambda c: c.get("/api/2.0/products?page_size=0")),
    ("deleted not a bool", 400, lambda c: c.get("/api/2.0/products?deleted=perhaps")),
    ("bad include", 400, lambda c: c.get("/api/2.0/product_categories?include=all")),
    ("unknown product", 404, lambda c: c.get(f"/api/2.0/products/{MISSING}")),
    ("not even an id", 404, lambda c: c.get("/api/2.0/products/42")),
    ("unknown brand", 404, lambda c: c.put(f"/api/2.0/brands/{MISSING}", json={"name": "x"})),
    ("unknown supplier", 404, lambda c: c.delete(f"/api/2.0/suppliers/{MISSING}")),
    ("unknown tag", 404, lambda c: c.get(f"/api/2.0/tags/{MISSING}")),
    ("unknown attribute", 404, lambda c: c.delete(f"/api/2.0/variant_attributes/{MISSING}")),
    ("unknown type", 404, lambda c: c.get(f"/api/2.0/product_types/{MISSING}")),
    ("unknown outlet", 404, lambda c: c.get(f"/api/2.0/outlets/{MISSING}")),
    ("unknown image", 404, lambda c: c.get(f"/api/2.0/product_images/{MISSING}")),
    ("unknown family", 404, lambda c: c.delete(f"/api/2.0/products/{MISSING}/all")),
    (
        "unknown category",
        404,
        lambda c: c.request(
            "DELETE", "/api/2.0/product_categories/bulk", json={"category_ids": [MISSING]}
        ),
    ),
    (
        "upload to unknown",
        404,
        lambda c: c.post(
            f"/api/2.0/products/{MISSING}/actions/image_upload", files={"image": b"x"}
        ),
    ),
    ("unknown endpoint", 404, lambda c: c.get("/api/2.0/widgets")),
    ("wrong method", 405, lambda c: c.patch("/api/2.0/products")),
    ("no 2.0 put", 405, lambda c: c.put(f"/api/2.0/products/{MISSING}", json={})),
    ("brand without name", 422, lambda c: c.post("/api/2.0/brands", json={"description": "x"})),
    ("tag with blank name", 422, lambda c: c.post("/api/2.0/tags", json={"name": "  "})),
    ("supplier name not text", 422, lambda c: c.post("/api/2.0/suppliers", json={"name": 5})),
    (
        "empty category bulk",
        422,
        lambda c: c.post("/api/2.0/product_categories/bulk", json={"categories": []}),
    ),
    (
        "category under unknown parent",
        422,
        lambda c: c.post(
            "/api/2.0/product_categories/bulk",
            json={"categories": [{"name": "x", "parent_category_id": MISSING}]},
        ),
    ),
    (
        "2.1 sections not objects",
        422,
        lambda c: c.post("/api/2.1/products", json={"common": "Tee"}),
    ),
    ("cdn unknown image", 404, lambda c: c.get("/cdn/images/abc/original.png")),
]


@pytest.mark.parametrize(
    ("status", "send"),
    [(status, send) for _, status, send in BAD_REQUESTS],
    ids=[name for name, _, _ in BAD_REQUESTS],
)
def test_bad_request_gets_status_and_json_error(
    sandbox_client: httpx.Client, status: int, send: Send
) -> None:
    response = send(sandbox_client)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert "message" in body or "fields" in body


def test_a_bad_2_1_update_names_every_bad_field(sandbox_client: httpx.Client) -> None:
    product = simple(sandbox_client, "Mug", "MUG")
    response = sandbox_client.put(
        f"/api/2.1/products/{product}",
        json={
            "common": {"brand_id": MISSING, "tag_ids": "sale"},
            "details": {"is_active": "yes", "product_codes": []},
        },
    )
    assert response.status_code == 422
    assert set(response.json()["fields"]) == {
        "common.brand_id",
        "common.tag_ids",
        "details.is_active",
        "details.product_codes",
    }
    assert ok(sandbox_client.get(f"/api/2.0/products/{product}"))["data"]["is_active"] is True
