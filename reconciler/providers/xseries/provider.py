"""Lightspeed Retail X-Series (formerly Vend) as a provider: what the core asks of a platform
(`reconciler.providers.base.Provider`), answered from this package's modules.

Registered in `reconciler.providers.REGISTRY` as "xseries". Its connection is the X-Series
`Client` itself (it refreshes the cache through the version feed and reads it back as `Live`);
`compile` is `writes.build_steps`; the sandbox store is `SANDBOX`. Modules are imported inside
the methods, so naming the provider loads neither httpx nor the sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.providers.base import (
    Compiled,
    Limits,
    ManagedIndex,
    Provider,
    Sandbox,
    ServedSandbox,
)
from reconciler.providers.xseries.target import EMBEDDED_SANDBOX_DB, StoreTarget, store_target

if TYPE_CHECKING:
    from reconciler.live import Live
    from reconciler.plan import Estimate, Plan
    from reconciler.providers.base import Target
    from reconciler.providers.xseries.client import Client
    from reconciler.providers.xseries.csvimport import XSeriesExport
    from reconciler.providers.xseries.sandbox import SandboxStore


class XSeries:
    name = "xseries"
    title = "Lightspeed Retail X-Series"
    limits = Limits(
        max_options=3,
        max_variants=200,
        money_places=5,
        leaf_only_categories=True,
        delete_means="delete",
        has_handles=True,
    )

    def target(self, environ: Mapping[str, str], *, sandbox_db: Path) -> StoreTarget:
        return store_target(environ, sandbox_db=sandbox_db)

    def connect(
        self, target: Target, *, say: Callable[[str], None] | None = None, **options: Any
    ) -> Client:
        """A client for the target store; `options` go to `Client` (timeouts, pacing, ...).

        For the embedded sandbox (`target.sandbox_db`, beside the state file) the store is
        served in process, and that is said in one line through `say`.
        """
        from reconciler.providers.xseries.client import Client

        assert isinstance(target, StoreTarget), target
        if target.sandbox_db is None:
            return Client(target.base_url, target.token, **options)
        from reconciler.providers.asgi import SandboxTransport
        from reconciler.providers.xseries.sandbox import SandboxStore

        path = target.sandbox_db
        path.parent.mkdir(parents=True, exist_ok=True)
        store = SandboxStore(path, token=target.token)
        if say is not None:
            say(
                f"Using the embedded sandbox store ({path}); set LIGHTSPEED_STORE and "
                "LIGHTSPEED_TOKEN to work with a real store."
            )
        # The file's creation time tells a recreated sandbox from the old one, so a cache made
        # against a deleted sandbox.db is never trusted.
        born = str(store.retailer().get("created_at") or "")
        return Client(
            target.base_url,
            target.token,
            transport=SandboxTransport(store),
            identity=f"embedded-sandbox:{path.resolve()}@{born}",
            **options,
        )

    def compile(
        self,
        plan: Plan,
        live: Live,
        managed: ManagedIndex,
        *,
        catalog_dir: Path | None = None,
    ) -> Compiled[Client]:
        from reconciler.providers.xseries.writes import build_steps

        return build_steps(plan, live, managed, catalog_dir=catalog_dir)

    def estimate(
        self, compiled: Compiled[Client], *, rate_limit: int, window_seconds: float
    ) -> Estimate:
        """The compile's requests at the store's sustained rate (its sliding window)."""
        from reconciler.planner import estimate

        return estimate(compiled.requests, rate_limit=rate_limit, window_seconds=window_seconds)

    def parallelism(self, estimate: Estimate) -> int:
        from reconciler.providers.xseries.pacing import default_parallelism

        return default_parallelism(estimate)

    def export_reader(self) -> XSeriesExport:
        from reconciler.providers.xseries.csvimport import XSeriesExport

        return XSeriesExport()

    def sandbox(self) -> Sandbox[SandboxStore]:
        return SANDBOX


class XSeriesSandbox(ServedSandbox["SandboxStore"]):
    """The X-Series sandbox store (`reconciler.providers.xseries.sandbox`) as the registry
    hands it out: `catalog sandbox serve`, the embedded store and the tests' fake."""

    title = "X-Series"
    default_db = EMBEDDED_SANDBOX_DB

    def check_rate_limit(self, value: str, /) -> None:
        from reconciler.providers.xseries.sandbox import RateLimit

        RateLimit.parse(value)

    def open(self, path: str | Path, *, token: str, **options: Any) -> SandboxStore:
        from reconciler.providers.xseries.sandbox import SandboxStore

        return SandboxStore(path, token=token, **options)


SANDBOX: Sandbox[SandboxStore] = XSeriesSandbox()
PROVIDER: Provider[Client] = XSeries()
