"""The apply lock: one `catalog apply` per store at a time, held in the state file.

The `lock` table holds at most one row per lock name (one per store): who holds it (owner, host,
pid), since when, and until when. The holder renews the expiry from a background thread while it
runs; a second apply finds a live row and is refused with `LockHeld`, naming the holder.

No manual unlock is ever needed after a crash: a row is taken over when its expiry has passed
(the holder stopped renewing: it died, or its host did), or at once when the holder ran on this
host and its pid is gone. Every acquire, takeover and release is recorded in `lock_events`.

Acquiring is a `BEGIN IMMEDIATE` transaction on a connection of its own, so two processes can
never both read "free" and both write: SQLite gives the write lock to one of them at a time.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType

from reconciler.errors import LockHeld
from reconciler.state import State
from reconciler.state.ledger import state_lock

DEFAULT_TTL = 60.0  # seconds a holder that stops renewing keeps the lock


@dataclass(frozen=True)
class Holder:
    """Who takes the lock. Defaults to this process; tests pass other hosts and pids."""

    owner: str
    host: str
    pid: int

    @staticmethod
    def current(owner: str | None = None) -> Holder:
        return Holder(owner=owner or current_user(), host=socket.gethostname(), pid=os.getpid())


@dataclass(frozen=True)
class LockInfo:
    """The lock row as read."""

    name: str
    owner: str
    host: str
    pid: int
    acquired_at: str
    renewed_at: str
    expires_at: str

    @property
    def holder(self) -> Holder:
        return Holder(owner=self.owner, host=self.host, pid=self.pid)


def current_user() -> str:
    """The local user's name (what the lock and the ledger show when no CI actor is known)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return f"uid {os.getuid()}"


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    # A killed child its parent has not reaped yet still answers kill(0): read its state.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


class ApplyLock:
    """The lock named `name` (one per store) in a state file.

    Use as a context manager, or `acquire()` / `release()`. While held, a daemon thread renews
    the expiry every `ttl / 3` seconds; if the row is ever found taken over (this process was
    paused past its expiry), `lost` becomes true and the apply loop must stop writing.
    """

    def __init__(
        self,
        state: State,
        name: str,
        *,
        holder: Holder | None = None,
        ttl: float = DEFAULT_TTL,
        renew_every: float | None = None,
    ) -> None:
        self.state = state
        self.name = name
        self.holder = holder or Holder.current()
        self.ttl = ttl
        self.renew_every = renew_every if renew_every is not None else ttl / 3
        self.acquired_at: str | None = None
        self.took_over: LockInfo | None = None  # the stale holder replaced, if any
        self.misses = 0  # renewals that failed on a busy file (the expiry leaves room)
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- connections ---------------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection for lock transactions.

        A file gets a connection of its own, so `BEGIN IMMEDIATE` never collides with a
        transaction another thread of this process has open on the State's connection. An
        in-memory State (tests) can only be reached through its own connection, under its lock.
        """
        if self.state.path == ":memory:":
            with state_lock(self.state):
                yield self.state.db.conn
            return
        conn = sqlite3.connect(self.state.path, timeout=30, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn:
            # The State's connection may hold an implicit transaction: finish it first.
            if conn.in_transaction:
                conn.commit()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- reading -------------------------------------------------------------------------------

    def info(self) -> LockInfo | None:
        """The current row, held or stale; None when free."""
        with self._connection() as conn:
            return _read(conn, self.name)

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    @property
    def held(self) -> bool:
        return self.acquired_at is not None and not self.lost

    # -- acquire / renew / release -------------------------------------------------------------

    def acquire(self) -> ApplyLock:
        """Take the lock or raise `LockHeld` naming the holder. Takes over a stale one."""
        now = _now()
        me = self.holder
        with self._immediate() as conn:
            current = _read(conn, self.name)
            if current is not None:
                stale = _stale_reason(current, now)
                if stale is None:
                    raise LockHeld(_held_message(current))
                _event(conn, "takeover", me, f"{_describe(current)}: {stale}")
                self.took_over = current
            acquired = _iso(now)
            conn.execute(
                "insert or replace into lock "
                "(name, owner, host, pid, acquired_at, renewed_at, expires_at) "
                "values (?, ?, ?, ?, ?, ?, ?)",
                [
                    self.name,
                    me.owner,
                    me.host,
                    me.pid,
                    acquired,
                    acquired,
                    _iso(now + timedelta(seconds=self.ttl)),
                ],
            )
            _event(conn, "acquire", me, self.name)
        self.acquired_at = acquired
        self._lost.clear()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._renew_loop, name=f"lock-renew-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def renew(self) -> bool:
        """Push the expiry out by `ttl`; False (and `lost`) if the row is no longer ours."""
        if self.acquired_at is None:
            return False
        now = _now()
        with self._immediate() as conn:
            cursor = conn.execute(
                "update lock set renewed_at = ?, expires_at = ? "
                "where name = ? and host = ? and pid = ? and acquired_at = ?",
                [
                    _iso(now),
                    _iso(now + timedelta(seconds=self.ttl)),
                    self.name,
                    self.holder.host,
                    self.holder.pid,
                    self.acquired_at,
                ],
            )
            ours = cursor.rowcount == 1
        if not ours:
            self._lost.set()
        return ours

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_every):
            try:
                if not self.renew():
                    return
            except sqlite3.Error:
                # A busy file: try again next tick; the expiry leaves room for a few misses.
                self.misses += 1
                continue

    def release(self) -> None:
        """Give the lock up (only if it is still ours) and stop renewing."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
        if self.acquired_at is None:
            return
        with self._immediate() as conn:
            cursor = conn.execute(
                "delete from lock where name = ? and host = ? and pid = ? and acquired_at = ?",
                [self.name, self.holder.host, self.holder.pid, self.acquired_at],
            )
            if cursor.rowcount == 1:
                _event(conn, "release", self.holder, self.name)
        self.acquired_at = None

    def __enter__(self) -> ApplyLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Never let a failed release hide the error that ended the apply; the expiry frees it.
        with contextlib.suppress(sqlite3.Error):
            self.release()


def lock_events(state: State, *, limit: int = 50) -> list[dict[str, object]]:
    """The newest lock events (acquire, takeover, release), newest first."""
    with state_lock(state):
        cursor = state.db.execute(
            "select at, event, owner, host, pid, detail from lock_events order by id desc limit ?",
            [limit],
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _read(conn: sqlite3.Connection, name: str) -> LockInfo | None:
    row = conn.execute(
        "select name, owner, host, pid, acquired_at, renewed_at, expires_at "
        "from lock where name = ?",
        [name],
    ).fetchone()
    if row is None:
        return None
    return LockInfo(*row)


def _stale_reason(current: LockInfo, now: datetime) -> str | None:
    """Why a held row may be taken over, or None if its holder may still be running."""
    if _parse(current.expires_at) <= now:
        return f"its expiry {current.expires_at} had passed"
    if current.host == socket.gethostname() and not pid_alive(current.pid):
        return f"process {current.pid} is no longer running on this host"
    return None


def _describe(info: LockInfo) -> str:
    return f"{info.owner} on host {info.host} (pid {info.pid}) since {info.acquired_at}"


def _held_message(info: LockInfo) -> str:
    return (
        f"The apply lock is held by {_describe(info)}; it expires at {info.expires_at}. "
        "Wait for that apply to finish (a crashed one frees the lock by itself)."
    )


def _event(conn: sqlite3.Connection, event: str, who: Holder, detail: str) -> None:
    conn.execute(
        "insert into lock_events (at, event, owner, host, pid, detail) values (?, ?, ?, ?, ?, ?)",
        [_iso(_now()), event, who.owner, who.host, who.pid, detail],
    )
