"""`catalog import`: write a catalog from an existing store or from its product CSV export.

The decisions (what a row or a live product becomes, which file it goes to) are in
`reconciler.importer`, reading the store into one in `reconciler.liveimport` (the api's); this
module parses the options, writes the files and reports.
"""

from __future__ import annotations

import codecs
import sys
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import click
from rich.console import Console

from reconciler import atomic, providers
from reconciler.api import check_store, claim_store
from reconciler.catalog import to_yaml, validate_directory
from reconciler.cli.common import Context, connect, stderr_console
from reconciler.csvexport import read_export
from reconciler.errors import CatalogError, UsageError
from reconciler.importer import CatalogFile, ImportResult, Severity, layout
from reconciler.liveimport import LiveImport, read_store, record_images
from reconciler.providers.base import ExportReader
from reconciler.state import State

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
    for path in sorted(out.rglob("*")):  # rglob does not follow symlinked folders
        if ".git" in path.relative_to(out).parts or path.relative_to(out) == Path(SETTINGS_FILE):
            continue
        if path.suffix in (".yaml", ".yml") and path.is_file() and _inside(out, path):
            path.unlink()
            removed.append(path)
    return removed


def write_atomic(out: Path, relative: str, content: bytes) -> Path:
    """Write one file under `out` atomically (`reconciler.atomic`), never outside `out`."""
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise CatalogError(f"Refusing to write {relative!r}: it is outside {out}.")
    # Each folder is checked before anything is made in it, so a symlinked folder cannot lead
    # a write (or a mkdir) outside `out` either.
    out.mkdir(parents=True, exist_ok=True)
    root = out.resolve()
    folder = out
    for part in rel.parts[:-1]:
        folder = folder / part
        if folder.exists() or folder.is_symlink():
            if not folder.resolve().is_relative_to(root):
                raise CatalogError(f"Refusing to write {relative!r}: {folder} leads outside {out}.")
        else:
            folder.mkdir()
    target = folder / rel.name
    return atomic.write_atomic(target, content)


def write_files(out: Path, files: Sequence[CatalogFile]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)  # even with no file: an empty catalog is valid
    return [write_atomic(out, f.path, to_yaml(f.data).encode()) for f in files]


# -- the live store --------------------------------------------------------------------------


def write_store_import(out: Path, imported: LiveImport, state: State) -> list[Path]:
    """Write the catalog files and the images, then record the images as uploaded."""
    written = write_files(out, layout(imported.result.catalog))
    written += [write_atomic(out, i.path, i.data) for i in imported.images]
    record_images(state, imported.images)
    return written


def check_written(out: Path) -> None:
    """Validate what was written, as `catalog validate` would: an import that writes a catalog
    the loader refuses is a bug here, and is reported as one rather than left for later."""
    report = validate_directory(out)
    if report.problems:
        raise CatalogError(
            f"The imported catalog in {out} does not validate ({report.problems[0]}); this is a "
            "bug in catalog import: please report it with the input."
        )


# The default platform's export (the help and choices are made when the command is).
_EXPORT = providers.get().export_reader()


def _columns_help() -> str:
    columns_read, columns_ignored = _EXPORT.columns_read, _EXPORT.columns_ignored
    width = max(len(c) for c in columns_read)
    read = "\n".join(f"  {c.ljust(width)}  {what}" for c, what in columns_read.items())
    ignored = "\n".join(f"  {c}\n      {why}" for c, why in columns_ignored.items())
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
    default=None,
    help="Read the platform's own export (CSV) instead of the live store: X-Series' product "
    "export, R-Series' item export.",
)
@click.option(
    "--tax-mode",
    type=click.Choice(list(_EXPORT.tax_modes)),
    default=None,
    help="With --from-csv: which of the export's price_including_tax / price_excluding_tax "
    "columns is the price (only needed when the export has no retail_price column).",
)
@click.option(
    "--encoding",
    default=None,
    metavar="NAME",
    help="With --from-csv: the export's text encoding (e.g. cp1252, mac_roman), when the "
    "detected one is wrong. Default: UTF-8, else detected (and named in a notice).",
)
@click.option("--force", is_flag=True, help="Replace the catalog files in a non-empty --out.")
@click.pass_obj
def import_(
    ctx: Context,
    out_dir: Path | None,
    csv_path: Path | None,
    tax_mode: str | None,
    encoding: str | None,
    force: bool,
) -> None:
    """Write a catalog (YAML) from the live store, or from a product CSV export.

    \b
    Adopting an existing store:
      1. catalog import           (writes ./catalog from the store; --out DIR to choose)
      2. git add catalog && git commit -m "Import the store"
      3. open a pull request: its plan only adopts what is there (no writes)

    From the store: everything is read the way `catalog plan` reads it (paged, through the
    state file's cache), so the imported catalog plans clean. Inactive products are kept with
    `active: false`; fields at the store's default are left out.

    From a CSV (--from-csv): rows sharing a handle (R-Series: a Matrix Description) become one
    family. Rows that cannot be imported are listed with their CSV line and left out; everything
    else is written.

    Either way, products go to one file per category (or brand when uncategorized) under
    products/, with brands.yaml, suppliers.yaml and tags.yaml beside them; the same input always
    gives byte-identical files. Anything left out makes the exit code 1.
    """
    console = stderr_console(color=ctx.color(stream_isatty=sys.stderr.isatty()))
    out = out_dir if out_dir is not None else ctx.catalog_dir
    if tax_mode is not None and csv_path is None:
        raise UsageError("--tax-mode only applies to --from-csv: the store says its own tax mode.")
    if encoding is not None and csv_path is None:
        raise UsageError("--encoding only applies to --from-csv: the store's API speaks UTF-8.")
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise UsageError(
                f"--encoding {encoding!r} is not a text encoding Python knows: pass a name such "
                "as utf-8, cp1252 or mac_roman."
            ) from None
    removed = prepare_output(out, force=force)
    if csv_path is not None:
        _import_csv(
            console,
            out,
            csv_path,
            tax_mode=tax_mode,
            encoding=encoding,
            removed=removed,
            reader=providers.from_environ(ctx.environ).export_reader(),
        )
    else:
        _import_store(console, ctx, out, removed=removed)


def _say(console: Console, text: str) -> None:
    console.print(text, markup=False, highlight=False)


def _import_csv(
    console: Console,
    out: Path,
    csv_path: Path,
    *,
    tax_mode: str | None,
    encoding: str | None,
    removed: list[Path],
    reader: ExportReader,
) -> None:
    table = read_export(csv_path, encoding=encoding)
    if table.notice:
        _say(console, f"{csv_path}: {table.notice}")
    try:
        result = reader.read(table, tax_mode=tax_mode)
    except ValueError as exc:  # the header itself is unusable: nothing to import
        raise UsageError(f"{csv_path}:1: {exc}.") from None
    problems = sorted(table.problems + result.problems, key=lambda p: p.line or 0)
    for problem in problems:
        _say(console, problem.render(str(csv_path)))
    for notice in result.notices:
        _say(console, f"{csv_path}: {notice}")
    if result.ignored_columns:
        _say(
            console,
            f"Ignored {len(result.ignored_columns)} column(s) the catalog does not manage: "
            + ", ".join(result.ignored_columns),
        )
    written = write_files(out, layout(result.catalog))
    _say(console, _summary(result, str(csv_path), out, written, removed))
    check_written(out)
    errors = [p for p in problems if p.severity is Severity.ERROR]
    if errors:
        raise CatalogError(
            f"{len(errors)} row(s) of {csv_path} could not be imported (listed above) and are "
            f"not in {out}: fix them in the CSV and re-run with --force."
        )


def _import_store(console: Console, ctx: Context, out: Path, *, removed: list[Path]) -> None:
    target = ctx.target()
    started = time.monotonic()
    with State(ctx.state_path) as state:
        with connect(target, console=console) as client:
            check_store(state, client, label=target.label)
            # Images are downloaded (without the token) and recorded as uploaded by this tool,
            # so the next apply does not upload them again.
            imported = read_store(
                client, state, download=client.download, on_progress=lambda m: _say(console, m)
            )
            requests = client.stats().requests
            if imported.images:  # recorded as uploaded: the ledger now holds this store's
                claim_store(state, client, label=target.label)
        _say(console, f"Writing {len(imported.result.catalog.products)} product(s) into {out}")
        written = write_store_import(out, imported, state)
    result = imported.result
    for problem in result.problems:
        _say(console, problem.render(target.label))
    for notice in result.notices:
        _say(console, f"{target.label}: {notice}")
    _say(console, _summary(result, target.label, out, written, removed))
    _say(
        console,
        f"Read {target.label} in {requests} API requests and {time.monotonic() - started:.1f}s"
        + (f"; {len(imported.images)} image(s) downloaded" if imported.images else "")
        + ". Next: commit the catalog and open a pull request; its plan adopts, never writes.",
    )
    check_written(out)
    if result.errors:
        raise CatalogError(
            f"{len(result.errors)} product(s) of {target.label} could not be imported (listed "
            f"above) and are not in {out}: the catalog leaves them alone. Fix them in the store "
            "and re-run with --force."
        )


def _summary(
    result: ImportResult, source: str, out: Path, written: list[Path], removed: list[Path]
) -> str:
    products = result.catalog.products
    variants = sum(len(p.variants) for p in products)
    return (
        f"Imported {len(products)} product(s) ({variants} variants) from {source} into "
        f"{out}: {len(written)} file(s)"
        + (f", {len(removed)} old file(s) removed" if removed else "")
        + "."
    )
