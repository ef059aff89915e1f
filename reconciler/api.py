"""The library's operations over values, for the CLI and for Python callers: what a command
does between parsing its options and rendering its result.

Picks the provider by the connection's platform (`reconciler.providers.get`), so the engine and
the planner stay platform-free: `apply_plan` compiles a plan through the provider and runs it
with the generic engine (`reconciler.apply.apply_compiled`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler import providers
from reconciler.apply import ApplyEvent, ApplyResult, apply_compiled
from reconciler.live import Live
from reconciler.plan import Kind, Plan
from reconciler.providers.base import Connection, Provider
from reconciler.state import State
from reconciler.state.ledger import Ledger
from reconciler.state.lock import ApplyLock

# What the compile needs of the ledger: the objects this catalog manages, by kind.
COMPILE_KINDS = (Kind.PRODUCT, Kind.VARIANT, Kind.IMAGE)


def get_provider(name: str | None = None) -> Provider[Any]:
    """The provider registered as `name` ("xseries" when None)."""
    return providers.get(name)


def apply_plan(
    plan: Plan,
    client: Connection,
    state: State,
    *,
    live: Live,
    on_event: Callable[[ApplyEvent], None] | None = None,
    parallelism: int | None = None,
    lock: ApplyLock | None = None,
    refresh_live: Callable[[], Live] | None = None,
    catalog_dir: Path | None = None,
    plan_digest: str | None = None,
    actor: str | None = None,
    host: str | None = None,
) -> ApplyResult:
    """Carry out `plan` against the store `client` talks to; record everything in `state`.

    `live` is the store as just refreshed (ids of names and rows the payloads reference).
    The caller holds `lock` (the apply lock); if it is lost mid-run, no further step starts.
    `refresh_live`, if given, re-reads the store after the last step, so the ledger records
    the versions the store gave each applied object and the next plan starts warm.
    `catalog_dir` is where image paths are read from. `plan_digest` is the digest the run is
    recorded under when `plan` is what is left of a saved plan (`remaining`): the saved one's.
    `parallelism` defaults to what the provider finds right for the plan's estimate.
    Returns the outcome per change; `outcome` is `partial` when any change failed or was
    skipped (the caller exits 1), and a rerun then does only what is left.
    """
    provider = providers.get(client.platform)
    ledger = Ledger(state)
    managed = {str(kind): ledger.managed(str(kind)) for kind in COMPILE_KINDS}
    compiled = provider.compile(plan, live, managed, catalog_dir=catalog_dir)
    return apply_compiled(
        plan,
        client,
        state,
        compiled=compiled,
        live=live,
        parallelism=parallelism or provider.parallelism(plan.estimate),
        on_event=on_event,
        lock=lock,
        refresh_live=refresh_live,
        plan_digest=plan_digest,
        actor=actor,
        host=host,
    )
