"""`catalog pull`: write the store's drifted values into the catalog files, in place."""

from __future__ import annotations

import json
import sys

import click

from reconciler.cli.common import Context, format_option, stderr_console
from reconciler.cli.import_ import write_atomic
from reconciler.cli.plan import build_plan
from reconciler.providers.base import RefreshMode
from reconciler.writeback import CatalogSource, check, pull, render_text


@click.command("pull")
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="KEY",
    help="Only the product with this handle or SKU (repeatable).",
)
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="FIELD",
    help="Only this field, e.g. price or supply_price (repeatable).",
)
@click.option(
    "--include-changes",
    is_flag=True,
    help="Also take the store's value of fields that differ without drift (the state file "
    "has no record of applying them, or the catalog changed them and they are not applied "
    "yet).",
)
@click.option(
    "--refresh",
    "refresh_mode",
    type=click.Choice(["auto", "full", "off"]),
    default="auto",
    show_default=True,
    help="How to read the store, as for `catalog plan`.",
)
@format_option("text", "json", help="text for people, json (one document on stdout) for machines.")
@click.pass_obj
def pull_command(
    ctx: Context,
    targets: tuple[str, ...],
    fields: tuple[str, ...],
    include_changes: bool,
    refresh_mode: RefreshMode,
    fmt: str,
) -> int:
    """Accept changes made in the store: write their values into the catalog YAML.

    Plans as `catalog plan` does, then writes the store's value of every drifted field (changed
    in the store since the last apply) where the catalog declares it, editing only those
    values: comments, order, quoting and layout stay. The next plan then shows no change for
    them. New store products are not added (use `catalog import`). The edited catalog is
    validated first; a file that would become invalid is left untouched. Exits 0, or 1 when a
    file was left untouched or on an error.
    """
    plan, _ = build_plan(ctx, refresh_mode=refresh_mode, targets=targets)
    result = check(
        pull(plan, CatalogSource(ctx.catalog_dir), fields=fields, include_changes=include_changes),
        ctx.catalog_dir,
    )
    for rel, content in sorted(result.files.items()):
        write_atomic(ctx.catalog_dir, rel, content)
    if fmt == "json":
        json.dump(result.to_json(command="pull", written=bool(result.files)), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(result, written=True))
    if result.refused:
        stderr_console().print(
            "Some files were left untouched (see above); fix them and run `catalog pull` again.",
            markup=False,
        )
        return 1
    return 0


__all__ = ["pull_command"]
