"""Lightspeed's published OpenAPI 3.0 specs as JSON Schema, to validate sandbox responses.

OpenAPI 3.0 schemas are almost JSON Schema; the differences that matter are translated once,
here: `nullable: true` becomes a `null` alternative, OpenAPI-only keywords are dropped, and the
spec's `format: UUID` is read as the standard `uuid` format (which is then checked).
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema

REFERENCE = Path("/work/shared/reference")
SPECS = {
    "2.0": "xseries-api-2.0.openapi.json",
    "2.1": "xseries-api-2.1.openapi.json",
}
_OPENAPI_ONLY = {
    "example",
    "examples",
    "deprecated",
    "discriminator",
    "externalDocs",
    "readOnly",
    "writeOnly",
    "xml",
}

# Places where the published schema contradicts the same spec's own example and the documented
# behaviour, so a faithful response cannot validate. Each patch says what it replaces and why;
# `test_errata_are_still_needed` fails once a patch stops being necessary.
ERRATA: dict[tuple[str, str, str, int], tuple[str, Any]] = {
    # The 200 schema says `data` is an array of objects, but the spec's example for this very
    # response is {"data": ["0717b8d6-..."]}: the new product ids, parent first.
    ("2.0", "POST", "/products", 200): (
        "/properties/data/items",
        {"type": "string", "format": "uuid"},
    ),
}


@cache
def _spec(version: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((REFERENCE / SPECS[version]).read_text())
    return document


def to_json_schema(node: Any) -> Any:
    """Translate one OpenAPI 3.0 schema (recursively) into JSON Schema."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {
        key: to_json_schema(value)
        for key, value in node.items()
        if key not in _OPENAPI_ONLY and not key.startswith("x-") and key != "nullable"
    }
    if isinstance(schema.get("format"), str):
        schema["format"] = schema["format"].lower()
    if node.get("nullable") is True:
        if isinstance(schema.get("type"), str):
            schema["type"] = [schema["type"], "null"]
            if "enum" in schema:
                schema["enum"] = [*schema["enum"], None]
        else:
            schema = {"anyOf": [schema, {"type": "null"}]}
    return schema


def operation(version: str, method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = _spec(version)["paths"][path][method.lower()]
    return operation


def response_schema(
    version: str, method: str, path: str, status: int, *, errata: bool = True
) -> dict[str, Any] | None:
    """The JSON Schema for one documented response, or None if the spec gives no body schema.
    Raises KeyError if the spec does not document `status` for the operation."""
    responses = operation(version, method, path)["responses"]
    documented = responses[str(status)]
    media = (documented.get("content") or {}).get("application/json")
    if media is None or "schema" not in media:
        return None
    schema = copy.deepcopy(media["schema"])
    patch = ERRATA.get((version, method.upper(), path, status)) if errata else None
    if patch is not None:
        pointer, replacement = patch
        _replace(schema, pointer, replacement)
    root: dict[str, Any] = to_json_schema(schema)
    # Keep $refs like "#/components/schemas/Product" resolvable against this root.
    root["components"] = to_json_schema(_spec(version)["components"])
    return root


def _replace(schema: dict[str, Any], pointer: str, replacement: Any) -> None:
    parts = pointer.strip("/").split("/")
    target: Any = schema
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = replacement


def validate(
    response: httpx.Response, version: str, method: str, path: str, *, errata: bool = True
) -> Any:
    """Assert the response's status is documented for the operation and its body validates
    against that status's schema; return the parsed body (None for an empty body)."""
    try:
        schema = response_schema(version, method, path, response.status_code, errata=errata)
    except KeyError:
        documented = sorted(operation(version, method, path)["responses"])
        raise AssertionError(
            f"{method} {path} answered {response.status_code}; the spec documents {documented}: "
            f"{response.text[:300]}"
        ) from None
    body = response.json() if response.content else None
    if schema is not None:
        jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        ).validate(body)
    return body


_EXAMPLE = "shown in the spec's own example responses (captures from a real store)"
# Fields the sandbox sends in product, brand, supplier, tag, category and variant-attribute
# reads that the published schemas do not declare, each with the reason it is kept (paths
# below `data` / `data[]`). Anything else undeclared fails conformance. The client depends on
# none of them except those in CLIENT_READS (test_conformance strips the rest from what it
# reads and normalizes the same store).
UNDECLARED_ALLOWED: dict[str, str] = {
    "is_active": f"{_EXAMPLE}; the newer name of `active`, which is read when it is absent",
    "variant_options[].id": _EXAMPLE,
    "supplier.description": _EXAMPLE,
    "supplier.source": _EXAMPLE,
    "supplier.version": _EXAMPLE,
    "categories[].version": _EXAMPLE,
    "images[].sizes": _EXAMPLE,
    "product_suppliers[].supplier_name": _EXAMPLE,
    "source": f"{_EXAMPLE} (suppliers)",
    "version": f"{_EXAMPLE} on products, product types and every embedded object; the change "
    "feed pages brands, suppliers and tags by it (`after`), as lightspeed-xseries.md §3 documents",
    "description": "a brand's description: written through POST/PUT /brands (BrandBase); the "
    "GET schema omits it. Read to compare a declared brand description; unproven on a real "
    "store until a capture shows it",
    "created_at": "a timestamp every 2.0 object carries (Product declares it); never read",
    "updated_at": "a timestamp every 2.0 object carries (Product declares it); never read",
    "": "GET /variant_attributes/{id} alone has a schema without the `data` envelope every "
    "other 2.0 read (and its own list) has; never read",
}
# Undeclared fields the client does read, from the list above.
CLIENT_READS = frozenset({"version", "description"})


def field_key(path: str) -> str:
    """A path from `undeclared_fields` without its `data` / `data[]` prefix."""
    for prefix in ("data[].", "data."):
        if path.startswith(prefix):
            return path.removeprefix(prefix)
    return "" if path == "data" else path


def strip_fields(body: Any, paths: set[str]) -> Any:
    """A copy of `body` without the fields at `paths` (as `undeclared_fields` writes them)."""
    out = copy.deepcopy(body)
    for path in paths:
        _drop(out, path.replace("[]", ".[]").split("."))
    return out


def _drop(node: Any, parts: list[str]) -> None:
    head, rest = parts[0], parts[1:]
    if head == "[]":
        for item in node if isinstance(node, list) else []:
            _drop(item, rest)
    elif isinstance(node, dict) and head in node:
        if rest:
            _drop(node[head], rest)
        else:
            del node[head]


def undeclared_fields(body: Any, schema: dict[str, Any]) -> set[str]:
    """Paths (`data[].brand.version`) of object fields in `body` that `schema` (a
    `response_schema` root) does not declare. Array indices are written `[]`."""
    found: set[str] = set()
    _walk(body, schema, schema, "", found)
    return found


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _branches(node: Any, root: dict[str, Any]) -> list[dict[str, Any]]:
    """The schema and every allOf / anyOf / oneOf member, resolved."""
    node = _resolve(node, root)
    if not isinstance(node, dict):
        return []
    out = [node]
    for key in ("allOf", "anyOf", "oneOf"):
        for member in node.get(key) or []:
            out.extend(_branches(member, root))
    return out


def _walk(value: Any, node: Any, root: dict[str, Any], path: str, found: set[str]) -> None:
    branches = _branches(node, root)
    if isinstance(value, dict):
        properties: dict[str, Any] = {}
        open_ended = False
        for branch in branches:
            properties.update(branch.get("properties") or {})
            extra = branch.get("additionalProperties")
            open_ended = open_ended or extra is True or isinstance(extra, dict)
        if not properties:
            return  # an object the spec leaves free-form
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key in properties:
                _walk(item, properties[key], root, where, found)
            elif not open_ended:
                found.add(where)
    elif isinstance(value, list):
        items = [b["items"] for b in branches if "items" in b]
        for item in value:
            for schema in items:
                _walk(item, schema, root, f"{path}[]", found)


def route_shape(path: str) -> str:
    """A path with every parameter written `{}`, to compare paths across naming styles."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def documented_routes() -> set[tuple[str, str]]:
    """(method, full path shape) of every operation in both specs."""
    methods = {"get", "post", "put", "patch", "delete"}
    return {
        (method.upper(), route_shape(f"/api/{version}{path}"))
        for version in SPECS
        for path, operations in _spec(version)["paths"].items()
        for method in operations
        if method in methods
    }
