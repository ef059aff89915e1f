"""Import benchmark: `catalog import` of the benchmark's 10,000-family store, cold and warm.

Setup (not timed): the generated benchmark catalog (`bench.generate`, 10,000 families of 5
variants) is put straight into an in-memory sandbox store through the store's own create calls
(the same validation as its HTTP API, without 10,000 HTTP round trips), then the store is served
on 127.0.0.1 with the X-Series rate limit (350 requests per 5 minutes).

Timed, exactly what `catalog import` runs: the change-feed refresh into a fresh state file, the
normalization, the catalog files written and validated. Then a second (warm) import against the
same state, which must give byte-identical files. Reported: requests by route, time per phase,
and the family count imported. The server shares this interpreter (and its GIL) with the
importer, so the times are an upper bound of what the importer alone costs.

Seeding 10,000 families this way takes the sandbox minutes (its uniqueness checks slow down as
the store grows), so `--store-db FILE` keeps the seeded store: the first run fills FILE, later
runs with the same `--families` reuse it.

Run: `python -m bench import` (`--families N` to scale, `--store-db FILE` to reuse the seed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bench.generate import generate_catalog
from reconciler.catalog import load_catalog
from reconciler.cli.import_ import check_written, read_store, write_store_import
from reconciler.client import Client
from reconciler.model import Catalog, name_key
from reconciler.normalize import barcode_type
from reconciler.sandbox import SandboxStore, serve_in_thread
from reconciler.state import State

TOKEN = "import-bench-token"
T = TypeVar("T")


def seed(store: SandboxStore, catalog: Catalog) -> None:
    """Create every name, category and family of `catalog` in the store, one call each."""
    brands = {
        name_key(b.name): store.create_named("brand", {"name": b.name}) for b in catalog.brands
    }
    suppliers = {
        name_key(s.name): store.create_named("supplier", {"name": s.name})
        for s in catalog.suppliers
    }
    tags = {name_key(t): store.create_named("tag", {"name": t}) for t in catalog.tags}
    attributes: dict[str, str] = {}
    paths = sorted({p.category for p in catalog.products if p.category})
    nodes = sorted({path[: i + 1] for path in paths for i in range(len(path))})
    made = store.bulk_categories(
        {
            "categories": [
                {
                    "name": node[-1],
                    "payload_id": "/".join(node),
                    **(
                        {"payload_parent_category_id": "/".join(node[:-1])} if len(node) > 1 else {}
                    ),
                }
                for node in nodes
            ]
        }
    )
    category_ids = _category_ids(made, nodes)
    for p in catalog.products:
        for option in p.options:
            if name_key(option) not in attributes:
                attributes[name_key(option)] = store.create_attribute({"name": option})["id"]
        body: dict[str, Any] = {
            "name": p.name,
            "handle": p.handle,
            "description": p.description or "",
            "brand_id": brands[name_key(p.brand)] if p.brand else None,
            "supplier_id": suppliers[name_key(p.supplier)] if p.supplier else None,
            "supplier_code": p.supplier_code,
            "product_category_id": category_ids[p.category] if p.category else None,
            "tag_ids": [tags[name_key(t)] for t in p.tags or ()],
            "variants": [
                {
                    "sku": v.sku,
                    "price_including_tax": float(v.price or 0),
                    "supply_price": float(v.supply_price or 0),
                    "product_codes": [{"type": barcode_type(v.barcode), "code": v.barcode}]
                    if v.barcode
                    else [],
                    "variant_definitions": [
                        {"attribute_id": attributes[name_key(a)], "value": value}
                        for a, value in v.options
                    ],
                }
                for v in p.sellables()
            ],
        }
        store.create_products({k: v for k, v in body.items() if v is not None})


def _category_ids(made: Any, nodes: list[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    rows = made.get("data", made) if isinstance(made, dict) else made
    if isinstance(rows, dict):
        rows = rows.get("categories", [])
    by_payload = {str(r.get("payload_id")): str(r["id"]) for r in rows if r.get("payload_id")}
    if len(by_payload) == len(nodes):
        return {node: by_payload["/".join(node)] for node in nodes}
    # Answers without payload ids come back in the order they were sent.
    return {node: str(r["id"]) for node, r in zip(nodes, rows, strict=True)}


def open_seeded(
    path: Path | None, families: int, root: Path, setup: dict[str, float]
) -> SandboxStore:
    """A sandbox store holding the generated catalog; seeded now unless `path` already holds it.

    A marker beside the file records what was seeded, written only once seeding finished, so
    an interrupted seed is started again rather than trusted.
    """
    marker = path.with_name(path.name + ".seeded") if path else None
    wanted = f"families={families} generator=bench.generate"
    if path is not None and marker is not None and marker.exists():
        if marker.read_text() == wanted:
            setup["seed store"] = 0.0
            return SandboxStore(path, token=TOKEN, rate_limit="xseries", seed=1)
        marker.unlink()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
    timed("generate", setup, lambda: generate_catalog(root / "generated", families=families))
    catalog = timed("load generated", setup, lambda: load_catalog(root / "generated"))
    store = SandboxStore(path or ":memory:", token=TOKEN, rate_limit="xseries", seed=1)
    timed("seed store", setup, lambda: seed(store, catalog))
    if marker is not None:
        marker.write_text(wanted)
    return store


def timed(label: str, times: dict[str, float], fn: Callable[[], T]) -> T:
    started = time.perf_counter()
    try:
        return fn()
    finally:
        times[label] = round(time.perf_counter() - started, 2)


def digest(directory: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(path.relative_to(directory).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def run_import(url: str, state_path: Path, out: Path) -> dict[str, Any]:
    """One `catalog import` (what the command runs), timed per phase."""
    times: dict[str, float] = {}
    started = time.perf_counter()
    with State(state_path) as state, Client(url, TOKEN) as client:
        imported = timed(
            "read (refresh + normalize)", times, lambda: read_store(client, state, download=None)
        )
        timed("write files", times, lambda: write_store_import(out, imported, state))
        requests = client.stats().requests
        rate_limited = client.stats().rate_limited
    timed("validate written catalog", times, lambda: check_written(out))
    times["total"] = round(time.perf_counter() - started, 2)
    return {
        "requests": requests,
        "rate_limited": rate_limited,
        "products": len(imported.result.catalog.products),
        "variants": sum(len(p.variants) for p in imported.result.catalog.products),
        "problems": len(imported.result.problems),
        "seconds": times,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", type=int, default=10_000)
    parser.add_argument(
        "--store-db",
        type=Path,
        default=None,
        help="Keep the seeded sandbox store in this file and reuse it on later runs.",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        root = Path(tmp)
        setup: dict[str, float] = {}
        store = open_seeded(args.store_db, args.families, root, setup)
        with serve_in_thread(store) as url:
            store.reset_stats()
            cold = run_import(url, root / "state.db", root / "cold")
            cold["by_route"] = store.stats()["requests"]["by_route"]
            store.reset_stats()
            warm = run_import(url, root / "state.db", root / "warm")
            warm["by_route"] = store.stats()["requests"]["by_route"]
        same = digest(root / "cold") == digest(root / "warm")
        store.close()
    report = {
        "families": args.families,
        "setup_seconds": setup,
        "cold_import": cold,
        "warm_import": warm,
        "byte_identical": same,
    }
    print(json.dumps(report, indent=2))
    if not same or cold["products"] != args.families:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
