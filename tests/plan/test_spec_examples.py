"""Every example response body in Lightspeed's published specs (captures from a demo store)
normalizes without error, and the shapes real stores send are read as the catalog means them
(issue 18: tags only in the embedded `categories`, `type` objects, `{}` / `null` relations,
a variant option name repeated on one row)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.live import family_values
from reconciler.providers.xseries.normalize import normalize_live, trim

from .livedata import BRAND, TAGS, live, simple_row

REFERENCE = Path("/work/shared/reference")
SPECS = sorted(REFERENCE.glob("xseries-api-*.openapi.json"))


def _examples() -> list[tuple[str, Any]]:
    """(id, body) of every JSON example of every response in every spec."""
    found: list[tuple[str, Any]] = []
    for spec_file in SPECS:
        spec = json.loads(spec_file.read_text())
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                if not isinstance(operation, dict):
                    continue
                for status, response in (operation.get("responses") or {}).items():
                    media = (response.get("content") or {}).get("application/json") or {}
                    bodies = [media["example"]] if "example" in media else []
                    bodies += [e.get("value") for e in (media.get("examples") or {}).values()]
                    for n, body in enumerate(bodies):
                        found.append(
                            (f"{spec_file.name} {method.upper()} {path} {status} #{n}", body)
                        )
    return found


EXAMPLES = _examples()
# What each read path gives the normalizer: products, or a kind of named object.
NAMED = {
    "/brands": "brands",
    "/brands/{brand_id}": "brands",
    "/suppliers": "suppliers",
    "/suppliers/{supplier_id}": "suppliers",
    "/tags": "tags",
    "/tags/{tag_id}": "tags",
    "/product_types": "categories",
    "/product_types/{product_type_id}": "categories",
    "/product_categories": "categories",
    "/variant_attributes": "attributes",
}


def _objects(body: Any) -> list[Any]:
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, dict):
        return [data]
    return [o for o in data if isinstance(o, dict)] if isinstance(data, list) else []


def test_the_specs_hold_example_bodies_for_the_reads_we_normalize() -> None:
    ids = " ".join(i for i, _ in EXAMPLES)
    assert SPECS and len(EXAMPLES) > 50
    for path in ("GET /products 200", "GET /products/{product_id} 200", "GET /brands 200"):
        assert path in ids


@pytest.mark.parametrize(("case", "body"), EXAMPLES, ids=[i for i, _ in EXAMPLES])
@pytest.mark.parametrize("cached", [False, True], ids=["as-read", "through-the-cache"])
def test_every_example_body_normalizes(case: str, body: Any, cached: bool) -> None:
    """Whatever the body, read as products and as each kind of named object, nothing
    raises; bodies of the reads we use give what their objects hold."""
    path = case.split()[2]
    objects = _objects(body)
    rows = [trim("product", o) for o in objects] if cached else objects
    for tax_exclusive in (False, True):
        got = normalize_live(
            products=rows,
            brands=objects,
            suppliers=objects,
            tags=objects,
            attributes=objects,
            categories=objects,
            tax_exclusive=tax_exclusive,
        )
        for found in got.products.values():
            family_values(found.product, declared_only=False)
    kind = NAMED.get(path)
    if kind is not None:
        named = normalize_live(products=[], tax_exclusive=False, **{kind: objects})
        held = getattr(named.names, kind)
        assert len(held) == len({o["name"].casefold() for o in objects if o.get("name")})


def _bravo() -> dict[str, Any]:
    body = next(b for i, b in EXAMPLES if "GET /products/{product_id} 200" in i)
    data: dict[str, Any] = body["data"]
    return data


@pytest.mark.parametrize("cached", [False, True], ids=["as-read", "through-the-cache"])
def test_the_specs_own_product_reads_as_the_store_means_it(cached: bool) -> None:
    """ "Bravo": tags only known through the embedded `categories` (the tag list does not hold
    their ids), brand and supplier embedded, the category from `type`, and "Fabric" twice."""
    row = trim("product", _bravo()) if cached else _bravo()
    got = normalize_live(products=[row], tax_exclusive=False).products["bravo"]
    assert family_values(got.product, declared_only=True) == {
        "name": "Bravo",
        "description": "<p>The best product ever, except for the next one.</p>",
        "brand": "Peak Performance",
        "supplier": "Peak",
        "supplier_code": "123456",
        "category": "General",
        "tags": ["tag_test", "variant"],
        "options": ["Color", "Fabric"],
    }
    assert got.rows["787878"].values.options == (("Color", "Black"), ("Fabric", "Cotton"))
    assert got.notices == (
        "the store holds variant option \"Fabric\" more than once on SKU '787878'; only its "
        "first value is read (remove the repeat in the store)",
    )
    assert got.problems == ()


def test_tags_come_from_the_embedded_categories_when_a_row_has_no_tag_ids() -> None:
    row = simple_row(categories=[{"id": "t1", "name": "summer"}, {"id": "t9", "name": "Kids"}])
    del row["tag_ids"]
    assert live([row], tags=TAGS).products["0006"].product.tags == ("Kids", "summer")
    # With `tag_ids`, they decide; the embedded names only name ids the tag list lacks.
    both = simple_row(tag_ids=["t2", "t9"], categories=[{"id": "t9", "name": "Kids"}])
    assert live([both], tags=TAGS).products["0006"].product.tags == ("Cotton", "Kids")


@pytest.mark.parametrize("absent", [{}, None])
def test_absent_relations_as_empty_objects_or_null(absent: dict[str, Any] | None) -> None:
    row = simple_row(brand=absent, supplier=absent, type=absent, categories=None, tag_ids=None)
    got = live([row]).products["0006"].product
    assert (got.brand, got.supplier, got.category, got.tags) == (None, None, None, ())


def test_an_embedded_brand_without_an_id_field_is_read_by_its_id() -> None:
    row = simple_row(brand={"id": "b1", "name": "Old name"})
    assert live([row], brands=[BRAND]).products["0006"].product.brand == "Acme"


def test_a_repeated_option_name_is_a_notice_of_the_plan_naming_the_product() -> None:
    from reconciler.api import make_plan
    from reconciler.importer import catalog_from_live

    got = normalize_live(products=[_bravo()], tax_exclusive=False)
    catalog = catalog_from_live({h: lp.product for h, lp in got.products.items()}).catalog
    plan = make_plan(catalog, got, store="demo")
    assert any(
        n.startswith('bravo: the store holds variant option "Fabric" more than once')
        for n in plan.notices
    )
