"""`catalog plan`: refresh from the store, diff against the catalog, show or save the plan."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler import api
from reconciler.cli.common import Context, format_option, stderr_console
from reconciler.model import Catalog, Rule
from reconciler.plan import Plan
from reconciler.planfile import write_plan
from reconciler.providers.base import RefreshMode, RefreshReport
from reconciler.render import iter_json, render_markdown, render_text


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
    """`reconciler.api.build_plan` for a command: the context's catalog, state file and store,
    progress on stderr."""
    err = stderr_console(color=ctx.color(stream_isatty=sys.stderr.isatty()))
    return api.build_plan(
        catalog_dir=ctx.catalog_dir,
        state_path=ctx.state_path,
        target=ctx.target(),
        say=lambda text: err.print(text, markup=False, highlight=False),
        refresh_mode=refresh_mode,
        targets=targets,
        excludes=excludes,
        adopt_images=adopt_images,
        retailer_ttl=retailer_ttl,
        catalog=catalog,
        allow=allow,
    )


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
