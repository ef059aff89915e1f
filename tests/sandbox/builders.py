"""Small helpers that build sandbox content through the HTTP API, as a client would."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

# The smallest valid images of two formats; different bytes, so different images.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The parsed body, after checking the status (with the body in the failure message)."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


def attribute(client: httpx.Client, name: str) -> str:
    body = ok(client.post("/api/2.0/variant_attributes", json={"name": name}), 201)
    return str(body["data"]["id"])


def family(
    client: httpx.Client,
    name: str,
    attribute_id: str,
    values: list[str],
    *,
    sku_prefix: str | None = None,
    price: float = 25,
    **extra: Any,
) -> list[str]:
    """Create a family with one variant per value; returns the ids, parent first."""
    prefix = sku_prefix or name.upper().replace(" ", "-")
    body = {
        "name": name,
        "price_including_tax": price,
        "variants": [
            {
                "sku": f"{prefix}-{value}",
                "variant_definitions": [{"attribute_id": attribute_id, "value": value}],
            }
            for value in values
        ],
        **extra,
    }
    return [str(i) for i in ok(client.post("/api/2.0/products", json=body))["data"]]


def simple(client: httpx.Client, name: str, sku: str, *, price: float = 3.5, **extra: Any) -> str:
    body = {"name": name, "sku": sku, "price_including_tax": price, **extra}
    return str(ok(client.post("/api/2.0/products", json=body))["data"][0])


def upload(client: httpx.Client, product_id: str, data: bytes = PNG) -> httpx.Response:
    return client.post(
        f"/api/2.0/products/{product_id}/actions/image_upload",
        files={"image": ("picture.bin", data, "application/octet-stream")},
    )


def wait_until_uploaded(client: httpx.Client, image_id: str, *, timeout: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        image = ok(client.get(f"/api/2.0/product_images/{image_id}"))["data"]
        if image["status"] == "uploaded" or time.monotonic() > deadline:
            return image
        time.sleep(0.005)


@dataclass(frozen=True)
class Seeded:
    """One of everything, linked together: a family on a leaf category with brand, supplier,
    tag and an uploaded image, plus a simple product."""

    brand: str
    supplier: str
    tag: str
    attribute: str
    root_category: str
    leaf_category: str
    family: list[str]
    simple: str
    image: str


def seed_everything(client: httpx.Client) -> Seeded:
    brand = ok(client.post("/api/2.0/brands", json={"name": "Acme", "description": "d"}))["data"]
    supplier = ok(client.post("/api/2.0/suppliers", json={"name": "Acme Supply"}))["data"]
    tag = ok(client.post("/api/2.0/tags", json={"name": "summer"}))["data"]
    size = attribute(client, "Size")
    categories = ok(
        client.post(
            "/api/2.0/product_categories/bulk",
            json={
                "categories": [
                    {"payload_id": "root", "name": "Apparel"},
                    {"payload_parent_category_id": "root", "name": "Tops"},
                ]
            },
        )
    )["data"]
    members = family(
        client,
        "Classic Tee",
        size,
        ["S", "M"],
        brand_id=brand,
        supplier_id=supplier,
        supplier_code="ACME-TEE",
        supply_price=8,
        product_category_id=categories[1]["id"],
        tag_ids=[tag],
        description="<p>Soft</p>",
    )
    gift = simple(client, "Gift Wrap", "GIFT-WRAP")
    image = ok(upload(client, members[0]), 201)["data"]["id"]
    wait_until_uploaded(client, image)
    return Seeded(
        brand=brand,
        supplier=supplier,
        tag=tag,
        attribute=size,
        root_category=categories[0]["id"],
        leaf_category=categories[1]["id"],
        family=members,
        simple=gift,
        image=image,
    )
