"""Request limits the sandbox chooses where the API documents none (see `sandbox/app.py`): body
size (413), content type (415), JSON nesting (400) and the length of names and text (422)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from reconciler.providers.xseries.sandbox.app import MAX_BODY_BYTES, MAX_JSON_DEPTH, MAX_NAME_CHARS

from .builders import PNG, ok, simple


def test_a_body_over_the_limit_is_413_before_it_is_read(sandbox_client: httpx.Client) -> None:
    # The 300 MB name of the probe, scaled down: anything past the limit is refused the same way.
    name = "x" * (MAX_BODY_BYTES + 1)
    response = sandbox_client.post("/api/2.0/brands", json={"name": name})
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "Payload Too Large"
    assert sandbox_client.get("/api/2.0/brands").json()["data"] == []


def test_a_body_without_a_length_is_counted_as_it_arrives(sandbox_client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    response = sandbox_client.post(
        "/api/2.0/brands", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text


def test_an_upload_over_the_limit_is_413(sandbox_client: httpx.Client) -> None:
    product = simple(sandbox_client, "Mug", "MUG")
    response = sandbox_client.post(
        f"/api/2.0/products/{product}/actions/image_upload",
        files={"image": ("a.png", PNG + b"\0" * MAX_BODY_BYTES, "image/png")},
    )
    assert response.status_code == 413


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_json_route_refuses_other_content_types_with_415(
    sandbox_client: httpx.Client, content_type: str
) -> None:
    response = sandbox_client.post(
        "/api/2.0/brands", content=b'{"name": "Acme"}', headers={"content-type": content_type}
    )
    assert response.status_code == 415, response.text
    assert response.json()["error"] == "Unsupported Media Type"
    assert sandbox_client.get("/api/2.0/brands").json()["data"] == []


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/vnd+json"]
)
def test_json_content_types_are_accepted(sandbox_client: httpx.Client, content_type: str) -> None:
    response = sandbox_client.post(
        "/api/2.0/brands", content=b'{"name": "Acme"}', headers={"content-type": content_type}
    )
    ok(response)


def test_deep_json_is_400_never_500(sandbox_client: httpx.Client) -> None:
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        response = sandbox_client.post(
            "/api/2.0/products", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text[:200]
        assert "nested deeper" in response.json()["message"]


def test_nesting_is_refused_just_past_the_limit(sandbox_client: httpx.Client) -> None:
    def nested(levels: int) -> object:
        body: object = {"name": "Acme"}
        for _ in range(levels - 1):
            body = {"name": "Acme", "contact": body}
        return body

    assert sandbox_client.post("/api/2.0/suppliers", json=nested(MAX_JSON_DEPTH)).status_code == 200
    too_deep = sandbox_client.post("/api/2.0/suppliers", json=nested(MAX_JSON_DEPTH + 1))
    assert too_deep.status_code == 400


def test_names_skus_and_handles_longer_than_the_limit_are_422(
    sandbox_client: httpx.Client,
) -> None:
    long = "x" * (MAX_NAME_CHARS + 1)
    brand = sandbox_client.post("/api/2.0/brands", json={"name": long})
    assert brand.status_code == 422 and set(brand.json()["fields"]) == {"name"}
    product = sandbox_client.post(
        "/api/2.0/products",
        json={"name": long, "handle": long, "sku": "OK", "price_including_tax": 1},
    )
    assert product.status_code == 422
    assert set(product.json()["fields"]) == {"name", "handle"}
    variant = sandbox_client.post(
        "/api/2.0/products",
        json={
            "name": "Tee",
            "variants": [{"sku": long, "price_including_tax": 1, "variant_definitions": []}],
        },
    )
    assert variant.status_code == 422 and set(variant.json()["fields"]) == {"variants[0].sku"}
    description = sandbox_client.post(
        "/api/2.0/brands", json={"name": "Acme", "description": "x" * 70_000}
    )
    assert description.status_code == 422 and set(description.json()["fields"]) == {"description"}
    ok(sandbox_client.post("/api/2.0/brands", json={"name": "x" * MAX_NAME_CHARS}))


def test_over_a_socket_too(sandbox_url: str) -> None:
    token = {"Authorization": "Bearer sandbox-token"}
    with httpx.Client(base_url=sandbox_url, headers=token) as client:
        big = client.post("/api/2.0/brands", json={"name": "x" * (MAX_BODY_BYTES + 1)})
        assert big.status_code == 413
        plain = client.post(
            "/api/2.0/brands", content=b"{}", headers={"content-type": "text/plain"}
        )
        assert plain.status_code == 415
