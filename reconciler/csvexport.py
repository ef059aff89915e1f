"""Reading a Lightspeed X-Series product export (CSV): the one module that opens such a file.

It splits the file into records and cells and remembers the physical line each record starts
on (the header is line 1; a quoted cell spanning lines counts every line it spans), so every
problem can name the line a person sees in their editor. What the cells mean is decided in
`reconciler.importer`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import CatalogError
from reconciler.importer import CsvRow, Problem

# Exports made by a spreadsheet in some locales use ';' or tabs instead of commas.
_DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class ExportTable:
    columns: tuple[str, ...]  # normalized: stripped, lowercase
    rows: tuple[CsvRow, ...]
    problems: tuple[Problem, ...] = ()  # rows that could not even be split into the columns


def normalize_column(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def parse_export(text: str, *, source: str) -> ExportTable:
    """Split export text into rows; raise `CatalogError` when the file cannot be read as CSV."""
    if text.startswith("\ufeff"):  # Excel writes a byte-order mark before UTF-8
        text = text[1:]
    first_line = text.split("\n", 1)[0]
    # newline="" keeps quoted line breaks inside their cell; the reader still counts them.
    handle = io.StringIO(text, newline="")
    reader = csv.reader(handle, delimiter=_delimiter(first_line), strict=True)
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise CatalogError(f"{source}:1: the first line must name the columns; it is empty.")
        columns = tuple(normalize_column(h) for h in header)
        seen: dict[str, int] = {}
        for index, name in enumerate(columns):
            if name and name in seen:
                raise CatalogError(
                    f"{source}:1: column {name!r} appears twice (columns {seen[name] + 1} and "
                    f"{index + 1}); remove one and re-run."
                )
            seen[name] = index

        rows: list[CsvRow] = []
        problems: list[Problem] = []
        last_line = reader.line_num
        for cells in reader:
            start, last_line = last_line + 1, reader.line_num
            if not cells:
                continue  # an empty line
            extra = [c for c in cells[len(columns) :] if c.strip()]
            if extra:
                problems.append(
                    Problem(
                        f"row has {len(cells)} cells but the header names {len(columns)} "
                        "columns (an unquoted comma?); row skipped",
                        start,
                    )
                )
                continue
            # Short rows are padded: spreadsheets drop trailing empty cells.
            # Line breaks inside a cell become "\n", whatever the exporting system wrote.
            values = [c.replace("\r\n", "\n").replace("\r", "\n").strip() for c in cells]
            values += [""] * (len(columns) - len(cells))
            rows.append(
                CsvRow(
                    line=start,
                    cells={
                        name: value for name, value in zip(columns, values, strict=False) if name
                    },
                )
            )
    except csv.Error as exc:
        raise CatalogError(
            f"{source}:{reader.line_num}: the file is not valid CSV here ({exc}); check the "
            "quotes on this line and re-export."
        ) from exc
    return ExportTable(
        columns=tuple(c for c in columns if c), rows=tuple(rows), problems=tuple(problems)
    )


def read_export(path: Path) -> ExportTable:
    """Read an export file (UTF-8, with or without a byte-order mark)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CatalogError(f"CSV file {path} does not exist: pass the export's path.") from None
    except OSError as exc:
        raise CatalogError(f"CSV file {path} cannot be read ({exc.strerror}).") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CatalogError(
            f"{path}:{line}: the file is not UTF-8 (byte {data[exc.start]:#04x}); export it "
            "again as UTF-8 CSV (Excel: Save As > CSV UTF-8)."
        ) from None
    return parse_export(text, source=str(path))
