"""Lightspeed Retail R-Series (formerly MerchantOS) as a provider: what the core asks of a
platform (`reconciler.providers.base.Provider`), answered from this package's modules.

Registered in `reconciler.providers.REGISTRY` as "rseries". Its connection is the R-Series
client itself (`RSeriesClient`: it refreshes the cache through the `timeStamp` feed and reads
it back as `Live`, families keyed by the catalog's handles); `compile` is `writes.build_steps`;
the sandbox store is `SANDBOX`. Modules are imported inside the methods, so naming the provider
loads neither httpx nor the sandbox.
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
from reconciler.providers.rseries.target import (
    EMBEDDED_SANDBOX_DB,
    RSeriesTarget,
    rseries_target,
)

if TYPE_CHECKING:
    from reconciler.live import Live
    from reconciler.plan import Estimate, Plan
    from reconciler.providers.base import Target
    from reconciler.providers.rseries.client import RSeriesClient
    from reconciler.providers.rseries.csvimport import RSeriesExport
    from reconciler.providers.rseries.sandbox import RSeriesStore

# Requests apply keeps in flight [choice]: the bucket, not the threads, sets the pace (one
# unit a second); a few threads only hide each request's latency while the bucket has room.
PARALLELISM = 4


class RSeries:
    name = "rseries"
    title = "Lightspeed Retail R-Series"
    limits = Limits(
        max_options=3,  # an ItemAttributeSet has three attribute slots
        max_variants=200,  # [choice]: undocumented; the catalog's own limit
        money_places=2,
        # Items may sit on any category, a parent too (lightspeed-rseries.md §6: nothing
        # refuses it).
        leaf_only_categories=False,
        delete_means="archive",  # DELETE Item archives it and zeroes its stock (§7.3)
        has_handles=False,
        barcode_lengths=frozenset({11, 12, 13, 14}),  # `upc` / `ean` hold 11-14 digits (§9)
        brand_descriptions=False,  # Manufacturer and Vendor have a name only (§6)
        family_descriptions=False,  # no field fits a product's description (§9) [choice]
        title="R-Series",
    )

    def target(self, environ: Mapping[str, str], *, sandbox_db: Path) -> RSeriesTarget:
        return rseries_target(environ, sandbox_db=sandbox_db)

    def connect(
        self, target: Target, *, say: Callable[[str], None] | None = None, **options: Any
    ) -> RSeriesClient:
        """A client for the target account; `options` go to `RSeriesClient` (timeouts,
        pacing, ...). For the embedded sandbox (`target.sandbox_db`, beside the state file)
        the store is served in process, and that is said in one line through `say`."""
        from reconciler.providers.rseries.auth import OAuth, RefreshCredentials, TokenFile
        from reconciler.providers.rseries.client import RSeriesClient

        assert isinstance(target, RSeriesTarget), target
        refresh = (
            RefreshCredentials(target.client_id, target.client_secret, target.refresh_token)
            if target.refreshes
            else None
        )
        auth = OAuth(
            token_url=target.token_url,
            access_token=target.access_token or None,
            refresh=refresh,
            token_file=TokenFile(target.token_file)
            if refresh is not None and target.token_file is not None
            else None,
        )
        if target.sandbox_db is None:
            return RSeriesClient(
                target.base_url, auth=auth, account_id=target.account_id, **options
            )
        from reconciler.providers.asgi import SandboxTransport
        from reconciler.providers.rseries.sandbox import RSeriesStore

        path = target.sandbox_db
        path.parent.mkdir(parents=True, exist_ok=True)
        # The bucket is off [choice]: a newcomer's first apply takes seconds, not the minutes a
        # real account's bucket would make it; the plan's estimate still says what a real
        # account takes (R-Series' published bucket, as no bucket is reported).
        store = RSeriesStore(path, token=target.access_token, rate_limit=None)
        if say is not None:
            say(
                f"Using the embedded R-Series sandbox store ({path}); set LIGHTSPEED_TOKEN (or "
                "the refresh credentials) and LIGHTSPEED_ACCOUNT_ID to work with a real "
                "account."
            )
        # The store's birth tells a recreated sandbox from the old one, so a cache made
        # against a deleted file is never trusted.
        return RSeriesClient(
            target.base_url,
            auth=auth,
            account_id=store.account_id,
            transport=SandboxTransport(store),
            identity=f"embedded-rseries-sandbox:{path.resolve()}@{store.born}",
            **options,
        )

    def compile(
        self,
        plan: Plan,
        live: Live,
        managed: ManagedIndex,
        *,
        catalog_dir: Path | None = None,
    ) -> Compiled[RSeriesClient]:
        from reconciler.providers.rseries.writes import build_steps

        return build_steps(plan, live, managed, catalog_dir=catalog_dir)

    def estimate(
        self, compiled: Compiled[RSeriesClient], *, rate_limit: int, window_seconds: float
    ) -> Estimate:
        """The compile's cost in bucket units under the leaky bucket: `rate_limit` is the
        bucket's size and `window_seconds` the time a full one takes to drain (the store's
        facts), so the time is (total cost - size) / drip rate when positive."""
        from reconciler.providers.rseries.pacing import bucket_estimate

        return bucket_estimate(
            compiled.requests,
            sum(step_cost(s) for s in compiled.steps),
            size=rate_limit,
            window_seconds=window_seconds,
        )

    def parallelism(self, estimate: Estimate) -> int:
        return max(1, min(PARALLELISM, estimate.requests))

    def export_reader(self) -> RSeriesExport:
        """The store's own item export (Item Search export, the item import template)."""
        from reconciler.providers.rseries.csvimport import RSeriesExport

        return RSeriesExport()

    def sandbox(self) -> Sandbox[RSeriesStore]:
        return SANDBOX


def step_cost(step: object) -> float:
    """A step's cost in bucket units: its `cost` when the step states one (a Category write
    costs 10), else one unit per request."""
    cost = getattr(step, "cost", None)
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        return float(cost)
    return float(getattr(step, "requests", 0))


class RSeriesSandbox(ServedSandbox["RSeriesStore"]):
    """The R-Series sandbox store (`reconciler.providers.rseries.sandbox`) as the registry
    hands it out: `catalog sandbox serve --platform rseries`, the embedded store and the
    tests' fake."""

    title = "R-Series"
    default_db = EMBEDDED_SANDBOX_DB

    def check_rate_limit(self, value: str, /) -> None:
        from reconciler.providers.rseries.sandbox import Bucket

        Bucket.parse(value)

    def open(self, path: str | Path, *, token: str, **options: Any) -> RSeriesStore:
        from reconciler.providers.rseries.sandbox import RSeriesStore

        return RSeriesStore(path, token=token, **options)

    def connect_lines(self, store: RSeriesStore, /) -> list[str]:
        tokens = store.tokens
        # The sandbox's credentials are not secrets: printing them is how a newcomer connects.
        return [
            f"Account id: {store.account_id}; OAuth client {tokens.client_id} / "
            f"{tokens.client_secret}, refresh token {tokens.initial_refresh_token}",
        ]


SANDBOX: Sandbox[RSeriesStore] = RSeriesSandbox()
PROVIDER: Provider[RSeriesClient] = RSeries()
