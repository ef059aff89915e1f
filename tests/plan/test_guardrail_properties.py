"""Property: the guardrails see exactly the guarded writes. For any store seeded from a catalog
and any edit of its prices, the plan's violations are exactly the price writes an independent
check finds wrong, so a plan with no violation left unallowed never writes a guarded change."""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import guardrails
from reconciler.model import Catalog, Guardrails, Rule, Settings
from reconciler.providers.xseries.normalize import store_money
from reconciler.state import State

from .helpers import managed_from, plan_store
from .strategies import catalogs
from .test_properties import seeded

FACTORS = (Decimal(0), Decimal("0.1"), Decimal("0.5"), Decimal("0.9"), Decimal(1), Decimal("1.4"))
FACTORS += (Decimal(2), Decimal(10))
SUPPLY_FACTORS = (Decimal(1), Decimal("0.5"), Decimal(3))

rails = st.builds(
    Guardrails,
    price_jump=st.sampled_from([None, Decimal(10), Decimal(50), Decimal(200)]),
    margin=st.sampled_from([None, Decimal(0), Decimal(30)]),
    zero_price=st.booleans(),
)


def scaled(value: Decimal | None, factor: Decimal) -> Decimal | None:
    if value is None:
        return None
    return (value * factor).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@st.composite
def edited(draw: st.DrawFn, catalog: Catalog) -> Catalog:
    """The catalog with each product's prices scaled (0 included), some supply prices moved,
    and some products allowing some rules; settings.guardrails drawn too."""
    products = []
    for p in catalog.products:
        f, s = draw(st.sampled_from(FACTORS)), draw(st.sampled_from(SUPPLY_FACTORS))
        allow = tuple(draw(st.lists(st.sampled_from(list(Rule)), unique=True, max_size=2)))
        variants = tuple(
            replace(v, price=scaled(v.price, f), supply_price=scaled(v.supply_price, s))
            for v in p.variants
        )
        products.append(
            replace(
                p,
                price=scaled(p.price, f),
                supply_price=scaled(p.supply_price, s),
                variants=variants,
                allow=allow,
            )
        )
    return Catalog.build(products=products, settings=Settings(guardrails=draw(rails)))


def expected(before: Catalog, after: Catalog) -> set[tuple[str, str]]:
    """(sku, rule) for every price or supply price write that breaks a rule, not allowed."""
    g = after.settings.guardrails
    was = {v.sku: v for p in before.products for v in p.sellables()}
    out: set[tuple[str, str]] = set()
    for p in after.products:
        for row in p.sellables():
            old = was[row.sku]
            assert old.price is not None and row.price is not None
            old_price, new_price = store_money(old.price), store_money(row.price)
            price_written = new_price != old_price
            supply_written = row.supply_price is not None and (
                old.supply_price is None
                or store_money(row.supply_price) != store_money(old.supply_price)
            )
            broken: set[Rule] = set()
            if price_written and new_price == 0 and g.zero_price:
                broken.add(Rule.ZERO_PRICE)
            if (
                price_written
                and g.price_jump is not None
                and old_price > 0
                and abs(new_price - old_price) * 100 / old_price > g.price_jump
            ):
                broken.add(Rule.PRICE_JUMP)
            supply = row.supply_price if row.supply_price is not None else old.supply_price
            if (
                (price_written or supply_written)
                and g.margin is not None
                and new_price > 0
                and supply is not None
                and guardrails.below_margin(new_price, store_money(supply), g.margin)
            ):
                broken.add(Rule.MARGIN)
            key = row.sku if p.is_family else p.handle  # a simple product is its handle
            out |= {(key, str(r)) for r in broken if r not in p.allow}
    return out


SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(data=st.data(), catalog=catalogs())
def test_violations_are_exactly_the_guarded_writes(data: st.DataObject, catalog: Catalog) -> None:
    after = data.draw(edited(catalog))
    store, client = seeded(catalog, tax_exclusive=False)
    with client, State(":memory:") as state:
        plan = plan_store(client, state, after, managed=managed_from(catalog))
    store.close()
    # What apply would refuse is exactly what the independent check finds: so when nothing is
    # left to refuse, no price or supply price the plan writes breaks a rule unallowed.
    refused = {(v.key, v.rule) for v in guardrails.blocking(plan)}
    assert refused == expected(catalog, after), [v.to_json() for v in plan.violations]
    assert all(
        v.allowed == guardrails.CATALOG
        for v in plan.violations
        if v not in guardrails.blocking(plan)
    )
