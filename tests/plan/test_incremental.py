"""Incremental planning (issue 15): the plan made with the per-family memo and the change feed
always equals the plan made from scratch (`--refresh full`, no memo), whatever sequence of
catalog edits, store edits and applies came before; and a memo that is damaged or made under
other inputs is ignored, never trusted.

The whole pipeline runs as `catalog plan` runs it (`reconciler.api.build_plan`): YAML files
on disk, the parse cache, the state file, against the embedded sandbox store in a file.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from reconciler import api, providers
from reconciler.catalog import load_catalog, to_yaml
from reconciler.errors import CatalogInvalid
from reconciler.model import Image, Product, Prune, Settings, product_to_data
from reconciler.plan import Plan
from reconciler.providers.xseries.client import Client
from reconciler.state import State
from reconciler.state.cache import Cache
from tests.apply.helpers import simple, tee

POOL = ["tee-a", "tee-b", "tee-c", "mug", "card", "pin"]
PRICES = ["9.50", "12.00", "27.00", "31.25"]
FILES = 3
# The sandbox store finishes an upload this long after it (`image_processing_seconds`, 0.2).
SETTLE_SECONDS = 0.3
# Two tiny images of different bytes (a PNG signature is all the loader sniffs).
PNGS = [b"\x89PNG\r\n\x1a\n" + bytes([n]) * 16 for n in range(2)]


def pool_product(handle: str) -> Product:
    if handle.startswith("tee"):
        return tee(handle, tags=("cotton",))
    return simple(handle, f"{handle.upper()}-1", price="4.00", brand="Acme")


class Project:
    """A catalog directory, a state file and an embedded sandbox store in a temporary folder."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="incremental-"))
        self.catalog_dir = self.root / "catalog"
        self.catalog_dir.mkdir()
        (self.catalog_dir / "images").mkdir()
        for n, data in enumerate(PNGS):
            (self.catalog_dir / "images" / f"{n}.png").write_bytes(data)
        self.state_path = self.root / ".catalog" / "state.db"
        self.target = providers.get().target({}, sandbox_db=self.root / ".catalog" / "sandbox.db")

    def write(self, products: dict[str, tuple[int, Product]], settings_: Settings) -> None:
        head: dict[str, Any] = {
            "settings": {
                "prune": str(settings_.prune),
                **(
                    {"fields": {f: str(o) for f, o in settings_.fields}} if settings_.fields else {}
                ),
            },
            "brands": [{"name": "Acme", "description": "Makers of things"}],
        }
        for n in range(FILES):
            chunk = [product_to_data(p) for h, (f, p) in sorted(products.items()) if f == n]
            data: dict[str, Any] = {**(head if n == 0 else {}), "products": chunk}
            self.file(n).write_text(to_yaml(data))

    def file(self, n: int) -> Path:
        return self.catalog_dir / ("catalog.yaml" if n == 0 else f"part-{n}.yaml")

    def connect(self) -> Client:
        client: Client = providers.get().connect(self.target)
        return client

    def plan(self, state_path: Path | None = None, **options: Any) -> Plan | str:
        """The plan as `catalog plan` makes it, or the error's text when the catalog is
        invalid (both sides must then fail alike). What it says goes to `said`."""
        self.said: list[str] = []
        try:
            plan, _ = api.build_plan(
                catalog_dir=self.catalog_dir,
                state_path=state_path or self.state_path,
                target=self.target,
                say=self.said.append,
                **options,
            )
        except CatalogInvalid as exc:
            return str(exc)
        return plan

    def from_scratch(self) -> Plan | str:
        """`--refresh full` with no memo: a copy of the state file without what planning
        remembers (the whole-plan memo and every family's), the store read whole again."""
        copy = self.root / "scratch" / "state.db"
        shutil.rmtree(copy.parent, ignore_errors=True)
        copy.parent.mkdir()
        if self.state_path.exists():
            shutil.copyfile(self.state_path, copy)
            with State(copy) as state:
                forget_memos(state)
        return self.plan(copy, refresh_mode="full")


def forget_memos(state: State) -> None:
    state.db.execute("delete from family_memo")
    state.db.execute("delete from basis_families")
    state.db.execute(
        "delete from store_meta where key in "
        "('plan_memo', 'plan_memo_key', 'family_memo_scope', 'live_generation', "
        "'plan_basis', 'plan_basis_plan')"
    )
    state.db.conn.commit()


def comparable(plan: Plan | str) -> Any:
    if isinstance(plan, str):
        return plan
    data = plan.to_json()
    for key in ("created_at", "git_commit"):
        data.pop(key, None)
    return data


class IncrementalMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.project = Project()
        self.products: dict[str, tuple[int, Product]] = {}
        self.settings = Settings()
        self.uploaded = False  # an image went up this step: the store is still processing it

    @initialize(handles=st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique=True))
    def start(self, handles: list[str]) -> None:
        for n, handle in enumerate(handles):
            self.products[handle] = (n % FILES, pool_product(handle))
        self._write()
        self.apply()  # the store starts as the catalog says: what follows are edits

    def _write(self) -> None:
        self.project.write(self.products, self.settings)

    def _pick(self, data: st.DataObject, *, family: bool | None = None) -> str:
        handles = sorted(
            h for h, (_, p) in self.products.items() if family is None or p.is_family == family
        )
        return data.draw(st.sampled_from(handles))

    # -- catalog edits -------------------------------------------------------------------------

    @rule(handle=st.sampled_from(POOL), file=st.integers(0, FILES - 1))
    def declare(self, handle: str, file: int) -> None:
        self.products.setdefault(handle, (file, pool_product(handle)))
        self._write()

    @precondition(lambda self: bool(self.products))
    @rule(data=st.data())
    def undeclare(self, data: st.DataObject) -> None:
        del self.products[self._pick(data)]
        self._write()

    @precondition(lambda self: bool(self.products))
    @rule(data=st.data(), file=st.integers(0, FILES - 1))
    def move_to_another_file(self, data: st.DataObject, file: int) -> None:
        handle = self._pick(data)
        self.products[handle] = (file, self.products[handle][1])
        self._write()

    @precondition(lambda self: any(p.is_family for _, p in self.products.values()))
    @rule(data=st.data(), price=st.sampled_from(PRICES))
    def reprice_variant(self, data: st.DataObject, price: str) -> None:
        handle = self._pick(data, family=True)
        file, p = self.products[handle]
        index = data.draw(st.integers(0, len(p.variants) - 1))
        rows = list(p.variants)
        rows[index] = replace(rows[index], price=Decimal(price))
        self.products[handle] = (file, replace(p, variants=tuple(rows)))
        self._write()

    @precondition(lambda self: bool(self.products))
    @rule(data=st.data(), suffix=st.integers(1, 3))
    def rename_or_describe(self, data: st.DataObject, suffix: int) -> None:
        handle = self._pick(data)
        file, p = self.products[handle]
        self.products[handle] = (
            file,
            replace(p, name=f"{handle.title()} v{suffix}", description=f"<p>Take {suffix}</p>"),
        )
        self._write()

    @precondition(lambda self: bool(self.products))
    @rule(data=st.data(), which=st.lists(st.integers(0, len(PNGS) - 1), max_size=2, unique=True))
    def set_images(self, data: st.DataObject, which: list[int]) -> None:
        handle = self._pick(data)
        file, p = self.products[handle]
        images = tuple(Image(path=f"images/{n}.png", sha256="") for n in which)
        self.products[handle] = (file, replace(p, images=images or None))
        self._write()

    @rule(
        prune=st.sampled_from(list(Prune)),
        price_owner=st.sampled_from([None, "store", "init"]),
    )
    def change_settings(self, prune: Prune, price_owner: str | None) -> None:
        from reconciler.model import Owner

        fields = () if price_owner is None else (("price", Owner(price_owner)),)
        self.settings = Settings(prune=prune, fields=fields)
        self._write()

    @rule(data=st.data())
    def rewrite_a_file_unchanged(self, data: st.DataObject) -> None:
        # Same content, new bytes on disk (a formatter ran): nothing may change.
        path = self.project.file(data.draw(st.integers(0, FILES - 1)))
        path.write_text(path.read_text() + "\n")

    # -- edits made in the store behind the catalog's back --------------------------------------

    def _rows(self, client: Client) -> list[dict[str, Any]]:
        rows = [r for page in client.iter_pages("product") for r in page.items]
        return sorted((r for r in rows if not r.get("deleted_at")), key=lambda r: str(r["sku"]))

    @rule(data=st.data(), price=st.sampled_from(PRICES))
    def store_reprice(self, data: st.DataObject, price: str) -> None:
        with self.project.connect() as client:
            rows = self._rows(client)
            if rows:
                row = data.draw(st.sampled_from(rows))
                client.update_product(str(row["id"]), details={"price_including_tax": float(price)})

    @rule(data=st.data(), suffix=st.integers(1, 3))
    def store_rename(self, data: st.DataObject, suffix: int) -> None:
        with self.project.connect() as client:
            rows = self._rows(client)
            if rows:
                row = data.draw(st.sampled_from(rows))
                client.update_product(str(row["id"]), common={"name": f"Renamed {suffix}"})

    @rule(data=st.data())
    def store_delete(self, data: st.DataObject) -> None:
        with self.project.connect() as client:
            rows = self._rows(client)
            if rows:
                row = data.draw(st.sampled_from(rows))
                client.delete_product(str(row["id"]), whole_family=True)

    @rule(name=st.sampled_from(["Acme", "ACME Inc", "Zeta"]))
    def store_renames_a_brand(self, name: str) -> None:
        with self.project.connect() as client:
            brands = client.get("/api/2.0/brands")
            found = [b for b in brands.get("data", []) if not b.get("deleted_at")]
            if found:
                client.update_brand(str(found[0]["id"]), {"name": name})

    @rule(data=st.data(), n=st.integers(0, len(PNGS) - 1))
    def store_adds_an_image(self, data: st.DataObject, n: int) -> None:
        with self.project.connect() as client:
            rows = self._rows(client)
            if rows:
                row = data.draw(st.sampled_from(rows))
                client.upload_image(
                    str(row["id"]), filename=f"{n}.png", content=PNGS[n], media_type="image/png"
                )
                self.uploaded = True

    # -- apply -----------------------------------------------------------------------------------

    @rule()
    def apply(self) -> None:
        plan = self.project.plan()
        if isinstance(plan, str) or not plan.has_changes:
            return
        self.uploaded = True  # it may upload images
        with State(self.project.state_path) as state, self.project.connect() as client:
            cache = Cache(state)
            api.apply_plan(
                plan,
                client,
                state,
                live=client.live(cache),
                catalog_dir=self.project.catalog_dir,
                refresh_live=lambda: (client.refresh(cache), client.live(cache))[1],
            )

    # -- the property -------------------------------------------------------------------------

    def _settle(self) -> None:
        """Let the store finish processing uploaded images (it does so lazily, after a
        delay, and bumps the family's version then): both plans must see one store."""
        if self.uploaded:
            time.sleep(SETTLE_SECONDS)
            with self.project.connect() as client:
                client.retailer()  # any request settles what is due
            self.uploaded = False

    @invariant()
    def incremental_equals_from_scratch(self) -> None:
        self._settle()
        if not self.products:
            return
        incremental = comparable(self.project.plan())
        assert not isinstance(incremental, str), incremental  # every edit keeps it valid
        assert incremental == comparable(self.project.from_scratch())
        # And again: the memo just written must give the same plan.
        assert comparable(self.project.plan()) == incremental

    def teardown(self) -> None:
        shutil.rmtree(self.project.root, ignore_errors=True)


IncrementalMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_incremental_plan_equals_a_plan_from_scratch = IncrementalMachine.TestCase


# -- a memo that is damaged, or made under other inputs, is never trusted ----------------------


def _project_with_memo() -> tuple[Project, Plan]:
    project = Project()
    products = {
        "tee-a": (0, pool_product("tee-a")),
        "mug": (1, pool_product("mug")),
    }
    project.write(products, Settings())
    created = project.plan()
    assert isinstance(created, Plan)
    with State(project.state_path) as state, project.connect() as client:
        api.apply_plan(created, client, state, live=client.live(Cache(state)))
    file, mug = products["mug"]
    products["mug"] = (file, replace(mug, description="<p>New</p>"))
    project.write(products, Settings())
    first = project.plan()  # remembers both families: the mug's update, the tee unchanged
    assert isinstance(first, Plan)
    assert [(c.key, str(c.action)) for c in first.changes] == [("mug", "update")]
    return project, first


def _edit_memo(project: Project, sql: str, *params: object) -> None:
    conn = sqlite3.connect(project.state_path)
    with conn:
        conn.execute(sql, params)
        # The whole-plan memo would answer first: forget it, so the family memo is asked.
        conn.execute("delete from store_meta where key in ('plan_memo', 'plan_memo_key')")
    conn.close()


def test_a_damaged_family_entry_is_computed_again_not_trusted() -> None:
    project, first = _project_with_memo()
    try:
        lie = '{"n":[],"u":0,"c":"noop"}'  # "nothing to do", which is false
        _edit_memo(project, "update family_memo set entry = ?", lie)
        again = project.plan()
        assert isinstance(again, Plan)
        assert comparable(again) == comparable(first)
        _edit_memo(project, "update family_memo set entry = ?", "{not json")
        assert comparable(project.plan()) == comparable(first)
    finally:
        shutil.rmtree(project.root, ignore_errors=True)


def test_a_forged_entry_with_a_matching_checksum_but_unreadable_is_computed_again() -> None:
    project, first = _project_with_memo()
    try:
        with State(project.state_path) as state:
            cache = Cache(state)
            scope = cache.meta("family_memo_scope")
            assert scope is not None
            memo = cache.family_memo(scope)
            assert set(memo) == {"tee-a", "mug"}
            cache.remember_families(
                scope,
                {h: (key, "[1, 2, 3]") for h, (key, _) in memo.items()},
                keep=(),
                known=memo,
            )
        _edit_memo(project, "select 1")
        assert comparable(project.plan()) == comparable(first)
    finally:
        shutil.rmtree(project.root, ignore_errors=True)


def test_a_memo_made_under_another_scope_is_ignored() -> None:
    project, first = _project_with_memo()
    try:
        noop = '{"n":[],"u":0,"c":"noop"}'
        with State(project.state_path) as state:
            cache = Cache(state)
            scope = cache.meta("family_memo_scope")
            assert scope is not None
            memo = cache.family_memo(scope)
            # A memo that says "nothing to do" for every family, under a foreign scope (another
            # store, other code or options): it must not be used.
            cache.remember_families(
                "another-scope",
                {h: (key, noop) for h, (key, _) in memo.items()},
                keep=(),
                known=memo,
            )
            assert cache.family_memo(scope) == {}
        _edit_memo(project, "select 1")
        assert comparable(project.plan()) == comparable(first)
    finally:
        shutil.rmtree(project.root, ignore_errors=True)


def test_the_memo_is_read_and_written_only_for_families_that_changed() -> None:
    project = Project()
    try:
        products = {h: (n % FILES, pool_product(h)) for n, h in enumerate(POOL)}
        project.write(products, Settings())
        plan = project.plan()
        assert isinstance(plan, Plan)
        with State(project.state_path) as state, project.connect() as client:
            cache = Cache(state)
            api.apply_plan(plan, client, state, live=client.live(cache))
        project.plan()  # computes every family once more (the ledger changed)
        file, mug = products["mug"]
        products["mug"] = (file, replace(mug, description="<p>New</p>"))
        project.write(products, Settings())
        with State(project.state_path) as state:
            before = dict(state.db.execute("select handle, key from family_memo").fetchall())
        again = project.plan()
        assert isinstance(again, Plan)
        assert [(c.key, str(c.action)) for c in again.changes] == [("mug", "update")]
        with State(project.state_path) as state:
            after = dict(state.db.execute("select handle, key from family_memo").fetchall())
        assert {h for h in after if after[h] != before.get(h)} == {"mug"}
    finally:
        shutil.rmtree(project.root, ignore_errors=True)


# -- the incremental plan reads and compares only what changed ----------------------------------


def _applied_project(products: dict[str, tuple[int, Product]]) -> Project:
    """A project whose store holds the catalog, with the plan after the apply made (in full:
    every family was written), so the next plan starts from its basis."""
    project = Project()
    project.write(products, Settings())
    created = project.plan()
    assert isinstance(created, Plan)
    with State(project.state_path) as state, project.connect() as client:
        cache = Cache(state)
        api.apply_plan(
            created,
            client,
            state,
            live=client.live(cache),
            refresh_live=lambda: (client.refresh(cache), client.live(cache))[1],
        )
    time.sleep(SETTLE_SECONDS)
    settled = project.plan()
    assert isinstance(settled, Plan) and not settled.has_changes, settled.changes
    return project


def _incremental_line(project: Project) -> str:
    lines = [s for s in project.said if s.startswith("Compared ")]
    assert len(lines) == 1, project.said
    return lines[0]


def test_one_yaml_edit_reads_one_file_and_compares_one_family() -> None:
    products = {h: (n % FILES, pool_product(h)) for n, h in enumerate(POOL)}
    project = _applied_project(products)
    try:
        file, mug = products["mug"]
        products["mug"] = (file, replace(mug, description="<p>New</p>"))
        project.write(products, Settings())
        plan = project.plan()
        assert isinstance(plan, Plan)
        assert [(c.key, str(c.action)) for c in plan.changes] == [("mug", "update")]
        assert _incremental_line(project) == (
            f"Compared 1 of {len(POOL)} families again (1 changed file read); the others are "
            "unchanged since the last plan."
        )
        assert comparable(plan) == comparable(project.from_scratch())
        # What a saved plan is checked against at apply: the catalog loaded whole.
        assert plan.catalog_digest == load_catalog(project.catalog_dir).digest()
    finally:
        shutil.rmtree(project.root, ignore_errors=True)


def test_one_store_edit_compares_only_that_family() -> None:
    products = {h: (n % FILES, pool_product(h)) for n, h in enumerate(POOL)}
    project = _applied_project(products)
    try:
        with project.connect() as client:
            row = next(r for r in IncrementalMachine._rows(None, client) if r["sku"] == "MUG-1")  # type: ignore[arg-type]
            client.update_product(str(row["id"]), details={"price_including_tax": 99.0})
        plan = project.plan()
        assert isinstance(plan, Plan)
        assert [(c.key, str(c.action)) for c in plan.changes] == [("mug", "update")]
        assert _incremental_line(project).startswith(f"Compared 1 of {len(POOL)} families again")
        assert comparable(plan) == comparable(project.from_scratch())
    finally:
        shutil.rmtree(project.root, ignore_errors=True)


def test_an_unchanged_catalog_and_store_compare_nothing() -> None:
    project = _applied_project({h: (n % FILES, pool_product(h)) for n, h in enumerate(POOL)})
    try:
        for path in (project.file(n) for n in range(FILES)):
            path.write_text(path.read_text())  # new stat, same bytes: read, not parsed
        plan = project.plan()
        assert isinstance(plan, Plan) and not plan.has_changes
        assert _incremental_line(project).startswith(f"Compared 0 of {len(POOL)} families")
    finally:
        shutil.rmtree(project.root, ignore_errors=True)


def test_a_problem_in_an_edited_item_is_refused_at_its_line_before_any_request() -> None:
    products = {h: (n % FILES, pool_product(h)) for n, h in enumerate(POOL)}
    project = _applied_project(products)
    try:
        path = project.file(products["mug"][0])
        text = path.read_text()
        broken = text.replace("price: '4.00'", "price: four", 1)  # not a price
        assert broken != text
        path.write_text(broken)
        line = broken.splitlines().index("    price: four")
        store = project.root / ".catalog" / "sandbox.db"
        before = store.stat().st_mtime_ns
        result = project.plan()
        assert isinstance(result, str)
        assert f"{path.name}:{line + 1}:" in result, result
        assert store.stat().st_mtime_ns == before  # the store was not even opened for a read
    finally:
        shutil.rmtree(project.root, ignore_errors=True)


def test_a_structural_edit_plans_in_full_and_equals_a_plan_from_scratch() -> None:
    products = {h: (n % FILES, pool_product(h)) for n, h in enumerate(POOL)}
    project = _applied_project(products)
    try:
        products["pin"] = (0, products["pin"][1])  # moved to another file
        del products["card"]
        project.write(products, Settings())
        plan = project.plan()
        assert isinstance(plan, Plan)
        assert not [s for s in project.said if s.startswith("Compared ")]  # in full
        assert comparable(plan) == comparable(project.from_scratch())
    finally:
        shutil.rmtree(project.root, ignore_errors=True)
