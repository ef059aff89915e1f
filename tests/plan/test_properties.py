"""Properties: no phantom diffs against a store that matches, and no dependence on file order."""

from __future__ import annotations

import random
import tempfile
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.catalog import load_catalog, to_yaml
from reconciler.model import Catalog, product_to_data
from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State
from tests.fakes import TOKEN

from .helpers import managed_from, plan_store, seed_store
from .strategies import catalogs

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def seeded(catalog: Catalog, *, tax_exclusive: bool) -> tuple[SandboxStore, Client]:
    store = SandboxStore(":memory:", token=TOKEN, rate_limit=None, tax_exclusive=tax_exclusive)
    client = Client("http://sandbox.test", TOKEN, transport=SandboxTransport(store))
    seed_store(client, catalog, tax_exclusive=tax_exclusive)
    return store, client


@SETTINGS
@given(catalog=catalogs(), tax_exclusive=st.booleans())
def test_a_store_that_matches_the_catalog_plans_nothing(
    catalog: Catalog, tax_exclusive: bool
) -> None:
    store, client = seeded(catalog, tax_exclusive=tax_exclusive)
    with client, State(":memory:") as state:
        plan = plan_store(client, state, catalog, managed=managed_from(catalog))
    store.close()
    assert plan.changes == (), [c.to_json() for c in plan.changes]
    assert plan.notices == ()


def write_files(directory: Path, catalog: Catalog, *, files: int, rng: random.Random) -> None:
    """The catalog split over `files` YAML files, products shuffled, keys in catalog order."""
    directory.mkdir()
    products = [product_to_data(p) for p in catalog.products]
    rng.shuffle(products)
    chunks: list[list[object]] = [[] for _ in range(files)]
    for i, p in enumerate(products):
        chunks[rng.randrange(files) if i >= files else i].append(p)
    head = {
        "settings": {"prune": "none"},
        "brands": [
            {"name": b.name, **({"description": b.description} if b.description else {})}
            for b in catalog.brands
        ][::-1],
        "suppliers": [{"name": s.name} for s in catalog.suppliers],
        "tags": list(catalog.tags)[::-1],
    }
    (directory / "catalog.yaml").write_text(to_yaml(head))
    for n, chunk in enumerate(chunks):
        if chunk:
            (directory / f"part-{n}.yaml").write_text(to_yaml({"products": chunk}))


@SETTINGS
@given(catalog=catalogs(max_products=6), seed=st.integers(0, 2**16), files=st.integers(1, 4))
def test_the_plan_does_not_depend_on_file_order(catalog: Catalog, seed: int, files: int) -> None:
    # The store holds all but the last product, the first with another description, so the
    # plan always has a create (and usually an update).
    kept = catalog.products[:-1]
    edited = replace(
        catalog,
        products=tuple(replace(p, description="old") if i == 0 else p for i, p in enumerate(kept)),
    )
    store, client = seeded(edited, tax_exclusive=False)
    plans = []
    with client, tempfile.TemporaryDirectory() as tmp:
        for attempt in range(2):
            directory = Path(tmp) / f"catalog-{attempt}"
            write_files(directory, catalog, files=files, rng=random.Random(seed + attempt))
            loaded = load_catalog(directory)
            with State(":memory:") as state:
                plans.append(plan_store(client, state, loaded, managed=managed_from(edited)))
    store.close()
    first, second = plans
    assert first.changes
    assert first.digest() == second.digest()
    assert first.catalog_digest == second.catalog_digest == catalog.digest()
