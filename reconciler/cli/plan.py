"""`catalog plan`: refresh from the store, diff against the catalog, show or save the plan."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from reconciler import diff, guardrails, live, ownership, planner, providers
from reconciler import plan as plan_module
from reconciler.catalog import load_catalog
from reconciler.cli.common import Context, connect, format_option, stderr_console
from reconciler.cli.validate import parse_cache_path
from reconciler.model import Catalog, Rule
from reconciler.plan import Kind, Plan
from reconciler.planfile import write_plan
from reconciler.planner import ManagedIndex, make_plan
from reconciler.providers.base import RefreshMode, RefreshReport
from reconciler.render import duration, iter_json, render_markdown, render_text
from reconciler.state import State
from reconciler.state.cache import Cache
from reconciler.state.ledger import Ledger

MANAGED_KINDS = tuple(str(k) for k in Kind)
# Plans up to this size are remembered for an unchanged re-plan; bigger ones are recomputed
# (they are rare, and keeping them would bloat the state file).
MEMO_MAX_CHANGES = 5000


def _memo_key(**inputs: object) -> str:
    """Everything a plan depends on, hashed: the catalog, the cached store (its generation),
    the ledger, the options, and the planning code itself (so an upgrade never reuses a plan
    an older planner made)."""
    code = hashlib.sha256()
    for module in (plan_module, planner, live, diff, guardrails, ownership):
        code.update(Path(str(module.__file__)).read_bytes())
    code.update(providers.code_digest(str(inputs.get("platform", providers.DEFAULT))).encode())
    blob = json.dumps({**inputs, "code": code.hexdigest()}, sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()


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
    ctx: Context,
    *,
    refresh_mode: RefreshMode = "auto",
    targets: tuple[str, ...] = (),
    excludes: tuple[str, ...] = (),
    adopt_images: bool = False,
    retailer_ttl: float | None = None,
    catalog: Catalog | None = None,
    allow: tuple[Rule, ...] = (),
) -> tuple[Plan, RefreshReport]:
    """The whole pipeline behind `catalog plan`, for the CLI and for `catalog apply`'s
    plan-then-apply: load the catalog, refresh the cache, plan. Progress goes to stderr.

    `retailer_ttl`: how old the cached retailer (its tax mode) may be; apply passes 0, so the
    price field it writes is never chosen from a tax mode the store has since switched.
    `catalog`: the catalog when the caller has loaded it already (apply checks it before it
    opens the state file)."""
    err = stderr_console(color=ctx.color(stream_isatty=sys.stderr.isatty()))
    if catalog is None:
        catalog = load_catalog(ctx.catalog_dir, cache_path=parse_cache_path(ctx.state_path))
    target = ctx.target()
    with State(ctx.state_path) as state:
        cache = Cache(state)
        with connect(target, console=err) as client:
            report = client.refresh(
                cache,
                mode=refresh_mode,
                facts_ttl=retailer_ttl,
                on_progress=lambda msg: err.print(msg, markup=False, highlight=False),
            )
        now = datetime.now(UTC)
        if refresh_mode == "off":
            age = report.age_seconds(now)
            err.print(
                f"Planning from the cache only (--refresh off): the store was last read "
                f"{duration(age or 0)} ago ({report.refreshed_at}); changes made since are "
                "not shown.",
                markup=False,
                highlight=False,
            )
        else:
            changed = sum(k.received for k in report.kinds if k.mode == "changes")
            full = report.full
            err.print(
                f"Read {target.label} in {report.requests} API requests"
                + (
                    ""
                    if full
                    else f" ({changed} object{'' if changed == 1 else 's'} changed since the "
                    "last plan)"
                )
                + ".",
                markup=False,
                highlight=False,
            )
        facts = client.facts(cache)
        catalog_digest = catalog.digest()
        memo_key = _memo_key(
            platform=target.platform,
            catalog_digest=catalog_digest,
            generation=cache.generation(),
            ledger=cache.ledger_fingerprint(),
            store=target.label,
            rate_limit=facts.rate_limit,
            targets=targets,
            excludes=excludes,
            adopt_images=adopt_images,
            allow=[str(r) for r in allow],
        )
        remembered = cache.plan_memo(memo_key)
        if remembered is not None:
            # Nothing the planner reads has changed since this plan was made: it is the plan.
            plan = dataclasses.replace(
                Plan.from_json(remembered),
                git_commit=git_commit(ctx.catalog_dir, state_dir=ctx.state_path.parent),
                created_at=now.isoformat(timespec="seconds"),
            )
            return plan, report
        ledger = Ledger(state)
        managed: ManagedIndex = {kind: ledger.managed(kind) for kind in MANAGED_KINDS}
        plan = make_plan(
            catalog,
            client.live(cache),
            store=target.label,
            managed=managed,
            images=cache.uploaded_images(),
            adopt_images=adopt_images,
            targets=targets,
            excludes=excludes,
            rate_limit=facts.rate_limit,
            git_commit=git_commit(ctx.catalog_dir, state_dir=ctx.state_path.parent),
            created_at=now.isoformat(timespec="seconds"),
            catalog_digest=catalog_digest,
            allow=allow,
        )
        if len(plan.all_changes()) <= MEMO_MAX_CHANGES:
            cache.remember_plan(memo_key, plan.to_json())
    return plan, report


ADOPT_IMAGES = click.option(
    "--adopt-images",
    is_flag=True,
    help="For products with images in the store that the state file has no record of (a "
    "lost state file): record the store's images as the catalog's, in catalog order, without "
    "uploading; only catalog images beyond the store's count are uploaded.",
)


def allow_rules(values: tuple[str, ...]) -> tuple[Rule, ...]:
    return tuple(Rule(v) for v in dict.fromkeys(values))


ALLOW = click.option(
    "--allow",
    "allow",
    multiple=True,
    metavar="RULE",
    envvar="CATALOG_ALLOW",
    type=click.Choice([str(r) for r in Rule]),
    help="Allow changes that break this guardrail (repeatable; CATALOG_ALLOW holds "
    "space-separated rules): price-jump, margin, removals or zero-price.",
)


@click.command("plan")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan (JSON, bound to the live versions it saw) for `catalog apply FILE`.",
)
@format_option(
    "text",
    "markdown",
    "json",
    help="text for a terminal, markdown for a pull-request comment, json for machines.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to change and 2 when there is (1 on errors).",
)
@click.option(
    "--refresh",
    "refresh_mode",
    type=click.Choice(["auto", "full", "off"]),
    default="auto",
    show_default=True,
    help="auto: ask the store only what changed since the last plan; full: read everything "
    "again; off: plan from the cache without asking the store.",
)
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="KEY",
    help="Plan only the product with this handle or SKU (repeatable).",
)
@click.option(
    "--exclude",
    "excludes",
    multiple=True,
    metavar="KEY",
    help="Leave out the product with this handle or SKU (repeatable).",
)
@ADOPT_IMAGES
@ALLOW
@click.pass_obj
def plan(
    ctx: Context,
    out: Path | None,
    fmt: str,
    detailed_exitcode: bool,
    refresh_mode: RefreshMode,
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
    adopt_images: bool,
    allow: tuple[str, ...],
) -> int:
    """Show exactly what `catalog apply` would change in the store, field by field.

    Reads the store through its change feed (only what changed since the last plan), compares
    the fields the catalog declares, and prints the changes with the API requests and the time
    applying them would take. A change that breaks a guardrail (settings.guardrails) is
    listed first; --allow RULE marks those as allowed (apply still decides with its own
    --allow). Never writes to the store. Exits 0 (with --detailed-exitcode: 0
    when nothing would change, 2 when something would) or 1 on an error.
    """
    result, _ = build_plan(
        ctx,
        refresh_mode=refresh_mode,
        targets=targets,
        excludes=excludes,
        adopt_images=adopt_images,
        allow=allow_rules(allow),
    )
    if fmt == "json":
        sys.stdout.writelines(iter_json(result))
    elif fmt == "markdown":
        sys.stdout.write(render_markdown(result))
    else:
        sys.stdout.write(render_text(result, color=ctx.color(stream_isatty=sys.stdout.isatty())))
    sys.stdout.flush()
    if out is not None:
        saved = write_plan(out, result)
        stderr_console().print(
            f"Saved the plan to {saved}; apply exactly this plan with `catalog apply {saved}`.",
            markup=False,
            highlight=False,
        )
    if detailed_exitcode and result.has_changes:
        return 2
    return 0
