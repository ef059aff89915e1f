"""Products as the real store keeps them: families, the 2.1 update, the store's rules, tax modes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.xseries.sandbox import SandboxStore

from .builders import attribute, family, ok, simple


def _product(client: httpx.Client, id: str) -> Any:
    return ok(client.get(f"/api/2.0/products/{id}"))["data"]


def _put(client: httpx.Client, id: str, **sections: Any) -> httpx.Response:
    return client.put(f"/api/2.1/products/{id}", json=sections)


@pytest.fixture
def size(sandbox_client: httpx.Client) -> str:
    return attribute(sandbox_client, "Size")


# -- families -------------------------------------------------------------------------------


def test_a_family_is_one_call_and_one_row_per_variant(
    sandbox_client: httpx.Client, size: str
) -> None:
    ids = family(sandbox_client, "Classic Tee", size, ["S", "M", "L"], handle="classic-tee")
    rows = [_product(sandbox_client, id) for id in ids]
    parent, *children = rows
    assert parent["has_variants"] is True and parent["variant_parent_id"] is None
    assert all(c["variant_parent_id"] == parent["id"] and not c["has_variants"] for c in children)
    assert {r["family_id"] for r in rows} == {parent["family_id"]}
    assert {(r["name"], r["handle"]) for r in rows} == {("Classic Tee", "classic-tee")}
    assert [r["variant_name"] for r in rows] == [f"Classic Tee / {v}" for v in "SML"]
    assert rows[1]["variant_options"] == [{"id": size, "name": "Size", "value": "M"}]
    assert [r["sku"] for r in rows] == ["CLASSIC-TEE-S", "CLASSIC-TEE-M", "CLASSIC-TEE-L"]
    assert rows[0]["product_codes"] == [{"type": "CUSTOM", "code": "CLASSIC-TEE-S"}]
    assert (
        ok(sandbox_client.get("/_sandbox/stats"))["requests"]["by_route"]["POST /api/2.0/products"]
        == 1
    )


def test_a_simple_product_has_no_variants(sandbox_client: httpx.Client) -> None:
    gift = _product(sandbox_client, simple(sandbox_client, "Gift Wrap", "GIFT"))
    assert gift["has_variants"] is False and gift["variant_parent_id"] is None
    assert gift["variant_options"] == [] and gift["variant_name"] == "Gift Wrap"
    assert gift["handle"] == "gift-wrap"
    assert gift["is_active"] is True and gift["active"] is True


def test_reads_embed_brand_supplier_type_and_tags(sandbox_client: httpx.Client) -> None:
    brand = ok(sandbox_client.post("/api/2.0/brands", json={"name": "Acme"}))["data"]
    supplier = ok(sandbox_client.post("/api/2.0/suppliers", json={"name": "Acme Supply"}))["data"]
    tag = ok(sandbox_client.post("/api/2.0/tags", json={"name": "summer"}))["data"]
    leaf = ok(
        sandbox_client.post(
            "/api/2.0/product_categories/bulk", json={"categories": [{"name": "Tops"}]}
        )
    )["data"][0]["id"]
    product = _product(
        sandbox_client,
        simple(
            sandbox_client,
            "Tee",
            "TEE",
            brand_id=brand,
            supplier_id=supplier,
            product_category_id=leaf,
            tag_ids=[tag],
            supplier_code="AC-1",
            supply_price=8,
        ),
    )
    assert product["brand"]["name"] == "Acme" and product["supplier"]["name"] == "Acme Supply"
    assert product["type"]["id"] == leaf and product["product_type_id"] == leaf
    assert product["type"]["category_path"][-1] == {"id": leaf, "name": "Tops"}
    assert "product_category" not in product  # not in the spec: the client must not need it
    assert product["tag_ids"] == [tag] and product["supplier_code"] == "AC-1"
    assert product["supply_price"] == 8
    bare = _product(sandbox_client, simple(sandbox_client, "Bare", "BARE"))
    assert bare["brand"] == {} and bare["supplier"] == {} and bare["type"] == {}


def test_a_missing_sku_comes_from_the_sequence(sandbox_client: httpx.Client) -> None:
    before = ok(sandbox_client.get("/api/2.0/retailer"))["data"]["sku_sequence"]["value"]
    body = {"name": "No Sku", "price_including_tax": 5}
    product = _product(
        sandbox_client, ok(sandbox_client.post("/api/2.0/products", json=body))["data"][0]
    )
    assert product["sku"] == str(before)
    assert product["product_codes"] == [{"type": "CUSTOM", "code": str(before)}]
    after = ok(sandbox_client.get("/api/2.0/retailer"))["data"]["sku_sequence"]["value"]
    assert after == before + 1


def test_sku_lookup_ignores_every_other_parameter(sandbox_client: httpx.Client) -> None:
    wanted = simple(sandbox_client, "Mug", "MUG-1")
    simple(sandbox_client, "Cup", "CUP-1")
    body = ok(
        sandbox_client.get(
            "/api/2.0/products",
            params={"sku": "MUG-1", "after": 10**12, "page_size": "nonsense", "deleted": "maybe"},
        )
    )
    assert [p["id"] for p in body["data"]] == [wanted]
    assert ok(sandbox_client.get("/api/2.0/products?sku=NOPE"))["data"] == []


# -- the store's rules ----------------------------------------------------------------------


def test_two_families_may_share_a_name_as_in_real_stores(
    sandbox_client: httpx.Client, size: str
) -> None:
    ids = family(sandbox_client, "Classic Tee", size, ["S"])
    again = ok(
        sandbox_client.post(
            "/api/2.0/products",
            json={"name": "Classic Tee", "sku": "OTHER", "price_including_tax": 1},
        )
    )["data"]
    assert again[0] not in ids
    rows = ok(sandbox_client.get("/api/2.0/products"))["data"]
    assert len({r["family_id"] for r in rows if r["name"] == "Classic Tee"}) == 2


def test_resending_a_create_names_both_clashes(sandbox_client: httpx.Client) -> None:
    body = {"name": "Mug", "sku": "MUG", "price_including_tax": 12}
    first = ok(sandbox_client.post("/api/2.0/products", json=body))["data"][0]
    again = sandbox_client.post("/api/2.0/products", json=body)
    assert again.status_code == 422
    fields = again.json()["fields"]
    assert fields["sku_existing_id"] == first and "name_existing_id" not in fields
    assert len(ok(sandbox_client.get("/api/2.0/products"))["data"]) == 1


def test_duplicate_sku_across_families_is_422(sandbox_client: httpx.Client, size: str) -> None:
    existing = simple(sandbox_client, "Mug", "SHARED")
    response = sandbox_client.post(
        "/api/2.0/products",
        json={
            "name": "Tee",
            "price_including_tax": 5,
            "variants": [
                {"sku": "SHARED", "variant_definitions": [{"attribute_id": size, "value": "S"}]}
            ],
        },
    )
    assert response.status_code == 422
    assert response.json()["fields"]["sku_existing_id"] == existing


def _variants(attributes: list[str], count: int) -> list[dict[str, Any]]:
    return [
        {
            "sku": f"V{n}",
            "variant_definitions": [{"attribute_id": a, "value": f"{n}"} for a in attributes],
        }
        for n in range(count)
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"price_excluding_tax": 10}, "price_including_tax"),  # both prices
        ({"price_including_tax": None}, "price_including_tax"),  # no price
        ({"price_including_tax": -1}, "price_including_tax"),
        ({"price_including_tax": "12.00"}, "price_including_tax"),  # a number is required
        ({"brand_id": "00000000-0000-4000-8000-000000000000"}, "brand_id"),
        ({"tag_ids": ["00000000-0000-4000-8000-000000000000"]}, "tag_ids"),
        ({"product_codes": [{"type": "BARCODE", "code": "1"}]}, "product_codes"),
    ],
)
def test_invalid_creates_are_422_naming_the_field(
    sandbox_client: httpx.Client, change: dict[str, Any], field: str
) -> None:
    body = {"name": "Mug", "sku": "MUG", "price_including_tax": 12, **change}
    response = sandbox_client.post("/api/2.0/products", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "Validation failed"
    assert field in response.json()["fields"]
    assert ok(sandbox_client.get("/api/2.0/products"))["data"] == []


def test_family_limits_three_attributes_and_two_hundred_variants(
    sandbox_client: httpx.Client,
) -> None:
    attributes = [attribute(sandbox_client, name) for name in ("A", "B", "C", "D")]
    four = sandbox_client.post(
        "/api/2.0/products",
        json={"name": "Four", "price_including_tax": 1, "variants": _variants(attributes, 2)},
    )
    assert four.status_code == 422
    many = sandbox_client.post(
        "/api/2.0/products",
        json={"name": "Many", "price_including_tax": 1, "variants": _variants(attributes[:1], 201)},
    )
    assert many.status_code == 422 and "variants" in many.json()["fields"]
    full = sandbox_client.post(
        "/api/2.0/products",
        json={"name": "Full", "price_including_tax": 1, "variants": _variants(attributes[:3], 200)},
    )
    assert len(ok(full)["data"]) == 200


def test_variants_must_share_attributes_and_differ_in_values(
    sandbox_client: httpx.Client, size: str
) -> None:
    colour = attribute(sandbox_client, "Colour")
    mixed = [
        {"sku": "A", "variant_definitions": [{"attribute_id": size, "value": "S"}]},
        {"sku": "B", "variant_definitions": [{"attribute_id": colour, "value": "Red"}]},
    ]
    twins = [
        {"sku": "A", "variant_definitions": [{"attribute_id": size, "value": "S"}]},
        {"sku": "B", "variant_definitions": [{"attribute_id": size, "value": "s"}]},
    ]
    for variants in (mixed, twins):
        body = {"name": "Tee", "price_including_tax": 1, "variants": variants}
        assert sandbox_client.post("/api/2.0/products", json=body).status_code == 422


def test_only_leaf_categories_take_products(sandbox_client: httpx.Client) -> None:
    created = ok(
        sandbox_client.post(
            "/api/2.0/product_categories/bulk",
            json={
                "categories": [
                    {"payload_id": "r", "name": "Apparel"},
                    {"payload_parent_category_id": "r", "name": "Tops"},
                ]
            },
        )
    )["data"]
    root, leaf = created[0]["id"], created[1]["id"]
    body = {"name": "Tee", "sku": "T", "price_including_tax": 1, "product_category_id": root}
    refused = sandbox_client.post("/api/2.0/products", json=body)
    assert refused.status_code == 422 and "product_category_id" in refused.json()["fields"]
    product = simple(sandbox_client, "Tee", "T", product_category_id=leaf)
    assert _put(sandbox_client, product, common={"product_category_id": root}).status_code == 422
    assert _product(sandbox_client, product)["product_type_id"] == leaf


# -- the 2.1 update -------------------------------------------------------------------------


def test_common_changes_every_member_and_details_only_the_one(
    sandbox_client: httpx.Client, size: str
) -> None:
    ids = family(sandbox_client, "Tee", size, ["S", "M", "L"])
    tag = ok(sandbox_client.post("/api/2.0/tags", json={"name": "sale"}))["data"]
    response = _put(
        sandbox_client,
        ids[2],  # any member's id works
        common={"description": "<p>new</p>", "tag_ids": [tag]},
        details={"price_including_tax": 30},
    )
    echoed = ok(response)["data"]
    assert echoed["product_id"] == ids[2] and echoed["details"] == {"price_including_tax": 30}
    rows = [_product(sandbox_client, id) for id in ids]
    assert [r["description"] for r in rows] == ["<p>new</p>"] * 3
    assert [r["tag_ids"] for r in rows] == [[tag]] * 3
    assert [r["price_including_tax"] for r in rows] == [25, 25, 30]


def test_arrays_replace_and_empty_string_clears(sandbox_client: httpx.Client) -> None:
    brand = ok(sandbox_client.post("/api/2.0/brands", json={"name": "Acme"}))["data"]
    tags = [ok(sandbox_client.post("/api/2.0/tags", json={"name": n}))["data"] for n in "abc"]
    product = simple(sandbox_client, "Mug", "MUG", brand_id=brand, tag_ids=tags[:2])
    ok(_put(sandbox_client, product, common={"tag_ids": [tags[2]], "brand_id": ""}))
    row = _product(sandbox_client, product)
    assert row["tag_ids"] == [tags[2]] and row["brand_id"] is None and row["brand"] == {}
    ok(
        _put(
            sandbox_client,
            product,
            details={
                "product_codes": [
                    {"type": "CUSTOM", "code": "MUG-2"},
                    {"type": "EAN", "code": "9300000000011"},
                ]
            },
        )
    )
    row = _product(sandbox_client, product)
    assert row["sku"] == "MUG-2" and len(row["product_codes"]) == 2
    assert ok(sandbox_client.get("/api/2.0/products?sku=MUG"))["data"] == []


def test_rename_is_family_wide_and_may_take_another_family_s_name(
    sandbox_client: httpx.Client, size: str
) -> None:
    ids = family(sandbox_client, "Tee", size, ["S", "M"])
    other = simple(sandbox_client, "Mug", "MUG")
    ok(_put(sandbox_client, ids[1], common={"name": "Mug"}))
    assert _product(sandbox_client, other)["name"] == "Mug"
    ok(_put(sandbox_client, ids[1], common={"name": "Classic Tee"}))
    assert {_product(sandbox_client, id)["name"] for id in ids} == {"Classic Tee"}


def test_update_of_an_unknown_or_deleted_product_is_404(sandbox_client: httpx.Client) -> None:
    product = simple(sandbox_client, "Mug", "MUG")
    ok(sandbox_client.delete(f"/api/2.0/products/{product}"))
    assert _put(sandbox_client, product, details={"is_active": False}).status_code == 404


def test_update_with_both_prices_is_rejected(sandbox_client: httpx.Client) -> None:
    product = simple(sandbox_client, "Mug", "MUG")
    both = {"price_including_tax": 1, "price_excluding_tax": 1}
    assert _put(sandbox_client, product, details=both).status_code == 422


def test_add_one_variant_by_family_name(sandbox_client: httpx.Client, size: str) -> None:
    ids = family(sandbox_client, "Tee", size, ["S", "M"])
    details = {
        "variant_attribute_values": [{"attribute_id": size, "attribute_value": "XL"}],
        "product_codes": [{"type": "CUSTOM", "code": "TEE-XL"}],
        "price_including_tax": 29,
    }
    added = ok(
        sandbox_client.post(
            "/api/2.1/products", json={"common": {"name": "Tee"}, "details": details}
        )
    )
    row = _product(sandbox_client, added["data"]["product_id"])
    assert row["variant_parent_id"] == ids[0] and row["sku"] == "TEE-XL"
    assert row["variant_name"] == "Tee / XL" and row["price_including_tax"] == 29
    assert _product(sandbox_client, ids[0])["variant_count"] == 3
    again = sandbox_client.post(
        "/api/2.1/products", json={"common": {"name": "Tee"}, "details": details}
    )
    assert again.status_code == 422
    missing_value = {**details, "variant_attribute_values": []}
    assert (
        sandbox_client.post(
            "/api/2.1/products", json={"common": {"name": "Tee"}, "details": missing_value}
        ).status_code
        == 422
    )
    unknown = sandbox_client.post(
        "/api/2.1/products", json={"common": {"name": "Nope"}, "details": details}
    )
    assert unknown.status_code == 422


# -- deletes --------------------------------------------------------------------------------


def test_delete_one_variant_and_the_parent_role_moves_on(
    sandbox_client: httpx.Client, size: str
) -> None:
    ids = family(sandbox_client, "Tee", size, ["S", "M", "L"])
    ok(sandbox_client.delete(f"/api/2.0/products/{ids[0]}"))
    heir, last = (_product(sandbox_client, id) for id in ids[1:])
    assert heir["variant_parent_id"] is None and heir["has_variants"] is True
    assert last["variant_parent_id"] == ids[1]
    assert sandbox_client.get(f"/api/2.0/products/{ids[0]}").status_code == 404
    assert sandbox_client.delete(f"/api/2.0/products/{ids[0]}").status_code == 404


def test_delete_all_removes_the_family(sandbox_client: httpx.Client, size: str) -> None:
    ids = family(sandbox_client, "Tee", size, ["S", "M"])
    keep = simple(sandbox_client, "Mug", "MUG")
    ok(sandbox_client.delete(f"/api/2.0/products/{ids[1]}/all"))
    assert [p["id"] for p in ok(sandbox_client.get("/api/2.0/products"))["data"]] == [keep]
    # The name and SKUs are free again.
    family(sandbox_client, "Tee", size, ["S", "M"])


def test_an_attribute_in_use_cannot_be_deleted(sandbox_client: httpx.Client, size: str) -> None:
    family(sandbox_client, "Tee", size, ["S"])
    refused = sandbox_client.delete(f"/api/2.0/variant_attributes/{size}")
    assert refused.status_code == 409 and refused.json()["error"] == "Conflict"


# -- tax modes ------------------------------------------------------------------------------


@pytest.fixture
def exclusive_client() -> Iterator[httpx.Client]:
    store = SandboxStore(rate_limit=None, tax_exclusive=True)
    with httpx.Client(
        transport=SandboxTransport(store),
        base_url="http://sandbox.invalid",
        headers={"Authorization": "Bearer sandbox-token"},
    ) as client:
        yield client


def test_tax_inclusive_store_computes_the_exclusive_price(sandbox_client: httpx.Client) -> None:
    assert ok(sandbox_client.get("/api/2.0/retailer"))["data"]["tax_exclusive"] is False
    product = _product(sandbox_client, simple(sandbox_client, "Mug", "MUG", price=3.02632))
    assert product["price_including_tax"] == 3.02632
    assert product["price_excluding_tax"] == 2.63158  # 3.02632 / 1.15, five decimals
    taxes = ok(sandbox_client.get("/api/2.0/taxes"))["data"]
    default = next(t for t in taxes if t["is_default"])
    assert default["rates"][0]["rate"] == 0.15


def test_tax_exclusive_store_computes_the_inclusive_price(exclusive_client: httpx.Client) -> None:
    assert ok(exclusive_client.get("/api/2.0/retailer"))["data"]["tax_exclusive"] is True
    body = {"name": "Mug", "sku": "MUG", "price_excluding_tax": 10}
    product = _product(
        exclusive_client, ok(exclusive_client.post("/api/2.0/products", json=body))["data"][0]
    )
    assert product["price_excluding_tax"] == 10 and product["price_including_tax"] == 11.5
    ok(_put(exclusive_client, product["id"], details={"price_excluding_tax": 2.63158}))
    product = _product(exclusive_client, product["id"])
    assert product["price_excluding_tax"] == 2.63158 and product["price_including_tax"] == 3.02632
