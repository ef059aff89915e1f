"""`catalog apply [PLAN_FILE]`: make exactly the planned changes, locked, with progress.

With PLAN_FILE (from `catalog plan --out`): refresh through the change feed and apply that plan,
or refuse it (exit 1, nothing applied) when the catalog or any object it touches has changed
since. Without: plan, show the plan, ask on a terminal (never without one: `--auto-approve`
is required there), apply. Either way the store's apply lock is held throughout, so the refresh
the plan is checked against is still true when the writes go out.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from reconciler import guardrails
from reconciler.api import apply_plan, check_saved_plan, read_live, record_refusal
from reconciler.apply import ApplyEvent, ApplyResult
from reconciler.catalog import load_catalog, parse_cache_path
from reconciler.cli.common import Context, connect, format_option, stderr_console
from reconciler.cli.plan import ADOPT_IMAGES, ALLOW, allow_rules, build_plan
from reconciler.errors import ApplyFailed, CatalogError, GuardrailBroken
from reconciler.live import Live
from reconciler.model import FORMAT_VERSION, Catalog
from reconciler.plan import Plan
from reconciler.planfile import read_plan
from reconciler.providers.base import Connection
from reconciler.render import duration, render_text
from reconciler.state import State
from reconciler.state.cache import Cache
from reconciler.state.lock import ApplyLock, Holder, current_user


def actor(environ: Mapping[str, str]) -> str:
    """Who applies, for the ledger and the lock: the CI actor, else the local user."""
    return environ.get("GITHUB_ACTOR") or current_user()


class ProgressView:
    """Apply events on stderr: a rich bar on a terminal, a line per tenth elsewhere (CI logs)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("Applying"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} requests"),
            TextColumn("{task.fields[waits]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not self.live,
        )
        self.task: TaskID | None = None
        self.next_line = 0.0

    def __enter__(self) -> ProgressView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def __call__(self, event: ApplyEvent) -> None:
        if event.type == "start":
            self.task = self.progress.add_task("apply", total=event.planned, waits="")
            self.next_line = event.planned / 10
        elif event.type == "notice":
            self.console.print(event.message, markup=False, highlight=False)
        elif event.type == "progress" and self.task is not None:
            waits = (
                f"rate limit: {event.rate_limited} x 429, waited {event.waited_seconds:.0f} s"
                if event.rate_limited or event.waited_seconds >= 1
                else ""
            )
            self.progress.update(self.task, completed=event.done, waits=waits)
            if not self.live and event.planned and event.done >= self.next_line:
                self.console.print(
                    f"Applied {event.done}/{event.planned} requests. {waits}".rstrip(),
                    markup=False,
                    highlight=False,
                )
                self.next_line = event.done + event.planned / 10
        elif event.type == "change" and event.change is not None:
            change = event.change
            if change.outcome != "applied":
                self.console.print(
                    f"{change.outcome}: {change.action} {change.kind} {change.key}: {change.error}",
                    markup=False,
                    highlight=False,
                )


def summary_text(result: ApplyResult) -> str:
    counts = result.counts()
    head = (
        f"Applied {counts['applied']} change{'s' if counts['applied'] != 1 else ''} with "
        f"{result.writes} write request{'s' if result.writes != 1 else ''} "
        f"(plan estimate {result.planned_requests}; {result.requests} requests in all, "
        f"{result.rate_limited} rate-limited) in {duration(result.seconds)}."
    )
    if result.ok:
        return head + "\n"
    lines = [head, f"{counts['failed']} failed and {counts['skipped']} skipped:"]
    for c in result.changes:
        if c.outcome != "applied":
            lines.append(f"  {c.outcome}: {c.action} {c.kind} {c.key}: {c.error}")
    return "\n".join(lines) + "\n"


def _refresher(client: Connection, state: State, catalog: Catalog) -> Callable[[], Live]:
    def again() -> Live:
        client.refresh(Cache(state))
        return read_live(client, state, catalog)

    return again


@click.command("apply")
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--auto-approve",
    is_flag=True,
    help="Apply without asking (required when there is no terminal to ask on).",
)
@click.option(
    "--parallelism",
    type=click.IntRange(min=1, max=64),
    help="Requests in flight at once (default: from the store's rate limit); the rate limit "
    "is kept whatever this is.",
)
@format_option(
    "text", "json", help="json prints one document with every change's outcome on stdout."
)
@ADOPT_IMAGES
@ALLOW
@click.pass_obj
def apply(
    ctx: Context,
    plan_file: Path | None,
    auto_approve: bool,
    parallelism: int | None,
    fmt: str,
    adopt_images: bool,
    allow: tuple[str, ...],
) -> int:
    """Make the planned changes in the store, with the fewest requests, and record them.

    PLAN_FILE is a plan saved by `catalog plan --out`: exactly that plan is applied, or it is
    refused (exit 1, nothing changed) if the catalog or any object it touches changed since.
    Without PLAN_FILE the plan is made now, shown, and applied once confirmed. One apply runs
    per store at a time; a rerun after a failure or crash finishes the rest without
    duplicating anything. A plan that breaks a guardrail (settings.guardrails) is refused,
    nothing written, unless the product's allow: in the catalog or --allow RULE allows it.
    Exits 0 when everything applied, 1 on an error, a stale plan, a broken guardrail or a
    partial failure (see `catalog history`).
    """
    allowed = allow_rules(allow)
    err = stderr_console(color=ctx.color(stream_isatty=sys.stderr.isatty()))
    if plan_file is None and not auto_approve and not sys.stdin.isatty():
        raise CatalogError(
            "catalog apply asks before applying a plan it makes, and there is no terminal to "
            "ask on: pass --auto-approve, or apply a reviewed plan file (catalog plan --out)."
        )
    if plan_file is not None and adopt_images:
        raise CatalogError(
            "--adopt-images is for the plan made now; a saved plan already says what it "
            "adopts (make it with `catalog plan --adopt-images --out FILE`)."
        )
    saved = read_plan(plan_file) if plan_file is not None else None
    # The catalog is checked before the state file is opened: an invalid catalog leaves no
    # state file, lock event or ledger run behind.
    catalog = load_catalog(
        ctx.catalog_dir, cache_path=parse_cache_path(ctx.state_path), limits=ctx.limits()
    )
    target = ctx.target()
    who = actor(ctx.environ)
    host = socket.gethostname()
    holder = Holder(who, host, os.getpid())
    with (
        State(ctx.state_path) as state,
        ApplyLock(state, f"apply:{target.label}", holder=holder) as lock,
    ):
        if lock.took_over is not None:
            gone = lock.took_over
            err.print(
                f"Took over the apply lock left by {gone.owner} on {gone.host} "
                f"(pid {gone.pid}), which is no longer running.",
                markup=False,
                highlight=False,
            )
        if saved is not None:
            plan = saved
        else:
            plan, _ = build_plan(ctx, adopt_images=adopt_images, retailer_ttl=0, catalog=catalog)
        # build_plan has said which store it read; the apply's own connection stays quiet.
        console = (
            err
            if saved is not None
            else Console(file=io.StringIO(), markup=False, emoji=False, highlight=False)
        )
        with connect(target, console=console) as client:
            if saved is not None and plan_file is not None:
                plan, live = check_saved_plan(
                    saved,
                    plan_file,
                    client,
                    state,
                    target=target,
                    catalog=catalog,
                    actor=who,
                    host=host,
                    catalog_dir=ctx.catalog_dir,
                    say=lambda msg: err.print(msg, markup=False, highlight=False),
                )
            else:
                live = read_live(client, state, catalog)
                # Written as is: the plan holds user text that Rich must not interpret.
                err.file.write(render_text(plan, color=ctx.color(stream_isatty=err.is_terminal)))
            blocked = guardrails.blocking(plan, allowed)
            if blocked:
                record_refusal(
                    state,
                    saved or plan,
                    actor=who,
                    host=host,
                    reasons=[guardrails.refusal(blocked)],
                )
                raise GuardrailBroken(guardrails.refusal(blocked))
            if not plan.has_changes:
                _report_nothing(fmt, plan)
                return 0
            asking = saved is None and not auto_approve
            if asking and not click.confirm("Apply these changes?", err=True):
                raise CatalogError("Apply cancelled: nothing was changed.")
            with ProgressView(err) as view:
                result = apply_plan(
                    plan,
                    client,
                    state,
                    live=live,
                    on_event=view,
                    parallelism=parallelism,
                    lock=lock,
                    refresh_live=_refresher(client, state, catalog),
                    catalog_dir=ctx.catalog_dir,
                    plan_digest=(saved or plan).digest(),
                    actor=who,
                    host=host,
                )
    if fmt == "json":
        doc = {
            **result.to_json(),
            "store": plan.store,
            "plan_digest": (saved or plan).digest(),
            "git_commit": plan.git_commit,
        }
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(summary_text(result))
    sys.stdout.flush()
    if not result.ok:
        counts = result.counts()
        raise ApplyFailed(
            f"Apply was partial: {counts['failed']} change(s) failed and {counts['skipped']} "
            "were skipped (listed above). Rerun `catalog apply` to finish the rest; what was "
            "applied is not sent again."
        )
    return 0


def _report_nothing(fmt: str, plan: Plan) -> None:
    if fmt == "json":
        doc = {
            "format_version": FORMAT_VERSION,
            "outcome": "nothing to do",
            "counts": {"applied": 0, "failed": 0, "skipped": 0},
            "requests": {"planned": 0, "writes": 0, "total": 0, "rate_limited": 0},
            "changes": [],
            "store": plan.store,
            "plan_digest": plan.digest(),
            "git_commit": plan.git_commit,
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        sys.stdout.write("No changes: the store already matches the catalog.\n")
