"""The ledger: apply runs, applied changes, managed keys and write-ahead create intents.

Tables (schema migration m002): `runs`, `changes`, `managed`, `intents`; `ledger_store` (m006).

- A run row per `catalog apply` (catalog git commit, plan digest, who, when, outcome, counts),
  a change row per applied, failed or skipped change (fields before -> after, remote id, the
  version the store returned). `history()` reads them back newest first.
- `managed` holds every key this catalog created or adopted, its remote id and the value last
  applied per field, in the catalog's JSON shape. The planner compares live values with these to
  tell a store-side edit (drift) from a catalog edit, and prune only ever touches these keys
  (design invariant 3).
- `intents` make creates crash-safe (design invariant 6): an intent is written before the
  request is sent and finished after the answer; one still pending at startup means the outcome
  is unknown and the object must be looked up before anything is sent again.
- `ledger_store` names the store the managed keys, remote ids, intents and image hashes belong
  to (its identity and label, as text: `reconciler.api` decides what a mismatch means).

Every write is its own short transaction unless `transaction()` groups several (apply closes an
intent and records its change rows together), and the ledger is safe to use from several threads
of one process: the apply loop records outcomes while worker threads still talk to the store.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reconciler.errors import redact, redact_json
from reconciler.live import opaque_version
from reconciler.model import Json
from reconciler.state import State

# Kinds identified by a case-insensitive name (design invariant 1); their keys match that way.
NAME_KINDS = frozenset({"brand", "supplier", "tag", "attribute", "category"})

_LOCKS: weakref.WeakKeyDictionary[State, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def state_lock(state: State) -> threading.RLock:
    """The one lock serializing this process's writes to a State's connection.

    The connection is shared by threads (`check_same_thread=False`); without this, two threads'
    implicit transactions would interleave on it.
    """
    with _LOCKS_GUARD:
        lock = _LOCKS.get(state)
        if lock is None:
            lock = _LOCKS[state] = threading.RLock()
        return lock


# Keys bound per statement by `select_in`: well under SQLite's bound-parameter limit.
IN_CHUNK = 500


def select_in(
    state: State, sql: str, keys: Iterable[str], params: Sequence[Any] = ()
) -> list[tuple[Any, ...]]:
    """The rows of `sql` (a query with one `{}` where the `?` marks of an `in (...)` go, after
    `params`) for every key, a chunk of keys per statement, each key once."""
    items = list(dict.fromkeys(keys))
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(items), IN_CHUNK):
        chunk = items[start : start + IN_CHUNK]
        with state_lock(state):
            rows.extend(
                state.db.conn.execute(
                    sql.format(", ".join("?" * len(chunk))), [*params, *chunk]
                ).fetchall()
            )
    return rows


@contextmanager
def transaction(state: State) -> Iterator[None]:
    """Writes to a State as one transaction: a crash inside leaves all of them or none.

    Nests (inner blocks are savepoints, only the outermost commits), so several ledger or
    cache writes can be grouped. Holds the State's lock throughout. The outermost block takes
    SQLite's write lock before anything is read (`BEGIN IMMEDIATE`, see `reconciler.state`):
    a deferred transaction that reads and then writes cannot wait for another connection's
    commit and fails with "database is locked".
    """
    with state_lock(state):
        conn = state.db.conn
        if conn.in_transaction:
            with state.db.atomic():  # a savepoint inside the enclosing transaction
                yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def now_iso() -> str:
    """UTC timestamp with milliseconds, sortable as text."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _dumps(value: Json) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Managed:
    """A key this catalog manages. `applied`: field -> the last value this tool wrote or adopted,
    in the catalog's JSON shape (decimals as strings, names, "A / B" paths, sorted tags)."""

    kind: str
    key: str
    remote_id: str | None
    applied: dict[str, Json] = field(default_factory=dict)
    run_id: int | None = None
    updated_at: str = ""


class ManagedRow:
    """A managed key as planning reads it (`Ledger.managed_index`): `applied` is parsed on
    first use, so a plan over 60,000 managed keys parses only the few it compares, and
    `applied_text` is the value as stored (what the per-family plan memo keys on)."""

    __slots__ = ("_applied", "applied_text", "remote_id")

    def __init__(self, remote_id: str | None, applied_text: str | None) -> None:
        self.remote_id = remote_id
        self.applied_text = applied_text or "{}"
        self._applied: dict[str, Json] | None = None

    @property
    def applied(self) -> Mapping[str, Json]:
        if self._applied is None:
            self._applied = json.loads(self.applied_text)
        return self._applied


@dataclass(frozen=True)
class Adoption:
    """A key adopted as it is in the store: `applied` is its whole declared state."""

    kind: str
    key: str
    remote_id: str | None
    applied: Mapping[str, Json] = field(default_factory=dict)
    manage: bool = True  # False: a change row only (images are remembered by content)


@dataclass(frozen=True)
class Run:
    id: int
    store: str
    started_at: str
    finished_at: str | None
    outcome: str  # running | applied | partial | failed | refused
    git_commit: str | None
    plan_digest: str | None
    catalog_digest: str | None
    actor: str | None
    host: str | None
    counts: dict[str, Json]

    def to_json(self) -> dict[str, Json]:
        return {
            "id": self.id,
            "store": self.store,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "outcome": self.outcome,
            "git_commit": self.git_commit,
            "plan_digest": self.plan_digest,
            "catalog_digest": self.catalog_digest,
            "actor": self.actor,
            "host": self.host,
            "counts": self.counts,
        }


@dataclass(frozen=True)
class ChangeRecord:
    """One change row joined with its run: what `catalog history` shows."""

    id: int
    run_id: int
    kind: str
    key: str
    action: str
    fields: list[dict[str, Json]]  # [{field, before, after}]
    remote_id: str | None
    remote_version: str | None  # opaque: the provider's live version
    outcome: str  # applied | failed | skipped
    error: str | None
    at: str
    git_commit: str | None
    actor: str | None
    plan_digest: str | None

    def to_json(self) -> dict[str, Json]:
        return {
            "id": self.id,
            "run_id": self.run_id,
            "at": self.at,
            "kind": self.kind,
            "key": self.key,
            "action": self.action,
            "outcome": self.outcome,
            "fields": self.fields,
            "remote_id": self.remote_id,
            "remote_version": self.remote_version,
            "error": self.error,
            "git_commit": self.git_commit,
            "actor": self.actor,
            "plan_digest": self.plan_digest,
        }


@dataclass(frozen=True)
class Intent:
    """A create (or upload) about to be sent; `outcome` pending until the answer is known."""

    id: int
    run_id: int | None
    kind: str
    key: str
    payload_digest: str
    started_at: str
    finished_at: str | None
    outcome: str  # pending | done | failed
    remote_id: str | None


class Ledger:
    """Read and write the ledger tables of one State."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.db = state.db
        self._lock = state_lock(state)

    def transaction(self) -> AbstractContextManager[None]:
        """Several ledger writes as one transaction (see `transaction`). Each write method
        runs in one too: its own, or part of an enclosing one."""
        return transaction(self.state)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self.db.execute(sql, list(params))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # -- the store it belongs to --------------------------------------------------------------

    def store(self) -> tuple[str, str] | None:
        """(identity, label) of the store this ledger belongs to, or None if never recorded."""
        rows = self._rows("select identity, label from ledger_store where name = 'store'")
        return None if not rows else (str(rows[0]["identity"]), str(rows[0]["label"]))

    def holds_anything(self) -> bool:
        """Whether any managed key, create intent or uploaded image is recorded: what only
        makes sense in the store it was recorded against."""
        with self._lock:
            return any(
                self.db.execute(f"select 1 from {table} limit 1").fetchone() is not None
                for table in ("managed", "intents", "images")
            )

    def record_store(self, identity: str, label: str) -> None:
        """Record the store this ledger belongs to (replacing any earlier one)."""
        with transaction(self.state):
            self.db.table("ledger_store").upsert(
                {"name": "store", "identity": identity, "label": label}, pk="name"
            )

    # -- managed keys ------------------------------------------------------------------------

    def managed(self, kind: str) -> dict[str, Managed]:
        """Every managed key of a kind -> what this tool last applied to it."""
        rows = self._rows("select * from managed where kind = ? order by key", [kind])
        return {row["key"]: _managed(row) for row in rows}

    def managed_index(self, kinds: Iterable[str]) -> dict[str, dict[str, ManagedRow]]:
        """Every managed key of `kinds` -> what this tool last applied, in one read, each
        value parsed only when asked for (`ManagedRow`): what planning reads."""
        out: dict[str, dict[str, ManagedRow]] = {kind: {} for kind in kinds}
        with self._lock:
            cursor = self.db.conn.execute(
                "select kind, key, remote_id, applied from managed order by kind, key"
            )
            while batch := cursor.fetchmany(5000):
                for kind, key, remote_id, applied in batch:
                    found = out.get(kind)
                    if found is not None:
                        found[key] = ManagedRow(remote_id, applied)
        return out

    def managed_subset(
        self, kinds: Iterable[str], keys: Mapping[str, Iterable[str]]
    ) -> dict[str, dict[str, ManagedRow]]:
        """`managed_index(kinds)`, but of the kinds in `keys` only the keys given: what an
        incremental plan reads for the families it computes again."""
        out: dict[str, dict[str, ManagedRow]] = {kind: {} for kind in kinds}
        with self._lock:
            for kind in out:
                wanted = keys.get(kind)
                if wanted is None:
                    rows = self.db.conn.execute(
                        "select key, remote_id, applied from managed where kind = ?", [kind]
                    ).fetchall()
                else:
                    rows = select_in(
                        self.state,
                        "select key, remote_id, applied from managed where kind = ? "
                        "and key in ({})",
                        wanted,
                        [kind],
                    )
                out[kind] = {
                    key: ManagedRow(remote_id, applied) for key, remote_id, applied in rows
                }
        return out

    def last_applied(self, kind: str, key: str) -> dict[str, Json]:
        """Field -> the value this tool last applied or adopted; empty if it never managed it."""
        found = self.get_managed(kind, key)
        return dict(found.applied) if found else {}

    def get_managed(self, kind: str, key: str) -> Managed | None:
        rows = self._rows("select * from managed where kind = ? and key = ?", [kind, key])
        return _managed(rows[0]) if rows else None

    def record_managed(
        self,
        kind: str,
        key: str,
        *,
        remote_id: str | None,
        applied: Mapping[str, Json],
        run_id: int | None = None,
        replace: bool = False,
    ) -> None:
        """Mark a key managed and remember what was applied.

        By default `applied` is merged into what was recorded before: an update writes only the
        fields that changed, and the others still hold their last applied value. `replace`
        forgets earlier fields (a create or an adoption records the whole declared state).
        A `remote_id` of None keeps the one already known.
        """
        with self.transaction():
            existing = self.db.execute(
                "select remote_id, applied from managed where kind = ? and key = ?", [kind, key]
            ).fetchone()
            merged: dict[str, Json] = {}
            if existing and not replace:
                merged = json.loads(existing[1] or "{}")
            merged.update(applied)
            rid = remote_id if remote_id is not None else (existing[0] if existing else None)
            self.db.table("managed").upsert(
                {
                    "kind": kind,
                    "key": key,
                    "remote_id": rid,
                    "applied": _dumps(merged),
                    "run_id": run_id,
                    "updated_at": now_iso(),
                },
                pk=("kind", "key"),
            )

    def forget_managed(self, kind: str, key: str) -> None:
        """Stop managing a key (it was deleted from the store by prune)."""
        with self.transaction():
            self.db.execute("delete from managed where kind = ? and key = ?", [kind, key])

    # -- runs --------------------------------------------------------------------------------

    def start_run(
        self,
        *,
        store: str,
        plan_digest: str | None,
        catalog_digest: str | None,
        git_commit: str | None,
        actor: str | None,
        host: str | None,
    ) -> int:
        """Open a run row (outcome `running`) and return its id."""
        with self.transaction():
            table = self.db.table("runs")
            table.insert(
                {
                    "store": store,
                    "started_at": now_iso(),
                    "finished_at": None,
                    "outcome": "running",
                    "git_commit": git_commit,
                    "plan_digest": plan_digest,
                    "catalog_digest": catalog_digest,
                    "actor": actor,
                    "host": host,
                    "counts": _dumps({}),
                }
            )
            return _last_pk(table)

    def finish_run(self, run_id: int, *, outcome: str, counts: Mapping[str, Json]) -> None:
        with self.transaction():
            self.db.table("runs").update(
                run_id,
                {
                    "finished_at": now_iso(),
                    "outcome": outcome,
                    "counts": _dumps(redact_json(dict(counts))),
                },
            )

    def runs(self, *, limit: int | None = None) -> list[Run]:
        """Runs, newest first."""
        sql = "select * from runs order by id desc"
        if limit is not None:
            sql += f" limit {int(limit)}"
        return [_run(row) for row in self._rows(sql)]

    def run(self, run_id: int) -> Run | None:
        rows = self._rows("select * from runs where id = ?", [run_id])
        return _run(rows[0]) if rows else None

    # -- changes -----------------------------------------------------------------------------

    def record_change(
        self,
        run_id: int,
        *,
        kind: str,
        key: str,
        action: str,
        fields: Sequence[Mapping[str, Json]] = (),
        remote_id: str | None = None,
        remote_version: str | None = None,
        outcome: str = "applied",
        error: str | None = None,
    ) -> int:
        """One change row: `fields` as [{field, before, after}]; outcome applied|failed|skipped."""
        with self.transaction():
            table = self.db.table("changes")
            table.insert(
                {
                    "run_id": run_id,
                    "kind": kind,
                    "key": key,
                    "action": action,
                    "fields": _dumps(
                        [
                            {"field": f["field"], "before": f.get("before"), "after": f["after"]}
                            for f in fields
                        ]
                    ),
                    "remote_id": remote_id,
                    "remote_version": remote_version,
                    "outcome": outcome,
                    # The last line of defence: no Authorization value is ever stored.
                    "error": redact(error) if error is not None else None,
                    "at": now_iso(),
                }
            )
            return _last_pk(table)

    def record_adoptions(self, run_id: int, adoptions: Sequence[Adoption]) -> list[int]:
        """Adopted keys, in one transaction: a change row each (action `adopt`, applied) and
        the key managed with the whole declared state (`record_managed(..., replace=True)`).
        Returns the change row ids in order. Adopting a 10,000-family store writes 60,000 such
        pairs: one statement per table, not two transactions per key."""
        if not adoptions:
            return []
        at = now_iso()
        with self.transaction():
            # Under the write lock: no other connection inserts a change row meanwhile.
            first = int(self.db.execute("select coalesce(max(id), 0) from changes").fetchone()[0])
            ids = list(range(first + 1, first + 1 + len(adoptions)))
            self.db.conn.executemany(
                "insert into changes (id, run_id, kind, key, action, fields, remote_id, "
                "remote_version, outcome, error, at) "
                "values (?, ?, ?, ?, 'adopt', '[]', ?, null, 'applied', null, ?)",
                [
                    (row_id, run_id, a.kind, a.key, a.remote_id, at)
                    for row_id, a in zip(ids, adoptions, strict=True)
                ],
            )
            # A remote id of None keeps the one already known, as record_managed does.
            self.db.conn.executemany(
                "insert into managed (kind, key, remote_id, applied, run_id, updated_at) "
                "values (?, ?, ?, ?, ?, ?) on conflict (kind, key) do update set "
                "remote_id = coalesce(excluded.remote_id, managed.remote_id), "
                "applied = excluded.applied, run_id = excluded.run_id, "
                "updated_at = excluded.updated_at",
                [
                    (a.kind, a.key, a.remote_id, _dumps(dict(a.applied)), run_id, at)
                    for a in adoptions
                    if a.manage
                ],
            )
        return ids

    def set_change_remotes(self, found: Iterable[tuple[int, str | None, str | None]]) -> None:
        """`set_change_remote` for many change rows (change id, remote id, version) at once."""
        with self.transaction():
            self.db.conn.executemany(
                "update changes set remote_id = ?, remote_version = ? where id = ?",
                [(remote_id, version, change_id) for change_id, remote_id, version in found],
            )

    def set_change_remote(
        self, change_id: int, remote_id: str | None, remote_version: str | None
    ) -> None:
        """Fill in what the store reported for an applied change (read back after the run)."""
        with self.transaction():
            self.db.table("changes").update(
                change_id, {"remote_id": remote_id, "remote_version": remote_version}
            )

    def changes(self, run_id: int) -> list[ChangeRecord]:
        """A run's change rows in the order they were recorded."""
        return [
            _change(row)
            for row in self._rows(_HISTORY_SELECT + " where c.run_id = ? order by c.id", [run_id])
        ]

    def history(self, key: str | None = None, *, limit: int | None = None) -> list[ChangeRecord]:
        """Change rows newest first, for one key or all.

        A key matches exactly; for name-keyed kinds (brands, tags, ...) case-insensitively; and a
        simple product's SKU also finds the product's own rows (it is keyed by handle), so
        "which commit set this SKU's price" has an answer whatever the product's shape.
        """
        params: list[Any] = []
        where = ""
        if key is not None:
            handles = self._handles_for_sku(key)
            kinds = ",".join("?" for _ in NAME_KINDS)
            where = f" where (c.key = ? or (c.kind in ({kinds}) and lower(c.key) = lower(?))"
            params = [key, *sorted(NAME_KINDS), key]
            if handles:
                where += f" or (c.kind = 'product' and c.key in ({','.join('?' for _ in handles)}))"
                params.extend(handles)
            where += ")"
        sql = _HISTORY_SELECT + where + " order by c.id desc"
        if limit is not None:
            sql += f" limit {int(limit)}"
        return [_change(row) for row in self._rows(sql, params)]

    def applied_by_plan(self, plan_digest: str) -> dict[tuple[str, str], dict[str, Json]]:
        """(kind, key) -> field -> value, of the changes runs of this very plan applied, later
        rows winning: what a rerun of a saved plan after a failure or a crash must not send
        again (a key without every field of its change was applied only in part)."""
        rows = self._rows(
            "select c.kind, c.key, c.fields from changes c join runs r on r.id = c.run_id "
            "where r.plan_digest = ? and c.outcome = 'applied' order by c.id",
            [plan_digest],
        )
        done: dict[tuple[str, str], dict[str, Json]] = {}
        for row in rows:
            values = done.setdefault((row["kind"], row["key"]), {})
            values.update({f["field"]: f["after"] for f in json.loads(row["fields"] or "[]")})
        return done

    def _handles_for_sku(self, sku: str) -> list[str]:
        # A simple product records its `sku` among the applied fields of its product row.
        rows = self._rows(
            "select key from managed where kind = 'product' and json_extract(applied, '$.sku') = ?",
            [sku],
        )
        return [row["key"] for row in rows]

    # -- images (table `images`: what apply uploaded; the store never gives the bytes back) ----

    def record_image(
        self,
        *,
        handle: str,
        path: str,
        sha256: str,
        image_id: str,
        product_id: str,
        position: int | None,
    ) -> None:
        with self.transaction():
            self.db.table("images").upsert(
                {
                    "handle": handle,
                    "path": path,
                    "sha256": sha256,
                    "image_id": image_id,
                    "product_id": product_id,
                    "position": position,
                    "uploaded_at": now_iso(),
                },
                pk=("handle", "sha256"),
            )

    def note_image_sent(
        self, *, handle: str, path: str, sha256: str, product_id: str, position: int | None
    ) -> None:
        """An upload about to be sent: a row with no image id (unless one is recorded), so
        that if its answer is lost the state still knows this family's images are its own."""
        with self.transaction():
            self.db.execute(
                "insert or ignore into images (handle, path, sha256, image_id, product_id, "
                "position, uploaded_at) values (?, ?, ?, null, ?, ?, ?)",
                [handle, path, sha256, product_id, position, now_iso()],
            )

    def set_image_position(self, image_id: str, position: int) -> None:
        with self.transaction():
            self.db.execute(
                "update images set position = ? where image_id = ?", [position, image_id]
            )

    def forget_image(self, image_id: str) -> None:
        with self.transaction():
            self.db.execute("delete from images where image_id = ?", [image_id])

    def images(self, handle: str) -> list[dict[str, Any]]:
        """What apply uploaded for a family, by position."""
        return self._rows("select * from images where handle = ? order by position, path", [handle])

    # -- intents -----------------------------------------------------------------------------

    def begin_intent(self, *, run_id: int | None, kind: str, key: str, payload_digest: str) -> int:
        """Write-ahead: record that a create of `kind:key` is about to be sent."""
        with self.transaction():
            table = self.db.table("intents")
            table.insert(
                {
                    "run_id": run_id,
                    "kind": kind,
                    "key": key,
                    "payload_digest": payload_digest,
                    "started_at": now_iso(),
                    "finished_at": None,
                    "outcome": "pending",
                    "remote_id": None,
                }
            )
            return _last_pk(table)

    def finish_intent(self, intent_id: int, *, outcome: str, remote_id: str | None = None) -> None:
        """Close an intent: `done` (the object exists, `remote_id`) or `failed` (it does not)."""
        with self.transaction():
            self.db.table("intents").update(
                intent_id,
                {"outcome": outcome, "remote_id": remote_id, "finished_at": now_iso()},
            )

    def pending_intents(self) -> list[Intent]:
        """Intents whose outcome is unknown (a crash or an unanswered request), oldest first."""
        return [
            _intent(row)
            for row in self._rows("select * from intents where outcome = 'pending' order by id")
        ]

    def resolve_intents(self, kind: str, key: str, *, outcome: str, remote_id: str | None) -> None:
        """Close every pending intent for `kind:key` once a lookup has told the outcome."""
        with self.transaction():
            self.db.execute(
                "update intents set outcome = ?, remote_id = ?, finished_at = ? "
                "where kind = ? and key = ? and outcome = 'pending'",
                [outcome, remote_id, now_iso(), kind, key],
            )


_HISTORY_SELECT = (
    "select c.*, r.git_commit as git_commit, r.actor as actor, r.plan_digest as plan_digest "
    "from changes c left join runs r on r.id = c.run_id"
)


def _last_pk(table: Any) -> int:
    pk = table.last_pk
    assert pk is not None, "insert returned no rowid"
    return int(pk)


def _managed(row: Mapping[str, Any]) -> Managed:
    return Managed(
        kind=row["kind"],
        key=row["key"],
        remote_id=row["remote_id"],
        applied=json.loads(row["applied"] or "{}"),
        run_id=row["run_id"],
        updated_at=row["updated_at"] or "",
    )


def _run(row: Mapping[str, Any]) -> Run:
    return Run(
        id=row["id"],
        store=row["store"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        outcome=row["outcome"],
        git_commit=row["git_commit"],
        plan_digest=row["plan_digest"],
        catalog_digest=row["catalog_digest"],
        actor=row["actor"],
        host=row["host"],
        counts=json.loads(row["counts"] or "{}"),
    )


def _change(row: Mapping[str, Any]) -> ChangeRecord:
    return ChangeRecord(
        id=row["id"],
        run_id=row["run_id"],
        kind=row["kind"],
        key=row["key"],
        action=row["action"],
        fields=json.loads(row["fields"] or "[]"),
        remote_id=row["remote_id"],
        remote_version=opaque_version(row["remote_version"]),
        outcome=row["outcome"],
        error=row["error"],
        at=row["at"],
        git_commit=row["git_commit"],
        actor=row["actor"],
        plan_digest=row["plan_digest"],
    )


def _intent(row: Mapping[str, Any]) -> Intent:
    return Intent(
        id=row["id"],
        run_id=row["run_id"],
        kind=row["kind"],
        key=row["key"],
        payload_digest=row["payload_digest"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        outcome=row["outcome"],
        remote_id=row["remote_id"],
    )
