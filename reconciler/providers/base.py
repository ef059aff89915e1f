"""The provider interface: everything the core asks of a Lightspeed platform, as typed Protocols.

The flow is one way: files -> catalog -> diff -> plan -> compile -> render | run. The core (model,
rules, catalog, diff, live, planner, plan, render, staleness, the apply engine, state) imports
nothing from `reconciler.providers`; the shell (`reconciler.api`, `reconciler.cli`) picks a provider
by name through `reconciler.providers.get` and hands it values. A provider package imports the
core, this module and the shared edges (`providers.http`, `providers.asgi`), never another provider.

What a provider gives back, and what stays the same across platforms:
- `target`: which store, from the environment (the only place a provider reads it);
- `limits`: what the platform can hold (validate and plan read them as a value);
- `connect`: an open store that refreshes the cache through its change feed and returns the live
  view in the catalog's own shape (`reconciler.live.Live`);
- `compile`: a pure translation of a plan into steps, each with the changes it carries, its
  dependencies, its cost, its create intent, how to send it and how to look it up after a lost
  answer; `estimate`: the cost of those steps in the provider's units under its pacing model;
- the pacing apply's scheduler waits on (`Connection.rate_delay`), the export reader, the
  sandbox store.
Versions and cursors are opaque strings (X-Series: "105"; R-Series: "2024-05-01T10:00:00+00:00"):
the core only ever compares them for equality.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, Self, TypeVar

from reconciler.limits import Limits as Limits  # a core value: validate and plan read it
from reconciler.live import CatalogKeys, Live
from reconciler.plan import Change, Estimate, Plan
from reconciler.state.cache import Cache
from reconciler.state.ledger import Ledger

if TYPE_CHECKING:
    from reconciler.csvexport import ExportTable
    from reconciler.importer import ImportResult
    from reconciler.providers.asgi import ServedStore

RefreshMode = Literal["auto", "full", "off"]
Learned = dict[tuple[str, str], str]  # (kind, key) -> remote id a step made or found
ManagedIndex = Mapping[str, Mapping[str, object]]  # kind -> key -> ledger row (`Managed`)

C = TypeVar("C")  # a provider's connection type (X-Series: `Client`)
C_contra = TypeVar("C_contra", contravariant=True)
S = TypeVar("S")  # a provider's sandbox store type (X-Series: `SandboxStore`)
Served = TypeVar("Served", bound="ServedStore")  # a sandbox store that serves its own ASGI app


# -- values ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KindRefresh:
    kind: str  # the provider's own object kind ("product", "Item", ...)
    mode: str  # full | changes | cached
    received: int  # objects the store sent
    total: int  # live objects of this kind in the cache afterwards


@dataclass(frozen=True)
class RefreshReport:
    """What a refresh did and cost (requests, and the objects each kind brought)."""

    mode: RefreshMode
    kinds: tuple[KindRefresh, ...]
    requests: int
    refreshed_at: str | None  # oldest refresh time among the kinds (what `off` plans from)
    store_changed: bool = False  # the cache belonged to another store and was dropped
    full: bool = False  # the product feed was read whole (first plan, or --refresh full)

    def age_seconds(self, now: datetime) -> float | None:
        if self.refreshed_at is None:
            return None
        return max(0.0, (now - datetime.fromisoformat(self.refreshed_at)).total_seconds())


class Resolver(Protocol):
    """A compile's id resolver: steps read the remote ids their payloads reference from it in
    `prepare`, and the engine teaches it what each finished step created or found."""

    def learn(self, learned: Learned, /) -> None: ...


class _NoIds:
    def learn(self, learned: Learned, /) -> None:
        return None


@dataclass
class Compiled(Generic[C]):
    """A plan compiled into one provider's steps (pure: made from values, sends nothing).

    `adopted` changes are recorded with no request, `refused` ones fail with the reason (prune
    of something this catalog does not manage), `groups` are changes whose outcome is their
    children's. `resolver` is handed to every step's `prepare` and learns what finished steps
    created, so the payloads prepared after them can reference it.
    """

    steps: Sequence[Step[C]]
    adopted: list[Change] = field(default_factory=list)
    refused: list[tuple[Change, str]] = field(default_factory=list)
    groups: list[Change] = field(default_factory=list)
    resolver: Resolver = field(default_factory=_NoIds)
    # id(plan change) -> what the plan must say beside it (R-Series: archiving zeroes stock),
    # and remarks for the whole plan; `Plan.with_costs` writes both in.
    notes: dict[int, str] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        """What the steps send when all goes well: the plan's cost in requests."""
        return sum(s.requests for s in self.steps)

    def charges(self) -> dict[int, int]:
        """id(plan change) -> the requests its steps send: what `Plan.with_costs` writes into
        `Change.requests` (the planner counts none). A step pays on its `payer`, else on the
        first change it carries."""
        out: dict[int, int] = {}
        for step in self.steps:
            payer = step.payer if step.payer is not None else step.changes[0]
            out[id(payer)] = out.get(id(payer), 0) + step.requests
        return out


# -- the parts a provider hands the core ---------------------------------------------------------


class Target(Protocol):
    """Which store the commands talk to. Holds its secrets, but never shows them: `label` is
    what plans, the ledger and messages name; `repr` must not contain a token."""

    @property
    def platform(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def sandbox_db(self) -> Path | None: ...  # the embedded sandbox's file, when embedded


class StoreFacts(Protocol):
    """What the refresh learned about the store beyond its objects (cached with them)."""

    @property
    def tax_exclusive(self) -> bool: ...

    @property
    def rate_limit(self) -> int: ...  # requests per window the planner's estimate assumes

    @property
    def window_seconds(self) -> float: ...  # that window (a leaky bucket: size / drip rate)


class WriteCounter:
    """Write requests sent by steps, counted by the worker threads that send them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


class Step(Protocol[C_contra]):
    """One write request and the plan changes it carries out.

    The engine calls, on its own thread, `prepare` (build the payload once every dependency is
    done, from the compile's id resolver) and `before_send` (record what a lost answer must not
    make forgotten); on a worker, `run` (send it; a create with an `intent` looks the object up
    instead of re-sending blindly after a lost answer, and first when `lookup_first`); back on
    its own thread `on_applied`. `digest` is the payload's sha256 (the intent row keeps it).
    A step whose `deps_may_fail` waits for its dependencies to end, not to succeed: it runs
    when they failed too (a check after a batch of creates, for whichever of them were made).
    """

    id: int
    label: str
    changes: list[Change]
    deps: set[int]
    deps_may_fail: bool
    requests: int  # HTTP requests it sends when all goes well (its cost)
    intent: tuple[str, str] | None  # (kind, key) of the object it creates
    lookup_first: bool
    payer: Change | None  # the plan change its requests are counted on (None: changes[0])

    def prepare(self, resolver: Any, /) -> None: ...

    def before_send(self, ledger: Ledger, /) -> None: ...

    def run(self, conn: C_contra, counter: WriteCounter, /) -> Learned: ...

    def on_applied(self, ledger: Ledger, learned: Learned, /) -> None: ...

    def digest(self) -> str: ...


class ConnectionStats(Protocol):
    @property
    def requests(self) -> int: ...

    @property
    def rate_limited(self) -> int: ...

    @property
    def waited_seconds(self) -> float: ...


class Connection(Protocol):
    """An open store: one per command, shared by apply's threads (thread-safe)."""

    @property
    def platform(self) -> str: ...

    @property
    def identity(self) -> str: ...  # the store, for `store_identity` (never the token)

    def refresh(
        self,
        cache: Cache,
        *,
        mode: RefreshMode = ...,
        facts_ttl: float | None = ...,
        on_progress: Callable[[str], None] | None = ...,
    ) -> RefreshReport: ...

    # `keys`: what the catalog and the ledger call the store's objects; a platform without
    # handles keys families by them (R-Series), one with handles ignores them (X-Series).
    def live(self, cache: Cache, /, *, keys: CatalogKeys | None = ...) -> Live: ...

    # What an incremental plan reads (`reconciler.incremental`; None: this platform plans in
    # full). `families_of`: the family (handle) each of these cached objects of `kind` now
    # belongs to, deleted ones included; None when objects of that kind are not a family's
    # rows (a brand, a category: every plan reads those whole). `live_of`: `live` as it would
    # be of a store holding only these cached rows (and every name, and the facts).
    def families_of(
        self, cache: Cache, kind: str, ids: Collection[str], /
    ) -> Mapping[str, str] | None: ...

    def live_of(self, cache: Cache, ids: Collection[str], /) -> Live | None: ...

    def facts(self, cache: Cache, /) -> StoreFacts: ...

    def stats(self) -> ConnectionStats: ...

    def rate_delay(self) -> float: ...  # seconds until the store's window has room (0: now)

    def metered(self) -> AbstractContextManager[None]: ...  # apply paces by `rate_delay`

    def redact(self, text: str, /) -> str: ...  # `text` without the token or its echoes

    def image_url(self, image_id: str, /) -> tuple[str | None, str]: ...  # (url or None, status)

    def download(self, url: str, /) -> bytes: ...  # sent without the token

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


def store_identity(client: Connection) -> str:
    """The store `client` talks to, qualified by its platform (`xseries:https://...`): what the
    cache and the ledger are bound to. Never holds the token."""
    return f"{client.platform}:{client.identity}"


class ExportReader(Protocol):
    """The platform's own product export -> a catalog, each problem named by its line (the
    file itself is read by `reconciler.csvexport`, whatever the platform)."""

    @property
    def columns_read(self) -> Mapping[str, str]: ...  # column -> what it becomes

    @property
    def columns_ignored(self) -> Mapping[str, str]: ...  # column -> why not

    @property
    def tax_modes(self) -> Sequence[str]: ...  # the values `--tax-mode` takes

    def read(self, table: ExportTable, /, *, tax_mode: str | None = ...) -> ImportResult: ...


class Sandbox(Protocol[S]):
    """The platform's sandbox store: the test double, the embedded default, `sandbox serve`."""

    @property
    def title(self) -> str: ...  # "X-Series", as `catalog sandbox serve` announces it

    @property
    def default_db(self) -> Path: ...  # where `catalog sandbox serve` keeps its data

    def check_rate_limit(self, value: str, /) -> None: ...  # ValueError naming the forms

    def open(self, path: str | Path, *, token: str, **options: Any) -> S: ...

    def connect_lines(self, store: S, /) -> list[str]: ...  # beyond the token, to connect

    def transport(self, store: S, /) -> Any: ...  # an httpx.BaseTransport (httpx stays at the edge)

    def serve_in_thread(
        self, store: S, host: str = ..., port: int = ...
    ) -> AbstractContextManager[str]: ...

    def serve_forever(
        self, store: S, *, host: str, port: int, on_start: Callable[[str], None]
    ) -> None: ...


class ServedSandbox(Generic[Served]):
    """What every sandbox store shares: served in process through `providers.asgi` (its
    transport, a thread for tests, the foreground for `catalog sandbox serve`). A platform's
    sandbox subclasses it and adds its title, store type and rate-limit forms. The ASGI edge is
    imported only when a store is served."""

    def connect_lines(self, store: Served, /) -> list[str]:
        return []

    def transport(self, store: Served, /) -> Any:
        from reconciler.providers.asgi import SandboxTransport

        return SandboxTransport(store)

    def serve_in_thread(
        self, store: Served, host: str = "127.0.0.1", port: int = 0
    ) -> AbstractContextManager[str]:
        from reconciler.providers.asgi import serve_in_thread

        return serve_in_thread(store, host, port)

    def serve_forever(
        self, store: Served, *, host: str, port: int, on_start: Callable[[str], None]
    ) -> None:
        from reconciler.providers.asgi import serve_forever

        serve_forever(store, host=host, port=port, on_start=on_start)


class Provider(Protocol[C]):
    """One Lightspeed platform. Registered once in `reconciler.providers.REGISTRY`."""

    @property
    def name(self) -> str: ...  # registry key and `LIGHTSPEED_PLATFORM` value: "xseries"

    @property
    def title(self) -> str: ...  # "Lightspeed Retail X-Series"

    @property
    def limits(self) -> Limits: ...

    def target(self, environ: Mapping[str, str], *, sandbox_db: Path) -> Target: ...

    def connect(
        self, target: Target, *, say: Callable[[str], None] | None = ..., **options: Any
    ) -> C: ...

    def compile(
        self,
        plan: Plan,
        live: Live,
        managed: ManagedIndex,
        *,
        catalog_dir: Path | None = ...,
    ) -> Compiled[C]: ...

    def estimate(
        self, compiled: Compiled[C], *, rate_limit: int, window_seconds: float
    ) -> Estimate: ...

    def parallelism(self, estimate: Estimate) -> int: ...

    def export_reader(self) -> ExportReader: ...

    def sandbox(self) -> Sandbox[Any]: ...
