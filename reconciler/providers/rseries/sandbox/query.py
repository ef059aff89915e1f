"""Query parameters of an R-Series list read (section 4): filters with operators, the sort
whitelist, cursors, `limit`, `archived`, `count` and `load_relations`.

Pure functions over strings and documents; the store runs them.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from reconciler.providers.rseries.sandbox.errors import bad_request

MAX_LIMIT = 100
MAX_IN = 100
RESERVED = frozenset(
    {"limit", "sort", "after", "before", "load_relations", "archived", "count", "or", "offset"}
)
# Longest first, so `>=` is not read as `>` followed by `=...`.
_OPERATORS = ("><", ">=", "<=", "!=", "!~", ">", "<", "~", "IN", "=")


@dataclass(frozen=True)
class Filter:
    field: str
    op: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Cursor:
    """The boundary row of a page: its sort value (absent when sorting by id) and its id."""

    sort_value: str | None
    id: int


def parse_filter(field: str, raw: str) -> Filter:
    """`value`, or `<op>,<value>` with op one of `> >= < <= >< != ~ !~ IN`."""
    head, sep, rest = raw.partition(",")
    op = head.strip() if sep else ""
    if op not in _OPERATORS:
        return Filter(field, "=", (raw,))
    if op == "><":
        low, comma, high = rest.partition(",")
        if not comma:
            raise bad_request(f"The between filter on {field} needs two values: ><,low,high.")
        return Filter(field, op, (low, high))
    if op == "IN":
        values = _in_list(field, rest)
        if len(values) > MAX_IN:
            raise bad_request(f"The IN filter on {field} takes at most {MAX_IN} values.")
        return Filter(field, op, values)
    return Filter(field, op, (rest,))


def _in_list(field: str, text: str) -> tuple[str, ...]:
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise bad_request(f"The IN filter on {field} needs a list: IN,[1,2].")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = [part.strip().strip("\"'") for part in text[1:-1].split(",") if part.strip()]
    if not isinstance(parsed, list):
        raise bad_request(f"The IN filter on {field} needs a list: IN,[1,2].")
    return tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in parsed)


def _as_number(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def _as_time(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def comparable(field: str, text: str) -> Any:
    """What a value compares as: a datetime for time fields, else a number if both read as
    one, else the text. A time with no zone (a raw `+` read as a space) is refused, as the real
    API cannot read it either."""
    if field in {"timeStamp", "createTime"}:
        when = _as_time(text)
        if when is None:
            raise bad_request(
                f"Invalid date for {field}: {text!r}; send ISO 8601 with a zone, URL-encoded "
                "(a raw + reads as a space)."
            )
        return when
    return text


def matches(doc: Mapping[str, Any], flt: Filter) -> bool:
    value = doc.get(flt.field)
    if isinstance(value, dict | list):
        return False
    text = "" if value is None else str(value)
    if flt.op in {"~", "!~"}:
        found = _like(text, flt.values[0])
        return found if flt.op == "~" else not found
    if flt.op == "IN":
        return any(_equal(flt.field, text, v) for v in flt.values)
    if flt.op == "=":
        return _equal(flt.field, text, flt.values[0])
    if flt.op == "!=":
        return not _equal(flt.field, text, flt.values[0])
    compare: Callable[[Any, Any], bool]
    if flt.op == "><":
        low, high = (_pair(flt.field, text, v) for v in flt.values)
        return bool(low[0] >= low[1] and high[0] <= high[1])
    left, right = _pair(flt.field, text, flt.values[0])
    compare = _COMPARE[flt.op]
    return bool(compare(left, right))


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
}


def _pair(field: str, text: str, wanted: str) -> tuple[Any, Any]:
    if field in {"timeStamp", "createTime"}:
        mine = _as_time(text)
        theirs = comparable(field, wanted)
        if mine is None:
            return ("", "~")  # an unset time compares as never matching a bound
        return (mine, theirs)
    a, b = _as_number(text), _as_number(wanted)
    if a is not None and b is not None:
        return (a, b)
    return (text, wanted)


def _equal(field: str, text: str, wanted: str) -> bool:
    a, b = _pair(field, text, wanted)
    return bool(a == b)


def _like(text: str, pattern: str) -> bool:
    """SQL LIKE with `%`, case-insensitive, as the API's `~` operator."""
    parts = pattern.casefold().split("%")
    subject = text.casefold()
    if len(parts) == 1:
        return subject == parts[0]
    if not subject.startswith(parts[0]) or not subject.endswith(parts[-1]):
        return False
    position = len(parts[0])
    end = len(subject) - len(parts[-1])
    for middle in parts[1:-1]:
        found = subject.find(middle, position, end)
        if found < 0:
            return False
        position = found + len(middle)
    return position <= end


def encode_cursor(cursor: Cursor) -> str:
    values: list[Any] = [cursor.id] if cursor.sort_value is None else [cursor.sort_value, cursor.id]
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.b64encode(raw).decode()


def decode_cursor(text: str, *, sorted_by_id: bool) -> Cursor:
    try:
        values = json.loads(base64.b64decode(text.encode(), validate=True))
    except (ValueError, binascii.Error):
        raise bad_request("Invalid paging cursor; follow the next and previous URLs.") from None
    if not isinstance(values, list) or len(values) != (1 if sorted_by_id else 2):
        raise bad_request("Invalid paging cursor; follow the next and previous URLs.")
    ident = values[-1]
    if not isinstance(ident, int) or isinstance(ident, bool):
        raise bad_request("Invalid paging cursor; follow the next and previous URLs.")
    return Cursor(None if sorted_by_id else str(values[0]), ident)


def parse_limit(raw: str | None) -> int:
    """0-100, default 100; more than 100 clamps to 100 [choice]; 0 means the default."""
    if raw is None or raw == "":
        return MAX_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"limit must be a whole number from 0 to {MAX_LIMIT}.") from None
    if value < 0:
        raise bad_request(f"limit must be a whole number from 0 to {MAX_LIMIT}.")
    return min(value, MAX_LIMIT) or MAX_LIMIT


def parse_relations(raw: str | None, known: Sequence[str]) -> list[str]:
    """`load_relations=all` or a JSON array of relation names; unknown names are ignored."""
    if not raw:
        return []
    if raw.strip() == "all":
        return list(known)
    try:
        names = json.loads(raw)
    except ValueError:
        raise bad_request(
            'load_relations must be "all" or a JSON array such as ["ItemShops","Images"].'
        ) from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise bad_request(
            'load_relations must be "all" or a JSON array such as ["ItemShops","Images"].'
        )
    return [n for n in known if n in names]


def archived_mode(raw: str | None) -> str:
    """`false` (default), `true` (both) or `only`."""
    value = (raw or "false").strip().lower()
    if value in {"0", "false"}:
        return "false"
    if value in {"1", "true"}:
        return "true"
    if value == "only":
        return "only"
    raise bad_request("archived must be true, false or only.")
