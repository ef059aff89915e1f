"""Live versions and cache cursors are opaque text in the core (issue 13, Build point 5): each
provider keeps its own kind of version inside and hands the core its text; the core names kinds
in catalog terms (point 6). What the release before wrote (integers and X-Series kind names in
plan files and in the state file) is read as before, migrated, or refused in one sentence."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

import reconciler
from reconciler.errors import PlanFileError
from reconciler.plan import Kind, Plan
from reconciler.planfile import read_plan, write_plan
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.refresh import load_live, refresh
from reconciler.state import State
from reconciler.state.cache import Cache
from reconciler.state.ledger import Ledger
from reconciler.state.schema import MIGRATIONS

from .test_render import a_plan, updates


def test_xseries_hands_the_core_its_versions_as_text(client: Client) -> None:
    client.create_brand("Acme")
    client.create_product({"name": "Mug", "sku": "MUG-1", "price_including_tax": 5})
    with State(":memory:") as state:
        cache = Cache(state)
        refresh(client, cache)
        live = load_live(cache)
        mug = next(iter(live.products.values()))
        assert isinstance(mug.version, str) and int(mug.version) > 0
        assert mug.rows["MUG-1"].version == mug.version
        acme = live.names.brands["acme"]
        assert isinstance(acme.version, str)
        cursor = cache.cursor("product")
        assert cursor is not None and cursor[0] == mug.version


def test_a_state_file_the_previous_release_wrote_still_works(
    tmp_path: Path, client: Client
) -> None:
    """Integer cursors and remote versions, as the code before opaque versions wrote them."""
    path = tmp_path / "state.db"
    for i in range(3):
        client.create_product({"name": f"Mug {i}", "sku": f"MUG-{i}", "price_including_tax": 5})
    with State(path) as state:
        refresh(client, Cache(state))
        ledger = Ledger(state)
        run = ledger.start_run(
            store="sandbox",
            plan_digest="p",
            catalog_digest="c",
            git_commit=None,
            actor="ci",
            host="runner",
        )
    old = sqlite3.connect(path)
    with old:
        old.execute("update cursors set version = cast(version as integer)")
        old.execute(
            "insert into changes (run_id, kind, key, action, fields, remote_id, remote_version, "
            "outcome, at) values (?, 'variant', 'MUG-0', 'update', '[]', 'id-0', 42, 'applied', "
            "'2026-01-01T00:00:00')",
            [run],
        )
    assert old.execute("select typeof(version) from cursors where kind = 'product'").fetchone() == (
        "integer",
    )
    old.close()
    with State(path) as state:
        cache = Cache(state)
        cursor = cache.cursor("product")
        assert cursor is not None and isinstance(cursor[0], str) and int(cursor[0]) > 0
        assert Ledger(state).history("MUG-0")[0].remote_version == "42"
        # The X-Series feed reads its integer cursor back: a warm refresh as cheap as ever.
        warm = refresh(client, cache)
        assert warm.requests == 6
        assert all(k.received == 0 for k in warm.kinds if k.mode == "changes")
        client.create_product({"name": "Mug 9", "sku": "MUG-9", "price_including_tax": 5})
        after = refresh(client, cache)
        assert {k.kind: k.received for k in after.kinds}["product"] == 1
        assert len(load_live(cache).products) == 4


def test_a_plan_with_integer_live_versions_is_refused_in_one_sentence(tmp_path: Path) -> None:
    """Format 2 as the release before wrote it: its digest covers integer versions, so it is
    refused (plan again) rather than read as text under a digest that no longer matches."""
    path = tmp_path / "plan.json"
    write_plan(path, a_plan(updates(2)))
    doc = json.loads(path.read_text())
    assert doc["live_versions"] == {"product:p-00": "7", "product:p-01": "7"}
    doc["live_versions"] = {k: int(v) for k, v in doc["live_versions"].items()}
    for change in doc["changes"]:
        change["live_version"] = int(change["live_version"])
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanFileError) as refused:
        read_plan(path)
    assert str(refused.value) == (
        f"Plan file {path} was made by an older version of lightspeed-catalog (its live "
        f"versions are numbers): plan again (catalog plan --out {path})."
    )


def test_a_plan_remembered_with_integer_versions_reads_them_as_text() -> None:
    """A plan JSON held elsewhere (the plan memo in an older state file) holds the same
    versions, as integers: each reads back as its text, so nothing looks stale."""
    plan = a_plan(updates(1))
    doc = plan.to_json()
    doc["changes"][0]["live_version"] = 7
    assert Plan.from_json(doc) == plan


# -- kinds in catalog terms (issue 13, Build point 6) ------------------------------------------


def test_the_core_names_kinds_in_catalog_terms_not_the_wire() -> None:
    assert {str(k) for k in Kind} == {
        "brand",
        "supplier",
        "tag",
        "attribute",
        "category",
        "product",
        "variant",
        "image",
    }
    core = Path(reconciler.__file__).parent
    wire = ("variant_attribute", "product_category")
    offenders = [
        str(path.relative_to(core))
        for path in core.rglob("*.py")
        if "providers" not in path.relative_to(core).parts[:1]
        and path.name not in {"plan.py"}  # RENAMED_KINDS: the old names, to migrate from
        and any(w in path.read_text(encoding="utf-8") for w in wire)
    ]
    assert offenders == []


def test_ledger_rows_of_the_previous_release_are_renamed(tmp_path: Path) -> None:
    """A state file whose ledger names kinds as X-Series did (schema before m004)."""
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    with old:
        for migrate in MIGRATIONS[:3]:
            migrate(sqlite_utils.Database(old))
        old.execute("pragma user_version = 3")
        old.execute(
            "insert into changes (run_id, kind, key, action, fields, outcome, at) values "
            "(1, 'variant_attribute', 'Size', 'create', '[]', 'applied', '2026-01-01T00:00:00'),"
            "(1, 'product_category', 'Mugs / Big', 'create', '[]', 'applied', "
            "'2026-01-01T00:00:00')"
        )
        old.execute(
            "insert into managed (kind, key, remote_id, applied, run_id, updated_at) values "
            "('variant_attribute', 'Size', 'a1', '{}', 1, 'x'), "
            "('product_category', 'Mugs / Big', 'c1', '{}', 1, 'x')"
        )
        old.execute(
            "insert into intents (run_id, kind, key, payload_digest, started_at, outcome) "
            "values (1, 'variant_attribute', 'Size', 'd', 'x', 'pending')"
        )
    old.close()
    with State(path) as state:
        ledger = Ledger(state)
        assert set(ledger.managed("attribute")) == {"Size"}
        assert set(ledger.managed("category")) == {"Mugs / Big"}
        assert ledger.managed("variant_attribute") == {}
        assert [(r.kind, r.key) for r in ledger.history()] == [
            ("category", "Mugs / Big"),
            ("attribute", "Size"),
        ]
        # History by name finds them (a name kind matches its key ignoring case).
        assert [r.kind for r in ledger.history("size")] == ["attribute"]
        assert [(i.kind, i.key) for i in ledger.pending_intents()] == [("attribute", "Size")]


def test_a_plan_naming_a_wire_kind_is_refused_in_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(path, a_plan(updates(1)))
    doc = json.loads(path.read_text())
    doc["changes"][0]["children"] = [
        {"kind": "variant_attribute", "key": "Size", "action": "create", "fields": []}
    ]
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanFileError) as refused:
        read_plan(path)
    assert str(refused.value) == (
        f"Plan file {path} was made by an older version of lightspeed-catalog (it names kind "
        f"variant_attribute): plan again (catalog plan --out {path})."
    )
