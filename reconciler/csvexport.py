"""Reading a CSV file of products (a platform's export, a supplier's price file): the one module
that opens such a file.

It splits the file into records and cells and remembers the physical line each record starts
on (the header is line 1; a quoted cell spanning lines counts every line it spans), so every
problem can name the line a person sees in their editor. What the cells mean is decided by the
provider's export reader (X-Series: `reconciler.providers.xseries.csvimport`) or by `catalog
merge` (`reconciler.writeback`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from pathlib import Path

from charset_normalizer import from_bytes

from reconciler.errors import CatalogError
from reconciler.importer import CsvRow, Problem
from reconciler.model import clean_text

# Exports made by a spreadsheet in some locales use ';' or tabs instead of commas.
_DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class ExportTable:
    columns: tuple[str, ...]  # normalized: stripped, lowercase
    rows: tuple[CsvRow, ...]
    problems: tuple[Problem, ...] = ()  # rows that could not even be split into the columns
    notice: str | None = None  # how the file was read, when that is worth a line (encoding)


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
            # Cells are spelled as live values are (model.clean_text): "\n" line breaks, no
            # spaces at the ends, whatever the exporting system or spreadsheet wrote.
            values = [clean_text(c) for c in cells]
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


# Encodings a spreadsheet re-saves an export in (Excel on Windows and on a Mac, and the
# regional Windows code pages), weighed by charset-normalizer; ties go to the first listed.
LEGACY_ENCODINGS = (
    "cp1252",
    "mac_roman",
    "cp1250",
    "cp1251",
    "cp1253",
    "cp1254",
    "cp1257",
    "shift_jis",
    "gb18030",
    "big5",
    "euc_kr",
)


def decode_export(
    data: bytes, *, source: str, encoding: str | None = None
) -> tuple[str, str | None]:
    """The export's text and, when it was not UTF-8, a one-line notice naming the encoding.

    UTF-8 (with or without a byte-order mark) is read as is. Anything else is detected with
    charset-normalizer among the encodings spreadsheets save in; `encoding` (--encoding)
    overrides both.
    """
    if encoding is not None:
        try:
            return data.decode(encoding), f"read as {encoding} (--encoding)."
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise CatalogError(
                f"{source}:{line}: the file is not {encoding} (byte {data[exc.start]:#04x}); "
                "pass the encoding it was saved in, or leave --encoding out to detect it."
            ) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" is UTF-16
        try:
            return data.decode("utf-16"), "the file is UTF-16; read it as such."
        except UnicodeDecodeError:
            pass  # not UTF-16 after all: detect below
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        bad = exc
    best = None
    for match in from_bytes(data, cp_isolation=list(LEGACY_ENCODINGS)):
        rank = (round(match.chaos, 2), LEGACY_ENCODINGS.index(match.encoding))
        if best is None or rank < best[0]:
            best = (rank, match.encoding)
    if best is None:
        line = data.count(b"\n", 0, bad.start) + 1
        raise CatalogError(
            f"{source}:{line}: the file is not UTF-8 (byte {data[bad.start]:#04x}) and its "
            "encoding could not be detected; pass --encoding NAME (e.g. cp1252, mac_roman) or "
            "export it again as UTF-8 CSV."
        )
    name = best[1]
    return data.decode(name), (
        f"the file is not UTF-8; read it as {_ENCODING_NAMES.get(name, name)} (detected); "
        "pass --encoding NAME if that is wrong."
    )


_ENCODING_NAMES = {"cp1252": "Windows-1252", "mac_roman": "Mac Roman"}


def read_export(path: Path, *, encoding: str | None = None) -> ExportTable:
    """Read an export file: UTF-8 (with or without a byte-order mark), else the detected legacy
    encoding (named in the table's notice), or `encoding` when given."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CatalogError(f"CSV file {path} does not exist: pass the export's path.") from None
    except OSError as exc:
        raise CatalogError(f"CSV file {path} cannot be read ({exc.strerror}).") from exc
    text, notice = decode_export(data, source=str(path), encoding=encoding)
    table = parse_export(text, source=str(path))
    return replace(table, notice=notice)
