"""`catalog import`: write a catalog from an existing store or from its product CSV export.

The decisions (what a row or a live product becomes, which file it goes to) are in
`reconciler.importer`; this module reads the inputs, writes the files and reports.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import click

from reconciler.catalog import to_yaml, validate_directory
from reconciler.cli.common import Context, stderr_console
from reconciler.csvexport import read_export
from reconciler.errors import CatalogError, UsageError
from reconciler.importer import (
    COLUMNS_IGNORED,
    COLUMNS_READ,
    CatalogFile,
    Severity,
    TaxMode,
    catalog_from_csv,
    layout,
)

# Kept when --force clears the output: the catalog's settings live there, not in the store.
SETTINGS_FILE = "catalog.yaml"


def _inside(root: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def prepare_output(out: Path, *, force: bool) -> list[Path]:
    """Make sure `out` may be written; with `force`, remove the YAML a previous import left.

    Old catalog files must go, or a product that moved to another category would be declared
    twice. Other files (a README, `.git`, images) and the settings file are kept. Returns the
    files removed.
    """
    if out.exists() and not out.is_dir():
        raise CatalogError(f"--out {out} is a file, not a directory: choose a directory.")
    entries = [p for p in out.iterdir() if p.name != ".git"] if out.is_dir() else []
    if not entries:
        return []
    if not force:
        raise CatalogError(
            f"Output directory {out} is not empty: pass --force to replace the catalog files "
            "in it, or choose an empty --out."
        )
    removed: list[Path] = []
    for path in sorted(out.rglob("*")):
        if ".git" in path.relative_to(out).parts or path.relative_to(out) == Path(SETTINGS_FILE):
            continue
        if path.suffix in (".yaml", ".yml") and path.is_file() and _inside(out, path):
            path.unlink()
            removed.append(path)
    return removed


def write_atomic(out: Path, relative: str, content: bytes) -> Path:
    """Write one file under `out` atomically (temp file + rename), never outside `out`."""
    target = out / relative
    # Checked after resolving, so neither `..` in a name nor a symlinked folder escapes `out`.
    target.parent.mkdir(parents=True, exist_ok=True)
    if not _inside(out, target.parent) or Path(relative).is_absolute() or ".." in relative:
        raise CatalogError(f"Refusing to write {relative!r}: it is outside {out}.")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_files(out: Path, files: Sequence[CatalogFile]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [write_atomic(out, f.path, to_yaml(f.data).encode()) for f in files]


def check_written(out: Path) -> None:
    """Validate what was written, as `catalog validate` would: an import that writes a catalog
    the loader refuses is a bug here, and is reported as one rather than left for later."""
    report = validate_directory(out)
    if report.problems:
        raise CatalogError(
            f"The imported catalog in {out} does not validate ({report.problems[0]}); this is a "
            "bug in catalog import: please report it with the input."
        )


def _columns_help() -> str:
    width = max(len(c) for c in COLUMNS_READ)
    read = "\n".join(f"  {c.ljust(width)}  {what}" for c, what in COLUMNS_READ.items())
    ignored = "\n".join(f"  {c}\n      {why}" for c, why in COLUMNS_IGNORED.items())
    return (
        "\b\nCSV columns read (header names are case-insensitive):\n"
        f"{read}\n\n\b\nCSV columns ignored:\n{ignored}"
    )


@click.command(
    "import",
    epilog=_columns_help(),
    context_settings={"max_content_width": 100},
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory to write the catalog into (default: the --catalog directory).",
)
@click.option(
    "--from-csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="A Lightspeed X-Series product export (CSV) to read instead of the live store.",
)
@click.option(
    "--tax-mode",
    type=click.Choice([m.value for m in TaxMode]),
    default=None,
    help="Which of the export's price_including_tax / price_excluding_tax columns is the "
    "price (only needed when the export has no retail_price column).",
)
@click.option("--force", is_flag=True, help="Replace the catalog files in a non-empty --out.")
@click.pass_obj
def import_(
    ctx: Context, out_dir: Path | None, csv_path: Path, tax_mode: str | None, force: bool
) -> None:
    """Write a catalog (YAML) from a Lightspeed X-Series product CSV export.

    Rows sharing a handle become one family; products are grouped into one file per category
    (or brand when uncategorized) under products/, with brands.yaml, suppliers.yaml and tags.yaml
    beside them. The same input always gives byte-identical files. Rows that cannot be imported
    are listed with their CSV line and left out (exit 1); everything else is written.
    """
    console = stderr_console(color=ctx.color(stream_isatty=sys.stderr.isatty()))
    out = out_dir if out_dir is not None else ctx.catalog_dir
    removed = prepare_output(out, force=force)

    table = read_export(csv_path)
    try:
        result = catalog_from_csv(
            table.columns, table.rows, tax_mode=TaxMode(tax_mode) if tax_mode else None
        )
    except ValueError as exc:  # the header itself is unusable: nothing to import
        raise UsageError(f"{csv_path}:1: {exc}.") from None
    problems = sorted(table.problems + result.problems, key=lambda p: p.line or 0)
    for problem in problems:
        console.print(problem.render(str(csv_path)), markup=False)
    if result.ignored_columns:
        console.print(
            f"Ignored {len(result.ignored_columns)} column(s) the catalog does not manage: "
            + ", ".join(result.ignored_columns),
            markup=False,
        )

    files = layout(result.catalog)
    written = write_files(out, files)
    products = result.catalog.products
    variants = sum(len(p.variants) for p in products)
    console.print(
        f"Imported {len(products)} product(s) ({variants} variants) from {csv_path} into "
        f"{out}: {len(written)} file(s)"
        + (f", {len(removed)} old file(s) removed" if removed else "")
        + ".",
        markup=False,
    )
    check_written(out)
    errors = [p for p in problems if p.severity is Severity.ERROR]
    if errors:
        raise CatalogError(
            f"{len(errors)} row(s) of {csv_path} could not be imported (listed above) and are "
            f"not in {out}: fix them in the CSV and re-run with --force."
        )
