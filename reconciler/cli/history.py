"""`catalog history [KEY]`: what apply changed, when, from which commit, before -> after."""

from __future__ import annotations

import json
import sys

import click

from reconciler import ownership
from reconciler.catalog import load_catalog, parse_cache_path
from reconciler.cli.common import Context, format_option
from reconciler.errors import CatalogError
from reconciler.model import FORMAT_VERSION, Json
from reconciler.render import literal
from reconciler.state import State
from reconciler.state.ledger import ChangeRecord, Ledger


def _value(value: Json) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def render_text(rows: list[ChangeRecord]) -> str:
    """One block per change, newest first: when, commit, who, what, then each field."""
    lines: list[str] = []
    for row in rows:
        commit = (row.git_commit or "no commit")[:12]
        head = (
            f"{row.at[:19].replace('T', ' ')} UTC  run {row.run_id}  {commit}  "
            f"{row.actor or '?'}  {row.action} {row.kind} {row.key}"
        )
        if row.outcome != "applied":
            head += f"  [{row.outcome}{': ' + row.error if row.error else ''}]"
        elif row.remote_version is not None:
            head += f"  (version {row.remote_version})"
        lines.append(head)
        for fc in row.fields:
            lines.append(f"    {fc['field']}: {_value(fc.get('before'))} -> {_value(fc['after'])}")
    # Names and values are the store's text: a line break or an escape sequence in one is
    # shown, never acted on.
    return "\n".join(literal(line) for line in lines)


def not_owned(ctx: Context) -> dict[str, str]:
    """The fields the catalog does not own (settings.fields), if the catalog can be read:
    history is about the state file and still answers when the catalog is broken."""
    try:
        catalog = load_catalog(ctx.catalog_dir, cache_path=parse_cache_path(ctx.state_path))
    except CatalogError:
        return {}
    return ownership.not_owned(catalog)


def owners_line(owners: dict[str, str]) -> str:
    return (
        f"Not the catalog's (settings.fields): {ownership.describe(owners)}; "
        "what the store does to them is not recorded here."
    )


@click.command("history")
@click.argument("key", required=False)
@format_option("text", "json", help="Output format; json prints one document on stdout.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many changes.")
@click.pass_obj
def history(ctx: Context, key: str | None, fmt: str, limit: int | None) -> None:
    """Show what apply changed, newest first: when, from which commit, before -> after.

    KEY is a handle, SKU or name; for a SKU this answers "which commit set this price, and
    what was it before". Without KEY, every recorded change is listed. Fields the catalog
    does not own (settings.fields: store, or init for set on create only) are named last.
    """
    if not ctx.state_path.exists():
        rows: list[ChangeRecord] = []
    else:
        with State(ctx.state_path) as state:
            rows = Ledger(state).history(key, limit=limit)
    owners = not_owned(ctx)
    if fmt == "json":
        doc = {
            "format_version": FORMAT_VERSION,
            "key": key,
            "changes": [r.to_json() for r in rows],
            "fields_not_owned": owners,
        }
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        return
    if not rows:
        what = f"for {key}" if key else "yet"
        click.echo(f"No applied changes recorded {what} in {ctx.state_path}.", err=True)
    else:
        click.echo(render_text(rows))
    if owners:
        click.echo(owners_line(owners))
