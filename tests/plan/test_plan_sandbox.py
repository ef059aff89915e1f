"""Planning against the sandbox store, seeded through its own HTTP API."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest

from reconciler.model import Brand, Catalog, Product, Supplier, Variant
from reconciler.plan import Action, Kind
from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.refresh import refresh
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State
from reconciler.state.cache import Cache
from tests.fakes import TOKEN

from .helpers import FakeManaged, managed_from, plan_store, seed_store


def shop() -> Catalog:
    tee = Product(
        handle="classic-tee",
        name="Classic Tee",
        description="<p>Soft cotton</p>",
        brand="Acme",
        supplier="Acme Supply",
        supplier_code="ACME-TEE",
        category=("Apparel", "Tops"),
        tags=("cotton", "summer"),
        active=True,
        price=D("25.00"),
        supply_price=D("8.00"),
        options=("Size", "Colour"),
        variants=(
            Variant("TEE-S-BLK", (("Size", "S"), ("Colour", "Black")), price=D("27.00")),
            Variant("TEE-M-BLK", (("Size", "M"), ("Colour", "Black")), barcode="9300000000011"),
            Variant("TEE-L-BLK", (("Size", "L"), ("Colour", "Black")), active=False),
        ),
    )
    mug = Product(
        handle="enamel-mug",
        name="Enamel Mug",
        brand="acme",  # the same brand, spelled differently
        tags=("Kitchen",),
        price=D("12.5"),
        options=("Colour",),
        variants=(
            Variant("MUG-RED", (("Colour", "Red"),)),
            Variant("MUG-BLU", (("Colour", "Blue"),), price=D("13.99999")),
        ),
    )
    wrap = Product(
        handle="gift-wrap",
        name="Gift Wrap",
        sku="GIFT-WRAP",
        description="",
        price=D("3.50"),
        barcode="012345678905",
    )
    return Catalog.build(
        products=[tee, mug, wrap],
        brands=[Brand("Acme", "Makers of things")],
        suppliers=[Supplier("Acme Supply")],
        tags=["summer", "cotton", "Kitchen"],
    )


def writes(store: SandboxStore) -> int:
    by_method = store.stats()["requests"]["by_method"]
    return sum(n for method, n in by_method.items() if method != "GET")


def test_a_fresh_store_plans_every_create(client: Client, state: State) -> None:
    plan = plan_store(client, state, shop())
    assert {c.action for c in plan.changes} == {Action.CREATE}
    assert [c.key for c in plan.changes if c.kind is Kind.PRODUCT] == [
        "classic-tee",
        "enamel-mug",
        "gift-wrap",
    ]
    # 1 brand, 1 supplier, 3 tags, 2 attributes, 1 category call, 3 products, and one PUT
    # for TEE-L-BLK: the create takes one `is_active` for the family (see seed_store)
    assert plan.estimate.requests == 12


def test_after_the_creates_exist_nothing_is_written(client: Client, state: State) -> None:
    catalog = shop()
    seed_store(client, catalog)
    unmanaged = plan_store(client, state, catalog)
    assert {c.action for c in unmanaged.changes} == {Action.ADOPT}
    assert unmanaged.estimate.requests == 0
    managed = plan_store(client, state, catalog, managed=managed_from(catalog))
    assert managed.changes == () and not managed.has_changes


@pytest.mark.parametrize("tax_exclusive", [False, True])
def test_no_phantom_diffs_in_either_tax_mode(tax_exclusive: bool) -> None:
    store = SandboxStore(":memory:", token=TOKEN, rate_limit=None, tax_exclusive=tax_exclusive)
    catalog = shop()
    with (
        Client("http://sandbox.test", TOKEN, transport=SandboxTransport(store)) as client,
        State(":memory:") as state,
    ):
        seed_store(client, catalog, tax_exclusive=tax_exclusive)
        plan = plan_store(client, state, catalog, managed=managed_from(catalog))
        assert plan.tax_exclusive is tax_exclusive
        assert plan.changes == ()
    store.close()


def test_one_price_edit_is_exactly_one_field_change(client: Client, state: State) -> None:
    catalog = shop()
    seed_store(client, catalog)
    plan_store(client, state, catalog, managed=managed_from(catalog))
    wrap = catalog.product("gift-wrap")
    assert wrap is not None
    edited = replace(
        catalog,
        products=tuple(replace(p, price=D("3.75")) if p is wrap else p for p in catalog.products),
    )
    plan = plan_store(client, state, edited, managed=managed_from(catalog))
    fields = [(c.key, f.field, f.before, f.after) for c in plan.all_changes() for f in c.fields]
    assert fields == [("gift-wrap", "price", "3.50", "3.75")]
    assert plan.estimate.requests == 1


def test_a_store_edit_shows_through_the_change_feed_as_drift(
    client: Client, state: State, store: SandboxStore
) -> None:
    catalog = shop()
    seed_store(client, catalog)
    managed = managed_from(catalog)
    plan_store(client, state, catalog, managed=managed)  # warms the cache
    [row] = client.products_by_sku("TEE-S-BLK")
    client.update_product(row["id"], details={"price_including_tax": 29.0})
    managed["variant"]["TEE-S-BLK"] = FakeManaged(row["id"], {"price": "27.00"})
    store.reset_stats()
    plan = plan_store(client, state, catalog, managed=managed)
    by_route = store.stats()["requests"]["by_route"]
    assert by_route["GET /api/2.0/products"] == 1  # one change-feed request, not a re-read
    [change] = plan.changes
    [variant] = change.children
    [field] = variant.fields
    assert (variant.key, field.field, field.before, field.after, field.drift) == (
        "TEE-S-BLK",
        "price",
        "29.00",
        "27.00",
        True,
    )


def test_a_deleted_product_reappears_as_a_create(client: Client, state: State) -> None:
    catalog = shop()
    seed_store(client, catalog)
    managed = managed_from(catalog)
    plan_store(client, state, catalog, managed=managed)
    [row] = client.products_by_sku("MUG-RED")
    client.delete_product(row["id"], whole_family=True)
    plan = plan_store(client, state, catalog, managed=managed)
    [change] = plan.changes
    assert (change.key, change.action) == ("enamel-mug", Action.CREATE)


def test_planning_never_writes(client: Client, state: State, store: SandboxStore) -> None:
    catalog = shop()
    store.reset_stats()
    plan_store(client, state, catalog)
    seed_store(client, catalog)
    store.reset_stats()
    for mode in ("auto", "full", "auto", "off"):
        plan_store(client, state, catalog, mode=mode)  # type: ignore[arg-type]
    assert store.stats()["requests"]["by_method"].keys() == {"GET"}
    assert writes(store) == 0


def test_a_warm_no_op_refresh_costs_one_request_per_kind(
    client: Client, state: State, store: SandboxStore
) -> None:
    seed_store(client, shop())
    cache = Cache(state)
    cold = refresh(client, cache)
    assert {k.mode for k in cold.kinds} == {"full"}
    store.reset_stats()
    warm = refresh(client, cache)
    stats = store.stats()["requests"]
    assert warm.requests == stats["total"] <= 8
    assert all(n == 1 for n in stats["by_route"].values())
    assert {k.kind: k.mode for k in warm.kinds}["product"] == "changes"
    assert "GET /api/2.0/retailer" not in stats["by_route"]  # cached


def test_refresh_off_sends_nothing_and_says_how_old(
    client: Client, state: State, store: SandboxStore
) -> None:
    cache = Cache(state)
    refresh(client, cache)
    store.reset_stats()
    report = refresh(client, cache, mode="off")
    assert report.requests == 0 and store.stats()["requests"]["total"] == 0
    assert report.refreshed_at is not None


def test_refresh_off_without_a_cache_is_a_clear_error(client: Client, state: State) -> None:
    from reconciler.errors import ConfigError

    with pytest.raises(ConfigError, match="--refresh off"):
        refresh(client, Cache(state), mode="off")


def test_a_cache_of_another_store_is_dropped(client: Client, state: State) -> None:
    cache = Cache(state)
    refresh(client, cache)
    other = SandboxStore(":memory:", token=TOKEN, rate_limit=None)
    with Client("http://elsewhere.test", TOKEN, transport=SandboxTransport(other)) as c2:
        report = refresh(c2, cache)
    assert report.store_changed and {k.mode for k in report.kinds} == {"full"}
    other.close()


def test_families_sharing_a_name_plan_clean_and_an_added_variant_is_flagged(
    client: Client, state: State
) -> None:
    # Real stores hold several families under one name (issue 18): both are planned by handle.
    def tee(handle: str, *sizes: str) -> Product:
        return Product(
            handle=handle,
            name="Tee",
            price=D("10.00"),
            options=("Size",),
            variants=tuple(Variant(f"{handle}-{s}", (("Size", s),)) for s in sizes),
        )

    catalog = Catalog.build(products=[tee("Tee-A", "S"), tee("tee-b", "S")])
    seed_store(client, catalog)
    plan = plan_store(client, state, catalog, managed=managed_from(catalog))
    assert not plan.has_changes and plan.notices == ()
    grown = Catalog.build(products=[tee("Tee-A", "S", "M"), tee("tee-b", "S")])
    plan = plan_store(client, state, grown, managed=managed_from(catalog))
    assert [c.key for c in plan.all_changes() if c.action is Action.CREATE] == ["Tee-A-M"]
    assert plan.notices == (
        'Tee-A: the store adds variant "Tee-A-M" to the family it finds by name, and another '
        'product in the store is also named "Tee"; give the families distinct names first, or '
        "the variant may land in the other.",
    )
