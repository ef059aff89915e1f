"""The ledger belongs to one store: a state file whose managed keys were recorded against store
A is refused, before anything is read from or written to it, when pointed at store B or at a
recreated embedded sandbox; an empty ledger never is, and a ledger from before the binding
adopts the store of its next apply without a word. Both platforms, each against its embedded
sandbox in process."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from reconciler import api, providers
from reconciler.catalog import load_catalog
from reconciler.errors import ConfigError
from reconciler.plan import Plan
from reconciler.providers.base import Target, store_identity
from reconciler.state import State
from reconciler.state.cache import Cache
from reconciler.state.ledger import Ledger

EXAMPLE = Path(__file__).resolve().parents[2] / "catalog"
PLATFORMS = ["xseries", "rseries"]


class Project:
    """The example catalog, one state file, and embedded sandbox stores beside it."""

    def __init__(self, root: Path, platform: str) -> None:
        self.provider = providers.get(platform)
        self.catalog_dir = root / "catalog"
        shutil.copytree(EXAMPLE, self.catalog_dir)
        self.root = root
        self.state_path = root / ".catalog" / "state.db"
        self.said: list[str] = []

    def store(self, name: str) -> Target:
        return self.provider.target({}, sandbox_db=self.root / ".catalog" / f"{name}.db")

    def plan(self, target: Target) -> Plan:
        plan, _ = api.build_plan(
            catalog_dir=self.catalog_dir,
            state_path=self.state_path,
            target=target,
            say=self.said.append,
        )
        return plan

    def apply(self, target: Target, plan: Plan | None = None) -> None:
        plan = plan or self.plan(target)
        catalog = load_catalog(self.catalog_dir, limits=self.provider.limits)
        with State(self.state_path) as state, self.provider.connect(target) as client:
            live = api.read_live(client, state, catalog)
            result = api.apply_plan(plan, client, state, live=live, catalog_dir=self.catalog_dir)
        assert result.ok

    def products(self, target: Target) -> int:
        """Products the store holds, read through its API into a state file of its own."""
        with (
            State(self.root / f"count-{len(list(self.root.iterdir()))}.db") as state,
            self.provider.connect(target) as client,
        ):
            client.refresh(Cache(state))
            return len(client.live(Cache(state)).products)

    def cache_store(self) -> str | None:
        with State(self.state_path) as state:
            return Cache(state).meta("store_url")


@pytest.fixture(params=PLATFORMS)
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Project:
    return Project(tmp_path, str(request.param))


def test_another_store_is_refused_before_anything_is_written(project: Project) -> None:
    a, b = project.store("a"), project.store("b")
    project.apply(a)
    with State(project.state_path) as state, project.provider.connect(a) as client:
        assert Ledger(state).store() == (store_identity(client), a.label)
    bound = project.cache_store()
    planned_for_a = project.plan(a)  # nothing left to do, but a plan made for A all the same

    with pytest.raises(ConfigError) as refused:
        project.plan(b)
    message = str(refused.value)
    assert ConfigError.exit_code == 1  # the design's config error: exit 1
    assert message.startswith(f"State file {project.state_path} belongs to store {a.label}, ")
    assert f"not {b.label}" in message and "CATALOG_STATE or --state" in message
    assert message.count(". ") == 0 and message.endswith(".")
    assert project.cache_store() == bound  # the cache of A was not dropped for B either

    # Every other way in refuses too: apply with a plan, a saved plan's check.
    catalog = load_catalog(project.catalog_dir, limits=project.provider.limits)
    with State(project.state_path) as state, project.provider.connect(b) as client:
        with pytest.raises(ConfigError, match="belongs to"):  # labelled by the plan's store
            api.apply_plan(planned_for_a, client, state, live=client.live(Cache(state)))
        with pytest.raises(ConfigError, match="belongs to store"):
            api.check_saved_plan(
                planned_for_a,
                Path("plan.json"),
                client,
                state,
                target=b,
                catalog=catalog,
                actor="tester",
                host="here",
            )
    assert project.products(b) == 0  # nothing was written to B
    assert project.products(a) > 0

    # An emptied ledger holds nothing of A: it never refuses, and the next apply claims B.
    with State(project.state_path) as state:
        for table in ("managed", "intents", "images"):
            state.db.execute(f"delete from {table}")
        state.db.conn.commit()
    project.apply(b)
    assert project.products(b) == project.products(a)
    with State(project.state_path) as state, project.provider.connect(b) as client:
        assert Ledger(state).store() == (store_identity(client), b.label)


def test_a_recreated_sandbox_is_refused_with_the_reset_advice(project: Project) -> None:
    a = project.store("a")
    project.apply(a)
    Path(str(a.sandbox_db)).unlink()
    with pytest.raises(ConfigError) as refused:
        project.plan(a)
    message = str(refused.value)
    assert f"belongs to an earlier store named {a.label} (recreated or reset since)" in message
    assert "if that store was reset, move the old state file away" in message
    assert project.products(a) == 0


def _old_shape(state_path: Path) -> None:
    """The state file as the release before the binding wrote it: no `ledger_store` table (nor
    what later migrations added: the incremental plan's basis)."""
    db = sqlite3.connect(state_path)
    db.execute("drop table ledger_store")
    for (trigger,) in db.execute(
        "select name from sqlite_master where type = 'trigger'"
    ).fetchall():
        db.execute(f"drop trigger {trigger}")
    for table in ("touched", "basis_families", "basis_rows", "basis_skus"):
        db.execute(f"drop table {table}")
    db.execute("pragma user_version = 5")
    db.commit()
    db.close()


def test_an_old_state_file_adopts_its_store_silently(project: Project) -> None:
    a, b = project.store("a"), project.store("b")
    project.apply(a)
    _old_shape(project.state_path)
    project.said.clear()
    assert not project.plan(a).has_changes  # managed rows, no binding: no refusal
    assert not any("state file" in said.lower() for said in project.said)
    with State(project.state_path) as state:
        assert Ledger(state).holds_anything() and Ledger(state).store() is None

    # The next apply adopts the store it applies to; from then on another store is refused.
    apparel = project.catalog_dir / "apparel.yaml"
    apparel.write_text(apparel.read_text().replace("price: 25.00", "price: 26.00", 1))
    plan = project.plan(a)
    assert plan.has_changes
    project.apply(a, plan)
    with State(project.state_path) as state, project.provider.connect(a) as client:
        assert Ledger(state).store() == (store_identity(client), a.label)
    with pytest.raises(ConfigError, match=re.escape(f"belongs to store {a.label},")):
        project.plan(b)


def test_both_platforms_bind_the_cache_to_the_platform_qualified_identity(
    project: Project,
) -> None:
    a = project.store("a")
    project.plan(a)
    with project.provider.connect(a) as client:
        identity: Any = store_identity(client)
    assert identity.startswith(f"{project.provider.name}:")
    assert project.cache_store() == identity
