"""Catalog edits, store edits made behind our back, and applies, interleaved at random.

After every apply: an immediate plan is empty (convergence) and no product the catalog does
not manage was written to (design invariants 3 and 5).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from reconciler.model import Product
from reconciler.providers.asgi import SandboxTransport
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State

from .helpers import TOKEN, Harness, catalog, simple, tee

POOL = ["tee-a", "tee-b", "tee-c", "mug", "card"]
PRICES = ["9.50", "12.00", "27.00", "31.25"]


def pool_product(handle: str) -> Product:
    if handle.startswith("tee"):
        return tee(handle, tags=("cotton",))
    return simple(handle, f"{handle.upper()}-1", price="4.00")


class ApplyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = SandboxStore(
            ":memory:", token=TOKEN, rate_limit=None, image_processing_seconds=0.01
        )
        self.client = Client(
            "http://sandbox.test",
            TOKEN,
            transport=SandboxTransport(self.store),
            backoff_base=0.005,
            backoff_cap=0.05,
        )
        self.state = State(":memory:")
        self.harness = Harness(self.store, self.client, self.state)
        self.products: dict[str, Product] = {}
        self.unmanaged: dict[str, int] = {}  # id -> version of rows the catalog never managed

    @initialize()
    def someone_elses_products(self) -> None:
        for n in range(2):
            self.client.create_product(
                {
                    "name": f"Theirs {n}",
                    "handle": f"theirs-{n}",
                    "sku": f"THEIRS-{n}",
                    "price_including_tax": 5.0,
                }
            )
        self._remember_unmanaged()

    def _remember_unmanaged(self) -> None:
        self.unmanaged = {
            str(r["id"]): int(r["version"])
            for r in self.harness.raw_products()
            if str(r["handle"]).startswith("theirs")
        }

    # -- catalog edits -------------------------------------------------------------------------

    @rule(handle=st.sampled_from(POOL))
    def declare(self, handle: str) -> None:
        self.products.setdefault(handle, pool_product(handle))

    @precondition(lambda self: bool(self.products))
    @rule(data=st.data())
    def undeclare(self, data: st.DataObject) -> None:
        handle = data.draw(st.sampled_from(sorted(self.products)))
        del self.products[handle]

    @precondition(lambda self: any(p.is_family for p in self.products.values()))
    @rule(data=st.data(), price=st.sampled_from(PRICES))
    def reprice_variant(self, data: st.DataObject, price: str) -> None:
        handle = data.draw(
            st.sampled_from(sorted(h for h, p in self.products.items() if p.is_family))
        )
        p = self.products[handle]
        index = data.draw(st.integers(0, len(p.variants) - 1))
        rows = list(p.variants)
        rows[index] = replace(rows[index], price=Decimal(price))
        self.products[handle] = replace(p, variants=tuple(rows))

    @precondition(lambda self: bool(self.products))
    @rule(data=st.data(), suffix=st.integers(1, 3))
    def rename_or_describe(self, data: st.DataObject, suffix: int) -> None:
        handle = data.draw(st.sampled_from(sorted(self.products)))
        p = self.products[handle]
        self.products[handle] = replace(
            p, name=f"{handle.title()} v{suffix}", description=f"<p>Take {suffix}</p>"
        )

    # -- edits made directly in the store --------------------------------------------------------

    @rule(data=st.data(), price=st.sampled_from(PRICES))
    def store_edit(self, data: st.DataObject, price: str) -> None:
        rows = [r for r in self.harness.raw_products() if not str(r["handle"]).startswith("theirs")]
        if not rows:
            return
        row = data.draw(st.sampled_from(sorted(rows, key=lambda r: str(r["sku"]))))
        self.client.update_product(str(row["id"]), details={"price_including_tax": float(price)})

    @rule(data=st.data())
    def store_delete(self, data: st.DataObject) -> None:
        rows = [r for r in self.harness.raw_products() if not str(r["handle"]).startswith("theirs")]
        if not rows:
            return
        row = data.draw(st.sampled_from(sorted(rows, key=lambda r: str(r["sku"]))))
        self.client.delete_product(str(row["id"]), whole_family=True)

    @rule()
    def store_edit_theirs(self) -> None:
        # Someone edits a product the catalog does not manage: apply must leave it so.
        row = next(r for r in self.harness.raw_products() if r["handle"] == "theirs-0")
        self.client.update_product(str(row["id"]), common={"description": "<p>Theirs</p>"})
        self._remember_unmanaged()

    # -- apply -----------------------------------------------------------------------------------

    @rule()
    def apply(self) -> None:
        wanted = catalog(*self.products.values())
        _, result = self.harness.apply(wanted)
        assert result.ok, [c for c in result.changes if c.outcome != "applied"]
        plan, _ = self.harness.plan(wanted)
        leftover = [(c.kind, c.key, c.action) for c in plan.all_changes()]
        assert not plan.has_changes, f"plan after apply is not empty: {leftover}"
        now = {
            str(r["id"]): int(r["version"])
            for r in self.harness.raw_products()
            if str(r["handle"]).startswith("theirs")
        }
        assert now == self.unmanaged, "apply wrote to a product the catalog does not manage"

    def teardown(self) -> None:
        self.client.close()
        self.state.close()
        self.store.close()


ApplyMachine.TestCase.settings = settings(
    max_examples=12,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_apply_machine = ApplyMachine.TestCase
