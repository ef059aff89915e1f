"""Reading and writing catalog files: the filesystem edge of the catalog.

`load_catalog` / `validate_directory` read every `*.yaml` / `*.yml` file under the catalog
directory, check it against the JSON Schema and the rules in `reconciler.rules`, check the
images it names, and produce the canonical `Catalog` (or every problem, located at
file:line:column).

How YAML is read, and why:
- Safe YAML only. The document is built straight from the libyaml C parser's events, not through
  PyYAML's composer and constructor: that is several times faster (composing and constructing
  50,000 variants costs more than parsing them) and it lets the loader refuse what PyYAML would
  accept silently (duplicate keys) or expand without limit (aliases).
- Two passes, both over events. The fast pass handles plain documents (no anchors, tags, merge
  keys or anything irregular) and records no positions. Only when it gives up, or when a file has
  a problem, does the careful pass run: it records the line and column of every value, so a
  problem found by path (`products[3].variants[2].sku`) maps back to where it was written.
- Limits: file size, nesting depth, and the values and text aliases may add, so a "billion
  laughs" file is refused as soon as its aliases add more than `MAX_ALIAS_VALUES` values, and a
  small file aliasing one long description thousands of times as soon as they add more than
  `MAX_ALIAS_BYTES` characters.

The parse cache (`cache_path`) keeps, per file, the checked data of files that had no problems,
keyed by the sha256 of their name and bytes; an unchanged file is neither parsed nor checked
again. A file whose aliases add more text than the file holds is not cached (it costs a parse
next time), so the cache stays a small multiple of the files it caches. Cross-file checks
(duplicate handles, SKUs, names, barcodes, spellings) and image checks run on every load. The
cache is JSON, written atomically, and ignored when it is unreadable, corrupt or written by
another version of this code.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gc
import hashlib
import itertools
import json
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)

from reconciler import guardrails, rules
from reconciler.atomic import write_atomic
from reconciler.errors import CatalogInvalid
from reconciler.limits import Limits
from reconciler.model import (
    Brand,
    Catalog,
    Image,
    Json,
    Owner,
    Product,
    Prune,
    Rule,
    Settings,
    Supplier,
    Variant,
    catalog_to_data,
    category_from_data,
    clean_text,
    sorted_names,
)
from reconciler.problems import Finding, JsonPath, Problem, format_path

# The C parser where libyaml is available; the pure-Python one (same events) otherwise.
_Parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 20  # a catalog needs 5 levels; deep nesting is an attack or a mistake
MAX_ALIAS_VALUES = 100_000  # values that aliases may add to one file
MAX_ALIAS_BYTES = 4 * 1024 * 1024  # characters of text that aliases may add to one file
SCHEMA_FILE = "catalog-file.schema.json"
CACHE_FORMAT = 1

Positions = dict[JsonPath, tuple[int, int]]


# --- the schema ---------------------------------------------------------------------------------


def schema_path(name: str = SCHEMA_FILE) -> Path:
    """Where a schema file is: inside the package in a wheel (`reconciler/schemas/`, mapped in
    by setup.py), else the repository's top-level `schemas/` (a checkout or an editable install).
    Also what editor settings point at (`yaml.schemas` in VS Code)."""
    package = Path(__file__).resolve().parent
    packaged = package / "schemas" / name
    return packaged if packaged.is_file() else package.parent / "schemas" / name


def schema_text(name: str = SCHEMA_FILE) -> str:
    """A schema's JSON text."""
    return schema_path(name).read_text("utf-8")


@cache
def _checker() -> rules.SchemaChecker:
    return rules.SchemaChecker(json.loads(schema_text()))


# --- YAML scalars ---------------------------------------------------------------------------------

_STR = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
# PyYAML's own YAML 1.1 implicit resolvers (first character -> [(tag, regexp)]), so plain
# scalars get exactly the types `yaml.safe_load` would give them.
_IMPLICIT: dict[str | None, list[tuple[str, Any]]] = yaml.resolver.Resolver.yaml_implicit_resolvers
_SAFE = yaml.constructor.SafeConstructor()


class _Merge:
    """The `<<` merge key."""


_MERGE = _Merge()


def _yaml_float(text: str) -> Decimal | float:
    """A YAML float from its source text: a Decimal with the digits as written, never a float.

    Only the non-finite values (.inf, .nan) stay floats; the rules reject them as amounts.
    """
    v = text.replace("_", "").lower()
    negative = v.startswith("-")
    if v[:1] in "+-":
        v = v[1:]
    if v == ".inf":
        return float("-inf") if negative else float("inf")
    if v == ".nan":
        return float("nan")
    if ":" in v:  # YAML 1.1 sexagesimal, e.g. 1:30.5
        total = Decimal(0)
        for part in v.split(":"):
            total = total * 60 + Decimal(part)
        return total.copy_negate() if negative else total
    number = Decimal(v)
    return number.copy_negate() if negative else number  # keeps -0.0 (unary minus would not)


def _yaml_int(text: str) -> int:
    value: int = _SAFE.construct_yaml_int(yaml.ScalarNode("tag:yaml.org,2002:int", text))
    return value


def _yaml_timestamp(text: str) -> object:
    return _SAFE.construct_yaml_timestamp(yaml.ScalarNode("tag:yaml.org,2002:timestamp", text))


def _yaml_binary(text: str) -> bytes:
    try:
        return base64.decodebytes(text.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"invalid base64 data: {exc}") from None


_CONSTRUCT: dict[str, Callable[[str], object]] = {
    "tag:yaml.org,2002:null": lambda _v: None,
    "tag:yaml.org,2002:bool": lambda v: _SAFE.bool_values[v.lower()],
    "tag:yaml.org,2002:int": _yaml_int,
    "tag:yaml.org,2002:float": _yaml_float,
    "tag:yaml.org,2002:timestamp": _yaml_timestamp,
    "tag:yaml.org,2002:value": lambda v: v,
    _STR: lambda v: v,
}
_EXPLICIT: dict[str, Callable[[str], object]] = {
    **_CONSTRUCT,
    "tag:yaml.org,2002:binary": _yaml_binary,
}


def _plain_tag(value: str) -> str:
    """The tag of an untagged plain scalar, resolved the way YAML 1.1 (and PyYAML) does."""
    for tag, regexp in _IMPLICIT.get(value[:1], ()):
        if regexp.match(value):
            return tag
    return _STR


def _plain(value: str) -> object:
    """The value of an untagged plain scalar (`_MERGE` for the `<<` merge key)."""
    tag = _plain_tag(value)
    if tag == _MERGE_TAG:
        return _MERGE
    return _CONSTRUCT[tag](value)


_KIND_WORDS = {"int": "whole number", "float": "number", "timestamp": "date", "bool": "yes/no"}


def _number_form(text: str) -> str | None:
    """The YAML 1.1 number form a plain scalar that reads as a number was written in, when that
    form is not the decimal people (and YAML 1.2 readers) see: `12:50` is 770 in base 60, `0123`
    is octal 83, `0x10` is 16, `0b101` is 5. None for plain decimals such as 25, 0.5 or 012.5."""
    t = text.lstrip("+-")
    if ":" not in t and (len(t) < 2 or t[0] != "0" or t[1] == "."):
        return None  # the common case, decided without a regular expression
    tag = _plain_tag(text)
    if tag == _FLOAT:
        return "base-60" if ":" in t else None
    if tag != _INT:
        return None  # text, a date or time
    if ":" in t:
        return "base-60"
    return {"x": "hexadecimal", "b": "binary"}.get(t[1], "octal")


def _number_form_finding(path: JsonPath, text: str, form: str) -> Finding:
    """Refuses a number written in a YAML 1.1-only form, with the decimal to write instead."""
    try:
        value = _plain(text)
    except (ValueError, KeyError, InvalidOperation, ArithmeticError):
        value = text
    sign = "-" if text.startswith("-") else ""
    digits = text.lstrip("+-").replace("_", "")
    if form == "base-60":
        parts = digits.split(":")
        meant = f"{sign}{parts[0]}.{parts[1]}" if len(parts) == 2 and "." not in digits else value
        hint = f"write the amount with a decimal point, e.g. {meant}"
    elif form == "octal":
        hint = f"write it without the leading zero: {sign}{digits.lstrip('0') or '0'}"
    else:
        hint = f"write it in decimal: {value}"
    return Finding(path, f"{text} is a YAML 1.1 {form} number, read as {value}", hint)


# --- the fast pass ------------------------------------------------------------------------------


class _GiveUp(Exception):
    """The fast pass met something only the careful pass handles."""


def _fast_build(text: str) -> object:
    """The document of a plain YAML file, or `_GiveUp` for anything else.

    Plain: one document of mappings, lists and untagged scalars, string keys, no duplicates,
    no anchors, aliases or merge keys, not nested deeper than `MAX_DEPTH`. Positions are not
    recorded; the careful pass gives them when a problem needs them.
    """
    try:
        parser = _Parser(text)  # the pure-Python reader already checks characters here
    except yaml.YAMLError:
        raise _GiveUp from None
    get = parser.get_event
    # Each open collection is [container, pending key]; a list's key slot is unused.
    stack: list[list[Any]] = []
    # One copy of each key: a 100,000-family file says "sku" and "options" 500,000 times.
    keys: dict[str, str] = {}
    root: object = None
    documents = 0
    try:
        while True:
            e = get()
            cls = e.__class__
            if cls is ScalarEvent:
                if e.anchor is not None or e.tag is not None:
                    raise _GiveUp
                value: object = e.value
                if e.implicit[0]:
                    # Inline the common case: most scalars start with a letter no resolver knows.
                    resolvers = _IMPLICIT.get(e.value[:1])
                    if resolvers:
                        try:
                            value = _plain(e.value)
                        except (ValueError, KeyError, InvalidOperation, ArithmeticError):
                            raise _GiveUp from None
                        if value is _MERGE:
                            raise _GiveUp
                        if (value.__class__ is int or value.__class__ is Decimal) and _number_form(
                            e.value
                        ):
                            raise _GiveUp  # refused by the careful pass, which knows where
            elif cls is MappingStartEvent or cls is SequenceStartEvent:
                if (
                    e.anchor is not None
                    or (e.tag is not None and e.tag != "!")
                    or len(stack) >= MAX_DEPTH
                ):
                    raise _GiveUp
                top = stack[-1] if stack else None
                if top is not None and top[1] is None and top[0].__class__ is dict:
                    raise _GiveUp  # a list or mapping used as a key
                stack.append([{} if cls is MappingStartEvent else [], None])
                continue
            elif cls is MappingEndEvent or cls is SequenceEndEvent:
                value = stack.pop()[0]
            elif cls is StreamEndEvent:
                return root
            elif cls is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _GiveUp
                continue
            elif cls is AliasEvent:
                raise _GiveUp
            else:
                continue
            if not stack:
                root = value
                continue
            top = stack[-1]
            container = top[0]
            if container.__class__ is list:
                container.append(value)
            elif top[1] is None:
                if value.__class__ is not str or value in container:
                    raise _GiveUp
                top[1] = keys.setdefault(value, value)
            else:
                container[top[1]] = value
                top[1] = None
    except yaml.YAMLError:
        raise _GiveUp from None
    finally:
        parser.dispose()


# --- the careful pass ---------------------------------------------------------------------------


@dataclass
class _Parsed:
    """The careful pass's result: the document (None if unreadable) and where everything is."""

    data: object
    findings: list[tuple[int, int, str, str | None]]  # (line, column, message, hint)
    values: Positions = field(default_factory=dict)  # path -> (line, column) of the value
    keys: Positions = field(default_factory=dict)  # path -> (line, column) of its key
    sources: dict[JsonPath, str] = field(default_factory=dict)  # plain non-text scalars, as written
    unreadable: set[JsonPath] = field(default_factory=set)  # reported already: no second message
    alias_bytes: int = 0  # characters of text aliases added


class _Frame:
    __slots__ = ("anchor", "container", "key", "key_at", "merges", "path", "size", "weight")

    def __init__(self, container: Any, path: JsonPath, anchor: str | None) -> None:
        self.container = container
        self.path = path
        self.anchor = anchor
        self.key: object = _NO_KEY
        self.key_at: tuple[int, int] = (0, 0)
        self.merges: list[tuple[object, tuple[int, int]]] = []
        self.size = 1
        self.weight = 1  # characters of text in it, counting each value as at least one


_NO_KEY = object()  # the mapping waits for a key
_BAD_KEY = object()  # the key was refused: drop its value


class _Fatal(Exception):
    """The file cannot be read any further (the finding is already recorded)."""


def _at(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


def _careful_build(text: str, parser_class: Any = _Parser) -> _Parsed:
    """The document with every value's position and every reading problem, never raising.

    The loader's own limits (depth, aliases) must speak before any limit of the parser's: libyaml
    scans ahead and, from 0.2.6 on, stops deep flow nesting with an error of its own before the
    events reach us. So a syntax error from the C parser is checked again with the pure-Python
    one, which yields events as it reads and has no such limit; only invalid files pay for it.
    """
    out = _Parsed(data=None, findings=[])
    anchors: dict[str, tuple[object, int, int]] = {}  # name -> (value, values, characters)
    open_anchors: set[str] = set()
    added = 0  # values aliases have added so far
    stack: list[_Frame] = []
    documents = 0
    root: list[object] = []

    def problem(at: tuple[int, int], message: str, hint: str | None = None) -> None:
        out.findings.append((at[0], at[1], message, hint))

    def slot() -> tuple[JsonPath | None, bool]:
        """The path of the node starting now, and whether it is a mapping key."""
        if not stack:
            return (), False
        top = stack[-1]
        if isinstance(top.container, list):
            return (*top.path, len(top.container)), False
        if top.key is _NO_KEY:
            return None, True
        if isinstance(top.key, str):
            return (*top.path, top.key), False
        return None, False

    def add(value: object, size: int, weight: int, at: tuple[int, int], is_key: bool) -> None:
        if not stack:
            root.append(value)
            return
        top = stack[-1]
        top.size += size
        top.weight += weight
        container = top.container
        if isinstance(container, list):
            container.append(value)
        elif is_key:
            top.key_at = at
            if value is _MERGE:
                top.key = _MERGE
            elif not isinstance(value, str):
                shown = rules.describe_value(value)
                problem(at, f"a key must be text, not {shown}", "put the key in quotes")
                top.key = _BAD_KEY
            elif value in container:
                problem(
                    at,
                    f"duplicate key {rules.quote(value)}",
                    "each key may appear once in a mapping",
                )
                top.key = _BAD_KEY
            else:
                top.key = value
                out.keys[(*top.path, value)] = at
        else:
            if top.key is _MERGE:
                top.merges.append((value, at))
            elif isinstance(top.key, str):
                container[top.key] = value
            top.key = _NO_KEY

    def scalar(e: Any, at: tuple[int, int], path: JsonPath | None) -> object:
        tag = e.tag
        if tag is None and e.implicit[0]:
            tag = _plain_tag(e.value)
            if tag == _MERGE_TAG:
                return _MERGE
            if tag != _STR and path is not None:
                # What was written, for hints such as: write it in quotes: "0123".
                out.sources[path] = e.value
        elif tag is None or tag == "!":
            return e.value
        construct = _EXPLICIT.get(tag)
        if construct is None:
            problem(
                at, f"unsupported YAML tag {tag}", "catalog files use plain YAML: remove the tag"
            )
            return e.value
        try:
            return construct(e.value)
        except (ValueError, KeyError, InvalidOperation, ArithmeticError):
            # e.g. an integer of more digits than Python converts, 2024-02-30, or !!int abc
            kind = tag.rsplit(":", 1)[-1]
            problem(at, f"{rules.quote(e.value)} cannot be read as a {_KIND_WORDS.get(kind, kind)}")
            if path is not None:
                out.unreadable.add(path)
            return e.value

    parser: Any = None
    try:
        parser = parser_class(text)
        while True:
            e = parser.get_event()
            cls = type(e)
            if cls is StreamEndEvent:
                break
            if cls is StreamStartEvent or cls is DocumentEndEvent:
                continue
            at = _at(e.start_mark)
            if cls is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    problem(
                        at,
                        "a catalog file holds one YAML document; this is a second one",
                        "remove the --- line, or move this part to a file of its own",
                    )
                    raise _Fatal
                continue
            if cls is MappingEndEvent or cls is SequenceEndEvent:
                frame = stack.pop()
                if isinstance(frame.container, dict):
                    _merge(frame, problem)
                if frame.anchor is not None:
                    anchors[frame.anchor] = (frame.container, frame.size, frame.weight)
                    open_anchors.discard(frame.anchor)
                path, is_key = slot()
                if is_key:
                    problem(frame_at(frame, out), "a key must be text, not a list or mapping")
                    stack[-1].key = _BAD_KEY
                    continue
                add(frame.container, frame.size, frame.weight, at, False)
                continue
            path, is_key = slot()
            if path is not None and not is_key:
                out.values[path] = at
            if cls is ScalarEvent:
                value = scalar(e, at, path if not is_key else None)
                weight = len(e.value) + 1
                if e.anchor is not None:
                    anchors[e.anchor] = (value, 1, weight)
                add(value, 1, weight, at, is_key)
            elif cls is AliasEvent:
                if e.anchor in open_anchors:
                    problem(
                        at,
                        f"alias *{e.anchor} refers to a list or mapping that contains it",
                        "recursive aliases are not allowed",
                    )
                    raise _Fatal
                if e.anchor not in anchors:
                    problem(at, f"alias *{e.anchor} has no anchor &{e.anchor} before it")
                    raise _Fatal
                value, size, weight = anchors[e.anchor]
                added += size
                out.alias_bytes += weight
                if added > MAX_ALIAS_VALUES:
                    problem(
                        at,
                        f"aliases add more than {MAX_ALIAS_VALUES:,} values to this file",
                        "write the values out, or use fewer aliases",
                    )
                    raise _Fatal
                if out.alias_bytes > MAX_ALIAS_BYTES:
                    problem(
                        at,
                        f"aliases add more than {MAX_ALIAS_BYTES // 1048576} MB of text to this "
                        "file",
                        "write the values out, or use fewer aliases of long text",
                    )
                    raise _Fatal
                add(value, size, weight, at, is_key)
            elif cls is MappingStartEvent or cls is SequenceStartEvent:
                if len(stack) >= MAX_DEPTH:
                    problem(
                        at,
                        f"nested deeper than {MAX_DEPTH} levels",
                        "a catalog needs only a few levels of nesting",
                    )
                    raise _Fatal
                tag = e.tag
                expected = (
                    "tag:yaml.org,2002:map" if cls is MappingStartEvent else "tag:yaml.org,2002:seq"
                )
                if tag is not None and tag not in ("!", expected):
                    problem(
                        at,
                        f"unsupported YAML tag {tag}",
                        "catalog files use plain YAML: remove the tag",
                    )
                container: dict[str, object] | list[object] = {} if cls is MappingStartEvent else []
                frame = _Frame(container, path if path is not None else ("?",), e.anchor)
                frame.key_at = at
                if e.anchor is not None:
                    open_anchors.add(e.anchor)
                stack.append(frame)
    except _Fatal:
        return out
    except yaml.MarkedYAMLError as exc:
        if parser_class is not yaml.SafeLoader:
            parser.dispose()
            parser = None
            return _careful_build(text, yaml.SafeLoader)
        mark = exc.problem_mark or exc.context_mark
        at = _at(mark) if mark is not None else (1, 1)
        hint = None
        if exc.context and exc.context_mark is not None:
            hint = f"{exc.context} at line {exc.context_mark.line + 1}"
        if mark is not None and text[mark.index : mark.index + 1] == "\t":
            hint = "indent with spaces: YAML does not allow tabs there"
        problem(at, f"YAML syntax error: {exc.problem or exc.context}", hint)
        return out
    except yaml.reader.ReaderError as exc:
        char = exc.character
        code = char if isinstance(char, int) else ord(char[:1] or "\0")
        problem(
            _line_col(text, exc.position),
            f"the character U+{code:04X} is not allowed in YAML ({exc.reason})",
            "remove it, or write it as an escape inside double quotes",
        )
        return out
    except yaml.YAMLError as exc:
        problem((1, 1), "unreadable YAML: " + " ".join(str(exc).split()))
        return out
    finally:
        if parser is not None:
            parser.dispose()
    out.data = root[0] if root else None
    return out


def frame_at(frame: _Frame, out: _Parsed) -> tuple[int, int]:
    return out.values.get(frame.path, frame.key_at)


def _merge(frame: _Frame, problem: Callable[..., None]) -> None:
    """Apply `<<` merge keys: keys written in the mapping win, then earlier merges win."""
    target = frame.container
    for value, at in frame.merges:
        sources = value if isinstance(value, list) else [value]
        for source in sources:
            if not isinstance(source, dict):
                problem(at, "<< can only merge a mapping or a list of mappings")
                continue
            for k, v in source.items():
                target.setdefault(k, v)


def _line_col(text: str, index: int) -> tuple[int, int]:
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def parse_yaml(text: str) -> object:
    """One YAML document as the loader reads it (numbers as decimals, merge keys applied, no
    duplicate keys); `CatalogInvalid` naming the line of the first reading problem otherwise."""
    try:
        return _fast_build(text)
    except _GiveUp:
        parsed = _careful_build(text)
    if parsed.findings:
        line, column, message, _hint = parsed.findings[0]
        raise CatalogInvalid(f"line {line}, column {column}: {message}")
    return parsed.data


# --- one file -----------------------------------------------------------------------------------


@dataclass
class _FileResult:
    """One file checked on its own: its problems (without the file name) and, if none, its data."""

    problems: list[tuple[int, int, str, str, str | None]]  # (line, column, path, message, hint)
    data: dict[str, Any] | None  # the checked document; None if the file has problems
    raw: object = None  # the document as read, for the cross-file checks when it has problems
    cacheable: bool = True  # False when aliases made the data much larger than the file


def _decode(raw: bytes) -> tuple[str | None, list[tuple[int, int, str, str, str | None]]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = raw[: exc.start].decode("utf-8", errors="replace")
        line, col = _line_col(head, len(head))
        return None, [
            (
                line,
                col,
                "",
                f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
                "save the file as UTF-8",
            )
        ]
    return text.removeprefix("\ufeff"), []


def _check_file(rel: str, raw: bytes) -> _FileResult:
    """Parse and check one file on its own (what needs other files or images comes later)."""
    text, problems = _decode(raw)
    if text is None:
        return _FileResult(problems, None)
    parsed: _Parsed | None = None
    try:
        data = _fast_build(text)
    except _GiveUp:
        parsed = _careful_build(text)
        data = parsed.data
        if parsed.findings:
            located = [(line, col, "", msg, hint) for line, col, msg, hint in parsed.findings]
            if data is None:
                return _FileResult(located, None)
            problems.extend(located)
    if data is None:
        data = {}  # an empty file (or only comments) declares nothing
    checker = _checker()
    findings = checker.file_findings(data)
    if isinstance(data, dict):
        findings.extend(rules.file_findings(data, root_file=rel == rules.ROOT_FILE))
    if parsed is not None:
        if parsed.unreadable:
            findings = [f for f in findings if f.path not in parsed.unreadable]
        findings.extend(_number_form_findings(parsed, {f.path for f in findings}))
    if findings:
        if parsed is None:
            parsed = _careful_build(text)
        problems.extend(_locate(f, parsed) for f in findings)
    if problems or not isinstance(data, dict):  # not a mapping: the schema has said so
        return _FileResult(problems, None, raw=data)
    # Text is cached about as long as it is written, except what aliases repeat.
    return _FileResult([], data, cacheable=parsed is None or parsed.alias_bytes <= len(text))


def _number_form_findings(parsed: _Parsed, reported: set[JsonPath]) -> list[Finding]:
    """Numbers written in a YAML 1.1-only form where a number is taken (prices): `price: 12:50`
    would silently be 770. Where the schema already refused the value (a SKU written 0123), its
    message says it and hints the quotes, so one problem gets one message."""
    out: list[Finding] = []
    for path, text in parsed.sources.items():
        form = _number_form(text)
        if form is not None and path not in reported:
            out.append(_number_form_finding(path, text, form))
    return out


def _locate(f: Finding, parsed: _Parsed) -> tuple[int, int, str, str, str | None]:
    """The line and column of a finding's value (or key); the nearest written parent otherwise."""
    path = f.path
    if f.on_key and path in parsed.keys:
        at = parsed.keys[path]
    else:
        at = (1, 1)
        for n in range(len(path), -1, -1):
            if path[:n] in parsed.values:
                at = parsed.values[path[:n]]
                break
    hint = f.hint
    if f.quote_source and path in parsed.sources:
        hint = f"write it in quotes: {rules.quote(parsed.sources[path])}"
    return (at[0], at[1], format_path(path), f.message, hint)


# --- the model ----------------------------------------------------------------------------------


def _money(value: object, shared: dict[Any, Any] | None = None) -> Decimal | None:
    if value is None:
        return None
    if shared is not None:
        # Keyed by the spelling, not the number: 15.0 and 15.00 are equal Decimals that print
        # differently, and each must read back as written.
        key = ("money", type(value), str(value))
        found = shared.get(key)
        if found is None:
            found = shared[key] = _money(value)
        return found
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return number if number else abs(number)  # -0.00 is 0.00


def _one(shared: dict[Any, Any] | None, value: Any) -> Any:
    """One copy of an immutable value the catalog repeats (an options tuple, a category path,
    a tag list, a brand name): a 100,000-family catalog holds millions of them, few distinct."""
    return value if shared is None else shared.setdefault(value, value)


def _variant(
    v: Mapping[str, Any], options: tuple[str, ...], shared: dict[Any, Any] | None = None
) -> Variant:
    values = v["options"]
    return Variant(
        sku=v["sku"],
        options=_one(shared, tuple([(o, values[o]) for o in options])),
        price=_money(v.get("price"), shared),
        supply_price=_money(v.get("supply_price"), shared),
        barcode=v.get("barcode"),
        active=v.get("active"),
    )


def _clean(text: str | None) -> str | None:
    return None if text is None else clean_text(text)


def _product(
    p: Mapping[str, Any], images: Mapping[str, str], shared: dict[Any, Any] | None = None
) -> Product:
    """The model of one declared product. `shared`: equal immutable values met before, reused
    (see `_one`); the product is equal either way."""
    options = _one(shared, tuple(p.get("options") or ()))
    category = p.get("category")
    tags = p.get("tags")
    paths = p.get("images")
    return Product(
        handle=p["handle"],
        name=clean_text(p["name"]),
        description=_clean(p.get("description")),
        brand=_one(shared, p.get("brand")),
        supplier=_one(shared, p.get("supplier")),
        supplier_code=_clean(p.get("supplier_code")),
        category=None if category is None else _one(shared, category_from_data(category)),
        tags=None if tags is None else _one(shared, sorted_names(tags)),
        active=p.get("active"),
        price=_money(p.get("price"), shared),
        supply_price=_money(p.get("supply_price"), shared),
        options=options,
        variants=tuple([_variant(v, options, shared) for v in p.get("variants") or ()]),
        images=None
        if paths is None
        else tuple(Image(path=n, sha256=images[n]) for n in map(rules.normalize_image_path, paths)),
        sku=p.get("sku"),
        barcode=p.get("barcode"),
        allow=tuple(Rule(r) for r in dict.fromkeys(p.get("allow") or ())),
    )


def _build(files: list[dict[str, Any]], images: Mapping[str, str]) -> Catalog:
    products: list[Product] = []
    brands: dict[str, Brand] = {}
    suppliers: dict[str, Supplier] = {}
    tags: dict[str, str] = {}
    settings: Settings | None = None
    shared: dict[Any, Any] = {}
    for data in files:
        products.extend(_product(p, images, shared) for p in data.get("products") or ())
        for b in data.get("brands") or ():
            brands.setdefault(b["name"], Brand(name=b["name"], description=b.get("description")))
        for s in data.get("suppliers") or ():
            suppliers.setdefault(
                s["name"], Supplier(name=s["name"], description=s.get("description"))
            )
        for t in data.get("tags") or ():
            tags.setdefault(t, t)
        if "settings" in data:
            settings = settings_from_data(data["settings"])
    return Catalog.build(
        products=products,
        brands=list(brands.values()),
        suppliers=list(suppliers.values()),
        tags=list(tags.values()),
        settings=settings,
    )


def settings_from_data(s: Mapping[str, Any]) -> Settings:
    """`settings:` as checked data (or as `model.catalog_to_data` gives it back)."""
    return Settings(
        prune=Prune(s.get("prune", "none")),
        stores=tuple(s.get("stores") or ()),
        guardrails=guardrails.parse(s.get("guardrails")),
        fields=tuple(
            (f, Owner(o)) for f, o in sorted((s.get("fields") or {}).items()) if o != Owner.CATALOG
        ),
    )


# --- the cache ----------------------------------------------------------------------------------


@cache
def code_fingerprint() -> str:
    """Changes whenever the code or schema that produced cached results changes."""
    digest = hashlib.sha256(f"{CACHE_FORMAT}:{yaml.__version__}".encode())
    digest.update(schema_text().encode())
    for module in ("catalog.py", "rules.py", "model.py", "problems.py"):
        with contextlib.suppress(OSError):
            digest.update((Path(__file__).parent / module).read_bytes())
    return digest.hexdigest()


def _decimal_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


class _Cache:
    """Per-file results of earlier loads; any sign of trouble and it is simply empty."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.files: dict[str, Any] = {}
        self.images: dict[str, Any] = {}
        self.used_files: dict[str, Any] = {}
        self.used_images: dict[str, Any] = {}
        self.dirty = False
        if path is None:
            return
        # Line 1: a header naming the code that wrote the cache and the sha256 of the body, so a
        # cache from another version, truncated or with flipped bits is ignored, never trusted.
        try:
            header_line, _, body = path.read_bytes().partition(b"\n")
            header = json.loads(header_line)
            if (
                header.get("fingerprint") == code_fingerprint()
                and header.get("sha256") == hashlib.sha256(body).hexdigest()
            ):
                blob = json.loads(body.decode("utf-8", "surrogatepass"))
                files, images = blob["files"], blob["images"]
                if isinstance(files, dict) and isinstance(images, dict):
                    self.files, self.images = files, images
        except (OSError, ValueError, AttributeError, KeyError, TypeError, RecursionError):
            pass

    def file(self, key: str) -> dict[str, Any] | None:
        data = self.files.get(key)
        if isinstance(data, dict):
            self.used_files[key] = data
            return data
        return None

    def put_file(self, key: str, data: dict[str, Any]) -> None:
        self.used_files[key] = data
        self.dirty = True

    def image(self, key: str) -> list[Any] | None:
        entry = self.images.get(key)
        if isinstance(entry, list) and len(entry) == 2 and all(isinstance(x, str) for x in entry):
            self.used_images[key] = entry
            return entry
        return None

    def put_image(self, key: str, entry: list[str]) -> None:
        self.used_images[key] = entry
        self.dirty = True

    def save(self) -> None:
        """Keep only what this load used, written to a temp file and renamed into place."""
        if self.path is None:
            return
        if (
            not self.dirty
            and self.used_files.keys() == self.files.keys()
            and (self.used_images.keys() == self.images.keys())
        ):
            return
        try:
            blob = {"files": self.used_files, "images": self.used_images}
            # Text as UTF-8, not \u escapes (half the size for most scripts); surrogatepass
            # keeps a lone surrogate YAML allows ("\ud800") from losing the whole cache.
            body = json.dumps(
                blob, default=_decimal_default, separators=(",", ":"), ensure_ascii=False
            ).encode("utf-8", "surrogatepass")
            header = {
                "fingerprint": code_fingerprint(),
                "sha256": hashlib.sha256(body).hexdigest(),
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(header).encode() + b"\n" + body)
        except (OSError, TypeError, ValueError):
            pass  # a cache that cannot be written only costs speed next time


# --- images ----------------------------------------------------------------------------------


def _check_images(
    directory: Path,
    files: list[_LoadedFile],
    cache_: _Cache,
) -> tuple[dict[str, str], list[tuple[int, Finding]]]:
    """sha256 of every image the products name, and findings for the ones that are wrong.

    Looks at files with problems too (what has the wrong type is skipped), so a missing image is
    reported together with everything else.
    """
    hashes: dict[str, str] = {}
    findings: list[tuple[int, Finding]] = []
    root = directory.resolve()
    for index, loaded in enumerate(files):
        products = _as_dict(loaded.raw).get("products")
        for i, product in enumerate(products if isinstance(products, list) else ()):
            images = product.get("images") if isinstance(product, dict) else None
            seen: set[str] = set()  # a second mention in one product is the rules' to report
            for j, image in enumerate(images if isinstance(images, list) else ()):
                if not isinstance(image, str) or not rules.is_relative_image_path(image):
                    continue  # the rules report these
                name = rules.normalize_image_path(image)
                if name in hashes or name in seen:
                    continue
                seen.add(name)
                result = _check_image(root, name, cache_)
                if isinstance(result, Finding):
                    findings.append(
                        (index, Finding(("products", i, "images", j), result.message, result.hint))
                    )
                else:
                    hashes[name] = result
    return hashes, findings


def _check_image(root: Path, name: str, cache_: _Cache) -> str | Finding:
    shown = rules.quote(name)
    try:
        target = (root / name).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop; a NUL in the name
        return Finding((), f"image {shown} cannot be found", "check the path and any links in it")
    if not target.is_relative_to(root):
        return Finding(
            (),
            f"image {shown} is outside the catalog directory",
            "keep images inside the catalog directory: no .. or links out of it",
        )
    try:
        st = target.stat()
    except (OSError, ValueError):
        return Finding((), f"image {shown} does not exist", "check the path and its case")
    if not stat.S_ISREG(st.st_mode):
        return Finding((), f"image {shown} is not a file")
    if st.st_size > rules.MAX_IMAGE_BYTES:
        return Finding(
            (),
            f"image {shown} is {st.st_size / 1048576:.1f} MB, more than 10 MB",
            "make it smaller",
        )
    key = f"{target}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"
    entry = cache_.image(key)
    if entry is None:
        try:
            content = target.read_bytes()
        except OSError as exc:
            return Finding((), f"image {shown} cannot be read: {exc.strerror}")
        entry = [hashlib.sha256(content).hexdigest(), rules.image_type(content[:12]) or ""]
        cache_.put_image(key, entry)
    if not entry[1]:
        return Finding(
            (),
            f"image {shown} is not a JPEG, PNG, GIF, TIFF or WebP file",
            "the type is read from the file's content, not its name",
        )
    sha256: str = entry[0]
    return sha256


# --- the whole directory ------------------------------------------------------------------------


@dataclass
class _LoadedFile:
    rel: str
    shown: str
    text_bytes: bytes | None  # kept only to locate problems found across files
    data: dict[str, Any] | None  # checked data; None if the file has problems
    raw: object  # the document as read (the checked data when valid)
    problems: list[Problem]
    parsed: _Parsed | None = None

    def locate(self, finding: Finding) -> Problem:
        if self.parsed is None:
            text = (self.text_bytes or b"").decode("utf-8", errors="replace").removeprefix("\ufeff")
            self.parsed = _careful_build(text)
        line, col, path, message, hint = _locate(finding, self.parsed)
        return Problem(self.shown, line, col, path, message, hint)

    def where(self, path: JsonPath) -> str:
        p = self.locate(Finding(path, ""))
        return f"{p.file}:{p.line}:{p.column}"


@dataclass
class Report:
    """The outcome of validating a catalog directory.

    `catalog` is None whenever there is a problem. Counts cover every file read, valid or not.
    """

    catalog: Catalog | None
    problems: list[Problem]
    files: int = 0
    products: int = 0
    variants: int = 0
    # What may be a mistake but a real store can hold (look-alike characters): said, not refused.
    warnings: list[Problem] = field(default_factory=list)
    # Per file, what an incremental plan keeps of it (`FileFacts`), and each image's sha256:
    # given when the catalog is valid.
    facts: list[FileFacts] = field(default_factory=list)
    image_hashes: dict[str, str] = field(default_factory=dict)

    @property
    def files_with_problems(self) -> int:
        return len({p.file for p in self.problems})

    def summary(self) -> str:
        """`2 problems in 1 file; 1,204 products, 5,310 variants checked`."""
        counts = f"{_plural(self.products, 'product')}, {_plural(self.variants, 'variant')} checked"
        if self.warnings:
            counts += f" ({_plural(len(self.warnings), 'warning')})"
        if not self.problems:
            return f"No problems in {_plural(self.files, 'file')}; {counts}"
        return (
            f"{_plural(len(self.problems), 'problem')} in "
            f"{_plural(self.files_with_problems, 'file')}; {counts}"
        )


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def catalog_files(directory: Path) -> list[Path]:
    """Every `*.yaml` / `*.yml` file under the directory, in a stable order, hidden ones skipped.

    The extension is matched in any case (`b.YAML` is read, as a case-insensitive file system
    would show it anyway). Links are listed like files; a link to a directory is listed when it
    leads out of the catalog directory, so the loader refuses it rather than skip it silently.
    """
    found: list[Path] = []
    root = directory.resolve()
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in dirnames:
            linked = Path(dirpath) / name
            if linked.is_symlink() and not _inside(linked, root):
                found.append(linked)
        for name in sorted(filenames):
            if name.lower().endswith((".yaml", ".yml")) and not name.startswith("."):
                found.append(Path(dirpath) / name)
    return sorted(found, key=lambda p: p.relative_to(directory).as_posix())


def _inside(path: Path, root: Path) -> bool:
    """Whether the path, links followed, is under `root` (itself resolved)."""
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError, ValueError):  # a link loop
        return False


def plain_file(path: Path, root: Path, *, max_bytes: int = MAX_FILE_BYTES) -> bool:
    """Whether the loader would read the file as it is: inside `root` (resolved) with links
    followed, a regular file (not a FIFO), at most `max_bytes`."""
    if not _inside(path, root):
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size <= max_bytes


def _shown(path: Path) -> str:
    """The path as people see it: relative to the working directory when it is under it."""
    if path.is_absolute():
        with contextlib.suppress(ValueError):
            return path.relative_to(Path.cwd()).as_posix()
    return path.as_posix()


def validate_directory(
    directory: Path,
    *,
    cache_path: Path | None = None,
    overrides: Mapping[str, bytes] | None = None,
    limits: Limits | None = None,
    facts: bool = False,
) -> Report:
    """Check every catalog file under `directory`; the catalog, or every problem, located.

    `overrides` (path relative to the directory -> bytes) are checked instead of what is on
    disk, new files among them too: how a command checks the files it is about to write.
    `limits`: what the platform the catalog is for can hold (`rules.limit_findings`); None
    checks the catalog on its own terms only. `facts`: give each file's `FileFacts` (what an
    incremental plan keeps)."""
    directory = Path(directory)
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        problem = Problem(
            _shown(directory), 1, 1, "", f"the catalog directory {what}", "pass --catalog DIR"
        )
        return Report(None, [problem])
    # Parsing allocates millions of small objects that all stay alive until the end; the cyclic
    # garbage collector would rescan them over and over for nothing, so it waits until we are done.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _validate(directory, cache_path, overrides or {}, limits, facts=facts)
    finally:
        if gc_was_enabled:
            gc.enable()


def _validate(
    directory: Path,
    cache_path: Path | None,
    overrides: Mapping[str, bytes],
    limits: Limits | None = None,
    *,
    facts: bool = False,
) -> Report:
    cache_ = _Cache(cache_path)
    loaded: list[_LoadedFile] = []
    root = directory.resolve()
    paths = catalog_files(directory)
    known = {p.relative_to(directory).as_posix() for p in paths}
    paths.extend(directory / rel for rel in sorted(overrides) if rel not in known)
    for path in paths:
        rel = path.relative_to(directory).as_posix()
        shown = _shown(path)
        loaded.append(_load_file(path, rel, shown, cache_, root, content=overrides.get(rel)))
    problems = [p for f in loaded for p in f.problems]

    check = rules.cross_check([_as_dict(f.raw) for f in loaded])
    for clash in check.clashes:
        first_where = loaded[clash.first.file].where(clash.first.path)
        message, hint = rules.clash_message(clash, first_where)
        problems.append(loaded[clash.at.file].locate(Finding(clash.at.path, message, hint)))
    warnings = sorted((loaded[i].locate(f) for i, f in check.warnings), key=Problem.sort_key)

    # Prices the catalog itself says are wrong (a price of 0, one under its supply price).
    datas = [_as_dict(f.raw) for f in loaded]
    problems.extend(loaded[n].locate(f) for n, f in guardrails.catalog_findings(datas))

    if limits is not None:
        for n, data in enumerate(datas):
            cannot, said = rules.limit_findings(data, limits)
            problems.extend(loaded[n].locate(f) for f in cannot)
            warnings.extend(loaded[n].locate(f) for f in said)
        warnings.sort(key=Problem.sort_key)

    hashes, image_findings = _check_images(directory, loaded, cache_)
    problems.extend(loaded[i].locate(f) for i, f in image_findings)

    products = variants = 0
    for f in loaded:
        raw = _as_dict(f.raw).get("products")
        if isinstance(raw, list):
            products += len(raw)
            variants += sum(
                len(p["variants"])
                for p in raw
                if isinstance(p, dict) and isinstance(p.get("variants"), list)
            )
    cache_.save()
    problems.sort(key=Problem.sort_key)
    # A value already refused (a handle the schema does not take) gets no warning as well.
    refused = {(p.file, p.path) for p in problems}
    warnings = [w for w in warnings if (w.file, w.path) not in refused]
    catalog = None
    kept: list[FileFacts] = []
    if not problems:
        catalog = _build([f.data for f in loaded if f.data is not None], hashes)
        if facts:
            kept = [file_facts(f.rel, f.text_bytes or b"", f.data or {}) for f in loaded]
    return Report(
        catalog,
        problems,
        files=len(loaded),
        products=products,
        variants=variants,
        warnings=warnings,
        facts=kept,
        image_hashes=hashes,
    )


def _as_dict(raw: object) -> dict[str, Any]:
    return raw if isinstance(raw, dict) else {}


def _load_file(
    path: Path, rel: str, shown: str, cache_: _Cache, root: Path, *, content: bytes | None = None
) -> _LoadedFile:
    def fail(message: str, hint: str | None = None) -> _LoadedFile:
        return _LoadedFile(rel, shown, None, None, None, [Problem(shown, 1, 1, "", message, hint)])

    if content is not None:
        raw = content  # what a command is about to write, checked before it is written
    elif not _inside(path, root):
        return fail(
            "a link to outside the catalog directory",
            "copy the file into the catalog directory, or remove the link",
        )
    else:
        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):  # a FIFO or a link to /dev/zero would never end
                return fail("not a regular file", "catalog files must be plain files")
            if st.st_size > MAX_FILE_BYTES:
                return fail(
                    f"the file is {st.st_size / 1048576:.1f} MB, more than "
                    f"{MAX_FILE_BYTES // 1048576} MB",
                    "split it into several files",
                )
            with path.open("rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            return fail(f"cannot read the file: {exc.strerror}")
    if len(raw) > MAX_FILE_BYTES:  # it grew between stat and read
        return fail(
            f"the file is more than {MAX_FILE_BYTES // 1048576} MB", "split it into several files"
        )
    key = hashlib.sha256(rel.encode() + b"\0" + raw).hexdigest()
    data = cache_.file(key)
    if data is not None:
        return _LoadedFile(rel, shown, raw, data, data, [])
    result = _check_file(rel, raw)
    problems = [Problem(shown, line, col, p, m, h) for line, col, p, m, h in result.problems]
    if result.data is not None:
        if result.cacheable:
            cache_.put_file(key, result.data)
        return _LoadedFile(rel, shown, raw, result.data, result.data, [])
    return _LoadedFile(rel, shown, raw, None, result.raw, problems)


def load_catalog(
    directory: Path, *, cache_path: Path | None = None, limits: Limits | None = None
) -> Catalog:
    """The validated, canonical catalog; `CatalogInvalid` with every problem otherwise
    (`limits`: as `validate_directory` checks them)."""
    catalog = load_report(directory, cache_path=cache_path, limits=limits).catalog
    assert catalog is not None
    return catalog


def load_report(
    directory: Path,
    *,
    cache_path: Path | None = None,
    limits: Limits | None = None,
    facts: bool = False,
) -> Report:
    """`load_catalog`'s report: a valid catalog (with its files' facts when asked), or
    `CatalogInvalid`."""
    report = validate_directory(directory, cache_path=cache_path, limits=limits, facts=facts)
    if report.catalog is None:
        first = report.problems[0] if report.problems else None
        more = len(report.problems) - 1
        tail = f" (and {_plural(more, 'more problem')})" if more > 0 else ""
        raise CatalogInvalid(
            f'{first}{tail}; run "catalog validate" to see every problem',
            list(report.problems),
        )
    return report


# --- one file again, for an incremental plan ----------------------------------------------------


@dataclass(frozen=True)
class FileFacts:
    """What an incremental plan (`reconciler.incremental`) keeps of one valid catalog file to
    tell, when the file changes, whether only its products' own values did: its bytes' sha256,
    a digest of what it declares besides products (`head`), a digest of every value the
    checks across files read (`signature`: handles, SKUs, barcodes, names of brands,
    suppliers, categories, tags and options), and its products' handles in order.

    `chunks`, when the file's products are a plain block list at its end (`split_products`):
    the sha256 of the text before the list (`prefix`), and per product the sha256 of its item's
    text and the digest of its part of the signature, so an edited file is parsed again only
    item by item, for the items whose text changed."""

    rel: str
    sha256: str
    head: str
    signature: str
    handles: tuple[str, ...]
    prefix: str | None = None
    chunks: tuple[tuple[str, str], ...] | None = None

    def to_json(self) -> Json:
        return [
            self.rel,
            self.sha256,
            self.head,
            self.signature,
            list(self.handles),
            self.prefix,
            None if self.chunks is None else [list(c) for c in self.chunks],
        ]

    @staticmethod
    def from_json(data: Any) -> FileFacts:
        rel, sha256, head, signature, handles, prefix, chunks = data
        return FileFacts(
            str(rel),
            str(sha256),
            str(head),
            str(signature),
            tuple(handles),
            None if prefix is None else str(prefix),
            None if chunks is None else tuple((str(a), str(b)) for a, b in chunks),
        )


def _digest_json(data: object) -> str:
    blob = json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_decimal_default
    )
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


_CROSS_KEYS = ("handle", "sku", "barcode", "brand", "supplier", "category", "tags", "options")


def _cross_digest(p: Mapping[str, Any]) -> str:
    """A digest of every value of one product the checks across files read."""
    values = [p.get(k) for k in _CROSS_KEYS]
    values.append([[v.get("sku"), v.get("barcode")] for v in p.get("variants") or ()])
    return _digest_json(values)


def _signature(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def split_products(text: str) -> tuple[str, list[str]] | None:
    """(the text before the products, each product item's text) of a file whose last top-level
    key is a block list `products:` (the way `catalog` writes files and people keep them); None
    for any other layout. An item runs from its `- ` line at the list's indent to the next one;
    a file is only taken item by item when it has as many items as its parse has products."""
    lines = text.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip() == "products:")
    except StopIteration:
        return None
    indent: str | None = None
    starts: list[int] = []
    for i in range(start + 1, len(lines)):
        line = lines[i]
        body = line.lstrip(" ")
        if not body.strip() or body.startswith("#"):
            continue
        lead = line[: len(line) - len(body)]
        if indent is None:
            if not body.startswith("- "):
                return None
            indent = lead
        if lead == indent and body.startswith("- "):
            starts.append(i)
        elif len(lead) <= len(indent):
            return None  # another key after the list, a document marker, a flow item
    if not starts:
        return None
    starts.append(len(lines))
    prefix = "".join(lines[: starts[0]])
    return prefix, ["".join(lines[a:b]) for a, b in itertools.pairwise(starts)]


def _has_anchors(text: str) -> bool:
    """Whether the text defines a YAML anchor (or cannot be parsed, to be safe): an item that
    another item aliases cannot be read again on its own, so such a file is read whole."""
    if "&" not in text:
        return False
    try:
        return any(getattr(e, "anchor", None) is not None for e in yaml.parse(text, _Parser))
    except yaml.YAMLError:
        return True


def file_facts(rel: str, raw: bytes, data: Mapping[str, Any]) -> FileFacts:
    """The facts of one valid file (its bytes and checked data)."""
    products = data.get("products") or []
    head = {k: v for k, v in data.items() if k != "products"}
    parts = [_cross_digest(p) for p in products]
    prefix: str | None = None
    chunks: tuple[tuple[str, str], ...] | None = None
    text, _ = _decode(raw)
    split = split_products(text) if text is not None else None
    if split is not None and len(split[1]) == len(products) and not _has_anchors(text or ""):
        prefix = _sha(split[0])
        chunks = tuple((_sha(chunk), part) for chunk, part in zip(split[1], parts, strict=True))
    return FileFacts(
        rel=rel,
        sha256=hashlib.sha256(raw).hexdigest(),
        head=_digest_json(head),
        signature=_signature(parts),
        handles=tuple(str(p["handle"]) for p in products),
        prefix=prefix,
        chunks=chunks,
    )


@dataclass(frozen=True)
class ChangedFile:
    """A catalog file read again on its own (`check_changed_file`): its facts, its products, and
    the sha256 of each image they name."""

    facts: FileFacts
    products: tuple[Product, ...]
    image_hashes: dict[str, str]


def check_changed_file(
    directory: Path,
    rel: str,
    *,
    settings: Mapping[str, Any],
    limits: Limits | None,
) -> ChangedFile | None:
    """One file of a catalog that was valid, read again and checked on its own the way the whole
    load checks it (schema, rules, prices under `settings` (the catalog's raw settings), the
    platform's `limits`, its images); None when anything is wrong or unusual (the file is
    missing or unreadable, or has a problem), so the caller loads the whole catalog, which
    reports it. The checks across files are the caller's: they read only what `FileFacts`
    digests as its `signature`."""
    root = directory.resolve()
    loaded = _load_file(directory / rel, rel, rel, _Cache(None), root)
    if loaded.data is None or loaded.problems:
        return None
    return _checked(directory, rel, loaded, settings=settings, limits=limits)


def check_changed_items(
    directory: Path,
    rel: str,
    raw: bytes,
    before: FileFacts,
    *,
    settings: Mapping[str, Any],
    limits: Limits | None,
) -> tuple[FileFacts, dict[str, Product]] | None:
    """`check_changed_file` item by item: when the file's text before its products is as it was
    and it has as many items (`FileFacts.chunks`), only the items whose text changed are parsed
    and checked, each as a file of its own, and must keep their handle and their part of the
    signature. Returns the file's new facts and the changed items' products by handle; None when
    the file must be checked whole."""
    text, _ = _decode(raw)
    split = split_products(text) if text is not None and before.chunks is not None else None
    if split is None or before.chunks is None or before.prefix != _sha(split[0]):
        return None
    items = split[1]
    if len(items) != len(before.chunks):
        return None
    chunks = list(before.chunks)
    products: dict[str, Product] = {}
    for n, item in enumerate(items):
        sha = _sha(item)
        if sha == chunks[n][0]:
            continue
        if _has_anchors(item):
            return None  # other items may alias it: the file is checked whole
        # Checked as a file of its own that is not the root file (its settings are unchanged).
        one = _load_file(
            directory / rel,
            f"{rel}#item",
            rel,
            _Cache(None),
            directory.resolve(),
            content=("products:\n" + item).encode("utf-8", "surrogatepass"),
        )
        if one.data is None or one.problems or set(one.data) != {"products"}:
            return None
        changed = _checked(directory, rel, one, settings=settings, limits=limits)
        if changed is None or len(changed.products) != 1:
            return None
        part = _cross_digest(one.data["products"][0])
        if part != chunks[n][1] or changed.products[0].handle != before.handles[n]:
            return None
        chunks[n] = (sha, part)
        products[changed.products[0].handle] = changed.products[0]
    facts = FileFacts(
        rel=rel,
        sha256=hashlib.sha256(raw).hexdigest(),
        head=before.head,
        signature=before.signature,
        handles=before.handles,
        prefix=before.prefix,
        chunks=tuple(chunks),
    )
    return facts, products


def _checked(
    directory: Path,
    rel: str,
    loaded: _LoadedFile,
    *,
    settings: Mapping[str, Any],
    limits: Limits | None,
) -> ChangedFile | None:
    """A file (or one item of it) checked the way the whole load checks it, given its parse."""
    data = loaded.data
    assert data is not None
    if guardrails.catalog_findings([{"settings": dict(settings)}, data]):
        return None
    if limits is not None:
        cannot, _ = rules.limit_findings(data, limits)
        if cannot:
            return None
    hashes, findings = _check_images(directory, [loaded], _Cache(None))
    if findings:
        return None
    products = tuple(_product(p, hashes) for p in data.get("products") or ())
    return ChangedFile(file_facts(rel, loaded.text_bytes or b"", data), products, hashes)


def product_from_data(data: Mapping[str, Any]) -> Product:
    """A product from the canonical data an incremental plan kept of it (`product_record`)."""
    hashes = {str(path): str(sha) for path, sha in data.get("image_hashes") or ()}
    return _product({k: v for k, v in data.items() if k != "image_hashes"}, hashes)


# --- writing ------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style with list items indented under their key, as people write catalogs."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


# Text that a YAML 1.2 reader (editors, other tools) would take for a number, although YAML 1.1
# (PyYAML, this loader) reads it as text: "0000000010009" plain is 10009 to them. Quote it.
_NUMERIC_LOOKING = re.compile(r"[-+]?(\.?[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?|0o[0-7]+)")


def looks_numeric(text: str) -> bool:
    """Whether a YAML 1.2 reader would take this plain text for a number (so write it quoted)."""
    return _NUMERIC_LOOKING.fullmatch(text) is not None


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Multi-line text (descriptions) reads best as a literal block; the emitter falls back to
    # quoting by itself when a block cannot represent the text exactly.
    style = "|" if "\n" in value else None
    if _NUMERIC_LOOKING.fullmatch(value):
        style = "'"
    if "\x85" in value or "\u2028" in value or "\u2029" in value:
        # YAML reads these as line breaks; PyYAML's emitter writes them raw in plain, single-quoted
        # and block styles, where they come back as a space or "\n". Double quotes escape them.
        style = '"'
    return dumper.represent_scalar(_STR, value, style=style)


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    # Quoted text: loads back as exactly these digits, never through a float.
    return dumper.represent_scalar(_STR, format(value, "f"))


_Dumper.add_representer(str, _represent_str)
_Dumper.add_multi_representer(str, lambda d, v: _represent_str(d, str(v)))  # StrEnum values
_Dumper.add_representer(Decimal, _represent_decimal)
_Dumper.add_representer(tuple, lambda d, v: d.represent_list(list(v)))


def to_yaml(data: object) -> str:
    """Deterministic YAML for catalog-shaped data: keys in the given order, block style, unicode
    kept, and strings quoted whenever YAML would otherwise read them as something else."""
    text: str = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1_000_000,
    )
    return text


def dump_catalog(catalog: Catalog) -> str:
    """The whole catalog as the text of one `catalog.yaml` (loads back to an equal catalog)."""
    data = catalog_to_data(catalog)
    data.pop("image_hashes", None)
    return to_yaml(data)


__all__ = [
    "MAX_ALIAS_BYTES",
    "MAX_ALIAS_VALUES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "Report",
    "catalog_files",
    "dump_catalog",
    "load_catalog",
    "parse_yaml",
    "schema_path",
    "schema_text",
    "to_yaml",
    "validate_directory",
]


def parse_cache_path(state_path: Path) -> Path:
    """The parse cache lives beside the state file (`.catalog/parse-cache`)."""
    return state_path.parent / "parse-cache"
