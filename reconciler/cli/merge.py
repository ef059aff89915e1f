"""`catalog merge`: a supplier's price file (CSV) into the catalog files, in place."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from reconciler.catalog import load_catalog, parse_cache_path
from reconciler.cli.common import Context, format_option, stderr_console
from reconciler.cli.import_ import write_atomic
from reconciler.csvexport import read_export
from reconciler.errors import CatalogError, UsageError
from reconciler.writeback import CatalogSource, check, merge, parse_mapping, render_text


def _catalog_relative(directory: Path, path: Path) -> str:
    """`--create-in` as a path inside the catalog directory (given relative to it, or not)."""
    root = directory.resolve()
    candidate = path if path.is_absolute() else Path.cwd() / path
    if not candidate.resolve().is_relative_to(root):
        candidate = directory / path
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root) or resolved.suffix not in (".yaml", ".yml"):
        raise UsageError(
            f"--create-in {path} must name a .yaml file inside the catalog directory {directory}."
        )
    return resolved.relative_to(root).as_posix()


@click.command("merge")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--key",
    default="sku",
    show_default=True,
    metavar="COLUMN",
    help="The column holding the SKU (case, spaces and a byte-order mark do not matter).",
)
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="Take FIELD (supply_price, price, barcode or supplier_code) from COLUMN (repeatable).",
)
@click.option(
    "--create-in",
    "create_in",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Add rows whose SKU the catalog lacks to this catalog file as simple products.",
)
@click.option(
    "--partial",
    is_flag=True,
    help="Write what can be written even when some rows or files have errors.",
)
@format_option("text", "json", help="text for people, json (one document on stdout) for machines.")
@click.pass_obj
def merge_command(
    ctx: Context,
    file: Path,
    key: str,
    maps: tuple[str, ...],
    create_in: Path | None,
    partial: bool,
    fmt: str,
) -> int:
    """Update supply prices, prices, barcodes and supplier codes from a supplier's CSV file.

    Columns are matched ignoring case, surrounding spaces and a byte-order mark; `,` `;` and
    tab delimiters are recognized. Each row updates the product or variant with its SKU,
    editing only the changed values in place; rows whose SKU the catalog lacks are listed
    (or added with --create-in). Every change and skipped row is listed with its line. On any
    error (an unreadable row, a price that is not a number, a file that would become invalid)
    nothing is written unless --partial. Exits 0, or 1 on errors.
    """
    mapping = parse_mapping(maps)
    load_catalog(ctx.catalog_dir, cache_path=parse_cache_path(ctx.state_path))
    table = read_export(file)
    if table.notice:
        stderr_console().print(table.notice, markup=False, highlight=False)
    source = CatalogSource(ctx.catalog_dir)
    rel = _catalog_relative(ctx.catalog_dir, create_in) if create_in is not None else None
    result = check(
        merge(table, source, file=str(file), key=key, mapping=mapping, create_in=rel),
        ctx.catalog_dir,
    )
    errors = [s for s in result.skipped if s.error]
    write = partial or not (errors or result.refused)
    if write:
        for name, content in sorted(result.files.items()):
            write_atomic(ctx.catalog_dir, name, content)
    if fmt == "json":
        json.dump(result.to_json(command="merge", written=write), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(result, written=write, source=str(file)))
    if errors or result.refused:
        n = len(errors) + len(result.refused)
        raise CatalogError(
            f"{file}: {n} error{'' if n == 1 else 's'} (listed above); "
            + (
                "the rest was written."
                if write
                else "nothing was written; fix them or pass --partial."
            )
        )
    return 0


__all__ = ["merge_command"]
