"""Writing values back into the catalog files: `catalog pull` and `catalog merge`.

Both commands decide a list of value changes (which product or variant, which field, the value
now and the value to write), turn them into in-place edits of the files that declare those
values (`reconciler.yamledit`), and check the edited catalog with the project's validator before
anything is written. Platform-neutral: pull reads a `Plan` (whatever provider made it) and merge
reads rows of a supplier's file; neither talks to a store.

- Where a value lives: a product by `handle`, a variant or simple product by `sku`, in the file
  and at the index that declares it (`CatalogSource`).
- A variant that inherits a family value (`price`, `supply_price`, `active` written once on the
  family) gets a value of its own, unless every variant that inherits it takes the same new
  value: then the family's value is changed once.
- A file whose edits would make the catalog invalid is left untouched; `WriteBack.refused` says
  why in one sentence per file.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from reconciler.catalog import catalog_files, parse_yaml, validate_directory
from reconciler.csvexport import ExportTable, normalize_column
from reconciler.errors import CatalogError, UsageError
from reconciler.model import FORMAT_VERSION, Json, name_key
from reconciler.plan import Action, Kind, Plan
from reconciler.problems import JsonPath
from reconciler.render import label, show
from reconciler.yamledit import Document, Edit, EditError, Value, edit_text, scalar_text

# What pull can write back, by the plan's field names.
PULL_FIELDS = (
    "name",
    "description",
    "brand",
    "supplier",
    "supplier_code",
    "category",
    "tags",
    "price",
    "supply_price",
    "barcode",
    "active",
    "options",
)
# What merge can take from a supplier's file.
MERGE_FIELDS = ("supply_price", "price", "barcode", "supplier_code")
_MONEY_FIELDS = ("price", "supply_price")
_INHERITED = ("price", "supply_price", "active")  # a family value its variants fall back on


@dataclass(frozen=True)
class ValueChange:
    """One value written (or to be written): `line` is where it is (or is added) in `file`."""

    file: str
    line: int
    key: str  # the handle or SKU the value belongs to
    field: str
    before: Json
    after: Json
    source_lines: tuple[int, ...] = ()  # merge: the supplier file's lines it came from

    def to_json(self) -> dict[str, Json]:
        data = {
            "file": self.file,
            "line": self.line,
            "key": self.key,
            "field": self.field,
            "before": self.before,
            "after": self.after,
        }
        if self.source_lines:
            data["source_lines"] = list(self.source_lines)
        return data


@dataclass(frozen=True)
class Skipped:
    """Something not written, and why (`line`: the supplier file's line, for merge)."""

    key: str
    reason: str
    field: str | None = None
    line: int | None = None
    error: bool = False  # a row that could not be read (merge writes nothing unless --partial)

    def to_json(self) -> dict[str, Json]:
        return {
            "key": self.key,
            "field": self.field,
            "line": self.line,
            "reason": self.reason,
            "error": self.error,
        }


@dataclass
class WriteBack:
    """What a pull or merge decided: the changes, what was skipped, the new file contents."""

    changes: list[ValueChange] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> new content
    refused: dict[str, str] = field(default_factory=dict)  # relative path -> why not written
    created: list[str] = field(default_factory=list)  # merge --create-in: SKUs added

    def to_json(self, *, command: str, written: bool) -> dict[str, Json]:
        return {
            "format_version": FORMAT_VERSION,
            "command": command,
            "written": written,
            "files": sorted(self.files),
            "changes": [
                c.to_json() for c in sorted(self.changes, key=lambda c: (c.file, c.line, c.key))
            ],
            "created": list(self.created),
            "skipped": [s.to_json() for s in self.skipped],
            "refused": [{"file": f, "reason": r} for f, r in sorted(self.refused.items())],
        }


# --- where values live ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    rel: str
    product: int
    variant: int | None  # None: the product itself (a simple product, or family fields)


class CatalogSource:
    """The catalog files as text and data, and where each handle and SKU is declared.

    Read after the catalog has validated, so every file is readable and every key unique."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.texts: dict[str, str] = {}
        self.data: dict[str, dict[str, Any]] = {}
        self.handles: dict[str, _Place] = {}
        self.skus: dict[str, _Place] = {}
        for path in catalog_files(self.directory):
            rel = path.relative_to(self.directory).as_posix()
            text = path.read_bytes().decode("utf-8")
            self.texts[rel] = text
            data = parse_yaml(text.removeprefix("\ufeff"))
            self.data[rel] = data if isinstance(data, dict) else {}
            for i, p in enumerate(self.data[rel].get("products") or ()):
                self.handles[p["handle"]] = _Place(rel, i, None)
                if p.get("sku"):
                    self.skus[p["sku"]] = _Place(rel, i, None)
                for j, v in enumerate(p.get("variants") or ()):
                    self.skus[v["sku"]] = _Place(rel, i, j)

    def product(self, place: _Place) -> dict[str, Any]:
        product: dict[str, Any] = self.data[place.rel]["products"][place.product]
        return product

    def shown(self, rel: str) -> str:
        return (self.directory / rel).as_posix()


class _Edits:
    """Edits gathered per file, with the changes they make, before anything is written."""

    def __init__(self, source: CatalogSource) -> None:
        self.source = source
        self.by_file: dict[str, list[Edit]] = defaultdict(list)
        self.changes: dict[str, list[tuple[JsonPath, ValueChange]]] = defaultdict(list)
        self.paths: set[tuple[str, JsonPath]] = set()

    def add(
        self,
        place: _Place,
        path: JsonPath,
        *,
        key: str,
        field_name: str,
        before: Json,
        value: Value,
        source_lines: tuple[int, ...] = (),
    ) -> None:
        full: JsonPath = ("products", place.product, *path)
        if (place.rel, full) in self.paths:
            return  # a family value changed once for all its variants
        self.paths.add((place.rel, full))
        self.by_file[place.rel].append(Edit(full, value))
        line = 0  # set from the edited file once it is written (`_finish`)
        self.changes[place.rel].append(
            (
                full,
                ValueChange(
                    self.source.shown(place.rel),
                    line,
                    key,
                    field_name,
                    before,
                    _json(value),
                    source_lines,
                ),
            )
        )


def _json(value: Value) -> Json:
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


# --- pull: the store's drifted values into the catalog ----------------------------------------


def pull(
    plan: Plan,
    source: CatalogSource,
    *,
    fields: Sequence[str] = (),
    include_changes: bool = False,
) -> WriteBack:
    """The store's values of the plan's drifted fields, written where the catalog declares them.

    Only fields the plan marks `drift` (changed in the store since this tool applied them) are
    taken; with `include_changes`, every field the plan would change (for a catalog never
    applied from this state file, where drift cannot be told). Catalog edits not applied yet
    are otherwise kept: pulling them would undo a reviewed change. New store products are not
    added (that is `catalog import`)."""
    unknown = [f for f in fields if f not in PULL_FIELDS]
    if unknown:
        raise UsageError(
            f"--field {unknown[0]!r} is not a field pull can write; use one of "
            f"{', '.join(PULL_FIELDS)}."
        )
    wanted = set(fields or PULL_FIELDS)
    edits = _Edits(source)
    result = WriteBack()
    for top in plan.changes:
        if top.kind is not Kind.PRODUCT or top.action is not Action.UPDATE:
            continue
        place = source.handles.get(top.key)
        if place is None:
            continue
        product = source.product(place)
        for fc in top.fields:
            if fc.field not in wanted:
                continue
            if not (fc.drift or include_changes):
                result.skipped.append(_not_drift(top.key, fc.field))
                continue
            _pull_product_field(edits, result, place, product, top.key, fc.field, fc.before)
        variant_changes = [
            (c, fc)
            for c in top.children
            if c.kind is Kind.VARIANT and c.action is Action.UPDATE
            for fc in c.fields
            if fc.field in wanted
        ]
        for field_name in {fc.field for _c, fc in variant_changes}:
            pairs = [(c.key, fc) for c, fc in variant_changes if fc.field == field_name]
            taken = [(sku, fc) for sku, fc in pairs if fc.drift or include_changes]
            result.skipped.extend(
                _not_drift(sku, field_name) for sku, fc in pairs if (sku, fc) not in taken
            )
            _pull_variant_field(edits, result, place, product, field_name, taken)
    return _finish(edits, result)


def _not_drift(key: str, field_name: str) -> Skipped:
    return Skipped(
        key,
        "the catalog changed it and it has not been applied yet (not drift); "
        "pass --include-changes to take the store's value anyway",
        field_name,
    )


def _store_value(field_name: str, value: Json) -> Value | None:
    """The plan's JSON value as the catalog writes it (money as a decimal); None: cannot."""
    if value is None:
        return None
    if field_name in _MONEY_FIELDS:
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    if isinstance(value, bool | str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [str(v) for v in value]
    return None


def _pull_product_field(
    edits: _Edits,
    result: WriteBack,
    place: _Place,
    product: dict[str, Any],
    handle: str,
    field_name: str,
    live: Json,
) -> None:
    if field_name == "options":
        result.skipped.append(
            Skipped(
                handle,
                "variant attribute names differ in the store; rename them in the catalog by "
                "hand (each variant's options use them)",
                field_name,
            )
        )
        return
    value = _store_value(field_name, live)
    if value is None:
        result.skipped.append(Skipped(handle, "the store has no value for it", field_name))
        return
    if field_name == "tags" and isinstance(value, list):
        value = _keep_order(product.get("tags") or [], value)
    edits.add(
        place,
        (field_name,),
        key=handle,
        field_name=field_name,
        before=_current(product, field_name),
        value=value,
    )


def _keep_order(old: Iterable[str], new: list[str]) -> list[str]:
    """The new tags with the ones kept in the catalog's order and spelling, new ones after."""
    wanted = {name_key(t): t for t in new}
    kept = [t for t in old if name_key(t) in wanted]
    seen = {name_key(t) for t in kept}
    return kept + [t for t in new if name_key(t) not in seen]


def _current(mapping: Mapping[str, Any], field_name: str) -> Json:
    value = mapping.get(field_name)
    return format(value, "f") if isinstance(value, Decimal) else value


def _pull_variant_field(
    edits: _Edits,
    result: WriteBack,
    family: _Place,
    product: dict[str, Any],
    field_name: str,
    taken: list[tuple[str, Any]],
) -> None:
    variants: list[dict[str, Any]] = list(product.get("variants") or [])
    index = {v["sku"]: j for j, v in enumerate(variants)}
    values: dict[str, Value] = {}
    for sku, fc in taken:
        value = _store_value(field_name, fc.before) if field_name != "options" else fc.before
        if value is None or sku not in index:
            result.skipped.append(Skipped(sku, "the store has no value for it", field_name))
            continue
        values[sku] = value
    _write_variants(edits, family, product, field_name, values)


def _write_variants(
    edits: _Edits,
    family: _Place,
    product: dict[str, Any],
    field_name: str,
    values: dict[str, Value],
    lines: Mapping[str, int] | None = None,
) -> None:
    """New values of one field for some variants of a family, written where they belong: on
    the family when every variant inheriting its value takes the same new one, on each
    variant otherwise. Values equal to what the variant has now are left alone."""
    variants: list[dict[str, Any]] = list(product.get("variants") or [])
    index = {v["sku"]: j for j, v in enumerate(variants)}
    values = {
        sku: v
        for sku, v in values.items()
        if sku in index
        and (
            isinstance(v, dict)
            or not _equal(_effective(product, variants[index[sku]], field_name), v)
        )
    }
    lines = lines or {}
    handle = product["handle"]
    if field_name in _INHERITED and field_name in product:
        inheriting = [v["sku"] for v in variants if field_name not in v]
        new = {str(values[s]) for s in inheriting if s in values}
        if inheriting and all(s in values for s in inheriting) and len(new) == 1:
            edits.add(
                family,
                (field_name,),
                key=handle,
                field_name=field_name,
                before=_current(product, field_name),
                value=values[inheriting[0]],
                source_lines=tuple(sorted(lines[s] for s in inheriting if s in lines)),
            )
            for sku in inheriting:
                values.pop(sku)
    for sku, value in sorted(values.items(), key=lambda kv: index[kv[0]]):
        place = _Place(family.rel, family.product, index[sku])
        variant = variants[index[sku]]
        if field_name == "options" and isinstance(value, dict):
            declared = variant.get("options") or {}
            for option, option_value in value.items():
                if declared.get(option) != option_value and isinstance(option_value, str):
                    edits.add(
                        place,
                        ("variants", index[sku], "options", option),
                        key=sku,
                        field_name=f"options.{option}",
                        before=declared.get(option),
                        value=option_value,
                    )
            continue
        if isinstance(value, dict):
            continue
        edits.add(
            place,
            ("variants", index[sku], field_name),
            key=sku,
            field_name=field_name,
            before=_current(variant if field_name in variant else product, field_name),
            value=value,
            source_lines=(lines[sku],) if sku in lines else (),
        )


def _effective(product: Mapping[str, Any], variant: Mapping[str, Any], field_name: str) -> Any:
    if field_name in variant:
        return variant[field_name]
    return product.get(field_name) if field_name in _INHERITED else None


# --- merge: a supplier's price file into the catalog ------------------------------------------


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    """`--map COLUMN=field` options -> normalized column name -> catalog field."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, field_name = pair.rpartition("=")
        field_name = field_name.strip()
        if not sep or not column.strip():
            raise UsageError(
                f"--map {pair!r} must be COLUMN=field, e.g. --map 'Unit Cost=supply_price'."
            )
        if field_name not in MERGE_FIELDS:
            raise UsageError(
                f"--map {pair!r}: {field_name!r} is not a field merge can write; use one of "
                f"{', '.join(MERGE_FIELDS)}."
            )
        mapping[normalize_column(column.lstrip("\ufeff"))] = field_name
    if not mapping:
        raise UsageError(
            "Pass at least one --map COLUMN=field (e.g. --map 'Unit Cost=supply_price')."
        )
    return mapping


def merge(
    table: ExportTable,
    source: CatalogSource,
    *,
    file: str,
    key: str,
    mapping: Mapping[str, str],
    create_in: str | None = None,
) -> WriteBack:
    """Each row's mapped values written to the product or variant with its SKU.

    Rows whose SKU the catalog lacks are skipped (listed with their line), or with `create_in`
    (a catalog file, relative to the catalog directory) added there as simple products named
    by the SKU. A cell that is empty leaves the field as it is; a cell that cannot be read
    (a price that is not a number) is a problem of that row. Problems are `skipped` entries
    with `field` set; the caller decides whether they stop the write."""
    key_column = normalize_column(key.lstrip("\ufeff"))
    missing = [c for c in (key_column, *mapping) if c not in table.columns]
    if missing:
        raise CatalogError(
            f"{file}:1: no column {missing[0]!r} in the header (columns: "
            f"{', '.join(table.columns)}); check --key and --map."
        )
    edits = _Edits(source)
    result = WriteBack()
    for p in table.problems:
        result.skipped.append(Skipped("", p.message, None, p.line, error=True))
    new_rows: list[tuple[int, str, dict[str, Value]]] = []
    seen: dict[str, int] = {}
    by_family: dict[_Place, dict[str, dict[str, Value]]] = defaultdict(lambda: defaultdict(dict))
    lines: dict[str, int] = {}
    for row in table.rows:
        sku = row.cells.get(key_column, "").strip()
        if not sku:
            result.skipped.append(Skipped("", "no SKU in this row", None, row.line))
            continue
        if sku in seen:
            result.skipped.append(
                Skipped(
                    sku,
                    f"SKU also on line {seen[sku]}; say which row is right",
                    None,
                    row.line,
                    error=True,
                )
            )
            continue
        seen[sku] = row.line
        values: dict[str, Value] = {}
        bad = False
        for column, field_name in mapping.items():
            cell = row.cells.get(column, "").strip()
            if not cell:
                continue
            value = _cell_value(field_name, cell)
            if value is None:
                result.skipped.append(
                    Skipped(
                        sku,
                        f"{cell!r} in column {column!r} is not an amount",
                        field_name,
                        row.line,
                        error=True,
                    )
                )
                bad = True
                continue
            values[field_name] = value
        if bad:
            continue
        place = source.skus.get(sku)
        if place is None:
            if create_in is None:
                result.skipped.append(
                    Skipped(
                        sku,
                        "SKU not in the catalog (pass --create-in FILE to add it)",
                        None,
                        row.line,
                    )
                )
            else:
                new_rows.append((row.line, sku, values))
            continue
        if place.variant is None:
            _merge_row(edits, source, place, sku, values, row.line)
            continue
        family = _Place(place.rel, place.product, None)
        for field_name, value in values.items():
            if field_name == "supplier_code":  # family-wide in the catalog
                _merge_row(
                    edits,
                    source,
                    family,
                    source.product(family)["handle"],
                    {field_name: value},
                    row.line,
                )
            else:
                by_family[family][field_name][sku] = value
                lines[sku] = row.line
    for family, fields in by_family.items():
        for field_name, family_values in fields.items():
            _write_variants(edits, family, source.product(family), field_name, family_values, lines)
    merged = _finish(edits, result)
    if new_rows and create_in is not None:
        _create(merged, source, create_in, new_rows)
    return merged


def _cell_value(field_name: str, cell: str) -> Value | None:
    if field_name not in _MONEY_FIELDS:
        return cell
    text = cell.replace("$", "").replace("€", "").replace("£", "").replace(" ", "")
    if "," in text and "." not in text:
        text = text.replace(",", ".")  # 12,50 in a ';' file from a European spreadsheet
    text = text.replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def _merge_row(
    edits: _Edits,
    source: CatalogSource,
    place: _Place,
    key: str,
    values: Mapping[str, Value],
    line: int,
) -> None:
    """Values of a simple product, or a family's own fields (its supplier code)."""
    product = source.product(place)
    for field_name, value in values.items():
        if _equal(product.get(field_name), value):
            continue
        edits.add(
            place,
            (field_name,),
            key=key,
            field_name=field_name,
            before=_current(product, field_name),
            value=value,
            source_lines=(line,),
        )


def _equal(current: object, value: Value) -> bool:
    if current is None:
        return False
    if isinstance(value, Decimal):
        try:
            return Decimal(str(current)) == value
        except InvalidOperation:
            return False
    return current == value


def _create(
    result: WriteBack,
    source: CatalogSource,
    create_in: str,
    rows: list[tuple[int, str, dict[str, Value]]],
) -> None:
    """New simple products appended to `create_in`: handle from the SKU, name = SKU."""
    lines: list[str] = []
    for line, sku, values in rows:
        handle = sku.lower()
        if handle in source.handles:
            result.skipped.append(
                Skipped(sku, f"handle {handle!r} is already declared; add it by hand", None, line)
            )
            continue
        lines.append(f"  - handle: {scalar_text(handle)}\n")
        lines.append(f"    name: {scalar_text(sku)}\n")
        lines.append(f"    sku: {scalar_text(sku)}\n")
        for field_name in MERGE_FIELDS:
            if field_name in values:
                value = values[field_name]
                shown = (
                    format(value, "f") if isinstance(value, Decimal) else scalar_text(str(value))
                )
                lines.append(f"    {field_name}: {shown}\n")
        result.created.append(sku)
        result.changes.append(
            ValueChange(source.shown(create_in), 0, sku, "product", None, "created", (line,))
        )
    if not lines:
        return
    existing = result.files.get(create_in)
    text = existing.decode("utf-8") if existing is not None else source.texts.get(create_in, "")
    data = source.data.get(create_in, {})
    if not data.get("products"):
        if "products" in data:
            raise CatalogError(
                f"{source.shown(create_in)} has an empty products list; add new products to "
                "another file, or remove the empty list first."
            )
        body = text if not text or text.endswith("\n") else text + "\n"
        new_text = body + "products:\n" + "".join(lines)
    else:
        new_text = _append_products(text, lines)
    result.files[create_in] = new_text.encode("utf-8")


def _append_products(text: str, lines: list[str]) -> str:
    """Product entries added after the last item of the file's `products` list."""
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    body = text.removeprefix("\ufeff")
    document = Document(body)
    at, indent = document.list_end(("products",))
    # Products separated by blank lines stay so: each new one gets one too.
    spaced = f"\n\n{indent}- " in body.replace("\r\n", "\n")
    block = "".join(
        ("\n" if spaced and line.startswith("  - ") else "") + f"{indent}{line[2:]}"
        for line in lines
    ).replace("\n", document.newline)
    prefix = "" if at == 0 or body[at - 1] == "\n" else document.newline
    return bom + body[:at] + prefix + block + body[at:]


# --- both: edit, check, report ----------------------------------------------------------------


def _finish(edits: _Edits, result: WriteBack) -> WriteBack:
    for rel, file_edits in edits.by_file.items():
        try:
            new_text = edit_text(edits.source.texts[rel], file_edits)
        except EditError as exc:
            result.refused[rel] = f"{edits.source.shown(rel)} was left untouched: {exc}."
            continue
        result.files[rel] = new_text.encode("utf-8")
        # Lines as they are in the edited file (keys added above shift what follows).
        edited = Document(new_text.removeprefix("\ufeff"))
        result.changes.extend(
            replace(change, line=edited.line_of(path)) for path, change in edits.changes[rel]
        )
    return result


def _names(problem_file: str, rel: str) -> bool:
    """Whether a problem's file (as the validator shows it) is the catalog file `rel`."""
    shown = Path(problem_file).as_posix()
    return shown == rel or shown.endswith("/" + rel)


def check(result: WriteBack, directory: Path) -> WriteBack:
    """Validate the catalog as it would be with the new files; a file the validator finds a
    problem in is dropped from `files` and named in `refused` (its changes dropped too)."""
    while result.files:
        report = validate_directory(directory, overrides=result.files)
        bad = {rel for rel in result.files for p in report.problems if _names(p.file, rel)}
        if not report.problems:
            break
        if not bad:  # a problem in a file we did not touch, caused by ours (a clash)
            bad = set(result.files)
        for rel in sorted(bad):
            first = next(
                (p for p in report.problems if _names(p.file, rel)),
                report.problems[0],
            )
            result.refused[rel] = (
                f"{(directory / rel).as_posix()} was left untouched: with these changes it "
                f"would be invalid ({first})."
            )
            del result.files[rel]
            shown = (directory / rel).as_posix()
            result.changes = [c for c in result.changes if c.file != shown]
    result.created = [c.key for c in result.changes if c.field == "product"]
    return result


# --- rendering ----------------------------------------------------------------------------------


def render_text(result: WriteBack, *, written: bool, source: str | None = None) -> str:
    """One line per change and per skipped row or field, then what was written."""
    lines: list[str] = []
    for c in sorted(result.changes, key=lambda c: (c.file, c.line, c.key)):
        origin = ""
        if source and c.source_lines:
            more = len(c.source_lines) - 1
            origin = f" (from {source}:{c.source_lines[0]}" + (
                f" and {more} more row{'' if more == 1 else 's'})" if more else ")"
            )
        if c.field == "product":
            lines.append(f"{c.file}: {c.key}: new simple product{origin}")
            continue
        lines.append(
            f"{c.file}:{c.line}: {c.key}: {label(c.field)} {show(c.field, c.before)} -> "
            f"{show(c.field, c.after)}{origin}"
        )
    for s in sorted(result.skipped, key=lambda s: (s.line or 0, s.key, s.field or "")):
        where = f"{source}:{s.line}: " if source and s.line else ""
        what = f"{s.key}: " if s.key else ""
        field_text = f"{s.field}: " if s.field else ""
        lines.append(f"{where}{what}{field_text}{'error' if s.error else 'skipped'}: {s.reason}")
    lines.extend(result.refused[rel] for rel in sorted(result.refused))
    n = len(result.changes)
    files = len(result.files)
    if not n:
        lines.append("Nothing to write: the catalog already holds these values.")
    elif written:
        lines.append(
            f"Wrote {n} change{'' if n == 1 else 's'} to {files} file{'' if files == 1 else 's'}."
        )
    else:
        lines.append(f"Nothing written ({n} change{'' if n == 1 else 's'} found).")
    return "\n".join(lines) + "\n"


__all__ = [
    "MERGE_FIELDS",
    "PULL_FIELDS",
    "CatalogSource",
    "Skipped",
    "ValueChange",
    "WriteBack",
    "check",
    "merge",
    "parse_mapping",
    "pull",
    "render_text",
]
