"""`apply_plan` against the sandbox: the fewest requests, convergence, ledger, failures."""

from __future__ import annotations

import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import httpx

from reconciler.api import MANAGED_KINDS, apply_plan, get_provider, remaining_plan
from reconciler.apply import ApplyEvent
from reconciler.catalog import load_catalog
from reconciler.live import Live
from reconciler.plan import Action, Change, FieldChange, Kind, Plan
from reconciler.planner import ManagedIndex
from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.staleness import is_done, remaining, stale_reasons
from reconciler.state import State
from reconciler.state.lock import ApplyLock, Holder

from .helpers import TOKEN, Harness, assert_store_holds, catalog, shop, simple, tee


def test_apply_then_plan_is_empty_and_requests_match_the_estimate(harness: Harness) -> None:
    wanted = shop(3)
    harness.store.reset_stats()
    events: list[ApplyEvent] = []
    plan, result = harness.apply(wanted, events=events)
    assert result.ok, [c for c in result.changes if c.outcome != "applied"]
    # brand, supplier, 2 tags, 2 attributes, 1 category bulk, 5 products
    assert plan.estimate.requests == 12
    assert harness.write_count() == plan.estimate.requests == result.writes
    assert harness.writes()["POST /api/2.0/product_categories/bulk"] == 1
    assert harness.writes()["POST /api/2.0/products"] == 5
    assert_store_holds(harness, wanted)
    assert events[0].type == "start" and events[-1].type == "finish"
    assert max(e.done for e in events if e.type == "progress") == 12

    harness.store.reset_stats()
    _, again = harness.apply(wanted)
    assert again.ok and again.changes == () and harness.write_count() == 0


def test_family_wide_change_rides_along_with_variant_changes(harness: Harness) -> None:
    harness.apply(shop(2))
    before = {p.handle: p for p in shop(2).products}
    first = before["tee-0"]
    rows = list(first.variants)
    rows[0] = replace(rows[0], price=Decimal("30.00"))
    rows[1] = replace(rows[1], price=Decimal("31.00"))
    changed = replace(first, description="<p>New</p>", variants=tuple(rows))
    second = replace(before["tee-1"], name="Renamed Tee")  # family-wide only
    edited = catalog(changed, second, before["gift-wrap"], before["sticker"])
    harness.store.reset_stats()
    plan, result = harness.apply(edited)
    assert result.ok
    # tee-0: two variant PUTs, the description riding in one; tee-1: one family PUT.
    assert plan.estimate.requests == 3
    assert harness.writes() == {"PUT /api/2.1/products/{id}": 3}
    assert_store_holds(harness, edited)


def test_added_variant_is_one_post_after_the_family_rename(harness: Harness) -> None:
    harness.apply(catalog(tee("tee")))
    grown = tee(
        "tee",
        name="Tee Renamed",
        variants={"TEE-S": ("S", "27.00"), "TEE-M": ("M", None), "TEE-L": ("L", None)}
        | {"TEE-XL": ("XL", "29.00")},
    )
    harness.store.reset_stats()
    plan, result = harness.apply(catalog(grown))
    assert result.ok, result.changes
    assert harness.writes() == {"PUT /api/2.1/products/{id}": 1, "POST /api/2.1/products": 1}
    assert plan.estimate.requests == 2
    assert_store_holds(harness, catalog(grown))


def test_history_answers_which_commit_set_a_price(harness: Harness) -> None:
    plan, _ = harness.apply(catalog(tee("tee")))
    harness.apply(catalog(tee("tee", variants={"TEE-S": ("S", "33.00")})))
    rows = [r for r in harness.ledger.history("TEE-S") if r.outcome == "applied"]
    assert rows[0].action == "update"
    assert {"field": "price", "before": "27.00", "after": "33.00"} in rows[0].fields
    assert rows[0].remote_version is not None and rows[0].remote_id is not None
    assert rows[-1].action == "create" and rows[-1].plan_digest == plan.digest()


def test_a_failed_create_skips_its_dependants_only(harness: Harness) -> None:
    # A hand-made plan: a brand the store refuses (blank name) and a product that needs it,
    # beside an independent product.
    needs = Change(
        Kind.PRODUCT,
        "needs-brand",
        Action.CREATE,
        (
            FieldChange("name", None, "Needs Brand"),
            FieldChange("sku", None, "NB-1"),
            FieldChange("brand", None, " "),
            FieldChange("price", None, "5.00"),
        ),
        requests=1,
    )
    alone = Change(
        Kind.PRODUCT,
        "alone",
        Action.CREATE,
        (
            FieldChange("name", None, "Alone"),
            FieldChange("sku", None, "AL-1"),
            FieldChange("price", None, "2.00"),
        ),
        requests=1,
    )
    bad_brand = Change(
        Kind.BRAND, " ", Action.CREATE, (FieldChange("name", None, " "),), requests=1
    )
    base, live = harness.plan(catalog())
    plan = replace(base, changes=(bad_brand, alone, needs))
    result = harness.apply_plan(plan, live)
    outcomes = {c.key: (c.outcome, c.error or "") for c in result.changes}
    assert not result.ok
    assert outcomes[" "][0] == "failed"
    assert outcomes["needs-brand"][0] == "skipped" and "brand" in outcomes["needs-brand"][1]
    assert outcomes["alone"][0] == "applied"
    assert [r["sku"] for r in harness.raw_products()] == ["AL-1"]
    run = harness.ledger.runs()[0]
    assert run.outcome == "partial" and run.counts["skipped"] == 1


def test_commit_then_timeout_on_a_create_is_looked_up_not_duplicated(
    harness: Harness, store: SandboxStore
) -> None:
    wanted = catalog(tee("tee"), simple("gift-wrap", "GIFT-WRAP"))
    plan, live = harness.plan(wanted)
    store.set_faults(timeout_rate=1.0)  # every write commits, then its answer is lost
    result = harness.apply_plan(plan, live, parallelism=1)
    store.set_faults(timeout_rate=0.0)
    assert result.ok, [c for c in result.changes if c.outcome != "applied"]
    assert_store_holds(harness, wanted)
    assert harness.ledger.pending_intents() == []


def test_an_unfinished_intent_is_looked_up_before_anything_is_sent(
    harness: Harness, store: SandboxStore
) -> None:
    wanted = catalog(simple("gift-wrap", "GIFT-WRAP"))
    plan, live = harness.plan(wanted)
    # A crashed run: the intent was written and the create reached the store, nothing after.
    harness.ledger.begin_intent(run_id=None, kind="product", key="gift-wrap", payload_digest="x")
    harness.client.create_product(
        {"name": "Gift Wrap", "handle": "gift-wrap", "sku": "GIFT-WRAP", "price_including_tax": 3.5}
    )
    only_product = replace(plan, changes=tuple(c for c in plan.changes if c.kind is Kind.PRODUCT))
    store.reset_stats()
    result = harness.apply_plan(only_product, live)
    assert result.ok
    assert harness.writes() == {}  # found by SKU: nothing sent
    assert harness.ledger.pending_intents() == []
    assert len([r for r in harness.raw_products() if r["sku"] == "GIFT-WRAP"]) == 1


def test_stale_plan_reasons_name_the_object(harness: Harness) -> None:
    harness.apply(catalog(tee("tee")))
    plan, _ = harness.plan(catalog(tee("tee", price="26.00", variants={"TEE-S": ("S", "28.00")})))
    row = next(r for r in harness.raw_products() if r["sku"] == "TEE-S")
    harness.client.update_product(row["id"], details={"is_active": False})
    reasons = stale_reasons(plan, harness.live(), catalog_digest=plan.catalog_digest)
    assert any('variant "TEE-S" changed in the store' in r for r in reasons), reasons
    assert stale_reasons(plan, harness.live(), catalog_digest="other") != []
    fresh, live = harness.plan(catalog(tee("tee", price="26.00")))
    assert stale_reasons(fresh, live, catalog_digest=fresh.catalog_digest) == []


def test_prune_deactivates_and_deletes_only_managed_products(harness: Harness) -> None:
    harness.client.create_product(
        {"name": "Theirs", "handle": "theirs", "sku": "THEIRS", "price_including_tax": 1.0}
    )
    harness.apply(catalog(tee("tee"), simple("gift-wrap", "GIFT-WRAP")))
    harness.store.reset_stats()
    _, result = harness.apply(catalog(prune="deactivate"))
    assert result.ok, result.changes
    rows = {r["sku"]: r for r in harness.raw_products()}
    assert not rows["GIFT-WRAP"]["is_active"] and not rows["TEE-S"]["is_active"]
    assert rows["THEIRS"]["is_active"]
    # one PUT per active row: gift wrap and the tee's three variants
    assert harness.writes() == {"PUT /api/2.1/products/{id}": 4}
    _, deleted = harness.apply(catalog(prune="delete"))
    assert deleted.ok
    assert [r["sku"] for r in harness.raw_products()] == ["THEIRS"]
    assert harness.ledger.managed("product") == {} and harness.ledger.managed("variant") == {}


def test_the_plan_value_round_trips_through_json_and_applies(harness: Harness) -> None:
    plan, live = harness.plan(shop(1))
    saved = Plan.from_json(plan.to_json())
    result = harness.apply_plan(saved, live)
    assert result.ok and result.writes == plan.estimate.requests


def test_a_saved_plan_that_failed_part_way_is_finished_by_running_it_again(
    harness: Harness, store: SandboxStore, state: State
) -> None:
    wanted = shop(3)
    plan, live = harness.plan(wanted)
    saved = Plan.from_json(plan.to_json())  # as `catalog apply FILE` reads it
    flaky = Client("http://sandbox.test", TOKEN, transport=SandboxTransport(store), max_attempts=1)

    def recovered() -> Live:  # the store is healthy again when the run reads it back
        store.set_faults(fault_rate=0.0)
        return harness.live()

    store.set_faults(fault_rate=0.4)
    first = apply_plan(saved, flaky, state, live=live, parallelism=2, refresh_live=recovered)
    assert not first.ok and any(c.outcome == "applied" for c in first.changes)
    now = harness.live()
    done = harness.ledger.applied_by_plan(saved.digest())
    unsure = [(i.kind, i.key) for i in harness.ledger.pending_intents()]
    # Our own writes moved versions and created objects: without the ledger, that is stale.
    assert stale_reasons(saved, now, catalog_digest=saved.catalog_digest) != []
    assert (
        stale_reasons(saved, now, catalog_digest=saved.catalog_digest, done=done, unsure=unsure)
        == []
    )
    # What the first run applied counts as done field by field, JSON round trip included.
    applied = {(c.kind, c.key) for c in first.changes if c.outcome == "applied"}
    assert all(is_done(c, done) for c in saved.all_changes() if (str(c.kind), c.key) in applied)
    rest = remaining_plan(saved, done, now, managed=_managed(harness))
    store.reset_stats()
    second = apply_plan(
        rest, harness.client, state, live=now, refresh_live=harness.live, plan_digest=saved.digest()
    )
    assert second.ok, [c for c in second.changes if c.outcome != "applied"]
    assert 0 < harness.write_count() == second.writes < saved.estimate.requests
    assert rest.estimate.requests == second.writes
    assert_store_holds(harness, wanted)
    assert {r.plan_digest for r in harness.ledger.runs()} == {saved.digest()}


def test_no_step_starts_once_the_lock_is_lost(harness: Harness, state: State) -> None:
    plan, live = harness.plan(shop(1))
    lock = ApplyLock(state, "store", ttl=0.05, renew_every=60).acquire()
    time.sleep(0.1)  # this apply stalled past its expiry and another one took over
    ApplyLock(state, "store", holder=Holder("other", "elsewhere", 1)).acquire()
    assert lock.renew() is False
    harness.store.reset_stats()
    result = apply_plan(plan, harness.client, state, live=live, lock=lock)
    assert not result.ok and harness.write_count() == 0
    assert all("lock was lost" in (c.error or "") for c in result.changes)


def test_a_422_naming_the_existing_product_is_already_there(harness: Harness) -> None:
    wanted = catalog(simple("gift-wrap", "GIFT-WRAP"))
    plan, live = harness.plan(wanted)
    # The product appears between plan and apply (a lost answer of an earlier run, say).
    harness.client.create_product(
        {"name": "Gift Wrap", "handle": "gift-wrap", "sku": "GIFT-WRAP", "price_including_tax": 3.5}
    )
    only_product = replace(plan, changes=tuple(c for c in plan.changes if c.kind is Kind.PRODUCT))
    harness.store.reset_stats()
    result = harness.apply_plan(only_product, live)
    assert result.ok
    assert harness.writes() == {"POST /api/2.0/products": 1}  # refused with 422, then found
    assert [r["sku"] for r in harness.raw_products()] == ["GIFT-WRAP"]
    assert harness.ledger.managed("product")["gift-wrap"].remote_id is not None


def test_a_422_for_someone_elses_product_fails_the_change(harness: Harness) -> None:
    wanted = catalog(simple("gift-wrap", "GIFT-WRAP"))
    plan, live = harness.plan(wanted)
    harness.client.create_product(
        {"name": "Other", "handle": "other", "sku": "GIFT-WRAP", "price_including_tax": 1.0}
    )
    only_product = replace(plan, changes=tuple(c for c in plan.changes if c.kind is Kind.PRODUCT))
    result = harness.apply_plan(only_product, live)
    (outcome,) = result.changes
    assert outcome.outcome == "failed" and 'belongs to product "other"' in (outcome.error or "")
    assert harness.ledger.managed("product") == {}


def test_resuming_refuses_only_when_someone_else_edited_a_field_still_to_write(
    harness: Harness,
) -> None:
    harness.apply(catalog(tee("tee")))
    edited = catalog(tee("tee", variants={"TEE-S": ("S", "40.00"), "TEE-M": ("M", "41.00")}))
    saved, live = harness.plan(edited)
    family = saved.changes[0]
    first_row = replace(family, children=family.children[:1], fields=())
    # A run of the saved plan that got as far as TEE-S, then died.
    harness.apply_plan(replace(saved, changes=(first_row,)), live, plan_digest=saved.digest())
    done = harness.ledger.applied_by_plan(saved.digest())
    assert ("variant", "TEE-S") in done and ("variant", "TEE-M") not in done
    now = harness.live()
    assert stale_reasons(saved, now, catalog_digest=None, done=done) == []
    rows = {r["sku"]: r for r in harness.raw_products()}
    # Another field of TEE-M changes: not one this plan writes, so still fine to finish.
    harness.client.update_product(rows["TEE-M"]["id"], details={"is_active": False})
    assert stale_reasons(saved, harness.live(), catalog_digest=None, done=done) == []
    # Its price changes in the back office: finishing would overwrite that, so refuse.
    harness.client.update_product(rows["TEE-M"]["id"], details={"price_including_tax": 19.0})
    reasons = stale_reasons(saved, harness.live(), catalog_digest=None, done=done)
    assert len(reasons) == 1 and 'variant "TEE-M"' in reasons[0]


def _managed(harness: Harness) -> ManagedIndex:
    return {k: harness.ledger.managed(k) for k in MANAGED_KINDS}


class _PutsFail(httpx.BaseTransport):
    """The sandbox over a network that drops every PUT (a run dying right after the creates)."""

    def __init__(self, store: SandboxStore) -> None:
        self.inner = SandboxTransport(store)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            return httpx.Response(503, json={"error": "Service Unavailable"})
        return self.inner.handle_request(request)


def test_a_new_familys_inactive_variant_left_unflagged_is_flagged_by_the_rerun(
    harness: Harness, store: SandboxStore, state: State
) -> None:
    # The create carries one `is_active` for the family; a variant declared otherwise gets its
    # own PUT after it. When that PUT never lands, the rerun must still send it.
    family = tee("tee")
    rows = (*family.variants[:2], replace(family.variants[2], active=False))
    wanted = catalog(replace(family, variants=rows))
    plan, live = harness.plan(wanted)
    saved = Plan.from_json(plan.to_json())
    broken = Client("http://sandbox.test", TOKEN, transport=_PutsFail(store), max_attempts=1)
    first = apply_plan(saved, broken, state, live=live, refresh_live=harness.live)
    assert [(c.key, c.outcome) for c in first.changes if c.outcome != "applied"] == [
        ("TEE-L", "failed")
    ]
    # The ledger says what the store got: the variant was made active, like its family.
    assert harness.ledger.last_applied("variant", "TEE-L")["active"] is True

    now = harness.live()
    done = harness.ledger.applied_by_plan(saved.digest())
    assert stale_reasons(saved, now, catalog_digest=saved.catalog_digest, done=done) == []
    rest = remaining_plan(saved, done, now, managed=_managed(harness))
    assert [(c.key, [f.field for f in c.fields]) for c in rest.all_changes() if c.fields] == [
        ("TEE-L", ["active"])
    ]
    # Costed by the provider's compile, the one cost model; the pure remainder counts nothing.
    left = remaining(saved, done)
    assert [c.requests for c in left.all_changes() if c.key == "TEE-L"] == [0]
    compiled = get_provider().compile(left, now, _managed(harness))
    assert rest.estimate.requests == compiled.requests == 1
    assert [c.requests for c in rest.all_changes() if c.key == "TEE-L"] == [1]
    harness.store.reset_stats()
    second = apply_plan(
        rest, harness.client, state, live=now, refresh_live=harness.live, plan_digest=saved.digest()
    )
    assert second.ok and harness.writes() == {"PUT /api/2.1/products/{id}": 1}
    assert_store_holds(harness, wanted)
    again, _ = harness.plan(wanted)
    assert again.changes == ()


def test_a_family_create_with_an_unknown_outcome_owns_its_variants(harness: Harness) -> None:
    # Killed after the store made the family, before the answer was recorded: its intent is
    # pending, and the variants that same request made are expected too, not "now exist".
    wanted = catalog(tee("tee"))
    saved, live = harness.plan(wanted)
    first = harness.apply_plan(saved, live, plan_digest=saved.digest())
    assert first.ok
    with harness.state.db.conn:  # the run's records of the family are lost
        harness.state.db.execute("delete from changes where kind in ('product', 'variant')")
    now = harness.live()
    done = harness.ledger.applied_by_plan(saved.digest())
    reasons = stale_reasons(saved, now, catalog_digest=None, done=done)
    assert 'product "tee" now exists in the store' in reasons
    assert 'variant "TEE-S" now exists in the store' in reasons
    pending = [("product", "tee")]
    assert stale_reasons(saved, now, catalog_digest=None, done=done, unsure=pending) == []


def test_the_largest_allowed_amounts_apply_and_converge(harness: Harness, tmp_path: Path) -> None:
    # The store answers prices as JSON numbers (doubles): the schema's bound, below 10^9 with 5
    # decimals, is what reads back exactly as written.
    directory = tmp_path / "catalog"
    directory.mkdir()
    (directory / "a.yaml").write_text(
        "products:\n"
        "  - {handle: big, name: Big, sku: BIG, price: 999999999.99999,"
        " supply_price: '999999999.99999'}\n"
        "  - handle: big-tee\n    name: Big Tee\n    price: 999999999.99999\n"
        "    options: [Size]\n    variants:\n"
        "      - {sku: BT-S, options: {Size: S}, supply_price: 999999999.99998}\n"
        "      - {sku: BT-M, options: {Size: M}, price: 0.00001}\n",
        encoding="utf-8",
    )
    wanted = load_catalog(directory)
    _, result = harness.apply(wanted)
    assert result.ok, [c for c in result.changes if c.outcome != "applied"]
    again, _ = harness.plan(wanted)
    assert not again.has_changes, [(c.key, c.fields) for c in again.all_changes()]
    assert_store_holds(harness, wanted)
