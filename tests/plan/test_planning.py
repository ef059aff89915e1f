"""make_plan on hand-made live values: actions, the request estimate, drift, prune, targets."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from reconciler.api import make_plan
from reconciler.errors import UsageError
from reconciler.model import Brand, Catalog, Product, Prune, Settings, Variant
from reconciler.plan import Action, Kind, Plan
from reconciler.planner import estimate

from .helpers import FakeManaged
from .livedata import family_rows, live, simple_row

SIZE_S = (("Size", "S"), ("Colour", "Black"))
SIZE_M = (("Size", "M"), ("Colour", "Black"))


def tee(**overrides: Any) -> Product:
    """The catalog's declaration matching `family_rows()` exactly."""
    fields: dict[str, Any] = {
        "handle": "classic-tee",
        "name": "Classic Tee",
        "description": "<p>Soft</p>",
        "brand": "Acme",
        "supplier": "Acme Supply",
        "supplier_code": "ACME-TEE",
        "category": ("Apparel", "Tops"),
        "tags": ("Cotton", "summer"),
        "price": D("25"),
        "supply_price": D("8"),
        "options": ("Size", "Colour"),
        "variants": (
            Variant("TEE-S", SIZE_S, price=D("27.00"), barcode="9300000000011", active=True),
            Variant("TEE-M", SIZE_M, active=False),
        ),
    }
    fields.update(overrides)
    return Product(**fields)


def plan_of(
    products: list[Product],
    rows: list[dict[str, Any]] | None = None,
    *,
    managed: dict[str, dict[str, FakeManaged]] | None = None,
    settings: Settings | None = None,
    **kwargs: Any,
) -> Plan:
    catalog = Catalog.build(products=products, settings=settings)
    return make_plan(
        catalog,
        live(family_rows() if rows is None else rows),
        store="test",
        managed=managed,
        **kwargs,
    )


def managed_tee(**applied: Any) -> dict[str, dict[str, FakeManaged]]:
    return {
        "product": {"classic-tee": FakeManaged("v1", applied)},
        "variant": {"TEE-S": FakeManaged("v1", {}), "TEE-M": FakeManaged("v2", {})},
    }


def test_identical_and_managed_is_empty() -> None:
    plan = plan_of([tee()], managed=managed_tee())
    assert plan.changes == () and not plan.has_changes
    assert plan.estimate.requests == 0
    assert plan.unchanged > 0


def test_identical_but_never_managed_is_adopted_without_a_request() -> None:
    plan = plan_of([tee()])
    [change] = plan.changes
    assert (change.kind, change.action, change.requests) == (Kind.PRODUCT, Action.ADOPT, 0)
    assert change.remote_id == "v1" and change.live_version == "105"
    assert plan.estimate.requests == 0


def test_an_adoption_records_each_repeated_value_once() -> None:
    # Adopting a large store records every declared field of every row; the fields whose
    # values repeat (prices, options, brand, category, tags) are one shared instance each.
    rows = family_rows() + [
        {**row, "id": f"o{n}", "family_id": "f2", "handle": "other-tee", "sku": f"O-{n}"}
        for n, row in enumerate(family_rows())
    ]
    other = tee(
        handle="other-tee",
        name="Classic Tee",
        variants=(
            Variant("O-0", SIZE_S, price=D("27.00"), barcode="9300000000011", active=True),
            Variant("O-1", SIZE_M, active=False),
        ),
    )
    plan = plan_of([tee(), other], rows)
    mine, theirs = (c for c in plan.changes if c.kind is Kind.PRODUCT)
    assert (mine.action, theirs.action) == (Action.ADOPT, Action.ADOPT)
    for field in ("brand", "supplier", "category", "tags", "options"):
        assert mine.field(field) is theirs.field(field) is not None
    for a, b in zip(mine.children, theirs.children, strict=True):
        assert a.key != b.key
        for field in ("price", "supply_price", "options", "active"):
            assert a.field(field) is b.field(field) is not None
        assert a.field("barcode") == b.field("barcode")
    assert mine.field("name") is not theirs.field("name")  # names are not kept: few repeat


def test_a_fresh_store_plans_names_first_then_one_request_per_family() -> None:
    gift = Product(handle="gift-wrap", name="Gift Wrap", sku="GIFT", price=D("3.50"), brand="Zeta")
    plan = make_plan(
        Catalog.build(products=[tee(), gift], brands=[Brand("Acme", "Our own")]),
        live([], brands=[], suppliers=[], tags=[], attributes=[], categories=[]),
        store="test",
    )
    kinds = [c.kind for c in plan.changes]
    assert kinds == [
        Kind.BRAND,
        Kind.BRAND,
        Kind.SUPPLIER,
        Kind.TAG,
        Kind.TAG,
        Kind.ATTRIBUTE,
        Kind.ATTRIBUTE,
        Kind.CATEGORY,
        Kind.CATEGORY,
        Kind.PRODUCT,
        Kind.PRODUCT,
    ]
    assert all(c.action is Action.CREATE for c in plan.changes)
    assert [c.key for c in plan.changes if c.kind is Kind.CATEGORY] == ["Apparel", "Apparel / Tops"]
    # 2 brands + 1 supplier + 2 tags + 2 attributes + 1 category bulk call + 2 products, and
    # one PUT for the inactive TEE-M: the create takes one `is_active` for the whole family
    assert plan.estimate.requests == 11
    family = plan.changes[-2]
    assert [c.key for c in family.children] == ["TEE-S", "TEE-M"]
    assert family.children[1].field("price").after == "25.00"  # the family price folded in
    assert plan.counts()[Action.CREATE] == 11


def test_one_price_edit_is_exactly_one_field_change_and_one_request() -> None:
    product = tee(
        variants=(tee().variants[0], Variant("TEE-M", SIZE_M, price=D("26"), active=False))
    )
    plan = plan_of([product], managed=managed_tee())
    [change] = plan.changes
    assert change.action is Action.UPDATE and change.fields == ()
    [variant] = change.children
    assert (variant.key, variant.remote_id, variant.requests) == ("TEE-M", "v2", 1)
    [field] = variant.fields
    assert (field.field, field.before, field.after, field.drift) == (
        "price",
        "25.00",
        "26.00",
        False,
    )
    assert plan.estimate.requests == 1


def test_family_wide_changes_ride_along_with_a_variant_request() -> None:
    both = tee(
        description="<p>Softer</p>",
        variants=(tee().variants[0], Variant("TEE-M", SIZE_M, price=D("26"), active=False)),
    )
    assert plan_of([both], managed=managed_tee()).estimate.requests == 1
    family_only = tee(description="<p>Softer</p>", tags=("summer",))
    plan = plan_of([family_only], managed=managed_tee())
    assert [f.field for f in plan.changes[0].fields] == ["description", "tags"]
    assert plan.estimate.requests == 1
    every_row = tee(
        price=D("30"), variants=tuple(Variant(v.sku, v.options) for v in tee().variants)
    )
    # Two rows change price and active; each row is its own request.
    assert plan_of([every_row], managed=managed_tee()).estimate.requests == 2


def test_a_variant_added_to_an_existing_family_costs_one_request() -> None:
    extra = Variant("TEE-L", (("Size", "L"), ("Colour", "Black")))
    plan = plan_of([tee(variants=(*tee().variants, extra))], managed=managed_tee())
    [variant] = plan.changes[0].children
    assert (variant.key, variant.action, variant.requests) == ("TEE-L", Action.CREATE, 1)
    assert plan.estimate.requests == 1


def test_an_edit_made_in_the_store_is_labelled_drift() -> None:
    rows = family_rows()
    rows[0]["price_including_tax"] = 30.0  # someone changed TEE-S in the store
    managed = managed_tee()
    managed["variant"]["TEE-S"] = FakeManaged("v1", {"price": "27.00"})
    plan = plan_of([tee()], rows, managed=managed)
    [field] = plan.changes[0].children[0].fields
    assert (field.before, field.after, field.drift) == ("30.00", "27.00", True)


def test_a_catalog_edit_is_not_drift() -> None:
    managed = managed_tee()
    managed["variant"]["TEE-S"] = FakeManaged("v1", {"price": "27.00"})
    edited = tee(
        variants=(
            Variant("TEE-S", SIZE_S, price=D("28"), barcode="9300000000011"),
            tee().variants[1],
        )
    )
    [field] = plan_of([edited], managed=managed).changes[0].children[0].fields
    assert field.drift is False


def test_names_match_case_insensitively() -> None:
    product = tee(brand="ACME", tags=("cotton", "SUMMER"), category=("apparel", "tops"))
    plan = plan_of([product], managed=managed_tee())
    assert plan.changes == ()


def test_undeclared_fields_are_never_compared() -> None:
    bare = Product(
        handle="classic-tee",
        name="Classic Tee",
        options=("Size", "Colour"),
        variants=(Variant("TEE-S", SIZE_S), Variant("TEE-M", SIZE_M)),
    )
    assert plan_of([bare], managed=managed_tee()).changes == ()


def test_removed_products_are_only_counted_without_prune() -> None:
    plan = plan_of([], managed=managed_tee())
    assert plan.changes == ()
    assert any("1 managed product is no longer declared" in n for n in plan.notices)


def test_prune_deactivate_costs_one_request_per_active_row() -> None:
    plan = plan_of([], managed=managed_tee(), settings=Settings(prune=Prune.DEACTIVATE))
    [change] = plan.changes
    assert change.action is Action.DEACTIVATE
    # TEE-M is already inactive: only TEE-S needs a write.
    assert [(c.key, c.requests) for c in change.children] == [("TEE-S", 1)]
    assert plan.estimate.requests == 1


def test_prune_delete_removes_a_family_in_one_request() -> None:
    plan = plan_of([], managed=managed_tee(), settings=Settings(prune=Prune.DELETE))
    [change] = plan.changes
    assert (change.action, change.requests, change.remote_id) == (Action.DELETE, 1, "v1")


def test_prune_never_touches_what_was_never_managed() -> None:
    plan = plan_of([], settings=Settings(prune=Prune.DELETE))
    assert plan.changes == () and plan.notices == ()


def test_a_managed_variant_dropped_from_a_declared_family_is_pruned() -> None:
    only_s = tee(variants=(tee().variants[0],))
    plan = plan_of([only_s], managed=managed_tee(), settings=Settings(prune=Prune.DELETE))
    [variant] = plan.changes[0].children
    assert (variant.key, variant.action, variant.remote_id) == ("TEE-M", Action.DELETE, "v2")


def test_target_and_exclude_narrow_the_plan() -> None:
    gift = Product(handle="gift-wrap", name="Gift Wrap", sku="GIFT", price=D("3.50"))
    rows = family_rows()
    both = [tee(description="new"), gift]
    assert {c.key for c in plan_of(both, rows, managed=managed_tee()).changes} == {
        "classic-tee",
        "gift-wrap",
    }
    by_sku = plan_of(both, rows, managed=managed_tee(), targets=["GIFT"])
    assert [c.key for c in by_sku.changes] == ["gift-wrap"]
    assert any("Targeted plan" in n for n in by_sku.notices)
    excluded = plan_of(both, rows, managed=managed_tee(), excludes=["TEE-S"])
    assert [c.key for c in excluded.changes] == ["gift-wrap"]
    with pytest.raises(UsageError, match="NOPE"):
        plan_of(both, rows, targets=["NOPE"])


def test_a_sku_held_by_another_product_is_a_notice() -> None:
    clash = Product(handle="other", name="Other", sku="TEE-S", price=D("1"))
    plan = plan_of([clash], managed=managed_tee())
    assert any('SKU "TEE-S" already exists' in n for n in plan.notices)


def test_simple_product_update_is_one_request_with_every_field() -> None:
    rows = [simple_row()]
    declared = Product(handle="0006", name="Product 0006", sku="0006", price=D("7"), active=False)
    plan = plan_of([declared], rows, managed={"product": {"0006": FakeManaged("p6", {})}})
    [change] = plan.changes
    assert [(f.field, f.before, f.after) for f in change.fields] == [
        ("price", "6.05263", "7.00"),
        ("active", True, False),
    ]
    assert change.requests == 1 and change.children == ()


def test_estimate_is_the_sustained_rate() -> None:
    assert estimate(35, rate_limit=350, window_seconds=300).seconds == pytest.approx(30.0)


def test_plan_json_round_trips() -> None:
    plan = plan_of([tee(description="new")], managed=managed_tee())
    assert Plan.from_json(plan.to_json()) == plan


def test_a_category_with_subcategories_is_flagged() -> None:
    hats = Product(handle="cap", name="Cap", sku="CAP", price=D("1"), category=("Apparel",))
    plan = plan_of([hats], managed=managed_tee())
    assert any(
        'cap: category "Apparel" has subcategories (e.g. "Apparel / Tops")' in n
        for n in plan.notices
    )
    leaf = Product(handle="cap", name="Cap", sku="CAP", price=D("1"), category=("Apparel", "Tops"))
    assert plan_of([leaf]).notices == ()


def test_images_upload_remove_and_reorder_only_what_this_tool_uploaded() -> None:
    from reconciler.model import Image

    front, back, side = (Image(f"images/tee/{n}.jpg", n * 8) for n in ("front", "back", "side"))
    rows = family_rows()
    # The store lists three images: two this tool uploaded (front, back) in the wrong order,
    # and one someone added by hand.
    for r in rows:
        r["images"] = [
            {"id": "img-back", "position": 1},
            {"id": "img-front", "position": 2},
            {"id": "img-by-hand", "position": 3},
        ]
    uploaded = {"classic-tee": {front.sha256: "img-front", back.sha256: "img-back"}}
    plan = plan_of([tee(images=(front, back, side))], rows, managed=managed_tee(), images=uploaded)
    images = [c for c in plan.changes[0].children if c.kind is Kind.IMAGE]
    assert [
        (c.action, c.key, [(f.field, f.before, f.after) for f in c.fields]) for c in images
    ] == [
        (Action.CREATE, "images/tee/side.jpg", [("position", None, 3)]),
        (Action.UPDATE, "images/tee/front.jpg", [("position", 2, 1)]),
        (Action.UPDATE, "images/tee/back.jpg", [("position", 1, 2)]),
    ]
    assert plan.estimate.requests == 3
    dropped = plan_of([tee(images=(front,))], rows, managed=managed_tee(), images=uploaded)
    [delete] = [c for c in dropped.changes[0].children if c.kind is Kind.IMAGE]
    assert (delete.action, delete.remote_id) == (Action.DELETE, "img-back")


def test_an_upload_still_processing_is_not_uploaded_again() -> None:
    from reconciler.model import Image

    front = Image("images/tee/front.jpg", "f" * 64)
    uploaded = {"classic-tee": {front.sha256: "img-new"}}  # not listed by the store yet
    plan = plan_of([tee(images=(front,))], managed=managed_tee(), images=uploaded)
    assert plan.changes == ()


def test_the_planner_counts_no_request_and_the_compile_costs_each_change() -> None:
    # One cost model: the planner says what changes, the provider's compile what it costs.
    from reconciler import planner

    both = tee(
        description="<p>Softer</p>",
        variants=(tee().variants[0], Variant("TEE-M", SIZE_M, price=D("26"), active=False)),
    )
    catalog = Catalog.build(products=[both])
    draft = planner.make_plan(catalog, live(family_rows()), store="test", managed=managed_tee())
    assert draft.estimate.requests == 0
    assert all(c.requests == 0 for c in draft.all_changes())
    costed = plan_of([both], managed=managed_tee())
    family = costed.changes[0]
    # The family-wide description rides in TEE-M's request: the variant pays, the family not.
    assert family.requests == 0
    assert [(c.key, c.requests) for c in family.children] == [("TEE-M", 1)]
    assert costed.estimate.requests == 1 and costed.provider == "xseries"
