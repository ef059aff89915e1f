"""Apply a plan: exactly the plan's changes, crash-safe, concurrent (the generic engine).

The provider compiles the plan into *steps* (`reconciler.providers.base.Compiled`; X-Series:
`reconciler.providers.xseries.writes`), each one write request under its API's rules, so the
requests sent equal the plan's estimate (`Change.requests`), barring retries and lookups. This
module runs them, whatever the platform:

Steps depend on the steps that create what they reference (a family on its new brand, an added
variant on its family's renamed `common`); independent steps run concurrently on
`parallelism` threads sharing one client. A step starts only when the store's rate-limit window
has room for it: the client counts every request of the window, the refresh and look-ups as
much as the writes (its 429 waits stay the backstop). A step that
fails does not stop the others; the steps that depend on it are skipped and reported (but for
a step that waits only for its dependencies to end, `deps_may_fail`: it runs).

Crash safety (design invariant 6): before a create is sent, an intent row is written; after
the answer, it is finished. A create whose answer never came (timeout, dropped connection), or
whose intent a crashed run left pending, is looked up by SKU or name before anything is sent
again, and a 422 naming an `*_existing_id` is checked the same way. So a rerun after any crash
finishes the remaining work without a duplicate.

Every change ends in the ledger (applied, failed or skipped) and every applied one updates the
managed table with the values written, which is what drift detection reads. Only the thread
that called `apply_compiled` touches the state file; workers only talk to the store.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from reconciler.errors import (
    CatalogError,
    TransportError,
    Unconfirmed,
    redact,
)
from reconciler.live import Live
from reconciler.model import FORMAT_VERSION, Json
from reconciler.plan import Action, Change, FieldChange, Kind, Plan
from reconciler.providers.base import Compiled, Connection, Learned, Resolver, WriteCounter
from reconciler.providers.base import Step as EngineStep
from reconciler.staleness import live_object
from reconciler.state import State
from reconciler.state.ledger import Adoption, Ledger
from reconciler.state.lock import ApplyLock

# Adoptions recorded per transaction: large enough that a big store's adoption is a few
# statements, small enough that the lock's renewal thread waits milliseconds for the file.
ADOPT_BATCH = 2_000

C = TypeVar("C", bound=Connection)  # the provider's connection type


# -- values the caller sees ------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeOutcome:
    """What happened to one change of the plan."""

    kind: str
    key: str
    action: str
    outcome: str  # applied | failed | skipped
    fields: tuple[FieldChange, ...] = ()
    remote_id: str | None = None
    remote_version: str | None = None  # opaque: the provider's live version
    error: str | None = None

    def to_json(self) -> dict[str, Json]:
        return {
            "kind": self.kind,
            "key": self.key,
            "action": self.action,
            "outcome": self.outcome,
            "fields": [
                {"field": f.field, "before": f.before, "after": f.after} for f in self.fields
            ],
            "remote_id": self.remote_id,
            "remote_version": self.remote_version,
            "error": self.error,
        }


@dataclass(frozen=True)
class ApplyEvent:
    """Progress for the CLI to render and tests to collect.

    `type`: `start` (planned known), `progress` (a write finished), `change` (an outcome),
    `notice` (a remark), `finish`. Counts are cumulative.
    """

    type: str
    done: int = 0  # planned write requests finished (applied or failed)
    planned: int = 0
    rate_limited: int = 0  # 429 answers the client drew so far
    waited_seconds: float = 0.0  # time threads spent waiting for the rate limit or backoff
    change: ChangeOutcome | None = None
    message: str = ""


@dataclass(frozen=True)
class ApplyResult:
    run_id: int
    outcome: str  # applied | partial
    changes: tuple[ChangeOutcome, ...]
    planned_requests: int  # the plan's estimate
    step_requests: int  # the writes the rules call for (what the steps were built from)
    requests: int  # every HTTP request this apply sent (retries, lookups, refresh included)
    writes: int  # write requests sent (a create sent again after a lookup counts twice)
    rate_limited: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.outcome == "applied"

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {"applied": 0, "failed": 0, "skipped": 0}
        for c in self.changes:
            out[c.outcome] = out.get(c.outcome, 0) + 1
        return out

    def to_json(self) -> dict[str, Json]:
        return {
            "format_version": FORMAT_VERSION,
            "run_id": self.run_id,
            "outcome": self.outcome,
            "counts": self.counts(),
            "requests": {
                "planned": self.planned_requests,
                "writes": self.writes,
                "total": self.requests,
                "rate_limited": self.rate_limited,
            },
            "seconds": round(self.seconds, 2),
            "changes": [c.to_json() for c in self.changes],
        }


# -- running them -------------------------------------------------------------------------------


@dataclass
class _Done:
    learned: Learned | None = None
    error: str | None = None
    unknown: bool = False  # a create whose outcome is still unknown (intent stays pending)


def _execute(step: EngineStep[C], client: C, counter: WriteCounter) -> _Done:
    try:
        return _Done(learned=step.run(client, counter))
    except (TransportError, Unconfirmed) as exc:
        return _Done(error=str(exc), unknown=step.intent is not None)
    except CatalogError as exc:
        return _Done(error=str(exc))
    except Exception as exc:  # a bug must fail its step, not hang the apply
        return _Done(error=f"unexpected {type(exc).__name__}: {exc}")


class _Recorder:
    """Turns step results into ledger rows, managed values and events (caller's thread)."""

    def __init__(
        self,
        ledger: Ledger,
        run_id: int,
        live: Live,
        emit: Callable[[ApplyEvent], None],
        redact: Callable[[str], str] = redact,
    ) -> None:
        self.redact = redact
        self.ledger = ledger
        self.run_id = run_id
        self.live = live
        self.emit = emit
        self.outcomes: dict[int, ChangeOutcome] = {}  # id(change) -> outcome
        self.order: list[Change] = []
        self.rows: dict[int, int] = {}  # id(change) -> ledger change row id

    def record(
        self,
        change: Change,
        outcome: str,
        *,
        remote_id: str | None = None,
        error: str | None = None,
    ) -> None:
        if id(change) in self.outcomes:
            return
        # Errors quote the store, which may quote the token back: never stored nor shown.
        error = self.redact(error) if error is not None else None
        fields = change.fields if change.action is not Action.ADOPT else ()
        row = self.ledger.record_change(
            self.run_id,
            kind=str(change.kind),
            key=change.key,
            action=str(change.action),
            fields=[f.to_json() for f in fields],
            remote_id=remote_id or change.remote_id,
            outcome=outcome,
            error=error,
        )
        self.rows[id(change)] = row
        if outcome == "applied":
            self._managed(change, remote_id or change.remote_id)
        result = ChangeOutcome(
            kind=str(change.kind),
            key=change.key,
            action=str(change.action),
            outcome=outcome,
            fields=fields,
            remote_id=remote_id or change.remote_id,
            error=error,
        )
        self.outcomes[id(change)] = result
        self.order.append(change)
        self.emit(ApplyEvent("change", change=result))

    def adopt(self, changes: Iterable[Change]) -> None:
        """Adoptions (no request made): recorded like `record(change, "applied")`, but in
        batches of one transaction each, so adopting a large store costs a few statements
        and the lock's renewal thread never waits long for the file."""
        fresh: dict[int, Change] = {}
        for change in changes:
            if id(change) not in self.outcomes:
                fresh.setdefault(id(change), change)
        todo = list(fresh.values())
        for start in range(0, len(todo), ADOPT_BATCH):
            batch = todo[start : start + ADOPT_BATCH]
            rows = self.ledger.record_adoptions(
                self.run_id,
                [
                    Adoption(
                        kind=str(c.kind),
                        key=c.key,
                        remote_id=c.remote_id,
                        applied=self._applied(c),
                        manage=c.kind is not Kind.IMAGE,  # images: by content (`on_applied`)
                    )
                    for c in batch
                ],
            )
            for change, row in zip(batch, rows, strict=True):
                self.rows[id(change)] = row
                result = ChangeOutcome(
                    kind=str(change.kind),
                    key=change.key,
                    action=str(change.action),
                    outcome="applied",
                    remote_id=change.remote_id,
                )
                self.outcomes[id(change)] = result
                self.order.append(change)
                self.emit(ApplyEvent("change", change=result))

    def _applied(self, change: Change) -> dict[str, Json]:
        """The values a change leaves applied, as the managed table keeps them."""
        applied: dict[str, Json] = {f.field: f.after for f in change.fields}
        if change.kind is Kind.PRODUCT and "sku" not in applied:
            found = self.live.products.get(change.key)
            if found is not None and not found.is_family and found.product.sku:
                # `catalog history SKU` finds a simple product through its recorded SKU.
                applied["sku"] = found.product.sku
        return applied

    def _managed(self, change: Change, remote_id: str | None) -> None:
        if change.kind is Kind.IMAGE:  # images are remembered by content (`on_applied`)
            return
        kind, key = str(change.kind), change.key
        if change.action is Action.DELETE:
            self.ledger.forget_managed(kind, key)
            if change.kind is Kind.PRODUCT:
                found = self.live.products.get(key)
                for sku in found.rows if found else ():
                    self.ledger.forget_managed(str(Kind.VARIANT), sku)
            return
        self.ledger.record_managed(
            kind,
            key,
            remote_id=remote_id,
            applied=self._applied(change),
            run_id=self.run_id,
            replace=change.action in (Action.CREATE, Action.ADOPT),
        )


def _record_adopted_image(
    ledger: Ledger, change: Change, family: Change | None, live: Live
) -> None:
    """An image adopted from the store (`--adopt-images`): recorded as the upload of its
    catalog file, so later plans judge it by content like any image apply uploaded."""
    values = {f.field: f.after for f in change.fields}
    found = live.products.get(family.key) if family is not None else None
    if family is None or change.remote_id is None or not values.get("sha256"):
        return
    product_id = family.remote_id or (found.remote_id if found is not None else None)
    if product_id is None:
        return
    position = values.get("position")
    ledger.record_image(
        handle=family.key,
        path=change.key,
        sha256=str(values["sha256"]),
        image_id=change.remote_id,
        product_id=str(product_id),
        position=int(position) if isinstance(position, int) else None,
    )


def apply_compiled(
    plan: Plan,
    client: C,
    state: State,
    *,
    compiled: Compiled[C],
    live: Live,
    parallelism: int,
    on_event: Callable[[ApplyEvent], None] | None = None,
    lock: ApplyLock | None = None,
    refresh_live: Callable[[], Live] | None = None,
    plan_digest: str | None = None,
    actor: str | None = None,
    host: str | None = None,
) -> ApplyResult:
    """Carry out `plan`, compiled by its provider into `compiled`, against the store `client`
    talks to; record everything in `state` (`reconciler.api.apply_plan` compiles and calls this).

    `live` is the store as just refreshed (ids of names and rows the payloads reference).
    The caller holds `lock` (the apply lock); if it is lost mid-run, no further step starts.
    `refresh_live`, if given, re-reads the store after the last step, so the ledger records
    the versions the store gave each applied object and the next plan starts warm; a plan
    with nothing to send (an adoption) records the versions `live` holds instead.
    `plan_digest` is the digest the run is
    recorded under when `plan` is what is left of a saved plan (`remaining`): the saved one's.
    Returns the outcome per change; `outcome` is `partial` when any change failed or was
    skipped (the caller exits 1), and a rerun then does only what is left.
    """
    emit = on_event or (lambda _event: None)
    started = time.monotonic()
    stats_before = client.stats()
    ledger = Ledger(state)
    steps, adopted, refused = compiled.steps, compiled.adopted, compiled.refused
    groups = compiled.groups
    step_requests = sum(s.requests for s in steps)
    planned = plan.estimate.requests
    run_id = ledger.start_run(
        store=plan.store,
        plan_digest=plan_digest or plan.digest(),
        catalog_digest=plan.catalog_digest,
        git_commit=plan.git_commit,
        actor=actor,
        host=host,
    )
    recorder = _Recorder(ledger, run_id, live, emit, client.redact)
    counter = WriteCounter()
    outcome = "failed"
    try:
        emit(ApplyEvent("start", planned=step_requests))
        if step_requests != planned:
            emit(
                ApplyEvent(
                    "notice",
                    message=f"The plan estimated {planned} requests; its changes need "
                    f"{step_requests} under the API's rules.",
                )
            )
        parents = {
            id(child): top for top in plan.changes for child in top.children
        }  # an adopted image's family
        recorder.adopt(adopted)
        for change in adopted:
            if change.kind is Kind.IMAGE:
                _record_adopted_image(ledger, change, parents.get(id(change)), live)
        for change, reason in refused:
            recorder.record(change, "failed", error=f"refused: {reason}")
        _mark_lookups(steps, ledger)
        # The connection meters every request against the store's window (`rate_delay`);
        # while apply starts its steps by that, it spaces out nothing else.
        with client.metered():
            _run_steps(
                steps,
                client,
                recorder,
                ledger,
                compiled.resolver,
                counter=counter,
                parallelism=parallelism,
                lock=lock,
                planned=step_requests,
            )
        for group in groups:
            kids = [recorder.outcomes.get(id(c)) for c in group.children]
            ok = all(k is not None and k.outcome == "applied" for k in kids)
            recorder.record(
                group,
                "applied" if ok else "failed",
                error=None if ok else "some of its variants were not changed",
            )
        _close_stale_intents(ledger, steps)
        if not steps:
            # Nothing was sent (an adoption, say): the store is as `live` read it just now,
            # so reading it back (60,000 rows for a large store) would learn nothing new.
            _record_versions(live, recorder, ledger)
        elif refresh_live is not None:
            try:
                _record_versions(refresh_live(), recorder, ledger)
            except CatalogError as exc:
                # The writes are done and recorded; only the versions they got are missing.
                emit(ApplyEvent("notice", message=f"Could not read the store back: {exc}"))
        changes = tuple(recorder.outcomes[id(c)] for c in recorder.order)
        outcome = "applied" if all(c.outcome == "applied" for c in changes) else "partial"
    finally:
        stats = client.stats()
        result = ApplyResult(
            run_id=run_id,
            outcome=outcome,
            changes=tuple(recorder.outcomes[id(c)] for c in recorder.order),
            planned_requests=planned,
            step_requests=step_requests,
            requests=stats.requests - stats_before.requests,
            writes=counter.value,
            rate_limited=stats.rate_limited - stats_before.rate_limited,
            seconds=time.monotonic() - started,
        )
        counts: dict[str, Json] = dict(result.counts())
        counts.update(
            planned_requests=planned,
            writes=result.writes,
            requests=result.requests,
            rate_limited=result.rate_limited,
        )
        ledger.finish_run(run_id, outcome=outcome, counts=counts)
    emit(ApplyEvent("finish", done=counter.value, planned=step_requests, message=outcome))
    return result


def _mark_lookups(steps: Sequence[EngineStep[Any]], ledger: Ledger) -> None:
    """Creates a crashed run left unfinished are looked up before they are sent again."""
    pending = {(i.kind, i.key) for i in ledger.pending_intents()}
    for step in steps:
        if step.intent is not None and step.intent in pending:
            step.lookup_first = True


def _close_stale_intents(ledger: Ledger, steps: Sequence[EngineStep[Any]]) -> None:
    """Pending intents this plan no longer creates: the refresh it was made from saw the
    store's truth (the object exists and is updated or adopted instead), so close them."""
    creating = {s.intent for s in steps if s.intent is not None}
    for intent in ledger.pending_intents():
        if (intent.kind, intent.key) not in creating:
            ledger.resolve_intents(intent.kind, intent.key, outcome="superseded", remote_id=None)


def _run_steps(
    steps: Sequence[EngineStep[C]],
    client: C,
    recorder: _Recorder,
    ledger: Ledger,
    resolver: Resolver,
    *,
    counter: WriteCounter,
    parallelism: int,
    lock: ApplyLock | None,
    planned: int,
) -> None:
    by_id = {s.id: s for s in steps}
    waiting = {s.id: len(s.deps) for s in steps}
    dependants: dict[int, list[int]] = {s.id: [] for s in steps}
    for s in steps:
        for d in s.deps:
            dependants[d].append(s.id)
    ready = [s.id for s in steps if not s.deps]
    heapq.heapify(ready)  # plan order among the ready ones
    running: dict[Future[_Done], tuple[EngineStep[C], int | None]] = {}
    done_requests = 0

    def progress() -> None:
        stats = client.stats()
        recorder.emit(
            ApplyEvent(
                "progress",
                done=done_requests,
                planned=planned,
                rate_limited=stats.rate_limited,
                waited_seconds=stats.waited_seconds,
            )
        )

    def release(sid: int) -> None:
        # One of its dependencies ended: it is ready when the last one has.
        if sid in waiting:
            waiting[sid] -= 1
            if waiting[sid] == 0:
                heapq.heappush(ready, sid)

    def skip(step_id: int, reason: str) -> None:
        # Dependants of a failed step are skipped, transitively, with the reason; one that
        # only waits for its dependencies to end (`deps_may_fail`) still runs.
        stack = list(dependants[step_id])
        while stack:
            sid = stack.pop()
            if sid not in waiting:
                continue
            if by_id[sid].deps_may_fail:
                release(sid)
                continue
            del waiting[sid]
            for change in by_id[sid].changes:
                recorder.record(change, "skipped", error=reason)
            stack.extend(dependants[sid])

    def finish(step: EngineStep[C], result: _Done, intent_id: int | None) -> None:
        nonlocal done_requests
        done_requests += step.requests
        # The intent's outcome and the change rows commit together: a kill between them
        # would leave an object that no record calls ours (neither pending nor applied).
        with ledger.transaction():
            if result.error is None:
                learned = result.learned or {}
                resolver.learn(learned)
                if intent_id is not None:
                    ledger.finish_intent(intent_id, outcome="done", remote_id=_first(learned))
                if step.intent is not None:
                    # Earlier runs' intents for the same object are answered too.
                    kind, key = step.intent
                    ledger.resolve_intents(kind, key, outcome="done", remote_id=_first(learned))
                step.on_applied(ledger, learned)
                for change in step.changes:
                    recorder.record(
                        change, "applied", remote_id=learned.get((str(change.kind), change.key))
                    )
                for sid in dependants[step.id]:
                    release(sid)
            else:
                if intent_id is not None and not result.unknown:
                    ledger.finish_intent(intent_id, outcome="failed")
                for change in step.changes:
                    recorder.record(change, "failed", error=result.error)
                skip(step.id, f"skipped: it needs {step.label}, which failed")
        progress()

    stopped: str | None = None
    with ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="apply") as pool:
        try:
            while ready or running:
                if lock is not None and lock.lost and stopped is None:
                    stopped = "the apply lock was lost (another apply took it over)"
                pause = 0.0
                while ready and len(running) < parallelism and stopped is None:
                    # Start a step only when the store's window has room for its request
                    # (the client counts every request: refresh, look-ups, writes).
                    pause = client.rate_delay()
                    if pause > 0:
                        break
                    step = by_id[heapq.heappop(ready)]
                    del waiting[step.id]
                    try:
                        step.prepare(resolver)
                    except CatalogError as exc:
                        finish(step, _Done(error=str(exc)), None)
                        continue
                    step.before_send(ledger)
                    intent_id = None
                    if step.intent is not None:
                        kind, key = step.intent
                        intent_id = ledger.begin_intent(
                            run_id=recorder.run_id, kind=kind, key=key, payload_digest=step.digest()
                        )
                    running[pool.submit(_execute, step, client, counter)] = (step, intent_id)
                if not running:
                    if pause > 0 and ready:
                        time.sleep(pause)
                        continue
                    break
                # Wake for a finished write, or when the window lets the next one start.
                finished, _ = wait(
                    running, timeout=pause if pause > 0 else None, return_when=FIRST_COMPLETED
                )
                for future in finished:
                    step, intent_id = running.pop(future)
                    finish(step, future.result(), intent_id)
        except BaseException:
            # Ctrl-C or a crash of this thread: let in-flight requests end and record them,
            # so the ledger says what was sent; pending intents cover the rest.
            stopped = stopped or "interrupted"
            for future in list(running):
                step, intent_id = running.pop(future)
                finish(step, future.result(), intent_id)
            raise
        finally:
            leftover = sorted(waiting)
            for sid in leftover:
                for change in by_id[sid].changes:
                    recorder.record(change, "skipped", error=f"skipped: {stopped or 'not run'}")


def _first(learned: Learned) -> str | None:
    return next(iter(learned.values()), None)


def _record_versions(live: Live, recorder: _Recorder, ledger: Ledger) -> None:
    """After a refresh: the version (and id) the store gave each applied object."""
    found_rows: list[tuple[int, str | None, str | None]] = []
    for change in recorder.order:
        outcome = recorder.outcomes[id(change)]
        if outcome.outcome != "applied" or change.action is Action.DELETE:
            continue
        found = live_object(live, change.kind, change.key)
        if found is None:
            continue
        remote_id, version = found
        found_rows.append((recorder.rows[id(change)], remote_id, version))
        recorder.outcomes[id(change)] = ChangeOutcome(
            **{**outcome.__dict__, "remote_id": remote_id, "remote_version": version}
        )
        if remote_id and remote_id != outcome.remote_id:
            ledger.record_managed(
                str(change.kind), change.key, remote_id=remote_id, applied={}, run_id=None
            )
    # One transaction for them all: a 10,000-family adoption reads back 60,000 rows.
    ledger.set_change_remotes(found_rows)


__all__ = ["ApplyEvent", "ApplyResult", "ChangeOutcome", "apply_compiled"]
