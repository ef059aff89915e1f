"""Every sandbox endpoint that Lightspeed's OpenAPI specs document answers a valid request with
a documented status and a body that validates against that status's published schema."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jsonschema
import pytest

from reconciler.live import Live
from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.xseries.normalize import normalize_live
from reconciler.providers.xseries.sandbox import SandboxStore, build_app

from .builders import GIF, Seeded, seed_everything, upload
from .openapi import (
    CLIENT_READS,
    ERRATA,
    UNDECLARED_ALLOWED,
    documented_routes,
    field_key,
    operation,
    response_schema,
    route_shape,
    strip_fields,
    undeclared_fields,
    validate,
)

Send = Callable[[httpx.Client, Seeded], httpx.Response]


@dataclass(frozen=True)
class Case:
    version: str
    method: str
    path: str  # as the spec writes it, relative to /api/<version>
    send: Send

    @property
    def id(self) -> str:
        return f"{self.method} /api/{self.version}{self.path}"


def _put_variant_price(c: httpx.Client, s: Seeded) -> httpx.Response:
    return c.put(f"/api/2.1/products/{s.family[1]}", json={"details": {"price_including_tax": 30}})


def _add_variant(c: httpx.Client, s: Seeded) -> httpx.Response:
    return c.post(
        "/api/2.1/products",
        json={
            "common": {"name": "Classic Tee"},
            "details": {
                "variant_attribute_values": [{"attribute_id": s.attribute, "attribute_value": "L"}],
                "product_codes": [{"type": "CUSTOM", "code": "CLASSIC-TEE-L"}],
                "price_including_tax": 27,
            },
        },
    )


def _delete_unused_attribute(c: httpx.Client, s: Seeded) -> httpx.Response:
    unused = c.post("/api/2.0/variant_attributes", json={"name": "Fit"}).json()["data"]["id"]
    return c.delete(f"/api/2.0/variant_attributes/{unused}")


def _create_family(c: httpx.Client, s: Seeded) -> httpx.Response:
    return c.post(
        "/api/2.0/products",
        json={
            "name": "Hoodie",
            "handle": "hoodie",
            "price_including_tax": 60,
            "brand_id": s.brand,
            "variants": [
                {
                    "sku": "HOOD-S",
                    "variant_definitions": [{"attribute_id": s.attribute, "value": "S"}],
                },
                {
                    "sku": "HOOD-M",
                    "variant_definitions": [{"attribute_id": s.attribute, "value": "M"}],
                },
            ],
        },
    )


V20 = "2.0"
CASES = [
    Case(V20, "GET", "/retailer", lambda c, s: c.get("/api/2.0/retailer")),
    Case(V20, "GET", "/outlets", lambda c, s: c.get("/api/2.0/outlets")),
    Case(
        V20,
        "GET",
        "/outlets/{outlet_id}",
        lambda c, s: c.get(f"/api/2.0/outlets/{c.get('/api/2.0/outlets').json()['data'][0]['id']}"),
    ),
    Case(V20, "GET", "/taxes", lambda c, s: c.get("/api/2.0/taxes")),
    Case(V20, "GET", "/brands", lambda c, s: c.get("/api/2.0/brands")),
    Case(V20, "POST", "/brands", lambda c, s: c.post("/api/2.0/brands", json={"name": "Other"})),
    Case(V20, "GET", "/brands/{brand_id}", lambda c, s: c.get(f"/api/2.0/brands/{s.brand}")),
    Case(
        V20,
        "PUT",
        "/brands/{brand_id}",
        lambda c, s: c.put(f"/api/2.0/brands/{s.brand}", json={"name": "Acme Co"}),
    ),
    Case(V20, "DELETE", "/brands/{brand_id}", lambda c, s: c.delete(f"/api/2.0/brands/{s.brand}")),
    Case(V20, "GET", "/suppliers", lambda c, s: c.get("/api/2.0/suppliers")),
    Case(V20, "POST", "/suppliers", lambda c, s: c.post("/api/2.0/suppliers", json={"name": "S2"})),
    Case(
        V20,
        "GET",
        "/suppliers/{supplier_id}",
        lambda c, s: c.get(f"/api/2.0/suppliers/{s.supplier}"),
    ),
    Case(
        V20,
        "PUT",
        "/suppliers/{supplier_id}",
        lambda c, s: c.put(
            f"/api/2.0/suppliers/{s.supplier}",
            json={"name": "Acme Supply Ltd", "contact": {"email": "a@example.com"}},
        ),
    ),
    Case(
        V20,
        "DELETE",
        "/suppliers/{supplier_id}",
        lambda c, s: c.delete(f"/api/2.0/suppliers/{s.supplier}"),
    ),
    Case(V20, "GET", "/tags", lambda c, s: c.get("/api/2.0/tags")),
    Case(V20, "POST", "/tags", lambda c, s: c.post("/api/2.0/tags", json={"name": "winter"})),
    Case(V20, "GET", "/tags/{tag_id}", lambda c, s: c.get(f"/api/2.0/tags/{s.tag}")),
    Case(
        V20,
        "PUT",
        "/tags/{tag_id}",
        lambda c, s: c.put(f"/api/2.0/tags/{s.tag}", json={"name": "Summer"}),
    ),
    Case(V20, "DELETE", "/tags/{tag_id}", lambda c, s: c.delete(f"/api/2.0/tags/{s.tag}")),
    Case(V20, "GET", "/variant_attributes", lambda c, s: c.get("/api/2.0/variant_attributes")),
    Case(
        V20,
        "POST",
        "/variant_attributes",
        lambda c, s: c.post("/api/2.0/variant_attributes", json={"name": "Colour"}),
    ),
    Case(
        V20,
        "GET",
        "/variant_attributes/{attribute-id}",
        lambda c, s: c.get(f"/api/2.0/variant_attributes/{s.attribute}"),
    ),
    Case(
        V20,
        "PUT",
        "/variant_attributes/{attribute-id}",
        lambda c, s: c.put(f"/api/2.0/variant_attributes/{s.attribute}", json={"name": "Sizes"}),
    ),
    Case(
        V20,
        "DELETE",
        "/variant_attributes/{attribute-id}",
        _delete_unused_attribute,
    ),
    Case(V20, "GET", "/product_types", lambda c, s: c.get("/api/2.0/product_types")),
    Case(
        V20,
        "GET",
        "/product_types/{product_type_id}",
        lambda c, s: c.get(f"/api/2.0/product_types/{s.leaf_category}"),
    ),
    Case(V20, "GET", "/product_categories", lambda c, s: c.get("/api/2.0/product_categories")),
    Case(
        V20,
        "POST",
        "/product_categories/bulk",
        lambda c, s: c.post(
            "/api/2.0/product_categories/bulk",
            json={
                "categories": [
                    {"id": s.leaf_category, "name": "T-Shirts"},
                    {"parent_category_id": s.root_category, "name": "Bottoms"},
                ]
            },
        ),
    ),
    Case(
        V20,
        "DELETE",
        "/product_categories/bulk",
        lambda c, s: c.request(
            "DELETE", "/api/2.0/product_categories/bulk", json={"category_ids": [s.leaf_category]}
        ),
    ),
    Case(V20, "GET", "/products", lambda c, s: c.get("/api/2.0/products")),
    Case(V20, "POST", "/products", _create_family),
    Case(
        V20, "GET", "/products/{product_id}", lambda c, s: c.get(f"/api/2.0/products/{s.family[0]}")
    ),
    Case(
        V20,
        "DELETE",
        "/products/{product_id}",
        lambda c, s: c.delete(f"/api/2.0/products/{s.family[1]}"),
    ),
    Case(
        V20,
        "DELETE",
        "/products/{product_id}/all",
        lambda c, s: c.delete(f"/api/2.0/products/{s.family[1]}/all"),
    ),
    Case(
        V20,
        "POST",
        "/products/{product_id}/actions/image_upload",
        lambda c, s: upload(c, s.family[0], GIF),
    ),
    Case(
        V20,
        "GET",
        "/product_images/{product_image_id}",
        lambda c, s: c.get(f"/api/2.0/product_images/{s.image}"),
    ),
    Case(
        V20,
        "PUT",
        "/product_images/{product_image_id}",
        lambda c, s: c.put(f"/api/2.0/product_images/{s.image}", json={"position": 3}),
    ),
    Case(
        V20,
        "DELETE",
        "/product_images/{product_image_id}",
        lambda c, s: c.delete(f"/api/2.0/product_images/{s.image}"),
    ),
    Case("2.1", "PUT", "/products/{product-id}", _put_variant_price),
    Case("2.1", "POST", "/products", _add_variant),
]


@pytest.fixture
def seeded(sandbox_client: httpx.Client) -> Seeded:
    return seed_everything(sandbox_client)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_valid_request_gets_documented_response(
    case: Case, sandbox_client: httpx.Client, seeded: Seeded
) -> None:
    response = case.send(sandbox_client, seeded)
    assert response.status_code < 300, f"{case.id}: {response.status_code} {response.text}"
    validate(response, case.version, case.method, case.path)


@pytest.mark.parametrize("tax_exclusive", [False, True])
def test_product_reads_validate_in_both_tax_modes(tax_exclusive: bool) -> None:
    store = SandboxStore(rate_limit=None, tax_exclusive=tax_exclusive, image_processing_seconds=0)
    with httpx.Client(
        transport=SandboxTransport(store),
        base_url="http://sandbox.invalid",
        headers={"Authorization": "Bearer sandbox-token"},
    ) as client:
        seeded = seed_everything(client)
        listing = client.get("/api/2.0/products", params={"deleted": "true"})
        body = validate(listing, "2.0", "GET", "/products")
        assert {p["id"] for p in body["data"]} >= {*seeded.family, seeded.simple}
        found = client.get("/api/2.0/products", params={"sku": "GIFT-WRAP"})
        assert validate(found, "2.0", "GET", "/products")["data"][0]["id"] == seeded.simple


def test_documented_error_answers_validate(sandbox_client: httpx.Client, seeded: Seeded) -> None:
    duplicate = sandbox_client.post("/api/2.0/variant_attributes", json={"name": "size"})
    assert duplicate.status_code == 422
    validate(duplicate, "2.0", "POST", "/variant_attributes")
    missing = "00000000-0000-4000-8000-000000000000"
    unknown = sandbox_client.put(f"/api/2.0/variant_attributes/{missing}", json={"name": "X"})
    assert unknown.status_code == 404
    validate(unknown, "2.0", "PUT", "/variant_attributes/{attribute-id}")
    gone = sandbox_client.put(f"/api/2.1/products/{missing}", json={"details": {}})
    assert gone.status_code == 404
    validate(gone, "2.1", "PUT", "/products/{product-id}")
    rejected = sandbox_client.put(
        f"/api/2.1/products/{seeded.family[0]}",
        json={"details": {"price_including_tax": 1, "price_excluding_tax": 1}},
    )
    assert rejected.status_code == 422
    validate(rejected, "2.1", "PUT", "/products/{product-id}")


def _spec_route(version: str, path: str) -> str:
    return route_shape(f"/api/{version}{path}")


def test_every_implemented_endpoint_in_the_specs_has_a_case() -> None:
    """Adding a route that the specs document without a conformance case fails here."""
    covered = {(c.method, _spec_route(c.version, c.path)) for c in CASES}
    served = set()
    for route in build_app(SandboxStore(rate_limit=None)).routes:
        path = getattr(route, "path", "")
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                served.add((method, route_shape(path)))
    documented = documented_routes()
    missing = sorted((served & documented) - covered)
    assert not missing, f"endpoints without a conformance case: {missing}"
    assert covered <= served


def test_errata_are_still_needed(sandbox_client: httpx.Client, seeded: Seeded) -> None:
    """Each patched schema really rejects the faithful response, and the patch really fixes it."""
    for version, method, path, status in ERRATA:
        case = next(c for c in CASES if (c.version, c.method, c.path) == (version, method, path))
        response = case.send(sandbox_client, seeded)
        assert response.status_code == status
        with pytest.raises(jsonschema.ValidationError):
            validate(response, version, method, path, errata=False)
        validate(response, version, method, path)


def test_spec_translation_turns_nullable_into_null() -> None:
    schema = response_schema("2.0", "GET", "/brands/{brand_id}", 200)
    assert schema is not None
    brand = {"id": "x", "name": "Acme", "deleted_at": None}
    jsonschema.Draft202012Validator(schema).validate({"data": brand})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({"data": {**brand, "deleted_at": 5}})
    assert "responses" in operation("2.0", "GET", "/brands")


READS = [
    ("/products", lambda s: "/api/2.0/products"),
    ("/products/{product_id}", lambda s: f"/api/2.0/products/{s.family[0]}"),
    ("/brands", lambda s: "/api/2.0/brands"),
    ("/brands/{brand_id}", lambda s: f"/api/2.0/brands/{s.brand}"),
    ("/suppliers", lambda s: "/api/2.0/suppliers"),
    ("/suppliers/{supplier_id}", lambda s: f"/api/2.0/suppliers/{s.supplier}"),
    ("/tags", lambda s: "/api/2.0/tags"),
    ("/tags/{tag_id}", lambda s: f"/api/2.0/tags/{s.tag}"),
    ("/product_types", lambda s: "/api/2.0/product_types"),
    ("/product_types/{product_type_id}", lambda s: f"/api/2.0/product_types/{s.leaf_category}"),
    ("/product_categories", lambda s: "/api/2.0/product_categories"),
    ("/variant_attributes", lambda s: "/api/2.0/variant_attributes"),
    ("/variant_attributes/{attribute-id}", lambda s: f"/api/2.0/variant_attributes/{s.attribute}"),
]


def _undeclared(client: httpx.Client, path: str, url: str) -> tuple[Any, set[str]]:
    response = client.get(url)
    body = validate(response, "2.0", "GET", path)
    schema = response_schema("2.0", "GET", path, response.status_code)
    assert schema is not None
    return body, undeclared_fields(body, schema)


@pytest.mark.parametrize(("path", "url"), READS, ids=[p for p, _ in READS])
def test_reads_send_no_undeclared_field_beyond_the_documented_list(
    path: str, url: Callable[[Seeded], str], sandbox_client: httpx.Client, seeded: Seeded
) -> None:
    _, found = _undeclared(sandbox_client, path, url(seeded))
    extra = sorted(f for f in found if field_key(f) not in UNDECLARED_ALLOWED)
    assert not extra, f"GET {path} sends fields the spec does not declare: {extra}"


def test_the_client_reads_no_sandbox_only_field(
    sandbox_client: httpx.Client, seeded: Seeded
) -> None:
    """The store normalized from the sandbox's reads equals the store normalized from the same
    reads with every undeclared field stripped (but the documented CLIENT_READS)."""
    bodies: dict[str, tuple[Any, Any]] = {}
    for path, url in READS:
        body, found = _undeclared(sandbox_client, path, url(seeded))
        bare = strip_fields(body, {f for f in found if field_key(f) not in CLIENT_READS})
        bodies[path] = (body, bare)

    def store(which: int) -> Live:
        def rows(path: str) -> list[Any]:
            data = bodies[path][which]["data"]
            return list(data["categories"] if isinstance(data, dict) else data)

        return normalize_live(
            products=rows("/products"),
            brands=rows("/brands"),
            suppliers=rows("/suppliers"),
            tags=rows("/tags"),
            attributes=rows("/variant_attributes"),
            categories=rows("/product_categories"),
            tax_exclusive=False,
        )

    full, bare = store(0), store(1)
    assert full.products and bare == full
    tee = full.products["classic-tee"].product
    assert (tee.brand, tee.category, tee.tags) == ("Acme", ("Apparel", "Tops"), ("summer",))
