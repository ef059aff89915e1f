"""Guardrails on hand-made live values: every rule, its default, its setting, `allow`, and how
each rendering puts a violation first; field ownership (store, init) in the plan."""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

from reconciler import guardrails
from reconciler.api import make_plan
from reconciler.model import Catalog, Guardrails, Owner, Product, Prune, Rule, Settings, Variant
from reconciler.plan import Action, Kind, Plan
from reconciler.render import render_json, render_markdown, render_text

from .helpers import FakeManaged
from .livedata import family_rows, live, simple_row
from .test_planning import SIZE_M, SIZE_S, managed_tee, plan_of, tee

NO_PRICE_RULES = Guardrails(price_jump=None, margin=None, zero_price=False)


def rules_of(plan: Plan) -> list[tuple[str, str, str, Any, Any]]:
    return [(v.rule, v.key, v.field, v.before, v.after) for v in plan.violations]


def with_rails(rails: Guardrails, **settings: Any) -> Settings:
    return Settings(guardrails=rails, **settings)


# -- price-jump -------------------------------------------------------------------------------


def test_a_90_percent_price_drop_breaks_price_jump() -> None:
    plan = plan_of([tee(price=D("2.50"), supply_price=D("1"))], managed=managed_tee())
    assert rules_of(plan) == [("price-jump", "TEE-M", "price", "25.00", "2.50")]
    [v] = plan.violations
    assert v.product == "classic-tee" and v.detail == "-90%, more than 50%"
    assert v.allowed is None
    assert guardrails.blocking(plan) == [v]
    assert guardrails.blocking(plan, [Rule.PRICE_JUMP]) == []


def test_price_jump_is_up_or_down_and_exactly_the_limit_passes() -> None:
    up = plan_of([tee(price=D("37.60"))], managed=managed_tee())
    assert [(v.rule, v.detail) for v in up.violations] == [("price-jump", "+50%, more than 50%")]
    at_limit = plan_of([tee(price=D("37.50"))], managed=managed_tee())
    assert at_limit.violations == () and at_limit.has_changes


def test_price_jump_setting_and_off() -> None:
    tight = plan_of(
        [tee(price=D("28"))],
        managed=managed_tee(),
        settings=with_rails(Guardrails(price_jump=D(10))),
    )
    assert rules_of(tight) == [("price-jump", "TEE-M", "price", "25.00", "28.00")]
    off = plan_of(
        [tee(price=D("2.50"), supply_price=D("1"))],
        managed=managed_tee(),
        settings=with_rails(Guardrails(price_jump=None)),
    )
    assert off.violations == () and off.guardrails["price-jump"] == "off"


def test_a_simple_product_price_is_guarded_too() -> None:
    row = simple_row(price_including_tax=20, supply_price=1)
    gift = Product(handle="0006", name="Product 0006", sku="0006", price=D("2"))
    plan = plan_of([gift], [row], managed={"product": {"0006": FakeManaged("p6", {})}})
    assert rules_of(plan) == [("price-jump", "0006", "price", "20.00", "2.00")]


def test_a_new_product_has_no_price_to_jump_from() -> None:
    new = Product(handle="new-mug", name="New Mug", sku="MUG", price=D("5"))
    plan = plan_of([new], [])
    assert plan.violations == ()


# -- margin -----------------------------------------------------------------------------------


def test_a_price_under_the_live_supply_price_breaks_margin() -> None:
    # The catalog does not declare a supply price: the store's (8.00) is what counts.
    plan = plan_of(
        [tee(price=D("7"), supply_price=None)],
        managed=managed_tee(),
        settings=with_rails(Guardrails(price_jump=None)),
    )
    assert rules_of(plan) == [("margin", "TEE-M", "price", "25.00", "7.00")]
    assert plan.violations[0].detail == "price 7.00 below the supply price 8.00"


def test_a_supply_price_raised_above_the_price_breaks_margin() -> None:
    plan = plan_of([tee(supply_price=D("26"))], managed=managed_tee())
    # TEE-S sells at 27.00, TEE-M at 25.00: only TEE-M is under water.
    assert rules_of(plan) == [("margin", "TEE-M", "supply_price", "8.00", "26.00")]


def test_margin_floor_is_a_share_of_the_price() -> None:
    rails = Guardrails(price_jump=None, margin=D(30))
    under = plan_of([tee(price=D("11"))], managed=managed_tee(), settings=with_rails(rails))
    assert [v.rule for v in under.violations] == ["margin"]  # (11 - 8) / 11 = 27%
    assert under.violations[0].detail.endswith("plus a 30% margin")
    over = plan_of([tee(price=D("12"))], managed=managed_tee(), settings=with_rails(rails))
    assert over.violations == ()  # (12 - 8) / 12 = 33%
    off = plan_of(
        [tee(price=D("7"))],
        managed=managed_tee(),
        settings=with_rails(Guardrails(price_jump=None, margin=None)),
    )
    assert off.violations == ()


def test_a_store_value_already_under_margin_that_the_plan_leaves_alone_is_not_flagged() -> None:
    rows = family_rows()
    rows[1]["supply_price"] = 99  # someone set TEE-M's supply price above its price
    rows[0]["supply_price"] = 99
    plan = plan_of([tee(supply_price=None, description="new words")], rows, managed=managed_tee())
    assert plan.has_changes and plan.violations == ()


# -- zero-price -------------------------------------------------------------------------------


def test_a_price_of_zero_breaks_zero_price_and_can_be_turned_off() -> None:
    plan = plan_of(
        [tee(price=D("0"))],
        managed=managed_tee(),
        settings=with_rails(Guardrails(price_jump=None)),
    )
    assert rules_of(plan) == [("zero-price", "TEE-M", "price", "25.00", "0.00")]
    off = plan_of([tee(price=D("0"))], managed=managed_tee(), settings=with_rails(NO_PRICE_RULES))
    assert off.violations == ()


# -- removals ---------------------------------------------------------------------------------


def shop(n: int) -> list[dict[str, Any]]:
    return [
        simple_row(id=f"p{i}", handle=f"item-{i}", sku=f"SKU-{i}", name=f"Item {i}", version=i)
        for i in range(n)
    ]


def managed_shop(n: int) -> dict[str, dict[str, FakeManaged]]:
    return {"product": {f"item-{i}": FakeManaged(f"p{i}", {}) for i in range(n)}}


def item(i: int, **fields: Any) -> Product:
    return Product(handle=f"item-{i}", name=f"Item {i}", sku=f"SKU-{i}", **fields)


def removal_plan(kept: int, total: int, rails: Guardrails, prune: Prune) -> Plan:
    catalog = Catalog.build(
        products=[item(i) for i in range(kept)],
        settings=Settings(prune=prune, guardrails=rails),
    )
    return make_plan(catalog, live(shop(total)), store="test", managed=managed_shop(total))


def test_more_removals_than_the_limit_lists_every_removed_product() -> None:
    plan = removal_plan(7, 10, Guardrails(removals=2), Prune.DEACTIVATE)
    assert [c.action for c in plan.changes] == [Action.DEACTIVATE] * 3
    assert [(v.rule, v.key, v.field, v.before, v.after) for v in plan.violations] == [
        ("removals", f"item-{i}", "active", True, False) for i in (7, 8, 9)
    ]
    assert plan.violations[0].detail == "3 products removed in one apply, more than 2 products"
    assert removal_plan(8, 10, Guardrails(removals=2), Prune.DEACTIVATE).violations == ()


def test_removals_count_deletes_and_default_is_25() -> None:
    plan = removal_plan(4, 30, Guardrails(), Prune.DELETE)
    assert len(plan.violations) == 26 and {v.field for v in plan.violations} == {"product"}
    assert removal_plan(5, 30, Guardrails(), Prune.DELETE).violations == ()
    assert removal_plan(0, 30, Guardrails(removals=None), Prune.DELETE).violations == ()


def test_removals_as_a_percentage_of_the_managed_products() -> None:
    rails = Guardrails(removals=None, removals_percent=D(20))
    assert len(removal_plan(7, 10, rails, Prune.DEACTIVATE).violations) == 3  # 30%
    assert removal_plan(8, 10, rails, Prune.DEACTIVATE).violations == ()  # 20%


def test_a_catalog_that_sets_products_inactive_counts_as_removals() -> None:
    catalog = Catalog.build(
        products=[item(i, active=False) for i in range(3)],
        settings=Settings(guardrails=Guardrails(removals=2)),
    )
    plan = make_plan(catalog, live(shop(3)), store="test", managed=managed_shop(3))
    assert [v.rule for v in plan.violations] == ["removals"] * 3


# -- allow ------------------------------------------------------------------------------------


def test_allow_in_the_catalog_excuses_that_product_for_that_rule_only() -> None:
    allowed = tee(price=D("2.50"), supply_price=D("1"), allow=(Rule.PRICE_JUMP,))
    plan = plan_of([allowed], managed=managed_tee())
    [v] = plan.violations
    assert v.allowed == guardrails.CATALOG and guardrails.blocking(plan) == []
    other = tee(price=D("2.50"), supply_price=D("1"), allow=(Rule.MARGIN,))
    assert guardrails.blocking(plan_of([other], managed=managed_tee())) != []


def test_plan_allow_marks_for_the_reader_but_apply_decides_with_its_own() -> None:
    plan = plan_of(
        [tee(price=D("2.50"), supply_price=D("1"))], managed=managed_tee(), allow=[Rule.PRICE_JUMP]
    )
    assert plan.violations[0].allowed == guardrails.OPTION
    assert len(guardrails.blocking(plan)) == 1
    assert "allowed by --allow" in render_text(plan)


def test_allowed_removals_are_not_counted() -> None:
    catalog = Catalog.build(
        products=[item(i, active=False, allow=(Rule.REMOVALS,)) for i in range(2)] + [item(2)],
        settings=Settings(guardrails=Guardrails(removals=1)),
    )
    rows = shop(3)
    plan = make_plan(catalog, live(rows), store="test", managed=managed_shop(3))
    assert plan.violations == ()


# -- renderings -------------------------------------------------------------------------------


def drop_plan() -> Plan:
    return plan_of([tee(price=D("2.50"), supply_price=D("1"))], managed=managed_tee())


def test_text_says_it_first() -> None:
    text = render_text(drop_plan())
    first, second = text.splitlines()[:2]
    assert first.startswith("! This plan breaks 1 guardrail (price-jump): catalog apply refuses")
    assert (
        second == "!   price-jump: classic-tee / TEE-M: price 25.00 -> 2.50 (-90%, more than 50%)"
    )


def test_markdown_says_it_before_the_summary() -> None:
    md = render_markdown(drop_plan())
    caution = md.index("> [!CAUTION]")
    assert caution < md.index("**Plan:")
    assert "> | price-jump | `classic-tee / TEE-M` | price | `25.00` | `2.50` |" in md


def test_json_has_a_guardrails_section() -> None:
    doc = json.loads(render_json(drop_plan()))
    assert doc["guardrails"]["settings"] == {
        "price-jump": "50%",
        "margin": "0%",
        "removals": "25",
        "zero-price": "on",
    }
    assert doc["guardrails"]["violations"] == [
        {
            "rule": "price-jump",
            "product": "classic-tee",
            "key": "TEE-M",
            "field": "price",
            "before": "25.00",
            "after": "2.50",
            "detail": "-90%, more than 50%",
            "allowed": None,
        }
    ]
    assert Plan.from_json(doc) == drop_plan().__class__.from_json(doc)
    assert Plan.from_json(doc).violations == drop_plan().violations


def test_a_plan_without_violations_renders_as_before() -> None:
    plan = plan_of([tee(price=D("26"))], managed=managed_tee())
    assert plan.violations == ()
    assert render_text(plan).startswith("Store: ")
    assert "[!CAUTION]" not in render_markdown(plan)


# -- a saved plan is bound to its settings -----------------------------------------------------


def test_stale_when_the_guardrail_settings_change() -> None:
    plan = drop_plan()
    same = Catalog.build(products=[tee()])
    assert guardrails.stale_reason(plan, same) is None
    looser = Catalog.build(products=[tee()], settings=with_rails(Guardrails(price_jump=D(95))))
    assert guardrails.stale_reason(plan, looser) == (
        "the guardrail settings changed since the plan was made (price-jump 50% -> 95%)"
    )
    unchecked = Plan.from_json({**plan.to_json(), "guardrails": {}})
    assert guardrails.stale_reason(unchecked, same) == (
        "the plan was made without checking the guardrails"
    )


# -- field ownership --------------------------------------------------------------------------


def owners(**fields: Owner) -> Settings:
    return Settings(fields=tuple(sorted(fields.items())))


def test_a_store_owned_field_is_never_diffed_or_written_even_when_declared() -> None:
    plan = plan_of(
        [tee(price=D("99"), description="catalog words")],
        managed=managed_tee(),
        settings=owners(price=Owner.STORE, description=Owner.STORE),
    )
    assert plan.changes == () and plan.violations == ()
    assert plan.field_owners == {"description": "store", "price": "store"}
    new = Product(handle="mug", name="Mug", sku="MUG", price=D("5"), description="x")
    created = plan_of([new], [], settings=owners(price=Owner.STORE))
    [change] = created.changes
    assert change.field("price") is None and change.field("description") is not None
    assert "price 5" not in render_text(created) and "price 5" not in render_markdown(created)


def test_an_init_field_is_written_on_create_and_never_updated() -> None:
    settings = owners(description=Owner.INIT, price=Owner.INIT)
    existing = plan_of(
        [tee(price=D("99"), description="catalog words")], managed=managed_tee(), settings=settings
    )
    assert existing.changes == ()
    new = Product(handle="mug", name="Mug", sku="MUG", price=D("5"), description="x")
    [change] = plan_of([new], [], settings=settings).changes
    assert change.action is Action.CREATE
    assert (change.field("price"), change.field("description")) != (None, None)
    assert change.field("price").after == "5.00"  # type: ignore[union-attr]


def test_a_new_variant_of_an_existing_family_gets_an_init_price_from_the_family() -> None:
    grown = tee(
        price=D("99"),
        variants=(
            *tee().variants,
            Variant("TEE-L", (("Size", "L"), ("Colour", "Black"))),
        ),
    )
    plan = plan_of([grown], managed=managed_tee(), settings=owners(price=Owner.INIT))
    [top] = plan.changes
    [child] = top.children
    assert (child.kind, child.key, child.action) == (Kind.VARIANT, "TEE-L", Action.CREATE)
    assert child.field("price").after == "99.00"  # type: ignore[union-attr]
    assert SIZE_S and SIZE_M  # the existing variants are left alone: no other child


def test_store_owned_images_and_active_are_left_alone() -> None:
    plan = plan_of(
        [
            tee(
                variants=(
                    Variant("TEE-S", SIZE_S, price=D("27.00"), barcode="9300000000011"),
                    Variant("TEE-M", SIZE_M, active=True),
                )
            )
        ],
        managed=managed_tee(),
        settings=owners(active=Owner.STORE),
    )
    assert plan.changes == ()
