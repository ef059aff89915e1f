"""Renderings of one Plan: text for a terminal, markdown for a pull-request comment, JSON.

Pure: a Plan in, a string out. Written for the people reviewing a catalog change, in their
words ("price 25.00 -> 27.00", "new variant", "changed in the store since the last apply"),
never the API's (no ids, endpoints or field names like `price_including_tax`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator

from reconciler import guardrails
from reconciler.model import Json
from reconciler.plan import Action, Change, FieldChange, Kind, Plan

MARKDOWN_LIMIT = 60_000  # GitHub refuses comments over 65,536 characters; keep a margin

_LABELS = {
    "name": "name",
    "sku": "SKU",
    "description": "description",
    "brand": "brand",
    "supplier": "supplier",
    "supplier_code": "supplier code",
    "category": "category",
    "tags": "tags",
    "active": "active",
    "price": "price",
    "supply_price": "supply price",
    "barcode": "barcode",
    "options": "options",
    "position": "position",
    "parent": "inside category",
    "file": "file",
}
_KIND_WORDS = {
    Kind.BRAND: "brand",
    Kind.SUPPLIER: "supplier",
    Kind.TAG: "tag",
    Kind.ATTRIBUTE: "variant option",
    Kind.CATEGORY: "category",
    Kind.PRODUCT: "product",
    Kind.VARIANT: "variant",
    Kind.IMAGE: "image",
}
_SIGNS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.ADOPT: "=",
    Action.DEACTIVATE: "-",
    Action.DELETE: "-",
    Action.NOOP: " ",
}
DRIFT_NOTE = "changed in the store since the last apply; applying overwrites that edit"
_NAME_KINDS = (Kind.BRAND, Kind.SUPPLIER, Kind.TAG, Kind.ATTRIBUTE, Kind.CATEGORY)


# -- words shared by the text and markdown renderings ---------------------------------------


def label(field: str) -> str:
    return _LABELS.get(field, field.replace("_", " "))


def show(field: str, value: Json) -> str:
    """A value as a reviewer reads it."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "(none)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    if field in {"description", "name", "supplier_code"}:
        text = str(value).replace("\n", " ")
        if len(text) > 80:
            text = text[:77] + "..."
        return json.dumps(text, ensure_ascii=False)
    return str(value)


def summary_line(plan: Plan) -> str:
    """`Plan: 3 to create, 12 to update, 0 to deactivate. 19 API requests, about 17 s ...`"""
    if not plan.has_changes:
        return (
            f"No changes. The store matches the catalog ({plan.unchanged} objects compared); "
            "applying would send nothing."
        )
    counts = plan.counts()
    parts = [
        f"{counts[Action.CREATE]} to create",
        f"{counts[Action.UPDATE]} to update",
        f"{counts[Action.DEACTIVATE]} to deactivate",
    ]
    if counts[Action.DELETE]:
        parts.append(f"{counts[Action.DELETE]} to delete")
    if counts[Action.ADOPT]:
        parts.append(f"{counts[Action.ADOPT]} to adopt (already identical, nothing written)")
    n = plan.estimate.requests
    return (
        f"Plan: {', '.join(parts)}. {n} API request{'s' if n != 1 else ''}{_units(plan)}, "
        f"about {duration(plan.estimate.seconds)} at this store's rate limit."
    )


def _units(plan: Plan) -> str:
    """What the requests cost in a leaky bucket's units, when the store prices them so."""
    units = plan.estimate.units
    return "" if units is None else f" ({units:g} units of the store's bucket)"


def _rate_limit_text(plan: Plan) -> str:
    est = plan.estimate
    if est.bucket:
        drip = est.rate_limit / est.window_seconds
        return f"leaky bucket of {est.rate_limit} units draining {drip:g} a second"
    return f"rate limit of {est.rate_limit} requests per {duration(est.window_seconds)}"


def duration(seconds: float) -> str:
    """Seconds in words a plan reader skims: "1 s" for any part of a second, "4 min", "2.5 h"."""
    if 0 < seconds < 1:
        return "1 s"
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def headline(change: Change) -> str:
    """What happens to one object, in a few words."""
    kind = _KIND_WORDS[change.kind]
    if change.kind is Kind.PRODUCT:
        variants = [c for c in change.children if c.kind is Kind.VARIANT]
        if change.action is Action.CREATE:
            return f"new product{_with_variants(len(variants))}"
        if change.action is Action.UPDATE:
            return "update"
        if change.action is Action.ADOPT:
            return "already in the store and identical: recorded as managed, nothing written"
        if change.action is Action.DEACTIVATE:
            return "no longer in the catalog: set inactive (not sold), kept in the store"
        if change.action is Action.DELETE:
            return "no longer in the catalog: deleted from the store with all its variants"
    if change.action is Action.CREATE:
        return f"new {kind}"
    if change.action is Action.UPDATE:
        return f"change {kind}"
    if change.action is Action.ADOPT:
        return f"{kind} already identical"
    if change.action is Action.DEACTIVATE:
        return f"{kind} no longer in the catalog: set inactive"
    if change.action is Action.DELETE:
        return f"{kind} no longer in the catalog: deleted from the store"
    return kind


def _with_variants(n: int) -> str:
    return f" with {n} variant{'s' if n != 1 else ''}" if n else ""


def field_text(fc: FieldChange, *, created: bool) -> str:
    if created:
        return f"{label(fc.field)} {show(fc.field, fc.after)}"
    return f"{label(fc.field)} {show(fc.field, fc.before)} -> {show(fc.field, fc.after)}"


def _name_line(change: Change) -> str:
    kind = _KIND_WORDS[change.kind]
    if change.action is Action.CREATE:
        extra = [
            field_text(f, created=True)
            for f in change.fields
            if f.field not in {"name"} and f.after not in (None, "")
        ]
        tail = f" ({'; '.join(extra)})" if extra else ""
        return f"new {kind} {change.key}{tail}"
    changes = "; ".join(field_text(f, created=False) for f in change.fields)
    return f"{kind} {change.key}: {changes}"


def _child_line(child: Change) -> str:
    kind = _KIND_WORDS[child.kind]
    if child.action is Action.CREATE:
        values = ", ".join(_create_value(f) for f in child.fields if f.after is not None)
        return f"new {kind} {child.key}" + (f": {values}" if values else "")
    if child.action is Action.UPDATE:
        return f"{kind} {child.key}: " + "; ".join(
            field_text(f, created=False) for f in child.fields
        )
    return f"{kind} {child.key}: {headline(child).removeprefix(kind + ' ')}"


def _create_value(fc: FieldChange) -> str:
    if fc.field == "options":
        return show(fc.field, fc.after)
    return f"{label(fc.field)} {show(fc.field, fc.after)}"


def _store_line(plan: Plan) -> str:
    mode = "before tax (tax-exclusive store)" if plan.tax_exclusive else "including tax"
    bits = [f"Store: {plan.store}; prices are {mode}"]
    if plan.git_commit:
        bits.append(f"catalog commit {plan.git_commit[:12]}")
    return "; ".join(bits) + "."


# -- text ------------------------------------------------------------------------------------

_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROL.update({0x2028: "\\u2028", 0x2029: "\\u2029"})


def literal(text: str) -> str:
    """User text made safe for a terminal line: control characters (an escape sequence, a
    carriage return, a line break inside a name) are shown as `\\xNN`, never acted on."""
    return text.translate(_CONTROL)


_COLOURS = {"+": "32", "~": "33", "-": "31", "=": "36", "!": "35"}


def render_text(plan: Plan, *, color: bool = False) -> str:
    """The terminal rendering: names first, then one block per product, then the summary."""

    def paint(sign: str, text: str) -> str:
        text = literal(text)
        code = _COLOURS.get(sign)
        return f"\x1b[{code}m{text}\x1b[0m" if color and code else text

    lines: list[str] = [paint("!", line) for line in _guardrail_lines(plan)]
    lines += [_store_line(plan), ""]
    names = [c for c in plan.changes if c.kind in _NAME_KINDS]
    if names:
        lines.append("Created or changed first, so products can use them:")
        for c in names:
            sign = _SIGNS[c.action]
            lines.append(paint(sign, f"  {sign} {_name_line(c)}"))
            lines.extend(_drift_lines(c.fields, paint, indent="      "))
        lines.append("")
    for c in plan.changes:
        if c.kind in _NAME_KINDS:
            continue
        sign = _SIGNS[c.action]
        lines.append(paint(sign, f"{sign} {c.key}: {headline(c)}"))
        if c.action is not Action.ADOPT:
            for fc in c.fields:
                created = c.action is Action.CREATE
                lines.append(paint(sign, f"    {sign} {field_text(fc, created=created)}"))
                lines.extend(_drift_lines((fc,), paint, indent="        "))
            for child in c.children:
                if child.action is Action.ADOPT:
                    continue
                csign = _SIGNS[child.action]
                lines.append(paint(csign, f"    {csign} {_child_line(child)}"))
                lines.extend(_drift_lines(child.fields, paint, indent="        "))
        if c.note:
            lines.append(literal(f"    ({c.note})"))
    if plan.changes:
        lines.append("")
    for notice in plan.notices:
        lines.append(paint("!", f"! {notice}"))
    if plan.notices:
        lines.append("")
    lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


def _guardrail_lines(plan: Plan) -> list[str]:
    """First in the text: what breaks a guardrail, so nobody scrolls past it."""
    if not plan.violations:
        return []
    lines = [f"! {guardrails.headline(plan)}"]
    for v in plan.violations:
        allowed = guardrails.allowed_by(v)
        lines.append(
            f"!   {v.rule}: {guardrails.describe(v)}" + (f" [{allowed}]" if allowed else "")
        )
    return [*lines, ""]


def _drift_lines(
    fields: Iterable[FieldChange], paint: Callable[[str, str], str], *, indent: str
) -> list[str]:
    return [paint("!", f"{indent}! {label(f.field)}: {DRIFT_NOTE}") for f in fields if f.drift]


# -- markdown --------------------------------------------------------------------------------

_MD_ICONS = {
    Action.CREATE: "🟢",
    Action.UPDATE: "🟡",
    Action.ADOPT: "⚪",
    Action.DEACTIVATE: "🔴",
    Action.DELETE: "🔴",
    Action.NOOP: "",
}


def _code(text: str) -> str:
    """Inline code: the one place GitHub shows text literally (no markdown, HTML, `:emoji:` or
    @mention is interpreted inside it), so every piece of user text goes through here."""
    text = literal(text.replace("\r", " ").replace("\n", " "))
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if runs else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(text: str) -> str:
    """A table cell: inline code so HTML in descriptions shows as text; pipes escaped."""
    return _code(text.replace("|", "\\|"))


def render_markdown(plan: Plan, *, limit: int = MARKDOWN_LIMIT) -> str:
    """A pull-request comment: a summary table, then one collapsible section per product.

    Kept under `limit` characters: sections that do not fit are counted in a closing line
    pointing at the plan artifact.
    """
    counts = plan.counts()
    head = [
        "### Catalog plan",
        "",
        *_guardrail_markdown(plan),
        f"**{summary_line(plan)}**",
        "",
        "| Action | Count |",
        "|---|---:|",
        f"| {_MD_ICONS[Action.CREATE]} to create | {counts[Action.CREATE]} |",
        f"| {_MD_ICONS[Action.UPDATE]} to update | {counts[Action.UPDATE]} |",
        f"| {_MD_ICONS[Action.DEACTIVATE]} to deactivate | {counts[Action.DEACTIVATE]} |",
        f"| {_MD_ICONS[Action.DELETE]} to delete | {counts[Action.DELETE]} |",
        f"| {_MD_ICONS[Action.ADOPT]} to adopt (identical, nothing written) | "
        f"{counts[Action.ADOPT]} |",
        f"| unchanged | {plan.unchanged} |",
        "",
        _store_line(plan)
        + f" The apply costs {plan.estimate.requests} API requests{_units(plan)}, about "
        + f"{duration(plan.estimate.seconds)} at this store's {_rate_limit_text(plan)}.",
        "",
    ]
    drift = sum(1 for c in plan.all_changes() for f in c.fields if f.drift)
    if drift:
        head += [
            f"> **Warning:** {drift} field{'s were' if drift != 1 else ' was'} changed in the "
            "store since the last apply (marked ⚠ below); applying this plan overwrites "
            "those edits.",
            "",
        ]
    if plan.notices:
        head.append("> **Notes**")
        head.extend(f"> - {_code(notice)}" for notice in plan.notices)
        head.append("")
    # (section, how many object changes it shows), in plan order
    sections: list[tuple[str, int]] = []
    names = [c for c in plan.changes if c.kind in _NAME_KINDS]
    if names:
        rows = [
            f"- {_MD_ICONS[c.action]} {_code(_name_line(c))}"
            + (" ⚠ " + DRIFT_NOTE if any(f.drift for f in c.fields) else "")
            for c in names
        ]
        title = f"Brands, suppliers, tags, options and categories ({len(names)})"
        sections.append((_details(title, rows), len(names)))
    for c in plan.changes:
        if c.kind not in _NAME_KINDS:
            changed = sum(1 for x in c.walk() if x.action not in (Action.NOOP, Action.ADOPT))
            sections.append((_product_section(c), max(1, changed)))
    footer_room = 200
    out = "\n".join(head) + "\n"
    shown = 0
    for section, _ in sections:
        if len(out) + len(section) + footer_room > limit:
            break
        out += section
        shown += 1
    hidden = sum(n for _, n in sections[shown:])
    if hidden:
        out += (
            f"\n**{hidden} more change{'s' if hidden != 1 else ''} not shown; see the plan "
            "artifact** (the full plan as JSON).\n"
        )
    return out


def _guardrail_markdown(plan: Plan) -> list[str]:
    """First in the comment: a caution block listing every violation."""
    if not plan.violations:
        return []
    blocking = any(v.allowed is None for v in plan.violations)
    lines = [
        f"> [!{'CAUTION' if blocking else 'NOTE'}]",
        f"> **Guardrails:** {_html(guardrails.headline(plan))}",
        ">",
        "> | Rule | Product | Field | Before | After | Why |",
        "> |---|---|---|---|---|---|",
    ]
    for v in plan.violations:
        where = v.product if v.key == v.product else f"{v.product} / {v.key}"
        why = v.detail + (f"; {guardrails.allowed_by(v)}" if v.allowed else "")
        lines.append(
            f"> | {v.rule} | {_cell(where)} | {label(v.field)} | {_cell(show(v.field, v.before))} "
            f"| {_cell(show(v.field, v.after))} | {_html(why)} |"
        )
    return [*lines, ""]


def _details(summary: str, rows: list[str]) -> str:
    body = "\n".join(rows)
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>\n\n"


def _product_section(c: Change) -> str:
    title = f"{_MD_ICONS[c.action]} <code>{_html(c.key)}</code>: {_html(headline(c))}"
    if c.action is Action.ADOPT:
        return f"<details><summary>{title}</summary>\n\nNothing to write.\n\n</details>\n\n"
    rows = ["| | What | Field | Before | After |", "|---|---|---|---|---|"]
    created = c.action is Action.CREATE
    for fc in c.fields:
        rows.append(_md_row(_SIGNS[c.action], "product", fc, created=created))
    for child in c.children:
        if child.action is Action.ADOPT:
            continue
        word = _KIND_WORDS[child.kind]
        what = f"{'new ' if child.action is Action.CREATE else ''}{word} {_cell(child.key)}"
        sign = _SIGNS[child.action]
        if child.action is Action.CREATE:
            values = "; ".join(_create_value(f) for f in child.fields if f.after is not None)
            rows.append(f"| {sign} | {what} | | | {_cell(values) if values else ''} |")
        elif not child.fields:
            rows.append(f"| {sign} | {what} | | | {_html(headline(child))} |")
        for fc in child.fields if child.action is not Action.CREATE else ():
            rows.append(_md_row(sign, what, fc, created=False))
    if c.note:
        rows += ["", _code(c.note)]
    return _details(title, rows)


def _md_row(sign: str, what: str, fc: FieldChange, *, created: bool) -> str:
    before = "" if created else _cell(show(fc.field, fc.before))
    after = _cell(show(fc.field, fc.after))
    if fc.drift:
        after += f" ⚠ {DRIFT_NOTE}"
    return f"| {sign} | {what} | {label(fc.field)} | {before} | {after} |"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- json ------------------------------------------------------------------------------------


def plan_document(plan: Plan) -> dict[str, Json]:
    """The JSON document: the plan's own JSON plus its digest (what apply records)."""
    return {**plan.to_json(), "plan_digest": plan_digest(plan)}


def render_json(plan: Plan) -> str:
    return "".join(iter_json(plan))


def iter_json(plan: Plan) -> Iterator[str]:
    """The plan document in pieces, one change at a time, so a plan of 10,000 products is
    never held as one big dict or string (the JSON of `plan_document`, indented)."""
    head = plan.to_json_head()
    yield "{\n"
    for key, value in head.items():
        yield f"  {json.dumps(key)}: {_indented(value, 2)},\n"
    yield '  "changes": ['
    for n, change in enumerate(plan.changes):
        yield ("," if n else "") + "\n    " + _indented(change.to_json(), 4)
    yield "\n  ],\n" if plan.changes else "],\n"
    yield '  "live_versions": '
    yield from _indented_entries(plan.live_versions(), 2)
    yield ",\n"
    if plan.extra:
        yield f'  "extra": {_indented(plan.extra, 2)},\n'
    yield f'  "plan_digest": {json.dumps(plan_digest(plan))}\n}}\n'


# What `json.dumps(value, indent=2, ensure_ascii=False)` and `json.dumps(value, sort_keys=True,
# separators=(",", ":"))` use, made once: a plan of 100,000 families encodes a million values.
_PRETTY = json.JSONEncoder(indent=2, ensure_ascii=False)
_COMPACT = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def _indented(value: Json, level: int) -> str:
    return _PRETTY.encode(value).replace("\n", "\n" + " " * level)


def _indented_entries(mapping: dict[str, Json], level: int) -> Iterator[str]:
    """`_indented(mapping, level)` one entry at a time: a plan of 100,000 families sees some
    600,000 live versions, and their JSON as one string (built by the pure-Python encoder that
    indenting takes) was the largest allocation of the render."""
    if not mapping:
        yield "{}"
        return
    pad = " " * (level + 2)
    for n, (key, value) in enumerate(mapping.items()):
        head = ("{\n" if not n else ",\n") + pad + _PRETTY.encode(key) + ": "
        yield head + _indented(value, level + 2)
    yield "\n" + " " * level + "}"


def _compact_entries(mapping: dict[str, Json]) -> Iterator[bytes]:
    """`json.dumps(mapping, sort_keys=True, separators=(",", ":")).encode()` in pieces."""
    yield b"{"
    for n, key in enumerate(sorted(mapping)):
        piece = _COMPACT.encode(mapping[key])
        yield (("," if n else "") + json.dumps(key) + ":" + piece).encode()
    yield b"}"


def plan_digest(plan: Plan) -> str:
    """`Plan.digest()` computed one change at a time (same bytes hashed, far less memory):
    sha256 of the plan's JSON without `created_at`, keys sorted, compact."""
    digest = hashlib.sha256()
    data = {**plan.to_json_head(), "changes": None, "live_versions": plan.live_versions()}
    data.pop("created_at", None)
    if plan.extra:
        data["extra"] = plan.extra
    digest.update(b"{")
    for n, key in enumerate(sorted(data)):
        digest.update(("," if n else "").encode() + json.dumps(key).encode() + b":")
        if key == "changes":
            digest.update(b"[")
            for i, change in enumerate(plan.changes):
                blob = json.dumps(change.to_json(), sort_keys=True, separators=(",", ":"))
                digest.update((("," if i else "") + blob).encode())
            digest.update(b"]")
        elif key == "live_versions":
            for piece in _compact_entries(data[key]):
                digest.update(piece)
        else:
            digest.update(json.dumps(data[key], sort_keys=True, separators=(",", ":")).encode())
    digest.update(b"}")
    return digest.hexdigest()
