"""The sandbox's SQLite storage: every X-Series object as one JSON document, plus the one
store-wide version counter that makes the list endpoints a change feed.

Documents keep their wire field names. A few fields are copied into indexed columns so the
rules that need them (SKU and name uniqueness, family membership, paging by version) are one
indexed query each. The connection and transactions are the sandboxes' shared `SqliteStore`
(providers/sandbox_db.py).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from reconciler.providers.sandbox_db import SqliteStore

Doc = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    family_id TEXT,
    sku TEXT,
    name_key TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_feed ON objects (kind, version);
-- Look-ups end in `version` too: the rows come out in feed order straight from the index, so
-- SQLite never prefers walking every object of a kind through objects_feed to avoid a sort
-- (it did, without ANALYZE statistics, which made seeding a large store quadratic).
DROP INDEX IF EXISTS objects_family;
DROP INDEX IF EXISTS objects_sku;
DROP INDEX IF EXISTS objects_name;
CREATE INDEX IF NOT EXISTS objects_family_v ON objects (kind, family_id, version);
CREATE INDEX IF NOT EXISTS objects_sku_v ON objects (kind, sku, version);
CREATE INDEX IF NOT EXISTS objects_name_v ON objects (kind, name_key, version);
CREATE TABLE IF NOT EXISTS blobs (
    sha TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Real stores' versions jump by varying amounts because one counter serves every object kind;
# gaps here keep clients honest about never assuming +1.
_MAX_VERSION_STEP = 7


def name_key(name: object) -> str | None:
    """The comparison key for names that must be unique: case and surrounding space ignored."""
    return name.strip().casefold() if isinstance(name, str) else None


class Objects(SqliteStore):
    """JSON documents by kind and id, versioned from one counter."""

    def __init__(self, path: str | Path, *, rng: random.Random) -> None:
        super().__init__(path, schema=_SCHEMA, tables=("objects", "blobs", "meta"))
        self._rng = rng

    def is_empty(self) -> bool:
        row = self._conn.execute("SELECT COUNT(*) FROM objects").fetchone()
        return int(row[0]) == 0

    # -- the counter -------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def next_version(self) -> int:
        current = int(self.meta("version") or "1000")
        version = current + self._rng.randint(1, _MAX_VERSION_STEP)
        self.set_meta("version", str(version))
        return version

    # -- documents ---------------------------------------------------------------------------

    def put(self, kind: str, doc: Doc) -> Doc:
        """Store `doc` under a fresh version (set on `doc` and returned)."""
        doc["version"] = self.next_version()
        self._conn.execute(
            "INSERT INTO objects (id, kind, version, deleted, family_id, sku, name_key, doc) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "version = excluded.version, deleted = excluded.deleted, "
            "family_id = excluded.family_id, sku = excluded.sku, "
            "name_key = excluded.name_key, doc = excluded.doc",
            (
                doc["id"],
                kind,
                doc["version"],
                1 if doc.get("deleted_at") else 0,
                doc.get("family_id"),
                doc.get("sku"),
                name_key(doc.get("name")),
                json.dumps(doc, separators=(",", ":")),
            ),
        )
        return doc

    def get(self, kind: str, id: str, *, include_deleted: bool = False) -> Doc | None:
        sql = "SELECT doc FROM objects WHERE id = ? AND kind = ?"
        if not include_deleted:
            sql += " AND deleted = 0"
        row = self._conn.execute(sql, (id, kind)).fetchone()
        return None if row is None else _load(row[0])

    def page(
        self,
        kind: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        include_deleted: bool = False,
    ) -> list[Doc]:
        """Documents ordered by version ascending: the change feed."""
        sql = "SELECT doc FROM objects WHERE kind = ?"
        params: list[object] = [kind]
        if after is not None:
            sql += " AND version > ?"
            params.append(after)
        if before is not None:
            sql += " AND version < ?"
            params.append(before)
        if not include_deleted:
            sql += " AND deleted = 0"
        sql += " ORDER BY version"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_load(row[0]) for row in self._conn.execute(sql, params)]

    def where(
        self, kind: str, column: str, value: str, *, include_deleted: bool = False
    ) -> list[Doc]:
        if column not in ("family_id", "sku", "name_key"):
            raise ValueError(f"not an indexed column: {column}")
        sql = f"SELECT doc FROM objects WHERE kind = ? AND {column} = ?"
        if not include_deleted:
            sql += " AND deleted = 0"
        sql += " ORDER BY version"
        return [_load(row[0]) for row in self._conn.execute(sql, (kind, value))]

    def in_families(self, kind: str, family_ids: list[str]) -> list[Doc]:
        """Live documents of `kind` belonging to any of the families, in version order."""
        if not family_ids:
            return []
        marks = ",".join("?" for _ in family_ids)
        # Several families: a sort of their few rows beats walking the kind's whole feed.
        sql = (
            f"SELECT doc FROM objects INDEXED BY objects_family_v WHERE kind = ? AND deleted = 0 "
            f"AND family_id IN ({marks}) ORDER BY version"
        )
        return [_load(row[0]) for row in self._conn.execute(sql, (kind, *family_ids))]

    # -- image bytes -------------------------------------------------------------------------

    def put_blob(self, sha: str, media_type: str, data: bytes) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO blobs (sha, media_type, data) VALUES (?, ?, ?)",
            (sha, media_type, data),
        )

    def blob(self, sha: str) -> tuple[str, bytes] | None:
        row = self._conn.execute(
            "SELECT media_type, data FROM blobs WHERE sha = ?", (sha,)
        ).fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]))


def _load(text: str) -> Doc:
    doc: Doc = json.loads(text)
    return doc
