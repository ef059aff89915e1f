"""A plain httpx client for the Lightspeed Retail X-Series API, written only from the official
API documentation (no project code). It runs unchanged against a real store or the sandbox:

    python examples/xseries_client.py https://example.retail.lightspeed.app <token>
    LIGHTSPEED_BASE_URL=http://127.0.0.1:8787 LIGHTSPEED_TOKEN=sandbox-token \\
        python examples/xseries_client.py

It lists products page by page, creates a family with variants (or finds it if a previous
run created it), changes one variant's price with the 2.1 update, uploads an image, and reads
the change feed to show what it changed.
"""

from __future__ import annotations

import os
import sys
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

FAMILY_NAME = "Example Tee"
SIZES = ["S", "M", "L"]
# A 1x1 PNG, so the example needs no image file.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request, waiting out 429s until Retry-After and retrying 5xx on reads only."""
    for attempt in range(6):
        response = client.request(method, path, **kwargs)
        if response.status_code == 429:
            when = parsedate_to_datetime(response.headers["Retry-After"]).timestamp()
            time.sleep(max(0.0, when - time.time()) + 0.05)
            continue
        if response.status_code >= 500 and method == "GET":
            time.sleep(0.1 * 2**attempt)
            continue
        return response
    return response


def expect(response: httpx.Response, *statuses: int) -> Any:
    if response.status_code not in statuses:
        raise SystemExit(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text}"
        )
    return response.json() if response.content else None


def list_products(
    client: httpx.Client, after: int = 0, *, deleted: bool = False
) -> tuple[list[Any], int]:
    """Every product with a version above `after`, page by page; returns them and the highest
    version seen (the cursor for the next change-feed read)."""
    products: list[Any] = []
    cursor = after
    while True:
        params: dict[str, Any] = {"after": cursor, "page_size": 50}
        if deleted:
            params["deleted"] = "true"
        page = expect(call(client, "GET", "/api/2.0/products", params=params), 200)
        if not page["data"]:
            return products, cursor
        products.extend(page["data"])
        cursor = page["version"]["max"]


def size_attribute(client: httpx.Client) -> str:
    attributes = expect(call(client, "GET", "/api/2.0/variant_attributes"), 200)["data"]
    for attribute in attributes:
        if attribute["name"].lower() == "size":
            return str(attribute["id"])
    created = expect(
        call(client, "POST", "/api/2.0/variant_attributes", json={"name": "Size"}), 201
    )
    return str(created["data"]["id"])


def create_family(client: httpx.Client, price_field: str, size: str) -> list[str]:
    """Create the family in one call; if it already exists (422 naming it), use that one."""
    body = {
        "name": FAMILY_NAME,
        "handle": "example-tee",
        "description": "<p>Created by examples/xseries_client.py</p>",
        price_field: 25.00,
        "variants": [
            {
                "sku": f"EXAMPLE-TEE-{value}",
                "variant_definitions": [{"attribute_id": size, "value": value}],
            }
            for value in SIZES
        ],
    }
    response = call(client, "POST", "/api/2.0/products", json=body)
    if response.status_code == 422:
        fields = response.json().get("fields", {})
        existing = fields.get("name_existing_id") or fields.get("sku_existing_id")
        if existing:
            family_id = expect(call(client, "GET", f"/api/2.0/products/{existing}"), 200)["data"][
                "family_id"
            ]
            everything, _ = list_products(client)
            members = [p for p in everything if p["family_id"] == family_id]
            members.sort(key=lambda p: p["variant_parent_id"] is not None)
            return [str(p["id"]) for p in members]
    return [str(i) for i in expect(response, 200)["data"]]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    base_url = args[0] if args else os.environ.get("LIGHTSPEED_BASE_URL", "")
    token = args[1] if len(args) > 1 else os.environ.get("LIGHTSPEED_TOKEN", "")
    if not base_url or not token:
        print(
            "usage: xseries_client.py BASE_URL TOKEN (or LIGHTSPEED_BASE_URL and LIGHTSPEED_TOKEN)",
            file=sys.stderr,
        )
        return 64
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "User-Agent": "lightspeed-catalog-example/1.0",
    }
    with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=30) as client:
        retailer = expect(call(client, "GET", "/api/2.0/retailer"), 200)["data"]
        price_field = "price_excluding_tax" if retailer["tax_exclusive"] else "price_including_tax"
        print(f"store {retailer.get('name', '?')}: prices are written as {price_field}")

        products, cursor = list_products(client)
        print(f"listed {len(products)} products page by page, up to version {cursor}")

        size = size_attribute(client)
        family = create_family(client, price_field, size)
        print(f"family {FAMILY_NAME!r}: {len(family)} variants, parent {family[0]}")

        variant = family[-1]
        expect(
            call(
                client,
                "PUT",
                f"/api/2.1/products/{variant}",
                json={"details": {price_field: 27.50}},
            ),
            200,
        )
        print(f"set {price_field} of variant {variant} to 27.50")

        image = expect(
            call(
                client,
                "POST",
                f"/api/2.0/products/{family[0]}/actions/image_upload",
                files={"image": ("example.png", PNG, "image/png")},
            ),
            201,
        )["data"]
        deadline = time.monotonic() + 30
        while image["status"] == "processing" and time.monotonic() < deadline:
            time.sleep(0.1)
            image = expect(call(client, "GET", f"/api/2.0/product_images/{image['id']}"), 200)[
                "data"
            ]
        print(f"image {image['id']} is {image['status']}")

        changed, cursor = list_products(client, cursor, deleted=True)
        for product in changed:
            price = product[price_field]
            state = "deleted" if product["deleted_at"] else f"{price_field}={price}"
            print(f"changed: {product['sku']} v{product['version']} {state}")
        print(f"change feed: {len(changed)} products changed; next cursor {cursor}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
