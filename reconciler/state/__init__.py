"""The SQLite state file (via sqlite-utils): the only place the product touches SQLite.

It speeds things up and keeps history; the live store stays the truth (design invariant 1), so
losing this file may cost a full refresh but never a duplicate or a wrong write.

Parts, each in its own module over the one `State`:
- `cache`: cached live objects per kind and the change-feed cursor per kind;
- `ledger`: apply runs and applied changes, managed keys and their remote ids, create intents;
- `lock`: the one-apply-per-store lock.

Concurrency (threads of one apply, the lock's renewal thread, a `catalog plan` in another
process): the file never answers "database is locked".
- WAL: readers never block the writer, nor the writer them.
- One writer at a time per process: the State's connection is shared by threads under one
  lock (`ledger.state_lock`); the apply lock keeps a connection of its own.
- Every write transaction begins with `BEGIN IMMEDIATE`, taking the write lock before it reads
  anything. A deferred transaction that has read and then writes fails at once with
  SQLITE_BUSY when another connection committed in between (its snapshot is stale; no busy
  timeout helps): that was the crash while the lock was renewed. Waiting for the write lock
  up front is covered by the busy timeout instead.
- Autocommit connections: no implicit transaction is ever left open holding the lock.
- Transactions are short: adoption records in batches (`Ledger.record_adoptions`), so the
  renewal thread waits milliseconds, never its expiry.

The schema evolves only through `schema.MIGRATIONS`; the applied count is SQLite's
`user_version`, so old state files are upgraded in place and newer ones are refused.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import sqlite_utils

from reconciler.errors import StateError
from reconciler.state.schema import MIGRATIONS

# Seconds a connection waits for another one's write transaction before "database is locked".
# Every write transaction is short (a batch of at most a few thousand rows), so this is only
# reached when another process hangs while holding the file.
BUSY_TIMEOUT = 30.0


class State:
    """An open state file. `State(":memory:")` is a throwaway one for tests."""

    def __init__(self, path: str | Path, *, busy_seconds: float = BUSY_TIMEOUT) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            _check_writable(Path(self.path))
        try:
            # Autocommit (isolation_level=None): no implicit transaction is ever left open
            # holding the file; every write goes through `ledger.transaction`, which takes the
            # write lock up front (BEGIN IMMEDIATE) so the busy timeout covers every wait.
            conn = sqlite3.connect(
                self.path, timeout=busy_seconds, check_same_thread=False, isolation_level=None
            )
            # WAL: a reader (plan) never blocks the apply that writes; each commit is atomic.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self.db = sqlite_utils.Database(conn)
            self._migrate()
        except sqlite3.Error as exc:
            raise state_failure(exc, self.path) from exc

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
            self.db.execute("BEGIN IMMEDIATE")
            try:
                migration(self.db)
                self.db.execute(f"PRAGMA user_version = {number}")
            except BaseException:
                self.db.conn.rollback()
                raise
            self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_writable(path: Path) -> None:
    """Refuse a state file marked read-only before SQLite is asked to write it (as root the
    write would succeed, behind the owner's back); also make its folder."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode if path.exists() else None
    except OSError as exc:
        raise StateError(
            f"State file {path} cannot be created or read ({exc.strerror}): check the path "
            "given by --state / CATALOG_STATE and its folder's permissions, then rerun."
        ) from exc
    if mode is not None and not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise StateError(
            f"State file {path} is read-only: make it writable (chmod u+w {path}) or point "
            "--state at a writable copy, then rerun."
        )
    if mode is not None and not os.access(path, os.W_OK):
        raise StateError(
            f"State file {path} is not writable by this user: fix its permissions or point "
            "--state at a writable copy, then rerun."
        )


def state_failure(exc: sqlite3.Error, path: str) -> StateError:
    """One sentence for a SQLite failure on the state file: what is wrong and what to do.

    Told apart by SQLite's own error name, because the advice differs: a damaged file may be
    moved aside (the store is the truth), a full disk or a held lock must not be."""
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    detail = str(exc) or name or type(exc).__name__
    if name.startswith("SQLITE_READONLY") or "readonly" in detail:
        return StateError(
            f"State file {path} cannot be written ({detail}): make it and its folder writable, "
            "or point --state at a writable copy, then rerun."
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in detail:
        return StateError(
            f"State file {path} is locked by another process ({detail}): wait until the other "
            "catalog command (or program) holding it finishes, then rerun."
        )
    if name.startswith(("SQLITE_FULL", "SQLITE_IOERR")) or ("disk" in detail and "full" in detail):
        return StateError(
            f"State file {path} could not be written ({detail}): the disk is full or a "
            "file-size limit (ulimit -f) was reached; free space and rerun."
        )
    return StateError(
        f"State file {path} is unreadable ({detail}): move it aside and rerun; the next run "
        "does a full refresh from the store."
    )
