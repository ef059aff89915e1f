"""The library's operations over values, for the CLI and for Python callers: what a command
does between parsing its options and rendering its result.

Picks the provider by the connection's platform (`reconciler.providers.get`), so the engine and
the planner stay platform-free: `apply_plan` compiles a plan through the provider and runs it
with the generic engine (`reconciler.apply.apply_compiled`); `build_plan` is the pipeline behind
`catalog plan` (load, refresh, plan, remember).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import subprocess
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler import diff, guardrails, incremental, live, ownership, planner, providers, staleness
from reconciler import plan as plan_module
from reconciler.apply import ApplyEvent, ApplyResult, apply_compiled
from reconciler.catalog import Report, load_report, parse_cache_path
from reconciler.catalog import code_fingerprint as catalog_code_fingerprint
from reconciler.errors import ConfigError, StalePlan
from reconciler.limits import Limits
from reconciler.live import Live
from reconciler.model import Catalog, Rule
from reconciler.plan import Kind, Plan
from reconciler.planner import FamilyMemo, ManagedIndex, Replay
from reconciler.providers.base import (
    Connection,
    Provider,
    RefreshMode,
    RefreshReport,
    Target,
    store_identity,
)
from reconciler.render import duration
from reconciler.staleness import Done
from reconciler.state import State
from reconciler.state.basis import Basis
from reconciler.state.cache import Cache
from reconciler.state.ledger import Ledger
from reconciler.state.lock import ApplyLock

# What the compile needs of the ledger: the objects this catalog manages, by kind.
COMPILE_KINDS = (Kind.PRODUCT, Kind.VARIANT, Kind.IMAGE)


def get_provider(name: str | None = None) -> Provider[Any]:
    """The provider registered as `name` ("xseries" when None)."""
    return providers.get(name)


def check_store(state: State, client: Connection, *, label: str) -> None:
    """Refuse (ConfigError, before anything is read or written) a state file whose ledger
    belongs to another store than the one `client` talks to (`label`): its managed keys, remote
    ids and intents mean nothing there, and prune would touch what this catalog never managed.
    An empty ledger, or one that never recorded its store (an older state file), never refuses.
    """
    ledger = Ledger(state)
    owner = ledger.store()
    if owner is None or owner[0] == store_identity(client) or not ledger.holds_anything():
        return
    owned = (
        f"an earlier store named {label} (recreated or reset since)"
        if owner[1] == label
        else f"store {owner[1]}"
    )
    raise ConfigError(
        f"State file {state.path} belongs to {owned}, not {label}, so its managed keys do not "
        "apply here: use one state file per store (set CATALOG_STATE or --state to another "
        "file), or, if that store was reset, move the old state file away; nothing was changed."
    )


def claim_store(state: State, client: Connection, *, label: str) -> None:
    """Record the store the ledger belongs to, before it first holds anything of it (the first
    apply or adoption, or an older state file's next apply); `check_store` has passed."""
    ledger = Ledger(state)
    identity = store_identity(client)
    if ledger.store() != (identity, label):
        ledger.record_store(identity, label)


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
    check_store(state, client, label=plan.store)
    claim_store(state, client, label=plan.store)
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


MANAGED_KINDS = tuple(str(k) for k in Kind)


def catalog_keys(
    platform: str, catalog: Catalog | None, products: Mapping[str, object]
) -> live.CatalogKeys | None:
    """What `catalog` and the ledger's managed `products` call the store's objects, for a
    platform without handles (`Limits.has_handles`); None for one with them, which keys its
    families itself (and so never parses the ledger's rows for it)."""
    if providers.get(platform).limits.has_handles:
        return None
    return live.CatalogKeys.of(catalog, products)


def read_live(client: Connection, state: State, catalog: Catalog | None) -> Live:
    """The cached store in the catalog's shape, keyed by what `catalog` and the ledger call
    its objects (`catalog_keys`). Every read of `Live` that a plan is compared with goes
    through here, so a saved plan is checked against the store keyed the way it was made."""
    keys = catalog_keys(client.platform, catalog, Ledger(state).managed(str(Kind.PRODUCT)))
    return client.live(Cache(state), keys=keys)


def make_plan(
    catalog: Catalog,
    live: Live,
    *,
    store: str,
    managed: ManagedIndex | None = None,
    platform: str | None = None,
    catalog_dir: Path | None = None,
    **options: Any,
) -> Plan:
    """Plan `catalog` against `live` and cost it, the one way costs are worked out: the planner
    says what changes (`reconciler.planner.make_plan`; `options` go to it), the provider's
    compile what each change costs and the estimate (`Compiled.charges`, `Plan.with_costs`)."""
    provider = providers.get(platform)
    draft = planner.make_plan(
        catalog, live, store=store, managed=managed, limits=provider.limits, **options
    )
    return dataclasses.replace(
        _costed(provider, draft, live, managed or {}, catalog_dir), provider=provider.name
    )


def _costed(
    provider: Provider[Any],
    plan: Plan,
    live: Live,
    managed: ManagedIndex,
    catalog_dir: Path | None,
) -> Plan:
    """`plan` with what each change costs and the estimate, from the provider's compile of it:
    the one cost model, for a new plan and for what is left of a saved one alike."""
    compiled = provider.compile(
        plan,
        live,
        {str(k): managed.get(str(k), {}) for k in COMPILE_KINDS},
        catalog_dir=catalog_dir,
    )
    estimate = provider.estimate(
        compiled,
        rate_limit=plan.estimate.rate_limit,
        window_seconds=plan.estimate.window_seconds,
    )
    return plan.with_costs(
        compiled.charges(), estimate, notes=compiled.notes, notices=tuple(compiled.notices)
    )


def remaining_plan(
    saved: Plan,
    done: Done,
    live: Live,
    *,
    managed: ManagedIndex,
    catalog_dir: Path | None = None,
) -> Plan:
    """What earlier runs of `saved` have not applied yet (`staleness.remaining`), costed by its
    provider's compile like any plan: the estimate is what apply will send."""
    left = staleness.remaining(saved, done)
    return _costed(providers.get(saved.provider), left, live, managed, catalog_dir)


STALE_SHOWN = 10  # reasons listed in a stale-plan message before "and N more"


def stale_message(source: Path, reasons: list[str]) -> str:
    """The one sentence refusing a stale saved plan."""
    shown = "; ".join(reasons[:STALE_SHOWN])
    more = len(reasons) - STALE_SHOWN
    tail = f"; and {more} more" if more > 0 else ""
    return (
        f"Plan {source} is stale: {shown}{tail}. Nothing was applied; run `catalog plan` "
        "again and apply the new plan."
    )


def record_refusal(state: State, plan: Plan, *, actor: str, host: str, reasons: list[str]) -> None:
    """A refused plan is a run too: the ledger says who tried what and why not."""
    ledger = Ledger(state)
    run = ledger.start_run(
        store=plan.store,
        plan_digest=plan.digest(),
        catalog_digest=plan.catalog_digest,
        git_commit=plan.git_commit,
        actor=actor,
        host=host,
    )
    ledger.finish_run(run, outcome="refused", counts={"reasons": reasons})


def check_saved_plan(
    saved: Plan,
    source: Path,
    client: Connection,
    state: State,
    *,
    target: Target,
    catalog: Catalog,
    actor: str,
    host: str,
    catalog_dir: Path | None = None,
    say: Callable[[str], None] = lambda _msg: None,
) -> tuple[Plan, Live]:
    """A saved plan checked against the store as it is now (through the change feed) and the
    catalog files: what is left of it to apply and the live store, or StalePlan naming what
    moved (the refusal recorded in the ledger)."""
    check_store(state, client, label=target.label)
    cache = Cache(state)
    ledger = Ledger(state)
    client.refresh(cache, facts_ttl=0)  # the tax mode decides which price field is written
    current = read_live(client, state, catalog)
    label = target.label
    reasons = [] if saved.store == label else [f"it was made for store {saved.store}, not {label}"]
    if saved.provider != target.platform:
        reasons.append(f"it was made for a {saved.provider} store, not {target.platform}")
    moved = guardrails.stale_reason(saved, catalog)
    if moved is not None:
        reasons.append(moved)
    done = ledger.applied_by_plan(saved.digest())
    reasons += staleness.stale_reasons(
        saved,
        current,
        catalog_digest=catalog.digest(),
        done=done,
        unsure=[(i.kind, i.key) for i in ledger.pending_intents()],
    )
    if reasons:
        record_refusal(state, saved, actor=actor, host=host, reasons=reasons)
        raise StalePlan(stale_message(source, reasons))
    if not done:
        return saved, current
    say(
        f"Resuming {source}: {len(done)} of its changes were applied by an earlier run; "
        "applying the rest."
    )
    managed: ManagedIndex = {kind: ledger.managed(kind) for kind in MANAGED_KINDS}
    return remaining_plan(saved, done, current, managed=managed, catalog_dir=catalog_dir), current


# Plans up to this size are remembered for an unchanged re-plan; bigger ones are recomputed
# (they are rare, and keeping them would bloat the state file).
MEMO_MAX_CHANGES = 5000


def _memo_key(**inputs: object) -> str:
    """Everything a plan depends on, hashed: the catalog, the cached store (its generation),
    the ledger, the options, and the planning code itself (so an upgrade never reuses a plan
    an older planner made)."""
    blob = json.dumps(
        {**inputs, "code": _code_digest(str(inputs.get("platform", providers.DEFAULT)))},
        sort_keys=True,
        default=list,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@functools.cache
def _code_digest(platform: str) -> str:
    """The planning code and the provider's (by name and code digest): a memo made by other
    code is never reused. Read once per process (every plan asks for it several times)."""
    code = hashlib.sha256(platform.encode() + b"\0")
    for module in (plan_module, planner, live, diff, guardrails, ownership):
        code.update(Path(str(module.__file__)).read_bytes())
    code.update(providers.code_digest(platform).encode())
    return code.hexdigest()


def family_memo_scope(catalog: Catalog, live_store: Live, **inputs: object) -> str:
    """What every family's remembered result shares (`reconciler.planner.FamilyMemo`): the
    code (planner and provider), the catalog's settings, the store's tax mode and names, and
    the options (`inputs`: platform, store, --target, --exclude, --adopt-images, ...). Any of
    these changing recomputes every family."""
    blob = repr(
        (
            _code_digest(str(inputs.get("platform", providers.DEFAULT))),
            catalog.settings,
            live_store.tax_exclusive,
            live_store.names,
            sorted((k, repr(v)) for k, v in inputs.items()),
        )
    )
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def git_commit(directory: Path, *, state_dir: Path | None = None) -> str | None:
    """The catalog's git commit (HEAD of the repository holding it), or None outside git.

    `<commit>-dirty` (as `git describe --dirty` says it) when files under the catalog
    directory differ from that commit or are not in it yet: the ledger then does not claim a
    commit that never held what was applied. The state directory, if inside, does not count.
    """
    head = _git(directory, "rev-parse", "--verify", "--quiet", "HEAD")
    if not head:
        return None
    pathspec = ["."]
    if state_dir is not None and state_dir.resolve().is_relative_to(directory.resolve()):
        pathspec.append(f":(exclude){state_dir.resolve().relative_to(directory.resolve())}")
    status = _git(directory, "status", "--porcelain", "--untracked-files=all", "--", *pathspec)
    return f"{head}-dirty" if status is None or status else head


def _git(directory: Path, *args: str) -> str | None:
    """A git command's trimmed output in `directory`; None if git failed or is missing."""
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def build_plan(
    *,
    catalog_dir: Path,
    state_path: Path,
    target: Target,
    say: Callable[[str], None],
    refresh_mode: RefreshMode = "auto",
    targets: tuple[str, ...] = (),
    excludes: tuple[str, ...] = (),
    adopt_images: bool = False,
    retailer_ttl: float | None = None,
    catalog: Catalog | None = None,
    allow: tuple[Rule, ...] = (),
) -> tuple[Plan, RefreshReport]:
    """The whole pipeline behind `catalog plan`, for the CLI and for `catalog apply`'s
    plan-then-apply: load the catalog, refresh the cache, plan. Progress goes to `say`.

    `retailer_ttl`: how old the cached retailer (its tax mode) may be; apply passes 0, so the
    price field it writes is never chosen from a tax mode the store has since switched.
    `catalog`: the catalog when the caller has loaded it already (apply checks it before it
    opens the state file)."""
    provider = providers.get(target.platform)
    limits = provider.limits
    # A plan of the whole catalog starts from the last one's basis when it can (issue 15,
    # `reconciler.incremental`); its catalog side is read before the store, so a catalog with a
    # problem is refused before any request, as when it is loaded in full.
    whole = not targets and not excludes and catalog is None
    basis_key = _memo_key(
        platform=target.platform,
        store=target.label,
        adopt_images=adopt_images,
        allow=[str(r) for r in allow],
        catalog_code=catalog_code_fingerprint(),
    )
    prepared: incremental.Prepared | None = None
    loaded: Loaded | None = None
    if whole and state_path.exists():
        with State(state_path) as state:
            prepared = incremental.prepare(
                state, directory=catalog_dir, key=basis_key, limits=limits
            )
    if catalog is None and prepared is None:
        loaded = _load(catalog_dir, state_path, limits)
        catalog = loaded.report.catalog
    with State(state_path) as state:
        cache = Cache(state)
        with provider.connect(target, say=say) as client:
            check_store(state, client, label=target.label)
            report = client.refresh(
                cache,
                mode=refresh_mode,
                facts_ttl=retailer_ttl,
                on_progress=say,
            )
        now = datetime.now(UTC)
        _say_refreshed(say, report, refresh_mode, now, label=target.label)
        facts = client.facts(cache)
        commit = git_commit(catalog_dir, state_dir=state_path.parent)
        options: dict[str, object] = {
            "platform": target.platform,
            "store": target.label,
            "targets": targets,
            "excludes": excludes,
            "adopt_images": adopt_images,
        }

        def plan_of(
            part: Catalog,
            live_part: Live,
            managed: ManagedIndex,
            images: Mapping[str, Mapping[str, str]],
            digest: str,
            memo: FamilyMemo,
            replay: Replay | None = None,
        ) -> Plan:
            return make_plan(
                part,
                live_part,
                platform=target.platform,
                catalog_dir=catalog_dir,
                store=target.label,
                managed=managed,
                images=images,
                adopt_images=adopt_images,
                targets=targets,
                excludes=excludes,
                rate_limit=facts.rate_limit,
                window_seconds=facts.window_seconds,
                git_commit=commit,
                created_at=now.isoformat(timespec="seconds"),
                catalog_digest=digest,
                allow=allow,
                memo=memo,
                replay=replay,
            )

        def make(
            part: Catalog, live_part: Live, replay: Replay, memo: FamilyMemo, digest: str
        ) -> Plan:
            # Only what the families planned again and the changes replayed need is read.
            handles = [p.handle for p in part.products]
            skus = {v.sku for p in part.products for v in p.sellables()}
            skus.update(sku for lp in live_part.products.values() for sku in lp.rows)
            managed = Ledger(state).managed_subset(
                MANAGED_KINDS, {str(Kind.PRODUCT): handles, str(Kind.VARIANT): skus}
            )
            images = cache.uploaded_images(handles)
            return plan_of(part, live_part, managed, images, digest, memo, replay)

        def stamp(kept: Plan) -> Plan | None:
            if (kept.estimate.rate_limit, kept.estimate.window_seconds) != (
                facts.rate_limit,
                facts.window_seconds,
            ):
                return None
            return dataclasses.replace(
                kept,
                provider=target.platform,
                git_commit=commit,
                created_at=now.isoformat(timespec="seconds"),
            )

        if prepared is not None:
            fast = incremental.finish(
                prepared,
                state,
                cache,
                client,
                incremental.Hooks(
                    make=make,
                    scope_of=lambda part, live_part: family_memo_scope(part, live_part, **options),
                    keep_plan=lambda p: len(p.all_changes()) <= MEMO_MAX_CHANGES,
                    stamp=stamp,
                ),
            )
            if fast is not None:
                say(fast.summary())
                return fast.plan, report
            loaded = _load(catalog_dir, state_path, limits)
            catalog = loaded.report.catalog
        assert catalog is not None
        records = incremental.Records.of(catalog)
        catalog_digest = records.digest()
        memo_key = _memo_key(
            platform=target.platform,
            catalog_digest=catalog_digest,
            generation=cache.generation(),
            ledger=cache.ledger_fingerprint(),
            store=target.label,
            rate_limit=facts.rate_limit,
            window_seconds=facts.window_seconds,
            targets=targets,
            excludes=excludes,
            adopt_images=adopt_images,
            allow=[str(r) for r in allow],
        )
        # A whole plan of a state file that has no basis yet is made in full, to make one.
        remembered = None if whole and not Basis(state).known() else cache.plan_memo(memo_key)
        if remembered is not None:
            # Nothing the planner reads has changed since this plan was made: it is the plan.
            plan = dataclasses.replace(
                Plan.from_json(remembered),
                provider=target.platform,
                git_commit=commit,
                created_at=now.isoformat(timespec="seconds"),
            )
            return plan, report
        mark = Basis(state).mark()  # before the store and the ledger are read
        ledger = Ledger(state)
        managed: ManagedIndex = ledger.managed_index(MANAGED_KINDS)
        live_store = client.live(
            cache, keys=catalog_keys(target.platform, catalog, managed[str(Kind.PRODUCT)])
        )
        memo = FamilyMemo(
            scope := family_memo_scope(catalog, live_store, **options),
            digests=records.digests(),
        )
        memo.known = cache.family_memo_known(scope)
        plan = plan_of(catalog, live_store, managed, cache.uploaded_images(), catalog_digest, memo)
        cache.remember_families(scope, memo.fresh, keep=memo.reused, known=memo.known)
        keep = len(plan.all_changes()) <= MEMO_MAX_CHANGES
        if keep:
            cache.remember_plan(memo_key, plan.to_json())
        if whole and loaded is not None:
            incremental.record_full(
                state,
                directory=catalog_dir,
                key=basis_key,
                memo=memo,
                file_stats=loaded.stats,
                report=loaded.report,
                records=records,
                live=live_store,
                plan=plan,
                mark=mark,
                keep_plan=keep,
            )
    return plan, report


@dataclasses.dataclass(frozen=True)
class Loaded:
    """A catalog loaded in full, with its files' stats taken before they were read."""

    report: Report
    stats: dict[str, incremental.Stat]


def _load(catalog_dir: Path, state_path: Path, limits: Limits) -> Loaded:
    file_stats = incremental.stats(catalog_dir, incremental.catalog_rels(catalog_dir))
    report = load_report(
        catalog_dir, cache_path=parse_cache_path(state_path), limits=limits, facts=True
    )
    return Loaded(report, file_stats)


def _say_refreshed(
    say: Callable[[str], None],
    report: RefreshReport,
    refresh_mode: RefreshMode,
    now: datetime,
    *,
    label: str,
) -> None:
    if refresh_mode == "off":
        age = report.age_seconds(now)
        say(
            f"Planning from the cache only (--refresh off): the store was last read "
            f"{duration(age or 0)} ago ({report.refreshed_at}); changes made since are "
            "not shown."
        )
        return
    changed = sum(k.received for k in report.kinds if k.mode == "changes")
    say(
        f"Read {label} in {report.requests} API requests"
        + (
            ""
            if report.full
            else f" ({changed} object{'' if changed == 1 else 's'} changed since the last plan)"
        )
        + "."
    )
