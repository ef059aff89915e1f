"""The JSON Schema: Draft 2020-12, package data, strict, and what the fast path runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from reconciler.catalog import schema_path, schema_text
from reconciler.rules import compile_schema

SCHEMA: dict[str, Any] = json.loads(schema_text())


def test_schema_is_valid_draft_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_schema_is_package_data() -> None:
    path = schema_path()
    assert path.is_file() and path.parent.name == "schemas"
    assert json.loads(path.read_text()) == SCHEMA


def test_the_example_catalog_names_the_schema_for_editors() -> None:
    catalog = Path(__file__).resolve().parents[2] / "catalog"
    for file in sorted(catalog.glob("*.yaml")):
        first = file.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), file
        target = (file.parent / first.partition("$schema=")[2]).resolve()
        assert target == schema_path().resolve()


@pytest.mark.parametrize("name", ["product", "variant", "brand", "supplier", "settings"])
def test_every_object_is_strict(name: str) -> None:
    definition = SCHEMA["$defs"][name]
    assert definition["type"] == "object"
    assert definition["additionalProperties"] is False
    assert SCHEMA["additionalProperties"] is False


def test_every_pattern_explains_itself() -> None:
    # Pattern failures are reported with the description ("is not a SKU").
    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "pattern" in node:
                assert node.get("description"), node
            for value in node.values():
                walk(value)

    walk(SCHEMA)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "format": "email"},
        {"oneOf": [{"type": "string"}]},
        {"$ref": "https://example.com/other.json"},
        {"type": "integer"},
        {"properties": {"a": {"multipleOf": 0.01}}},
    ],
)
def test_compile_schema_refuses_what_it_does_not_implement(schema: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="compile_schema"):
        compile_schema(schema)


def test_compile_schema_handles_recursive_definitions() -> None:
    schema = {
        "$defs": {"tree": {"type": "array", "items": {"$ref": "#/$defs/tree"}}},
        "$ref": "#/$defs/tree",
    }
    check = compile_schema(schema)
    assert check([[], [[]]]) is True
    assert check([[], [1]]) is False
