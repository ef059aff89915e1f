"""Properties: the loader never raises, load(dump(c)) == c, and order never changes the digest."""

from __future__ import annotations

import dataclasses
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.catalog import (
    _careful_build,
    _fast_build,
    _GiveUp,
    dump_catalog,
    schema_text,
    to_yaml,
    validate_directory,
)
from reconciler.model import Catalog, catalog_to_data
from reconciler.rules import compile_schema

from .strategies import catalogs, documents, free_text, name_text

FIXTURES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _fresh(directory: Path) -> Path:
    """An empty catalog directory (hypothesis reuses the test's tmp_path across examples)."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.rglob("*.yaml"):
        path.unlink()
    return directory


def _assert_outcome(directory: Path) -> None:
    report = validate_directory(directory)
    assert (report.catalog is None) == bool(report.problems)
    for problem in report.problems:
        assert problem.line >= 1 and problem.column >= 1
        assert "\n" not in str(problem)
        # Every location is inside the file (a line past the last one only for end-of-file).
        text = (directory / Path(problem.file).name).read_bytes().decode("utf-8", "replace")
        assert problem.line <= len(text.splitlines()) + 1


@FIXTURES
@given(content=st.binary(max_size=300))
def test_arbitrary_bytes_give_a_catalog_or_problems(tmp_path: Path, content: bytes) -> None:
    directory = _fresh(tmp_path / "c")
    (directory / "a.yaml").write_bytes(content)
    _assert_outcome(directory)


_FRAGMENTS = [
    "products:",
    "- ",
    "  ",
    "handle: a",
    "name: A",
    "&x ",
    "*x",
    "<<: ",
    "!!str ",
    "{",
    "}",
    "[",
    "]",
    ": ",
    "? ",
    "---",
    "...",
    "'",
    '"',
    "#",
    "|",
    ">",
    "\n",
    "\t",
    "price: 1.5",
    "options: [Size]",
    "variants:",
    "sku: S",
    "%YAML 1.1",
    "!t ",
    ",",
]


@FIXTURES
@given(parts=st.lists(st.sampled_from(_FRAGMENTS) | name_text, max_size=40))
def test_arbitrary_yaml_text_gives_a_catalog_or_problems(tmp_path: Path, parts: list[str]) -> None:
    directory = _fresh(tmp_path / "c")
    (directory / "a.yaml").write_text("".join(parts), encoding="utf-8")
    _assert_outcome(directory)


@FIXTURES
@given(doc=documents, flow=st.booleans())
def test_arbitrary_documents_give_a_catalog_or_problems(
    tmp_path: Path, doc: Any, flow: bool
) -> None:
    directory = _fresh(tmp_path / "c")
    text = yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=True)
    (directory / "a.yaml").write_text(text, encoding="utf-8")
    _assert_outcome(directory)


def _comparable(value: object) -> str:
    return json.dumps(value, default=repr, sort_keys=False)


@settings(max_examples=150, deadline=None)
@given(doc=documents, flow=st.booleans())
def test_fast_and_careful_passes_read_the_same_document(doc: Any, flow: bool) -> None:
    text = yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=True)
    careful = _careful_build(text)
    try:
        fast = _fast_build(text)
    except _GiveUp:
        return
    assert careful.findings == []
    assert _comparable(fast) == _comparable(careful.data)


@settings(max_examples=150, deadline=None)
@given(doc=documents)
def test_both_passes_agree_with_pyyaml_on_plain_documents(doc: Any) -> None:
    # Same YAML 1.1 typing as yaml.safe_load, except that floats become exact Decimals.
    text = yaml.safe_dump(doc, allow_unicode=True)
    expected = yaml.safe_load(text)
    got = _careful_build(text).data

    def normal(v: object) -> object:
        if isinstance(v, float | Decimal):
            return float(v)
        if isinstance(v, list):
            return [normal(x) for x in v]
        if isinstance(v, dict):
            return {k: normal(x) for k, x in v.items()}
        return v

    assert _comparable(normal(got)) == _comparable(normal(expected))


@FIXTURES
@given(catalog=catalogs())
def test_load_dump_load_gives_the_same_catalog(tmp_path: Path, catalog: Catalog) -> None:
    directory = _fresh(tmp_path / "c")
    (directory / "catalog.yaml").write_text(dump_catalog(catalog), encoding="utf-8")
    report = validate_directory(directory)
    assert report.problems == []
    assert report.catalog == catalog
    assert report.catalog.digest() == catalog.digest()
    # And once more through the loaded value.
    (directory / "catalog.yaml").write_text(dump_catalog(report.catalog), encoding="utf-8")
    again = validate_directory(directory).catalog
    assert again == catalog


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@FIXTURES
@given(catalog=catalogs(), seed=st.integers(0, 2**32), files=st.integers(1, 4))
def test_digest_does_not_depend_on_file_or_key_order(
    tmp_path: Path, catalog: Catalog, seed: int, files: int
) -> None:
    rng = random.Random(seed)
    data = catalog_to_data(catalog)
    data.pop("image_hashes", None)
    products = list(data.pop("products"))
    rng.shuffle(products)
    brands, suppliers, tags = data.pop("brands"), data.pop("suppliers"), data.pop("tags")
    rng.shuffle(brands)
    rng.shuffle(tags)
    docs: list[dict[str, Any]] = [{} for _ in range(files)]
    docs[0] = data  # settings stay in catalog.yaml
    for product in products:
        docs[rng.randrange(files)].setdefault("products", []).append(product)
    for key, values in (("brands", brands), ("suppliers", suppliers), ("tags", tags)):
        for value in values:
            docs[rng.randrange(files)].setdefault(key, []).append(value)
    names = ["catalog.yaml"] + [f"part-{rng.randrange(10**6)}-{i}.yaml" for i in range(1, files)]
    directory = _fresh(tmp_path / "c")
    for name, doc in zip(names, docs, strict=True):
        (directory / name).write_text(to_yaml(_shuffled(doc, rng)), encoding="utf-8")
    report = validate_directory(directory)
    assert report.problems == []
    assert report.catalog == catalog
    assert report.catalog.digest() == catalog.digest()


@settings(max_examples=100, deadline=None)
@given(text=free_text | name_text)
def test_to_yaml_round_trips_any_text(text: str) -> None:
    data = {"description": text, "list": [text], text: "key"}
    assert _careful_build(to_yaml(data)).data == data


# --- the fast schema check is the schema ---------------------------------------------------------

SCHEMA = json.loads(schema_text())
_near_values = st.one_of(
    st.sampled_from(
        [
            "classic-tee",
            "Classic Tee",
            "",
            " x",
            "TEE-S",
            "9300000000019",
            "123",
            "25.00",
            "1.123456",
            "-1",
            "Apparel / Tops",
            "Apparel //",
            "none",
            "delete",
            "acme",
            "a-b",
        ]
    ),
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.decimals(min_value=-5, max_value=5, places=6, allow_nan=False),
    st.just([]),
    st.just({}),
)
_near_keys = st.sampled_from(
    [
        "handle",
        "name",
        "sku",
        "barcode",
        "price",
        "supply_price",
        "options",
        "variants",
        "images",
        "active",
        "category",
        "tags",
        "description",
        "brand",
        "prcie",
        "Size",
    ]
)
_near = st.recursive(
    _near_values,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_near_keys, inner, max_size=6),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(instance=_near, definition=st.sampled_from(sorted(SCHEMA["$defs"])))
def test_compiled_schema_agrees_with_jsonschema(instance: Any, definition: str) -> None:
    schema = {"$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{definition}"}
    expected = jsonschema.Draft202012Validator(schema).is_valid(instance)
    assert compile_schema(schema) is not None
    assert compile_schema(SCHEMA["$defs"][definition], SCHEMA)(instance) == expected


@settings(max_examples=100, deadline=None)
@given(doc=documents)
def test_compiled_file_schema_agrees_with_jsonschema(doc: Any) -> None:
    expected = jsonschema.Draft202012Validator(SCHEMA).is_valid(doc)
    assert compile_schema(SCHEMA)(doc) == expected


def test_to_yaml_is_deterministic_block_style_and_keeps_unicode() -> None:
    from reconciler.model import Prune

    data = {
        "z": Decimal("25.50"),
        "a": ("Size", "Colour"),
        "prune": Prune.DEACTIVATE,
        "name": "Crème ☕",
        "codes": ["0123", "yes", "1.50", "null", "0000000010009", "1e3", "0o17", "1.2.3"],
        "text": "line one\nline two\n",
    }
    assert to_yaml(data) == (
        "z: '25.50'\n"
        "a:\n  - Size\n  - Colour\n"
        "prune: deactivate\n"
        "name: Crème ☕\n"
        "codes:\n  - '0123'\n  - 'yes'\n  - '1.50'\n  - 'null'\n  - '0000000010009'\n"
        "  - '1e3'\n  - '0o17'\n  - 1.2.3\n"
        "text: |\n  line one\n  line two\n"
    )
    assert to_yaml(data) == to_yaml(dict(data))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.extend(_paths(v, (*prefix, i)))
    return found


@FIXTURES
@given(catalog=catalogs(), data=st.data())
def test_mutated_catalogs_give_a_catalog_or_problems(
    tmp_path: Path, catalog: Catalog, data: st.DataObject
) -> None:
    # Valid catalogs with a few values replaced by something else: this walks the rules over
    # almost-right data, where wrong types meet the semantic checks.
    doc = catalog_to_data(catalog)
    doc.pop("image_hashes", None)
    for _ in range(data.draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = data.draw(_near | documents)
    directory = _fresh(tmp_path / "c")
    text = yaml.safe_dump(_plain_numbers(doc), allow_unicode=True, sort_keys=False)
    (directory / "catalog.yaml").write_text(text, encoding="utf-8")
    _assert_outcome(directory)


def _plain_numbers(value: Any) -> Any:
    """Decimals as YAML numbers (safe_dump has no representer for them)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(v) for v in value]
    return value


@FIXTURES
@given(catalog=catalogs(), data=st.data())
def test_product_lookup_agrees_with_a_scan_of_the_products(
    catalog: Catalog, data: st.DataObject
) -> None:
    """`Catalog.product` answers from an index: it finds what a scan of `products` finds (the
    first with that handle), and a catalog made by `replace` answers from its own products."""
    handles = [p.handle for p in catalog.products] + ["no-such-handle"]
    for handle in handles:
        assert catalog.product(handle) == next(
            (p for p in catalog.products if p.handle == handle), None
        )
    kept = data.draw(st.lists(st.sampled_from(catalog.products))) if catalog.products else []
    narrowed = dataclasses.replace(catalog, products=tuple(kept))
    for handle in handles:
        assert narrowed.product(handle) == next((p for p in kept if p.handle == handle), None)


def test_the_fast_pass_keeps_one_copy_of_each_key() -> None:
    # Keys repeat in every product and variant (500,000 "sku"s in a large catalog).
    text = "products:\n" + "".join(
        f"  - {{handle: h{n}, name: N{n}, sku: S{n}, price: '1.00'}}\n" for n in range(3)
    )
    doc = _fast_build(text)
    assert isinstance(doc, dict)
    first, *others = doc["products"]
    assert doc == yaml.safe_load(text)
    for other in others:
        for mine, theirs in zip(first, other, strict=True):
            assert mine == theirs and mine is theirs
