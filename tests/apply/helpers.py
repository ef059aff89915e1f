"""Test helpers: plan a catalog against the sandbox, apply it, and check what the store holds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from reconciler.api import apply_plan, make_plan
from reconciler.apply import ApplyEvent, ApplyResult
from reconciler.live import Live
from reconciler.model import Brand, Catalog, Product, Settings, Variant
from reconciler.plan import Kind, Plan
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.refresh import load_live, refresh, store_facts
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.staleness import live_row_values
from reconciler.state import State
from reconciler.state.cache import Cache
from reconciler.state.ledger import Ledger
from tests.fakes import TOKEN

WRITE_METHODS = ("POST", "PUT", "DELETE", "PATCH")
MANAGED_KINDS = tuple(str(k) for k in Kind)


@dataclass
class Harness:
    """The everyday loop as a library user runs it: refresh, plan, apply, refresh, plan."""

    store: SandboxStore
    client: Client
    state: State

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.state)

    def live(self) -> Live:
        cache = Cache(self.state)
        refresh(self.client, cache)
        return load_live(cache)

    def plan(self, catalog: Catalog) -> tuple[Plan, Live]:
        live = self.live()
        managed = {k: self.ledger.managed(k) for k in MANAGED_KINDS}
        cache = Cache(self.state)
        plan = make_plan(
            catalog,
            live,
            store="sandbox",
            managed=managed,
            images=cache.uploaded_images(),
            rate_limit=store_facts(cache).rate_limit,
        )
        return plan, live

    def apply(
        self,
        catalog: Catalog,
        *,
        parallelism: int | None = 4,
        events: list[ApplyEvent] | None = None,
    ) -> tuple[Plan, ApplyResult]:
        plan, live = self.plan(catalog)
        return plan, self.apply_plan(plan, live, parallelism=parallelism, events=events)

    def apply_plan(
        self,
        plan: Plan,
        live: Live,
        *,
        parallelism: int | None = 4,
        events: list[ApplyEvent] | None = None,
        catalog_dir: Path | None = None,
        plan_digest: str | None = None,
    ) -> ApplyResult:
        sink: Callable[[ApplyEvent], None] = events.append if events is not None else _ignore
        return apply_plan(
            plan,
            self.client,
            self.state,
            live=live,
            parallelism=parallelism,
            refresh_live=self.live,
            on_event=sink,
            catalog_dir=catalog_dir,
            plan_digest=plan_digest,
        )

    def writes(self) -> Counter[str]:
        """Write requests the store received since the last `reset_stats`, by route."""
        routes = self.store.stats()["requests"]["by_route"]
        return Counter(
            {r: n for r, n in routes.items() if r.split(" ", 1)[0] in WRITE_METHODS and n}
        )

    def write_count(self) -> int:
        return sum(self.writes().values())

    def raw_products(self) -> list[dict[str, Any]]:
        return [o for page in self.client.iter_pages("product") for o in page.items]


def _ignore(_event: ApplyEvent) -> None:
    return None


def assert_store_holds(harness: Harness, catalog: Catalog) -> None:
    """The store holds exactly the catalog: an immediate plan is empty, no SKU or family name
    appears twice, every catalog key is managed and the ledger's values are the store's."""
    plan, live = harness.plan(catalog)
    leftover = [(c.kind, c.key, c.action) for c in plan.all_changes() if c.action != "no-op"]
    assert not plan.has_changes, f"plan after apply is not empty: {leftover}"
    rows = harness.raw_products()
    skus = Counter(r["sku"] for r in rows)
    assert [s for s, n in skus.items() if n > 1] == [], "duplicate SKUs in the store"
    names = {(r["family_id"], r["name"]) for r in rows}
    family_names = Counter(name.casefold() for _, name in names)
    assert [n for n, k in family_names.items() if k > 1] == [], "duplicate product names"
    for kind in ("brands", "suppliers", "tags"):
        seen = Counter(
            str(o["name"]).casefold()
            for page in harness.client.iter_pages(kind[:-1] if kind != "suppliers" else "supplier")
            for o in page.items
        )
        assert [n for n, k in seen.items() if k > 1] == [], f"duplicate {kind}"
    assert_ledger_matches(harness, catalog, live)


def assert_ledger_matches(harness: Harness, catalog: Catalog, live: Live) -> None:
    ledger = harness.ledger
    products = ledger.managed(str(Kind.PRODUCT))
    variants = ledger.managed(str(Kind.VARIANT))
    assert set(products) == {p.handle for p in catalog.products}
    assert set(variants) == {v.sku for p in catalog.products if p.is_family for v in p.variants}
    for kind, managed in ((Kind.PRODUCT, products), (Kind.VARIANT, variants)):
        for key, record in managed.items():
            found = live_row_values(live, kind, key)
            assert record.remote_id is not None, f"{kind} {key} has no remote id"
            for name, value in record.applied.items():
                if name == "sku":
                    continue
                assert _same(found.get(name), value), (
                    f"ledger says {kind} {key} {name}={value!r}, store has {found.get(name)!r}"
                )


def _same(live_value: Any, applied: Any) -> bool:
    if isinstance(live_value, tuple | list) and isinstance(applied, tuple | list):
        return list(live_value) == list(applied)
    return bool(live_value == applied)


# -- catalogs --------------------------------------------------------------------------------


def tee(
    handle: str = "classic-tee",
    *,
    price: str = "25.00",
    name: str | None = None,
    brand: str = "Acme",
    tags: tuple[str, ...] = ("cotton", "summer"),
    variants: Mapping[str, tuple[str, str | None]] | None = None,
    description: str = "<p>Soft cotton</p>",
    category: tuple[str, ...] = ("Apparel", "Tops"),
) -> Product:
    """A family with Size/Colour variants; `variants` maps SKU -> (size, own price)."""
    rows = variants or {
        f"{handle.upper()}-S": ("S", "27.00"),
        f"{handle.upper()}-M": ("M", None),
        f"{handle.upper()}-L": ("L", None),
    }
    return Product(
        handle=handle,
        name=name or handle.replace("-", " ").title(),
        description=description,
        brand=brand,
        supplier="Acme Supply",
        supplier_code=f"SUP-{handle}",
        category=category,
        tags=tags,
        active=True,
        price=Decimal(price),
        supply_price=Decimal("8.00"),
        options=("Size", "Colour"),
        variants=tuple(
            Variant(
                sku=sku,
                options=(("Size", size), ("Colour", "Black")),
                price=Decimal(own) if own else None,
            )
            for sku, (size, own) in rows.items()
        ),
    )


def simple(handle: str, sku: str, price: str = "3.50", **fields: Any) -> Product:
    return Product(
        handle=handle,
        name=fields.pop("name", handle.replace("-", " ").title()),
        sku=sku,
        price=Decimal(price),
        **fields,
    )


def catalog(*products: Product, prune: str = "none") -> Catalog:
    from reconciler.model import Prune

    return Catalog.build(
        products=list(products),
        brands=[Brand("Acme", "Makers of things")],
        tags=["summer"],
        settings=Settings(prune=Prune(prune)),
    )


def shop(n: int = 3) -> Catalog:
    """A small store: `n` families and two simple products."""
    families = [tee(f"tee-{i}", price=f"{20 + i}.00") for i in range(n)]
    return catalog(
        *families,
        simple("gift-wrap", "GIFT-WRAP", tags=("cotton",)),
        simple("sticker", "STICKER", price="1.25", brand="Acme"),
    )


# -- the command line, in a real process ----------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[2] / "catalog"


def example_catalog(into: Path) -> Path:
    """A copy of the example catalog, which the tests may edit."""
    target = into / "catalog"
    shutil.copytree(EXAMPLE, target)
    return target


class Cli:
    def __init__(self, tmp: Path, url: str) -> None:
        self.tmp = tmp
        self.catalog = example_catalog(tmp)
        self.state = tmp / "state.db"
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("LIGHTSPEED_", "CATALOG_"))
        }
        self.env.update(LIGHTSPEED_BASE_URL=url, LIGHTSPEED_TOKEN=TOKEN, NO_COLOR="1")

    def argv(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "reconciler",
            "--catalog",
            str(self.catalog),
            "--state",
            str(self.state),
            *args,
        ]

    def run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def writes(store: SandboxStore) -> int:
    by_method = store.stats()["requests"]["by_method"]
    return sum(n for m, n in by_method.items() if m in ("POST", "PUT", "DELETE"))
