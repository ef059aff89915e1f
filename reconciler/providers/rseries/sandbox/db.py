"""The R-Series sandbox's SQLite storage: each record one JSON document of wire-shaped strings,
keyed by resource and integer id, with the columns paging sorts by (id, `timeStamp`, and the
description or name) copied out so a page is one indexed range read. The connection and
transactions are the sandboxes' shared `SqliteStore` (providers/sandbox_db.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reconciler.providers.sandbox_db import SqliteStore

Doc = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    id INTEGER NOT NULL,
    ts TEXT NOT NULL,
    sort_text TEXT NOT NULL,
    archived INTEGER NOT NULL,
    parent TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS records_ts ON records (kind, ts, id);
CREATE INDEX IF NOT EXISTS records_text ON records (kind, sort_text, id);
CREATE INDEX IF NOT EXISTS records_parent ON records (kind, parent, id);
CREATE TABLE IF NOT EXISTS blobs (
    public_id TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# Paging columns by sort field; other sort fields are sorted in Python.
COLUMNS = {"id": "id", "timeStamp": "ts", "text": "sort_text"}


class Records(SqliteStore):
    def __init__(self, path: str | Path) -> None:
        super().__init__(path, schema=_SCHEMA, tables=("records", "blobs", "counters"))

    def is_empty(self) -> bool:
        return self._conn.execute("SELECT 1 FROM records LIMIT 1").fetchone() is None

    def counter(self, name: str) -> int | None:
        row = self._conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def set_counter(self, name: str, value: int) -> None:
        self._conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def next_value(self, name: str) -> int:
        row = self._conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        value = (row[0] if row else 0) + 1
        self._conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )
        return value

    def put(self, kind: str, id: int, doc: Doc, *, sort_text: str = "", parent: str = "") -> None:
        """Insert or replace; `parent` is what `children` finds the record by (an item's
        matrix, an image's owner)."""
        self._conn.execute(
            "INSERT INTO records (kind, id, ts, sort_text, archived, parent, doc) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, id) DO UPDATE SET ts = excluded.ts, "
            "sort_text = excluded.sort_text, archived = excluded.archived, "
            "parent = excluded.parent, doc = excluded.doc",
            (
                kind,
                id,
                str(doc.get("timeStamp", "")),
                sort_text,
                1 if doc.get("archived") == "true" else 0,
                parent,
                json.dumps(doc, separators=(",", ":")),
            ),
        )

    def children(self, kind: str, parent: str) -> list[Doc]:
        rows = self._conn.execute(
            "SELECT doc FROM records WHERE kind = ? AND parent = ? ORDER BY id", (kind, parent)
        ).fetchall()
        return [dict(json.loads(raw)) for (raw,) in rows]

    def get(self, kind: str, id: int) -> Doc | None:
        row = self._conn.execute(
            "SELECT doc FROM records WHERE kind = ? AND id = ?", (kind, id)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def delete(self, kind: str, id: int) -> None:
        self._conn.execute("DELETE FROM records WHERE kind = ? AND id = ?", (kind, id))

    def count(self, kind: str, *, archived: str) -> int:
        where, args = _archived_clause(archived)
        row = self._conn.execute(
            f"SELECT COUNT(*) FROM records WHERE kind = ?{where}", (kind, *args)
        ).fetchone()
        return int(row[0])

    def scan(
        self,
        kind: str,
        *,
        column: str,
        descending: bool,
        archived: str,
        bound: tuple[Any, int] | None = None,
        ts_range: tuple[str | None, str | None] = (None, None),
    ) -> Iterator[Doc]:
        """Documents of `kind` ordered by (`column`, id), strictly past `bound` in that order."""
        where, args = _archived_clause(archived)
        clauses = [f"kind = ?{where}"]
        params: list[Any] = [kind, *args]
        low, high = ts_range
        if low is not None:
            clauses.append("ts >= ?")
            params.append(low)
        if high is not None:
            clauses.append("ts <= ?")
            params.append(high)
        order = "DESC" if descending else "ASC"
        if bound is not None:
            op = "<" if descending else ">"
            if column == "id":
                clauses.append(f"id {op} ?")
                params.append(bound[1])
            else:
                clauses.append(f"({column}, id) {op} (?, ?)")
                params.extend(bound)
        sql = f"SELECT doc FROM records WHERE {' AND '.join(clauses)} " + (
            f"ORDER BY id {order}" if column == "id" else f"ORDER BY {column} {order}, id {order}"
        )
        for (raw,) in self._conn.execute(sql, params):
            yield dict(json.loads(raw))

    def all(self, kind: str) -> list[Doc]:
        rows = self._conn.execute(
            "SELECT doc FROM records WHERE kind = ? ORDER BY id", (kind,)
        ).fetchall()
        return [dict(json.loads(raw)) for (raw,) in rows]

    def put_blob(self, public_id: str, media_type: str, data: bytes) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO blobs (public_id, media_type, data) VALUES (?, ?, ?)",
            (public_id, media_type, data),
        )

    def blob(self, public_id: str) -> tuple[str, bytes] | None:
        row = self._conn.execute(
            "SELECT media_type, data FROM blobs WHERE public_id = ?", (public_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]))

    def delete_blob(self, public_id: str) -> None:
        self._conn.execute("DELETE FROM blobs WHERE public_id = ?", (public_id,))


def _archived_clause(mode: str) -> tuple[str, tuple[int, ...]]:
    if mode == "false":
        return " AND archived = ?", (0,)
    if mode == "only":
        return " AND archived = ?", (1,)
    return "", ()
