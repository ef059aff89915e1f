"""What validation reports: a `Problem` located at file:line:column, and the `Finding` the pure
rules return before the loader knows where in a file a value was written.
"""

from __future__ import annotations

from dataclasses import dataclass

PathPart = str | int
JsonPath = tuple[PathPart, ...]


def format_path(path: JsonPath) -> str:
    """`("products", 3, "variants", 2, "sku")` -> `products[3].variants[2].sku` (0-based)."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif not out:
            out.append(part)
        elif part.isidentifier():
            out.append(f".{part}")
        else:
            # Keys such as option names may hold spaces or dots: bracket them so the path stays
            # unambiguous and copy-pasteable.
            escaped = part.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'["{escaped}"]')
    return "".join(out)


@dataclass(frozen=True)
class Finding:
    """A problem found in a file's data, located by its JSON path only.

    `on_key` points at the mapping key of the last path part (an unknown key, a key that must not
    be there) instead of its value. `quote_source` asks the loader to replace the hint with the
    value as written, quoted (YAML read `0123` as the number 83; the fix is `"0123"`).
    """

    path: JsonPath
    message: str
    hint: str | None = None
    on_key: bool = False
    quote_source: bool = False


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the catalog, where it is and how to fix it.

    `file` is the path as the user sees it (relative to the working directory when the catalog
    is under it); `line` and `column` are 1-based; `path` is the JSON path of the value
    (`products[3].variants[2].sku`), empty for problems with the file as a whole.
    """

    file: str
    line: int
    column: int
    path: str
    message: str
    hint: str | None = None

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line, self.column, self.path, self.message)

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.file}:{self.line}:{self.column}: {where}{self.message}{hint}"

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }
