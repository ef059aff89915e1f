"""Schema migrations of the state file, applied in order and never edited once released.

Add a change as a new function at the end of `MIGRATIONS`; SQLite's `user_version` records how
many have run. Never store the token or any other secret in any table.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from reconciler.plan import RENAMED_KINDS


def m001_cache(db: sqlite_utils.Database) -> None:
    """Live-object cache and change-feed cursors."""
    # One row per live object of a kind (the provider's own kinds: X-Series product, brand,
    # R-Series Item, ...); `data` is the store's JSON as trimmed.
    db.table("objects").create(
        {"kind": str, "id": str, "version": int, "deleted": int, "data": str},
        pk=("kind", "id"),
    )
    db.table("objects").create_index(["kind", "version"])
    # Highest version seen per kind; `refreshed_at` says how old a `--refresh off` plan is.
    db.table("cursors").create({"kind": str, "version": int, "refreshed_at": str}, pk="kind")
    # Store-wide facts (tax mode, store label, base URL) keyed by name.
    db.table("store_meta").create({"key": str, "value": str}, pk="key")


def m002_ledger(db: sqlite_utils.Database) -> None:
    """The ledger, managed keys, create intents and the apply lock."""
    db.table("runs").create(
        {
            "id": int,
            "store": str,
            "started_at": str,
            "finished_at": str,
            "outcome": str,  # running | applied | partial | failed | refused
            "git_commit": str,
            "plan_digest": str,
            "catalog_digest": str,
            "actor": str,
            "host": str,
            "counts": str,  # JSON: actions and requests
        },
        pk="id",
    )
    db.table("changes").create(
        {
            "id": int,
            "run_id": int,
            "kind": str,
            "key": str,
            "action": str,
            "fields": str,  # JSON list of {field, before, after}
            "remote_id": str,
            "remote_version": int,
            "outcome": str,  # applied | failed | skipped
            "error": str,
            "at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("changes").create_index(["key"])
    # Keys this catalog manages (created or adopted), with the values last applied per field,
    # so drift (an edit made in the store since) can be told apart from catalog edits.
    db.table("managed").create(
        {
            "kind": str,
            "key": str,
            "remote_id": str,
            "applied": str,  # JSON {field: value} last written or adopted
            "run_id": int,
            "updated_at": str,
        },
        pk=("kind", "key"),
    )
    # Write-ahead intents for creates (and image uploads): an unfinished one means the outcome
    # is unknown and the object must be looked up before anything is sent again.
    db.table("intents").create(
        {
            "id": int,
            "run_id": int,
            "kind": str,
            "key": str,
            "payload_digest": str,
            "started_at": str,
            "finished_at": str,
            "outcome": str,  # pending | done | failed
            "remote_id": str,
        },
        pk="id",
    )
    db.table("intents").create_index(["outcome"])
    db.table("lock").create(
        {
            "name": str,
            "owner": str,
            "host": str,
            "pid": int,
            "acquired_at": str,
            "renewed_at": str,
            "expires_at": str,
        },
        pk="name",
    )
    db.table("lock_events").create(
        {"id": int, "at": str, "event": str, "owner": str, "host": str, "pid": int, "detail": str},
        pk="id",
    )


def m003_images(db: sqlite_utils.Database) -> None:
    """What we uploaded: the store never gives back the original bytes (lightspeed-xseries.md
    §7)."""
    db.table("images").create(
        {
            "handle": str,
            "path": str,
            "sha256": str,
            "image_id": str,
            "product_id": str,
            "position": int,
            "uploaded_at": str,
        },
        pk=("handle", "sha256"),
    )
    db.table("images").create_index(["image_id"])


def m004_kinds_in_catalog_terms(db: sqlite_utils.Database) -> None:
    """Ledger rows (changes, managed keys, create intents) name their kind in catalog terms."""
    for table in ("changes", "managed", "intents"):
        for old, new in RENAMED_KINDS.items():
            db.execute(f"update {table} set kind = ? where kind = ?", [new, old])


def m005_family_memo(db: sqlite_utils.Database) -> None:
    """What planning remembers per family (issue 15): its result under the key of its inputs,
    and a checksum of both, so a damaged row is computed again rather than trusted."""
    db.table("family_memo").create(
        {"handle": str, "key": str, "entry": str, "checksum": str}, pk="handle"
    )


def m006_ledger_store(db: sqlite_utils.Database) -> None:
    """The store the ledger belongs to: its platform-qualified identity and human label (never
    a token), recorded at the first apply. An older ledger has none and adopts the store of its
    next apply."""
    db.table("ledger_store").create({"name": str, "identity": str, "label": str}, pk="name")


def m007_plan_basis(db: sqlite_utils.Database) -> None:
    """What an incremental plan starts from (issue 15, `reconciler.incremental`): every write to
    the cached store, the managed keys and the uploaded images is noted in `touched` by
    triggers (whatever code path made it), so a plan can ask what changed since the last one;
    `basis_families` holds each declared family as the last plan read it (its digest and
    canonical data), `basis_rows` which family each live row belonged to and `basis_skus`
    which family each SKU (declared or live) belonged to."""
    db.execute(
        "create table touched (seq integer primary key autoincrement, "
        "source text not null, kind text not null, key text not null)"
    )
    for table, kind, key in (
        ("objects", "kind", "id"),
        ("managed", "kind", "key"),
        ("images", "'image'", "handle"),
    ):
        for event, row in (("insert", "new"), ("update", "new"), ("delete", "old")):
            row_kind = kind if kind.startswith("'") else f"{row}.{kind}"
            db.execute(
                f"create trigger {table}_{event}_touched after {event} on {table} begin "
                f"insert into touched (source, kind, key) values ('{table}', {row_kind}, "
                f"{row}.{key}); end"
            )
    db.table("basis_families").create(
        {"handle": str, "file": str, "digest": str, "data": str}, pk="handle"
    )
    db.table("basis_rows").create({"id": str, "handle": str}, pk="id")
    db.table("basis_rows").create_index(["handle"])
    db.table("basis_skus").create({"sku": str, "handle": str}, pk="sku")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    m001_cache,
    m002_ledger,
    m003_images,
    m004_kinds_in_catalog_terms,
    m005_family_memo,
    m006_ledger_store,
    m007_plan_basis,
]
