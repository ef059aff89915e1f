"""The catalog's rules: the JSON Schema and the semantic checks it cannot express.

Pure: values in, `Finding`s out (no files, no YAML, no click). The loader (`reconciler.catalog`)
parses files, maps each finding's JSON path back to a file:line:column and checks what needs the
filesystem (images).

The JSON Schema in the top-level `schemas/` is the source of truth for shapes. Running jsonschema
over 50,000 variants is far too slow for a pre-commit hook, so `compile_schema` turns the subset
of keywords our schema uses into plain Python predicates that only answer "valid or not". Only an
object that fails them is handed to jsonschema, which then says what is wrong. `compile_schema`
refuses any keyword it does not implement, so the schema cannot grow a rule the fast path would
silently skip (and a test checks both agree).
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from reconciler.limits import Limits
from reconciler.model import slugify
from reconciler.problems import Finding, JsonPath

if TYPE_CHECKING:
    import jsonschema  # type: ignore[import-untyped]  # no stubs published

Check = Callable[[object], bool]

MAX_DECIMALS = 5  # the store keeps prices to 5 decimals (lightspeed-xseries.md §6.2)
ROOT_FILE = "catalog.yaml"  # the only file that may hold `settings`

# Keywords that only annotate; they never make an instance invalid.
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description", "examples", "default"}
)


# --- the fast schema check ---------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


# JSON types as Python types (YAML floats arrive as Decimal). bool is an int subclass in Python
# but never a JSON number, hence the explicit exclusion below.
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float, Decimal),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}

_KEYWORDS = frozenset(
    {
        "$ref",
        "type",
        "enum",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "exclusiveMaximum",
        "minItems",
        "maxItems",
        "items",
        "properties",
        "required",
        "additionalProperties",
    }
)


def compile_schema(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Check:
    """A predicate that is true exactly when jsonschema would find `schema` satisfied.

    Supports the keywords this project's schema uses; anything else raises `ValueError` so a
    schema change cannot be silently ignored by the fast path. Checks are plain closures (no
    generator expressions, references resolved at compile time): this runs once per value of a
    50,000-variant catalog.
    """
    compiler = _Compiler(schema if root is None else root)
    return compiler.compile(schema)


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}
        self.pending: dict[str, list[Check]] = {}

    def compile(self, schema: Mapping[str, Any]) -> Check:
        unknown = set(schema) - _ANNOTATIONS - _KEYWORDS
        if unknown:
            raise ValueError(f"compile_schema does not implement {sorted(unknown)}")
        checks: list[Check] = []
        if "$ref" in schema:
            checks.append(self.ref(schema["$ref"]))
        typed = "type" in schema
        if typed:
            checks.append(_type_check(schema["type"]))
        if "enum" in schema:
            allowed = [(a, type(a)) for a in schema["enum"]]
            checks.append(lambda v: any(v == a and type(v) is t for a, t in allowed))
        if {"minLength", "maxLength", "pattern"} & set(schema):
            checks.append(_string_check(schema))
        if "minimum" in schema:
            low = schema["minimum"]
            checks.append(lambda v: not _is_number(v) or not v < low)
        if "exclusiveMaximum" in schema:
            high = schema["exclusiveMaximum"]
            checks.append(lambda v: not _is_number(v) or not v >= high)
        if {"minItems", "maxItems", "items"} & set(schema):
            checks.append(self.array(schema))
        if {"properties", "required", "additionalProperties"} & set(schema):
            checks.append(self.object(schema))
        return _all_of(checks)

    def ref(self, ref: str) -> Check:
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"compile_schema only resolves local $defs references, not {ref!r}")
        if ref in self.refs:
            return self.refs[ref]
        if ref in self.pending:  # a recursive definition: look it up once it is compiled
            cell = self.pending[ref]
            return lambda v: cell[0](v)
        self.pending[ref] = cell = []
        check = self.compile(self.root["$defs"][ref.removeprefix("#/$defs/")])
        cell.append(check)
        self.refs[ref] = check
        return check

    def array(self, schema: Mapping[str, Any]) -> Check:
        low = schema.get("minItems", 0)
        high = schema.get("maxItems", float("inf"))
        item = self.compile(schema["items"]) if "items" in schema else None

        def check(v: object) -> bool:
            if not isinstance(v, list):
                return True
            if not low <= len(v) <= high:
                return False
            if item is not None:
                for x in v:
                    if not item(x):
                        return False
            return True

        return check

    def object(self, schema: Mapping[str, Any]) -> Check:
        props = {k: self.compile(s) for k, s in schema.get("properties", {}).items()}
        required = tuple(schema.get("required", ()))
        extra_schema = schema.get("additionalProperties", True)
        extra: Check | None
        if extra_schema is True:
            extra = None
        elif extra_schema is False:
            extra = _never
        else:
            extra = self.compile(extra_schema)
        get = props.get

        def check(v: object) -> bool:
            if not isinstance(v, dict):
                return True
            for key in required:
                if key not in v:
                    return False
            for key, value in v.items():
                c = get(key)
                if c is None:
                    if extra is not None and not extra(value):
                        return False
                elif not c(value):
                    return False
            return True

        return check


def _never(_v: object) -> bool:
    return False


def _all_of(checks: list[Check]) -> Check:
    if not checks:
        return lambda _v: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda v: a(v) and b(v)
    if len(checks) == 3:
        a, b, c = checks
        return lambda v: a(v) and b(v) and c(v)

    return lambda v: all(c(v) for c in checks)


def _type_check(names: str | list[str]) -> Check:
    names = [names] if isinstance(names, str) else list(names)
    unknown = set(names) - set(_PY_TYPES)
    if unknown:
        raise ValueError(f"compile_schema does not implement type {sorted(unknown)}")
    types = tuple(t for n in names for t in _PY_TYPES[n])
    if "boolean" in names or "number" not in names:
        return lambda v: isinstance(v, types)
    return lambda v: isinstance(v, types) and v.__class__ is not bool


def _string_check(schema: Mapping[str, Any]) -> Check:
    low = schema.get("minLength", 0)
    high = schema.get("maxLength", float("inf"))
    search = re.compile(schema["pattern"]).search if "pattern" in schema else None

    def check(v: object) -> bool:
        if not isinstance(v, str):
            return True
        if not low <= len(v) <= high:
            return False
        return search is None or search(v) is not None

    return check


# --- jsonschema errors in people's words -------------------------------------------------------


def describe_value(value: object) -> str:
    """How a parsed YAML value reads in a message: what YAML made of what was written."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"the yes/no value {'true' if value else 'false'}"
    if _is_number(value):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {quote(value)}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__}"


def quote(text: str, *, limit: int = 60) -> str:
    """A value quoted for a message, shortened so one problem stays one line."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    # Escape quotes, backslashes and anything unprintable (line breaks of every kind included).
    escaped = "".join(
        c if c.isprintable() and c not in '"\\' else ("\\" + c if c in '"\\' else repr(c)[1:-1])
        for c in text
    )
    return f'"{escaped}"'


_TYPE_WORDS = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "object": "a mapping (key: value lines)",
    "array": "a list",
    "null": "nothing",
}


def _did_you_mean(word: str, choices: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {c.casefold(): c for c in choices}
        match = lowered.get(word.strip().casefold())
        close = [match] if match else []
    return f"did you mean {quote(close[0])}?" if close else None


def _split_description(schema: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """`"a lowercase slug: letters a-z, ..."` -> ("a lowercase slug", "letters a-z, ...")."""
    text = schema.get("description")
    if not isinstance(text, str):
        return None, None
    head, sep, tail = text.partition(": ")
    return (head, tail) if sep else (text, None)


def schema_findings(error: jsonschema.ValidationError, prefix: JsonPath) -> list[Finding]:
    """One jsonschema error as findings located at the offending value (or key)."""
    path: JsonPath = prefix + tuple(error.absolute_path)
    keyword = error.validator
    value = error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    what, how = _split_description(schema)
    if keyword == "additionalProperties" and isinstance(value, dict):
        known = list(schema.get("properties", {}))
        out = []
        for key in value:
            if key not in known:
                near = _did_you_mean(str(key), known) or f"allowed keys: {', '.join(known)}"
                out.append(Finding((*path, key), f"unknown key {quote(str(key))}", near, True))
        return out
    if keyword == "required" and isinstance(value, dict):
        return [
            Finding(path, f"missing required key {quote(key)}")
            for key in error.validator_value
            if key not in value
        ]
    if keyword == "type":
        names = (
            [error.validator_value]
            if isinstance(error.validator_value, str)
            else list(error.validator_value)
        )
        expected = " or ".join(_TYPE_WORDS.get(n, n) for n in names)
        hint: str | None = how if what and len(names) > 1 else None
        quote_source = "string" in names and not isinstance(value, dict | list)
        if quote_source and value is not None:
            hint = "put the value in quotes to make it text"
        if what and len(names) > 1:
            expected = what
        message = f"expected {expected}, got {describe_value(value)}"
        return [Finding(path, message, hint, quote_source=quote_source and value is not None)]
    if keyword == "pattern" and isinstance(value, str):
        hint = how
        if (what or "").startswith("an amount") and _OCTAL_12.fullmatch(value):
            # YAML 1.1 reads 0o17 as text; people and YAML 1.2 tools read octal 15.
            return [
                Finding(
                    path,
                    f"{value} is a YAML 1.2 octal number, not an amount",
                    f"write it in decimal: {int(value[2:].replace('_', ''), 8)}",
                )
            ]
        if path and path[-1] == "handle":
            slug = slugify(value)
            hint = f"for example {quote(slug)}" if slug else hint
        return [Finding(path, f"{quote(value)} is not {what or 'valid'}", hint)]
    if keyword == "enum":
        allowed = [str(a) for a in error.validator_value]
        hint = _did_you_mean(str(value), allowed) if isinstance(value, str) else None
        shown = quote(value) if isinstance(value, str) else describe_value(value)
        return [Finding(path, f"{shown} is not one of {', '.join(allowed)}", hint)]
    if keyword in ("minItems", "maxItems") and isinstance(value, list):
        limit = error.validator_value
        if keyword == "minItems":
            message = "is an empty list" if not value else f"lists {len(value)}, fewer than {limit}"
        else:
            message = f"lists {len(value)} items, more than the {limit} allowed"
        return [Finding(path, message, schema.get("description"))]
    if keyword == "minLength" and isinstance(value, str):
        return [Finding(path, "must not be empty", how or what)]
    if keyword == "maxLength" and isinstance(value, str):
        limit = error.validator_value
        return [Finding(path, f"is {len(value)} characters long, more than {limit}", what)]
    if keyword == "minimum":
        return [Finding(path, f"{value} is below {error.validator_value}", what)]
    if keyword == "exclusiveMaximum":
        if isinstance(value, float) and not math.isfinite(value):
            return []  # `money_problem` says it is not an amount at all
        limit = error.validator_value
        return [Finding(path, f"{value} is too large: amounts are below {limit:,}", what)]
    return [Finding(path, error.message)]


_OCTAL_12 = re.compile(r"0o[0-7][0-7_]*")


class SchemaChecker:
    """The catalog file schema, compiled: fast yes/no per object, jsonschema for the messages."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self._file_ok = compile_schema(schema)
        self._product_ok = compile_schema(schema["$defs"]["product"], schema)
        self._validators: dict[str, Any] = {}

    def _validator(self, name: str) -> Any:
        """jsonschema, imported and built only when something is invalid (it costs start-up)."""
        if name not in self._validators:
            import jsonschema

            target = (
                self.schema
                if name == "file"
                else {
                    "$defs": self.schema["$defs"],
                    "$ref": f"#/$defs/{name}",
                }
            )
            self._validators[name] = jsonschema.Draft202012Validator(target)
        return self._validators[name]

    def product_ok(self, product: object) -> bool:
        return self._product_ok(product)

    def file_findings(self, data: object) -> list[Finding]:
        """Schema findings for one file's data."""
        if self._file_ok(data):
            return []
        findings: list[Finding] = []
        products = data.get("products") if isinstance(data, dict) else None
        if isinstance(data, dict) and isinstance(products, list):
            # Products one by one, so one bad product costs one jsonschema run, not the file's.
            rest = {k: v for k, v in data.items() if k != "products"}
            for error in self._validator("file").iter_errors(rest):
                findings.extend(schema_findings(error, ()))
            for i, product in enumerate(products):
                if not self._product_ok(product):
                    for error in self._validator("product").iter_errors(product):
                        findings.extend(schema_findings(error, ("products", i)))
        else:
            for error in self._validator("file").iter_errors(data):
                findings.extend(schema_findings(error, ()))
        # jsonschema reports each missing required key as an error of its own, and each error
        # names every missing key: one message per problem.
        return list(dict.fromkeys(findings))


# --- semantic checks, one file ---------------------------------------------------------------


def gtin_check_digit(body: str) -> int:
    """The GS1 check digit for the digits before it (weights 3,1,3,... from the right)."""
    digits = body.encode("ascii")
    tripled, single = digits[-1::-2], digits[-2::-2]
    # Sums of ASCII codes minus 48 per digit: no per-digit int() calls on the hot path.
    total = 3 * (sum(tripled) - 48 * len(tripled)) + sum(single) - 48 * len(single)
    return (10 - total % 10) % 10


def gtin_valid(code: str) -> bool:
    return (
        len(code) in (8, 12, 13, 14)
        and code.isascii()
        and code.isdigit()
        and gtin_check_digit(code[:-1]) == ord(code[-1]) - 48
    )


def money_problem(value: object) -> tuple[str, str] | None:
    """What the schema cannot say about an amount written as a YAML number: (message, hint)."""
    if value.__class__ is Decimal:
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
            return (
                f"{value} has more than {MAX_DECIMALS} decimals",
                "the store keeps prices to 5 decimals",
            )
    elif isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not an amount", "write a number such as 25.00"
    return None


def barcode_problem(code: object) -> tuple[str, str] | None:
    """A GTIN of the right length whose check digit is wrong: (message, hint)."""
    if (
        isinstance(code, str)
        and code.isdigit()
        and len(code) in (8, 12, 13, 14)
        and not gtin_valid(code)
    ):
        expected = gtin_check_digit(code[:-1])
        return (
            f"barcode {quote(code)} has a wrong check digit: the last digit should be {expected}",
            "check the barcode for a typo",
        )
    return None


def _row_findings(row: Mapping[str, Any], path: JsonPath) -> list[Finding]:
    """Prices and barcode of a product or variant. Paths are built only for a finding: this
    runs for every variant of the catalog."""
    out: list[Finding] = []
    for key in ("price", "supply_price"):
        value = row.get(key)
        if value is not None and value.__class__ is not str:
            problem = money_problem(value)
            if problem:
                out.append(Finding((*path, key), *problem))
    code = row.get("barcode")
    if code is not None:
        problem = barcode_problem(code)
        if problem:
            out.append(Finding((*path, "barcode"), *problem))
    return out


# -- what the platform can hold (`Limits`) ------------------------------------------------------


def _decimals(value: object) -> int:
    """Decimal places an amount is written with (0 when it is not an amount)."""
    try:
        exponent = Decimal(str(value)).as_tuple().exponent if value is not None else 0
    except ArithmeticError:
        return 0
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def limit_findings(data: Mapping[str, Any], limits: Limits) -> tuple[list[Finding], list[Finding]]:
    """What one file declares that the platform cannot hold, as (problems, warnings): a value
    it cannot store at all (a barcode length, too many options or variants) is a problem; one
    it stores otherwise or not at all (a price rounded to its places, a brand description it
    has no field for, a prune it carries out by archiving) is a warning, never a silent drop.
    """
    problems: list[Finding] = []
    warnings: list[Finding] = []
    where = limits.title

    def row(values: Mapping[str, Any], path: JsonPath) -> None:
        code = values.get("barcode")
        if isinstance(code, str) and code.isdigit() and len(code) not in limits.barcode_lengths:
            lengths = sorted(limits.barcode_lengths)
            problems.append(
                Finding(
                    (*path, "barcode"),
                    f"barcode {quote(code)} has {len(code)} digits, and {where} holds barcodes "
                    f"of {lengths[0]} to {lengths[-1]} digits only",
                    "use the product's 12- or 13-digit barcode (UPC or EAN), or leave it out",
                )
            )
        for key in ("price", "supply_price"):
            amount = values.get(key)
            if amount is not None and _decimals(amount) > limits.money_places:
                kept = Decimal(str(amount)).quantize(
                    Decimal(1).scaleb(-limits.money_places), rounding="ROUND_HALF_UP"
                )
                warnings.append(
                    Finding(
                        (*path, key),
                        f"{amount} has more than {limits.money_places} decimals; {where} keeps "
                        f"{kept}",
                        f"write {kept} to say what the store holds",
                    )
                )

    for kind in ("brands", "suppliers"):
        items = data.get(kind)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if (
                not limits.brand_descriptions
                and isinstance(item, dict)
                and item.get("description") is not None
            ):
                warnings.append(
                    Finding(
                        (kind, i, "description"),
                        f"{where} keeps no {kind[:-1]} description; it is never written or "
                        "compared",
                        "remove it, or keep it as a note",
                    )
                )
    products = data.get("products")
    for i, product in enumerate(products if isinstance(products, list) else []):
        if not isinstance(product, dict):
            continue
        path: JsonPath = ("products", i)
        if not limits.family_descriptions and product.get("description") is not None:
            warnings.append(
                Finding(
                    (*path, "description"),
                    f"{where} has no field for a product description; it is never written "
                    "or compared",
                    "remove it, or keep it as a note",
                )
            )
        options = product.get("options")
        if isinstance(options, list) and len(options) > limits.max_options:
            problems.append(
                Finding(
                    (*path, "options"),
                    f"{len(options)} options, and {where} holds at most {limits.max_options}",
                    "combine options, or split the product",
                )
            )
        row(product, path)
        variants = product.get("variants")
        variants = variants if isinstance(variants, list) else []
        if len(variants) > limits.max_variants:
            problems.append(
                Finding(
                    (*path, "variants"),
                    f"{len(variants)} variants, and {where} holds at most "
                    f"{limits.max_variants} per product",
                    "split the product",
                )
            )
        for j, variant in enumerate(variants):
            if isinstance(variant, dict):
                row(variant, (*path, "variants", j))
    settings = data.get("settings")
    if (
        isinstance(settings, dict)
        and settings.get("prune") == "delete"
        and limits.delete_means == "archive"
    ):
        warnings.append(
            Finding(
                ("settings", "prune"),
                f"{where} cannot delete a product: prune archives it instead, which sets its "
                "stock to zero and cannot be undone",
                "use prune: deactivate to say what happens, or none to keep them",
            )
        )
    return problems, warnings


def _name_duplicates(names: Sequence[object], path: JsonPath, what: str) -> list[Finding]:
    """The same name twice in one list (spellings that differ only in case are `CrossCheck`'s)."""
    seen: set[object] = set()
    out: list[Finding] = []
    for i, name in enumerate(names):
        if isinstance(name, str):
            if name in seen:
                out.append(Finding((*path, i), f"{what} {quote(name)} is listed twice"))
            seen.add(name)
    return out


def _strings(value: object) -> list[str] | None:
    """The text items of a list (other items are the schema's to report); None if not a list."""
    return [x for x in value if isinstance(x, str)] if isinstance(value, list) else None


def product_findings(p: Mapping[str, Any], path: JsonPath) -> list[Finding]:
    """Semantic checks for one product.

    Runs on products that failed the schema too, so every mistake is reported at once: what has
    the wrong type is skipped here (the schema already says so).
    """
    out: list[Finding] = []
    options = _strings(p.get("options"))
    variants = p.get("variants")
    if options is not None and variants is None:
        out.append(
            Finding(
                (*path, "options"),
                "a family with options needs variants",
                "add variants, each with a sku and a value for every option, or remove options",
                True,
            )
        )
    if variants is not None and options is None:
        out.append(
            Finding(
                (*path, "variants"),
                "variants need the family's options",
                "declare the option names, e.g. options: [Size]",
                True,
            )
        )
    if options is not None:
        for key in ("sku", "barcode"):
            if key in p:
                out.append(
                    Finding(
                        (*path, key),
                        f"a family has no {key} of its own, only its variants do",
                        f"move the {key} to a variant, or remove options and variants to make "
                        "this a simple product",
                        True,
                    )
                )
        out.extend(_name_duplicates(options, (*path, "options"), "option"))
    out.extend(_row_findings(p, path))
    if isinstance(p.get("tags"), list):
        out.extend(_name_duplicates(p["tags"], (*path, "tags"), "tag"))
    if options and isinstance(variants, list):
        out.extend(_variant_findings(options, variants, (*path, "variants")))
    images = p.get("images")
    if isinstance(images, list):
        out.extend(_image_path_findings(images, (*path, "images")))
    return out


def _variant_findings(
    options: Sequence[str], variants: Sequence[object], path: JsonPath
) -> list[Finding]:
    out: list[Finding] = []
    wanted = set(options)
    combos: dict[tuple[str, ...], int] = {}
    for i, v in enumerate(variants):
        if not isinstance(v, dict):
            continue
        if "price" in v or "supply_price" in v or "barcode" in v:
            out.extend(_row_findings(v, (*path, i)))
        values = v.get("options")
        if not isinstance(values, dict):
            continue  # missing or not a mapping: the schema says so
        if values.keys() != wanted:
            out.extend(_option_key_findings(values, options, (*path, i, "options")))
            continue
        # Values differing only in case or spaces name the same variant in the store.
        combo = tuple(
            [x.strip().casefold() for x in map(values.get, options) if isinstance(x, str)]
        )
        if len(combo) != len(options):
            continue  # a value that is not text: the schema says so
        first = combos.setdefault(combo, i)
        if first != i:
            shown = ", ".join(f"{o}: {values[o]}" for o in options)
            out.append(
                Finding(
                    (*path, i, "options"),
                    f"the same options as variants[{first}] ({shown})",
                    "each variant of a family needs its own combination of option values",
                )
            )
    return out


def _option_key_findings(
    values: Mapping[str, Any], options: Sequence[str], path: JsonPath
) -> list[Finding]:
    out: list[Finding] = []
    family = ", ".join(options)
    for name in values:
        if name not in options:
            hint = _did_you_mean(name, options) or f"the family's options are {family}"
            out.append(
                Finding(
                    (*path, name),
                    f"{quote(name)} is not one of the family's options ({family})",
                    hint,
                    True,
                )
            )
    missing = [o for o in options if o not in values]
    if missing:
        out.append(
            Finding(
                path,
                "missing a value for option " + ", ".join(quote(m) for m in missing),
                f"every variant needs a value for each of {family}",
            )
        )
    return out


def _image_path_findings(images: Sequence[object], path: JsonPath) -> list[Finding]:
    out: list[Finding] = []
    seen: dict[str, int] = {}
    for i, image in enumerate(images):
        if not isinstance(image, str):
            continue
        if not is_relative_image_path(image):
            out.append(
                Finding(
                    (*path, i),
                    f"image path {quote(image)} is not relative to the catalog directory",
                    "put the file under the catalog directory and write e.g. images/tee/front.jpg",
                )
            )
            continue
        key = normalize_image_path(image)
        if key in seen:
            out.append(
                Finding((*path, i), f"image {quote(image)} is listed twice", "list each image once")
            )
        seen.setdefault(key, i)
    return out


def is_relative_image_path(image: str) -> bool:
    """Not absolute (posix or Windows) and not a URL: a path under the catalog directory."""
    return not (image.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", image) or "://" in image)


def normalize_image_path(image: str) -> str:
    """The catalog-relative posix path an image is known by (`./a//b.jpg` -> `a/b.jpg`)."""
    parts: list[str] = []
    for part in image.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def file_findings(data: Mapping[str, Any], *, root_file: bool) -> list[Finding]:
    """Semantic checks for one file's data (also where it failed the schema)."""
    out: list[Finding] = []
    if "settings" in data and not root_file:
        out.append(
            Finding(
                ("settings",),
                f"settings belong only in {ROOT_FILE} at the top of the catalog directory",
                f"move this block to {ROOT_FILE}",
                True,
            )
        )
    products = data.get("products")
    for i, product in enumerate(products if isinstance(products, list) else ()):
        if isinstance(product, dict):
            out.extend(product_findings(product, ("products", i)))
    tags = data.get("tags")
    if isinstance(tags, list):
        out.extend(_name_duplicates(tags, ("tags",), "tag"))
    return out


# --- checks across files -----------------------------------------------------------------------


@dataclass(frozen=True)
class Occurrence:
    """A value that must be unique or spelled one way across the catalog, and where it is."""

    kind: str  # a key of UNIQUE or SPELLED, or "category_parent"
    value: str
    file: int  # index of the file in load order
    path: JsonPath


@dataclass(frozen=True)
class Clash:
    """`at` repeats (`spelling` False) or respells (`spelling` True) what `first` declared."""

    at: Occurrence
    first: Occurrence
    spelling: bool


# Kinds that must be declared once, and what they are called in messages. Product names are not
# among them: lightspeed-xseries.md says names are unique across families, but real stores hold
# several
# families under one name (the store accepted them), and the catalog must be able to adopt them.
UNIQUE = {
    "handle": "handle",
    "sku": "SKU",
    "barcode": "barcode",
    "brand": "brand",
    "supplier": "supplier",
}
# Kinds whose names are case-insensitive in the store: one spelling across the catalog.
SPELLED = {
    "brand": "brand",
    "supplier": "supplier",
    "tag": "tag",
    "option": "option",
    "category": "category",
}

_Where = tuple[str, int, JsonPath]  # (value as written, file, path)


class CrossCheck:
    """Handles, SKUs, names and barcodes declared once; names spelled one way; across files.

    Feed every file's data to `declarations` first, then to `references` (both in load
    order): the spelling in `brands:` / `suppliers:` / `tags:` is then the one products must use.
    Runs on every load, cached files included, so it is written for speed: one dict lookup per
    value, and a set of spellings already seen so a brand named 10,000 times is folded once.
    """

    def __init__(self) -> None:
        self._unique: dict[str, dict[str, _Where]] = {k: {} for k in UNIQUE}
        self._spelled: dict[str, dict[str, _Where]] = {k: {} for k in SPELLED}
        self._exact: dict[str, set[str]] = {k: set() for k in SPELLED}
        # Every product's category, by case-folded path: the store only takes leaf categories.
        self._placed: dict[tuple[str, ...], list[_Where]] = {}
        self.clashes: list[Clash] = []
        # (file, finding): SKUs, handles and names with invisible or look-alike characters.
        self.warnings: list[tuple[int, Finding]] = []

    def _lookalike(self, value: str, file: int, path: JsonPath, what: str) -> None:
        finding = lookalike_finding(value, path, what)
        if finding is not None:
            self.warnings.append((file, finding))

    def _once(self, kind: str, value: str, file: int, path: JsonPath) -> bool:
        seen = self._unique[kind]
        # A handle is compared exactly, as the store holds it ("WATSON" is not "watson");
        # SKUs (as a person sees them), barcodes and names case-insensitively.
        if kind == "handle":
            key = value
        elif kind == "sku":
            key = lookalike_key(value)
        else:
            key = value.strip().casefold()
        first = seen.get(key)
        if first is None:
            seen[key] = (value, file, path)
            return True
        self._clash(kind, first, value, file, path, spelling=False)
        return False

    def _spell(self, kind: str, value: str, file: int, path: JsonPath) -> None:
        exact = self._exact[kind]
        if value in exact or value != value.strip():  # spaces: the schema reports those
            return
        seen = self._spelled[kind]
        key = value.casefold()
        first = seen.get(key)
        if first is None:
            seen[key] = (value, file, path)
            exact.add(value)
        else:
            self._clash(kind, first, value, file, path, spelling=True)

    def _clash(
        self, kind: str, first: _Where, value: str, file: int, path: JsonPath, *, spelling: bool
    ) -> None:
        self.clashes.append(
            Clash(
                Occurrence(kind, value, file, path),
                Occurrence(kind, first[0], first[1], first[2]),
                spelling,
            )
        )

    def declarations(self, data: Mapping[str, Any], file: int) -> None:
        for kind in ("brand", "supplier"):
            entries = data.get(kind + "s")
            for i, entry in enumerate(entries if isinstance(entries, list) else ()):
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    path: JsonPath = (kind + "s", i, "name")
                    if not entry["name"].isascii():
                        self._lookalike(entry["name"], file, path, kind)
                    if self._once(kind, entry["name"], file, path):
                        self._spell(kind, entry["name"], file, path)
        tags = data.get("tags")
        for i, tag in enumerate(tags if isinstance(tags, list) else ()):
            if isinstance(tag, str):
                self._spell("tag", tag, file, ("tags", i))

    def references(self, data: Mapping[str, Any], file: int) -> None:
        products = data.get("products")
        if not isinstance(products, list):
            return
        skus = self._unique["sku"]
        barcodes = self._unique["barcode"]
        once = self._once
        spell = self._spell
        for i, p in enumerate(products):
            if not isinstance(p, dict):
                continue
            for key in ("handle", "sku", "barcode"):
                value = p.get(key)
                if isinstance(value, str):
                    once(key, value, file, ("products", i, key))
                    if not value.isascii() and key != "barcode":
                        self._lookalike(value, file, ("products", i, key), UNIQUE[key])
            name = p.get("name")
            if isinstance(name, str) and not name.isascii():
                self._lookalike(name, file, ("products", i, "name"), "product name")
            for key in ("brand", "supplier"):
                value = p.get(key)
                if isinstance(value, str):
                    spell(key, value, file, ("products", i, key))
            levels = category_levels(p.get("category"))
            if levels:
                text = " / ".join(levels)
                spell("category", text, file, ("products", i, "category"))
                self._placed.setdefault(tuple([x.casefold() for x in levels]), []).append(
                    (text, file, ("products", i, "category"))
                )
            for key, kind in (("tags", "tag"), ("options", "option")):
                names = p.get(key)
                if isinstance(names, list):
                    for j, name in enumerate(names):
                        if isinstance(name, str):
                            spell(kind, name, file, ("products", i, key, j))
            variants = p.get("variants")
            if not isinstance(variants, list):
                continue
            for j, v in enumerate(variants):
                if not isinstance(v, dict):
                    continue
                # Inline `_once` for the two values every variant has: this loop is the hot one.
                sku = v.get("sku")
                if isinstance(sku, str):
                    if sku.isascii():
                        k = sku.strip().casefold()
                    else:
                        k = lookalike_key(sku)
                        self._lookalike(sku, file, ("products", i, "variants", j, "sku"), "SKU")
                    if k in skus:
                        once("sku", sku, file, ("products", i, "variants", j, "sku"))
                    else:
                        skus[k] = (sku, file, ("products", i, "variants", j, "sku"))
                code = v.get("barcode")
                if isinstance(code, str):
                    k = code.strip().casefold()
                    if k in barcodes:
                        once("barcode", code, file, ("products", i, "variants", j, "barcode"))
                    else:
                        barcodes[k] = (code, file, ("products", i, "variants", j, "barcode"))

    def parent_categories(self) -> None:
        """A product on a category that another product's path goes below is refused by the
        store (products may only sit on a leaf category), so catch it here, before any call."""
        keys = sorted(self._placed)
        for n, key in enumerate(keys[:-1]):
            # Paths are tuples of levels: sorted, a path's subcategories come right after it.
            deeper = keys[n + 1]
            if deeper[: len(key)] != key:
                continue
            below = self._placed[deeper][0]
            for value, file, path in self._placed[key]:
                self.clashes.append(
                    Clash(
                        Occurrence("category_parent", value, file, path),
                        Occurrence("category_parent", below[0], below[1], below[2]),
                        False,
                    )
                )


def category_levels(category: object) -> tuple[str, ...] | None:
    """The levels a (schema-valid) category declares: a list names them, a string splits at
    every "/"; None for anything else."""
    if isinstance(category, str):
        return tuple([part.strip() for part in category.split("/")])
    if isinstance(category, list) and category and all(isinstance(c, str) for c in category):
        return tuple(category)
    return None


# --- invisible and look-alike characters --------------------------------------------------------

# Hyphens and minus signs that look like "-" (U+2011 NON-BREAKING HYPHEN comes from word
# processors), and Cyrillic and Greek letters that look like Latin ones.
_HYPHENS = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_LOOKALIKE_LETTERS = dict(
    zip(
        "АВЕЅІЈКМНОРСТХУаеіјорсхуѕԁԛԝΑΒΕΖΗΙΚΜΝΟΡΤΥΧοκν",
        "ABESIJKMHOPCTXYaeijopcxysdqwABEZHIKMNOPTYXokv",
        strict=True,
    )
)
_SKELETON = str.maketrans({**dict.fromkeys(_HYPHENS, "-"), **_LOOKALIKE_LETTERS})


def lookalike_key(text: str) -> str:
    """What a person sees in a SKU: invisible characters dropped, spaces and hyphens of every
    kind made plain, look-alike letters made Latin, compatibility forms (full-width letters)
    folded, case folded. Two SKUs with one key cannot be told apart on a label or a screen."""
    if text.isascii():
        return text.strip().casefold()
    folded = unicodedata.normalize("NFKC", text).translate(_SKELETON)
    visible = "".join(c for c in folded if unicodedata.category(c) != "Cf")
    return " ".join(visible.split()).casefold()


def lookalike_characters(text: str) -> list[str]:
    """The invisible and look-alike characters in a text, each once, as `U+200B ZERO WIDTH
    SPACE`: format characters, spaces other than the plain one, hyphens other than "-", and
    Cyrillic or Greek letters that look Latin when the text also has Latin letters."""
    if text.isascii():
        return []
    latin = any("a" <= c <= "z" or "A" <= c <= "Z" for c in text)
    found: dict[str, None] = {}
    for c in text:
        if c.isascii():
            continue
        category = unicodedata.category(c)
        if (
            category == "Cf"
            or category == "Zs"
            or c in _HYPHENS
            or (latin and c in _LOOKALIKE_LETTERS)
        ):
            found[f"U+{ord(c):04X} {unicodedata.name(c, 'UNNAMED')}"] = None
    return list(found)


def lookalike_finding(value: str, path: JsonPath, what: str) -> Finding | None:
    """A warning for a SKU, handle or name holding invisible or look-alike characters. Only a
    warning: a real store may hold it so, and its import must keep it as it is."""
    found = lookalike_characters(value)
    if not found:
        return None
    return Finding(
        path,
        f"{what} {quote(value)} contains {', '.join(found)}, which "
        f"{'looks' if len(found) == 1 else 'look'} like plain text but is not",
        "retype it with plain characters, unless the store holds it this way",
    )


def cross_check(files: Sequence[Mapping[str, Any]]) -> CrossCheck:
    """Every clash and look-alike warning across the files' data (given in load order)."""
    check = CrossCheck()
    for i, data in enumerate(files):
        check.declarations(data, i)
    for i, data in enumerate(files):
        check.references(data, i)
    check.parent_categories()
    return check


def clashes(files: Sequence[Mapping[str, Any]]) -> list[Clash]:
    """Every clash across the files' data (given in load order)."""
    return cross_check(files).clashes


def clash_message(clash: Clash, first_where: str) -> tuple[str, str]:
    """The message and hint for a clash; `first_where` is `file:line:col` of the first one."""
    kind = clash.at.kind
    if kind == "category_parent":
        return (
            f"category {quote(clash.at.value)} has subcategories in this catalog "
            f"({quote(clash.first.value)} at {first_where}), and the store only puts products "
            "on a leaf category",
            f"move the product to a subcategory such as {quote(clash.first.value)}",
        )
    if clash.spelling:
        noun = SPELLED[kind]
        return (
            f"{noun} {quote(clash.at.value)} differs only in case or spaces from "
            f"{quote(clash.first.value)} at {first_where}",
            f"{noun} names are case-insensitive in the store: write it as "
            f"{quote(clash.first.value)}",
        )
    noun = UNIQUE[kind]
    if kind == "sku" and clash.at.value.strip().casefold() != clash.first.value.strip().casefold():
        differs = lookalike_characters(clash.at.value) or lookalike_characters(clash.first.value)
        return (
            f"{quote(clash.at.value)} looks the same as the SKU {quote(clash.first.value)} at "
            f"{first_where}; they differ only by {', '.join(differs)}",
            "SKUs that cannot be told apart on a label or screen are refused: declare each "
            "SKU once, typed the same way",
        )
    same = "" if clash.at.value == clash.first.value else f" as {quote(clash.first.value)}"
    return (
        f"{quote(clash.at.value)} is also declared{same} in {first_where}",
        f"declare each {noun} once",
    )


# --- image content -----------------------------------------------------------------------------

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGES_PER_PRODUCT = 250


class ImageKind(NamedTuple):
    """An image format the store accepts (lightspeed-xseries.md §7)."""

    media_type: str  # "image/jpeg"
    extension: str  # "jpg": what an imported image's file is called


# The store accepts these types; the type is decided by content, never by the file name.
_MAGIC: tuple[tuple[bytes, ImageKind], ...] = (
    (b"\xff\xd8\xff", ImageKind("image/jpeg", "jpg")),
    (b"\x89PNG\r\n\x1a\n", ImageKind("image/png", "png")),
    (b"GIF87a", ImageKind("image/gif", "gif")),
    (b"GIF89a", ImageKind("image/gif", "gif")),
    (b"II*\x00", ImageKind("image/tiff", "tif")),
    (b"MM\x00*", ImageKind("image/tiff", "tif")),
)
_WEBP = ImageKind("image/webp", "webp")


def sniff_image(data: bytes) -> ImageKind | None:
    """The format of image bytes (the first 12 suffice), or None if the store takes no such
    format. The one sniffer: validate, apply, import and the sandbox all ask it."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _WEBP
    return None


def image_type(head: bytes) -> str | None:
    """The image type of a file from its first 12 bytes ("jpeg", "png", ...), or None if it is
    not one we accept (what the parse cache keeps)."""
    kind = sniff_image(head)
    return None if kind is None else kind.media_type.removeprefix("image/")
