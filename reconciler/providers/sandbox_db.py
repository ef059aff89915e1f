"""The SQLite plumbing every platform's sandbox store shares: one connection in autocommit
mode, its schema, nestable all-or-nothing transactions, and wiping the store's tables. Each
provider's storage class subclasses `SqliteStore` with its own schema and queries. Callers hold
the store's lock; this class adds no locking of its own. It imports no provider."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SqliteStore:
    """A SQLite file (or `:memory:`) with `schema` applied; `tables` are what `wipe` empties."""

    def __init__(self, path: str | Path, *, schema: str, tables: tuple[str, ...]) -> None:
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.executescript(schema)
        self._tables = tables
        self._depth = 0

    def close(self) -> None:
        self._conn.close()

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all (a rejected request leaves no
        trace); nested blocks join the outermost one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")
        finally:
            self._depth = 0

    def wipe(self) -> None:
        with self.transaction():
            for table in self._tables:
                self._conn.execute(f"DELETE FROM {table}")
