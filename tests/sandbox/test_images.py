"""Image upload as the real store does it: multipart, content-checked, processed later,
deduplicated per product, and served from URLs that really return the bytes."""

from __future__ import annotations

import time

import httpx
import pytest

from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.rules import MAX_IMAGE_BYTES, MAX_IMAGES_PER_PRODUCT

from .builders import GIF, PNG, attribute, family, ok, simple, upload, wait_until_uploaded

SAMPLES = {
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00rest",
    "png": PNG,
    "gif": GIF,
    "tiff-le": b"II*\x00\x08\x00\x00\x00rest",
    "tiff-be": b"MM\x00*\x00\x00\x00\x08rest",
    "webp": b"RIFF\x24\x00\x00\x00WEBPVP8 rest",
}


@pytest.fixture
def product(sandbox_client: httpx.Client) -> str:
    return simple(sandbox_client, "Mug", "MUG")


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_allowed_formats_are_recognised_by_content(
    sandbox_client: httpx.Client, product: str, kind: str
) -> None:
    image = ok(upload(sandbox_client, product, SAMPLES[kind]), 201)["data"]
    assert image["status"] == "processing" and image["product_id"] == product
    assert set(image) == {"id", "product_id", "position", "status", "version"}


@pytest.mark.parametrize(
    "data", [b"just text, named photo.png", b"%PDF-1.7", b""], ids=["text", "pdf", "empty"]
)
def test_other_content_is_refused_whatever_its_name(
    sandbox_client: httpx.Client, product: str, data: bytes
) -> None:
    response = sandbox_client.post(
        f"/api/2.0/products/{product}/actions/image_upload",
        files={"image": ("photo.png", data, "image/png")},
    )
    assert response.status_code == 422 and "image" in response.json()["fields"]


def test_json_base64_and_wrong_field_uploads_are_refused(
    sandbox_client: httpx.Client, product: str
) -> None:
    path = f"/api/2.0/products/{product}/actions/image_upload"
    as_json = sandbox_client.post(path, json={"image": "iVBORw0KGgo="})
    assert as_json.status_code == 415 and "multipart" in as_json.json()["message"]
    wrong_field = sandbox_client.post(path, files={"file": ("a.png", PNG, "image/png")})
    assert wrong_field.status_code == 422
    base64_text = sandbox_client.post(
        path, files={"image": ("a.png", b"iVBORw0KGgo=", "image/png")}
    )
    assert base64_text.status_code == 422


def test_more_than_10_mb_is_refused(sandbox_client: httpx.Client, product: str) -> None:
    too_big = PNG + b"\x00" * (MAX_IMAGE_BYTES - len(PNG) + 1)
    response = upload(sandbox_client, product, too_big)
    assert response.status_code == 413 and response.json()["error"] == "Payload Too Large"


def test_processing_finishes_after_the_delay_and_then_the_product_lists_it() -> None:
    store = SandboxStore(rate_limit=None, image_processing_seconds=0.5)
    with httpx.Client(
        transport=SandboxTransport(store),
        base_url="http://sandbox.invalid",
        headers={"Authorization": "Bearer sandbox-token"},
    ) as client:
        product = simple(client, "Mug", "MUG")
        before = ok(client.get(f"/api/2.0/products/{product}"))["data"]["version"]
        image = ok(upload(client, product), 201)["data"]
        assert (
            ok(client.get(f"/api/2.0/product_images/{image['id']}"))["data"]["status"]
            == "processing"
        )
        assert ok(client.get(f"/api/2.0/products/{product}"))["data"]["images"] == []
        time.sleep(0.52)
        done = ok(client.get(f"/api/2.0/product_images/{image['id']}"))["data"]
        assert done["status"] == "uploaded" and done["version"] > image["version"]
        row = ok(client.get(f"/api/2.0/products/{product}"))["data"]
        assert [i["id"] for i in row["images"]] == [image["id"]]
        # The product changed, so the change feed shows it.
        assert row["version"] > before


def test_urls_and_sizes_serve_the_uploaded_bytes(
    sandbox_client: httpx.Client, sandbox: SandboxStore, product: str
) -> None:
    image_id = ok(upload(sandbox_client, product, GIF), 201)["data"]["id"]
    wait_until_uploaded(sandbox_client, image_id)
    row = ok(sandbox_client.get(f"/api/2.0/products/{product}"))["data"]
    (image,) = row["images"]
    assert set(image["sizes"]) >= {"original", "standard", "thumb"}
    for url in [image["url"], *image["sizes"].values(), row["image_url"]]:
        assert url.startswith("http://sandbox.invalid/")
        # Fetched without the token, as a browser fetches from the CDN.
        fetched = httpx.Client(transport=SandboxTransport(sandbox)).get(url)
        assert fetched.status_code == 200 and fetched.content == GIF
        assert fetched.headers["content-type"] == "image/gif"


def test_a_product_without_images_points_at_a_served_placeholder(
    sandbox_client: httpx.Client, sandbox: SandboxStore, product: str
) -> None:
    row = ok(sandbox_client.get(f"/api/2.0/products/{product}"))["data"]
    placeholder = httpx.Client(transport=SandboxTransport(sandbox)).get(row["image_url"])
    assert placeholder.status_code == 200 and placeholder.content.startswith(b"\x89PNG")


def test_the_same_bytes_again_reuse_the_image(sandbox_client: httpx.Client) -> None:
    size = attribute(sandbox_client, "Size")
    tee = family(sandbox_client, "Tee", size, ["S", "M"])
    mug = simple(sandbox_client, "Mug", "MUG")
    first = ok(upload(sandbox_client, tee[0]), 201)["data"]["id"]
    assert ok(upload(sandbox_client, tee[0]), 201)["data"]["id"] == first
    assert ok(upload(sandbox_client, tee[1]), 201)["data"]["id"] == first  # same family
    assert ok(upload(sandbox_client, mug), 201)["data"]["id"] != first


def test_reorder_and_delete(sandbox_client: httpx.Client, product: str) -> None:
    first = ok(upload(sandbox_client, product, PNG), 201)["data"]["id"]
    second = ok(upload(sandbox_client, product, GIF), 201)["data"]["id"]
    for image in (first, second):
        wait_until_uploaded(sandbox_client, image)
    listed = ok(sandbox_client.get(f"/api/2.0/products/{product}"))["data"]["images"]
    assert [i["id"] for i in listed] == [first, second]
    moved = ok(sandbox_client.put(f"/api/2.0/product_images/{second}", json={"position": 0}))
    assert moved["data"]["position"] == 0
    listed = ok(sandbox_client.get(f"/api/2.0/products/{product}"))["data"]["images"]
    assert [i["id"] for i in listed] == [second, first]
    assert sandbox_client.put(f"/api/2.0/product_images/{second}", json={}).status_code == 422
    deleted = sandbox_client.delete(f"/api/2.0/product_images/{second}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert sandbox_client.get(f"/api/2.0/product_images/{second}").status_code == 404
    listed = ok(sandbox_client.get(f"/api/2.0/products/{product}"))["data"]["images"]
    assert [i["id"] for i in listed] == [first]


def test_at_most_250_images_per_product(sandbox_client: httpx.Client, product: str) -> None:
    for n in range(MAX_IMAGES_PER_PRODUCT):
        ok(upload(sandbox_client, product, PNG + n.to_bytes(2, "big")), 201)
    refused = upload(sandbox_client, product, PNG + b"one more")
    assert refused.status_code == 422 and "image" in refused.json()["fields"]


def test_processing_settles_even_when_the_request_that_settles_it_fails(
    sandbox_client: httpx.Client, product: str
) -> None:
    image_id = ok(upload(sandbox_client, product), 201)["data"]["id"]
    time.sleep(0.05)  # processing is due; the next request settles it, then is refused
    refused = sandbox_client.post("/api/2.0/products", json={"name": ""})
    assert refused.status_code == 422
    assert wait_until_uploaded(sandbox_client, image_id)["status"] == "uploaded"
