"""`catalog validate`: schema and semantic checks of the catalog files, offline."""

from __future__ import annotations

import json
import sys

import click

from reconciler.catalog import Report, parse_cache_path, validate_directory
from reconciler.cli.common import Context, format_option
from reconciler.model import FORMAT_VERSION


def render_text(report: Report, *, color: bool) -> str:
    """Every problem on one line, sorted by file and line, then every warning, then the summary
    line."""
    lines = []
    for p in report.problems:
        line = str(p)
        if color:
            where = f"{p.file}:{p.line}:{p.column}:"
            line = click.style(where, bold=True) + line[len(where) :]
        lines.append(line)
    for w in report.warnings:
        where = f"{w.file}:{w.line}:{w.column}:"
        label = click.style("warning:", fg="yellow") if color else "warning:"
        lines.append(
            f"{click.style(where, bold=True) if color else where} {label}{str(w)[len(where) :]}"
        )
    summary = report.summary()
    if color:
        summary = click.style(summary, fg="red" if report.problems else "green")
    lines.append(summary)
    return "\n".join(lines)


def render_json(report: Report) -> str:
    doc = {
        "format_version": FORMAT_VERSION,
        "valid": not report.problems,
        "files": report.files,
        "products": report.products,
        "variants": report.variants,
        "files_with_problems": report.files_with_problems,
        "problems": [p.to_json() for p in report.problems],
        "warnings": [w.to_json() for w in report.warnings],
        "summary": report.summary(),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


@click.command("validate")
@format_option("text", "json", help="Output format; json prints one document on stdout.")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Check every file again instead of reusing results for unchanged files.",
)
@click.pass_obj
def validate(ctx: Context, fmt: str, no_cache: bool) -> int:
    """Check the catalog files against the schema and the rules, without touching the store.

    Every problem is reported at once, each on one line as file:line:column: where: what
    (hint), followed by a summary. Exits 0 when the catalog is valid and 1 otherwise.
    Results for files unchanged since the last run are reused from the parse cache beside
    the state file (.catalog/parse-cache). What the platform LIGHTSPEED_PLATFORM selects
    cannot hold (on R-Series: a GTIN-8 barcode, more than 2 decimals, a brand description)
    is a problem or a warning at its line.
    """
    cache = None if no_cache else parse_cache_path(ctx.state_path)
    report = validate_directory(ctx.catalog_dir, cache_path=cache, limits=ctx.limits())
    if fmt == "json":
        sys.stdout.write(render_json(report) + "\n")
    else:
        color = ctx.color(stream_isatty=sys.stdout.isatty())
        # color= tells click to keep the styles even when stdout is not a terminal (--color always)
        click.echo(render_text(report, color=color), color=color)
    return 1 if report.problems else 0
