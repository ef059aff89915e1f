"""The sandbox's look-ups cost the same in a small store and a large one.

Counted in SQLite virtual-machine steps (deterministic), not in seconds: a look-up that walked
every product of the store, as it once did without ANALYZE statistics, makes seeding a
10,000-family benchmark store quadratic.
"""

from __future__ import annotations

import sqlite3

from reconciler.providers.xseries.sandbox import SandboxStore


def _seed(store: SandboxStore, families: int) -> None:
    for n in range(families):
        store.create_products(
            {
                "name": f"Product {n}",
                "handle": f"product-{n}",
                "sku": f"SKU-{n}",
                "price_including_tax": 1.0,
            }
        )


def _steps(conn: sqlite3.Connection, look_up: object) -> int:
    counted = [0]

    def tick() -> int:
        counted[0] += 1
        return 0

    conn.set_progress_handler(tick, 1)
    try:
        assert callable(look_up)
        look_up()
    finally:
        conn.set_progress_handler(None, 1)
    return counted[0]


def _costs(families: int) -> dict[str, int]:
    store = SandboxStore(token="t", rate_limit=None, seed=1)
    try:
        _seed(store, families)
        db = store._db  # the storage layer under test
        family = db.where("product", "sku", "SKU-3")[0]["id"]
        return {
            "sku": _steps(db._conn, lambda: db.where("product", "sku", "SKU-3")),
            "name": _steps(db._conn, lambda: db.where("product", "name_key", "product 3")),
            "family": _steps(db._conn, lambda: db.where("product", "family_id", family)),
            "families": _steps(db._conn, lambda: db.in_families("product", [family, "none"])),
        }
    finally:
        store.close()


def test_look_ups_do_not_grow_with_the_store() -> None:
    small, large = _costs(20), _costs(400)
    for name, cost in large.items():
        assert cost <= small[name] * 1.5 + 20, (name, small[name], cost)
