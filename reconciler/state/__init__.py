"""The SQLite state file (via sqlite-utils): the only place the product touches SQLite.

It speeds things up and keeps history; the live store stays the truth (design invariant 1), so
losing this file may cost a full refresh but never a duplicate or a wrong write.

Parts, each in its own module over the one `State`:
- `cache`: cached live objects per kind and the change-feed cursor per kind;
- `ledger`: apply runs and applied changes, managed keys and their remote ids, create intents;
- `lock`: the one-apply-per-store lock.

The schema evolves only through `schema.MIGRATIONS`; the applied count is SQLite's
`user_version`, so old state files are upgraded in place and newer ones are refused.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from reconciler.errors import StateError
from reconciler.state.schema import MIGRATIONS


class State:
    """An open state file. `State(":memory:")` is a throwaway one for tests."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            # WAL: a reader (plan) never blocks the apply that writes; each commit is atomic.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self.db = sqlite_utils.Database(conn)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"State file {self.path} is unreadable ({exc}): move it aside and rerun; "
                "the next run does a full refresh from the store."
            ) from exc

    @property
    def schema_version(self) -> int:
        row = self.db.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise StateError(
                f"State file {self.path} was written by a newer lightspeed-catalog "
                f"(schema {current}, this one knows {len(MIGRATIONS)}): upgrade the tool."
            )
        for number, migration in enumerate(MIGRATIONS[current:], start=current + 1):
            with self.db.conn:
                migration(self.db)
                self.db.execute(f"PRAGMA user_version = {number}")

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
