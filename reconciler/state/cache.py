"""The live-object cache in the state file: objects per kind, change-feed cursors, store facts.

Tables (migration m001): `objects` (kind, id, version, deleted, data), `cursors` (kind, version,
refreshed_at), `store_meta` (key, value). The cache only speeds planning up: the store stays the
truth, and a cache that belongs to another store is dropped rather than trusted.

Objects are stored as the provider hands them: trimmed to the fields it reads (X-Series:
`normalize.trim`), which keeps the file and the warm plan's parse time small; nothing secret is
ever stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping

from reconciler.live import opaque_version
from reconciler.model import Json
from reconciler.planner import KnownEntries
from reconciler.state import State
from reconciler.state.ledger import select_in, state_lock, transaction


def _dumps(obj: Json) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _memo_checksum(scope: str, handle: str, key: str, entry: str) -> str:
    blob = "\0".join((scope, handle, key, entry)).encode("utf-8", "surrogatepass")
    return hashlib.sha256(blob).hexdigest()


class Cache:
    """Read and write the cached live objects of one State (thread-safe like the ledger)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.db = state.db
        self._lock = state_lock(state)

    # -- store identity and facts -------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self.db.execute("select value from store_meta where key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: Mapping[str, str]) -> None:
        with transaction(self.state):
            self.db.table("store_meta").upsert_all(
                [{"key": k, "value": v} for k, v in values.items()], pk="key"
            )

    def bind(self, store_url: str) -> bool:
        """Make sure the cache belongs to this store; if it held another one, empty it.

        Returns True when the cache was reset (a full refresh follows).
        """
        known = self.meta("store_url")
        if known == store_url:
            return False
        self.clear()
        self.set_meta({"store_url": store_url})
        return known is not None

    def clear(self) -> None:
        """Forget every cached object, cursor and store fact (the next refresh is full)."""
        with transaction(self.state):
            self.db.execute("delete from objects")
            self.db.execute("delete from cursors")
            self.db.execute("delete from store_meta")

    # -- cursors ------------------------------------------------------------------------------

    def cursor(self, kind: str) -> tuple[str | None, str | None] | None:
        """(the provider's cursor, when refreshed) for a kind, or None if never read.

        A cursor is opaque text (X-Series: the highest version seen; R-Series: a time stamp):
        only its provider reads it. The column is declared integer (migration m001), so a
        state file written before cursors were opaque holds integers, and digit-only text is
        stored as one: either reads back as its text."""
        with self._lock:
            row = self.db.execute(
                "select version, refreshed_at from cursors where kind = ?", [kind]
            ).fetchone()
        return None if row is None else (opaque_version(row[0]), row[1])

    def cursors(self) -> dict[str, tuple[str | None, str | None]]:
        with self._lock:
            rows = self.db.execute("select kind, version, refreshed_at from cursors").fetchall()
        return {r[0]: (opaque_version(r[1]), r[2]) for r in rows}

    # -- objects ------------------------------------------------------------------------------

    def replace(
        self,
        kind: str,
        objects: Iterable[Json],
        *,
        version: str | Callable[[], str | None] | None,
        refreshed_at: str,
    ) -> int:
        """A full read: the kind's rows become exactly `objects` (deleted ones left out).

        `version` is the kind's new cursor; it may be a callable, asked once `objects` is
        exhausted (a stream's highest).
        """
        count = 0

        def rows() -> Iterator[dict[str, Json]]:
            nonlocal count
            for obj in objects:
                if not obj.get("deleted_at"):
                    count += 1
                    yield self._row(kind, obj)

        # `objects` may be a stream of pages still arriving: rows are written as they come (so
        # a 50,000-product store never sits in memory twice) and all commit together or not
        # at all, cursor included.
        with transaction(self.state):
            self.db.execute("delete from objects where kind = ?", [kind])
            self.db.table("objects").insert_all(
                rows(), pk=("kind", "id"), batch_size=2000, replace=True
            )
            self._set_cursor(kind, version() if callable(version) else version, refreshed_at)
        return count

    def replace_if_changed(self, kind: str, objects: list[Json], *, refreshed_at: str) -> bool:
        """A whole list read again (kinds without a change feed): rewritten only when it
        differs from the cached one. Returns whether it did."""
        digest = hashlib.sha256(
            json.dumps(
                sorted(objects, key=lambda o: str(o.get("id"))),
                sort_keys=True,
            ).encode()
        ).hexdigest()
        key = f"digest:{kind}"
        if self.meta(key) == digest and self.cursor(kind) is not None:
            with transaction(self.state):
                self._set_cursor(kind, None, refreshed_at)
            return False
        self.replace(kind, objects, version=None, refreshed_at=refreshed_at)
        self.set_meta({key: digest})
        return True

    # -- what planning remembers -------------------------------------------------------------

    def generation(self) -> int:
        """A counter that moves whenever a refresh changed anything planning reads."""
        return int(self.meta("live_generation") or 0)

    def bump_generation(self) -> None:
        self.set_meta({"live_generation": str(self.generation() + 1)})

    def plan_memo(self, key: str) -> Json | None:
        """The plan JSON remembered under `key` (see `remember_plan`), or None."""
        if self.meta("plan_memo_key") != key:
            return None
        text = self.meta("plan_memo")
        return None if text is None else json.loads(text)

    def remember_plan(self, key: str, plan_json: Json) -> None:
        """Keep one plan for its inputs' key: when nothing the planner reads has changed
        (catalog, live generation, managed keys, ...), the plan is the same and need not be
        computed again (what makes a no-op plan of a 50,000-row store cheap)."""
        self.set_meta({"plan_memo_key": key, "plan_memo": _dumps(plan_json)})

    def family_memo(self, scope: str) -> dict[str, tuple[str, str]]:
        """handle -> (key, entry) of the families remembered under `scope` (see
        `reconciler.planner.FamilyMemo`); empty when the memo was made under another scope
        (other settings, options, store or code). Rows whose checksum does not match are left
        out: the family is computed again."""
        if self.meta("family_memo_scope") != scope:
            return {}
        with self._lock:
            rows = self.db.execute(
                "select handle, key, entry, checksum from family_memo"
            ).fetchall()
        return {
            handle: (key, entry)
            for handle, key, entry, checksum in rows
            if checksum == _memo_checksum(scope, handle, key, entry)
        }

    def family_memo_known(self, scope: str, *, held_up_to: int = 256) -> KnownEntries:
        """`family_memo` as `planner.KnownEntries`: every key, and the entries of at most
        `held_up_to` characters (an unchanged family's) held; a longer one (a family with a
        change) is read when its key matched, and only if its checksum still matches."""
        if self.meta("family_memo_scope") != scope:
            return KnownEntries({})
        with self._lock:
            rows = self.db.execute(
                "select handle, key, checksum, "
                "case when length(entry) <= ? then entry end from family_memo",
                [held_up_to],
            ).fetchall()
        keys: dict[str, str] = {}
        held: dict[str, str] = {}
        sums: dict[str, str] = {}
        for handle, key, checksum, entry in rows:
            if entry is None:
                keys[handle], sums[handle] = key, checksum
            elif checksum == _memo_checksum(scope, handle, key, entry):
                keys[handle], held[handle] = key, entry

        def load(handle: str) -> str | None:
            with self._lock:
                row = self.db.execute(
                    "select entry from family_memo where handle = ? and key = ?",
                    [handle, keys[handle]],
                ).fetchone()
            if row is None or sums.get(handle) != _memo_checksum(
                scope, handle, keys[handle], row[0]
            ):
                return None
            return str(row[0])

        return KnownEntries(keys, held, load)

    def remember_families(
        self,
        scope: str,
        fresh: Mapping[str, tuple[str, str]],
        *,
        keep: Iterable[str],
        known: Iterable[str],
    ) -> None:
        """Store the families computed under `scope`, and forget the remembered ones that are
        neither kept (replayed as they were) nor computed again: only what changed is written.
        Under a new scope the memo starts again from `fresh`."""
        keep_set = set(keep)
        stale = [h for h in known if h not in keep_set and h not in fresh]
        with transaction(self.state):
            if self.meta("family_memo_scope") != scope:
                self.db.execute("delete from family_memo")
                stale = []
            if stale:
                self.db.conn.executemany(
                    "delete from family_memo where handle = ?", [(h,) for h in stale]
                )
            if fresh:
                self.db.conn.executemany(
                    "insert or replace into family_memo (handle, key, entry, checksum) "
                    "values (?, ?, ?, ?)",
                    [
                        (h, key, entry, _memo_checksum(scope, h, key, entry))
                        for h, (key, entry) in fresh.items()
                    ],
                )
            self.set_meta({"family_memo_scope": scope})

    def merge(
        self, kind: str, objects: Iterable[Json], *, version: str | None, refreshed_at: str
    ) -> int:
        """An incremental read: upsert what changed, mark deletions; the cursor becomes
        `version` (None keeps the one held), only in the same transaction as the rows it
        covers. Which cursor is ahead is the provider's to know: the cache never orders them."""
        rows = [self._row(kind, o) for o in objects]
        with transaction(self.state):
            if rows:
                self.db.table("objects").upsert_all(rows, pk=("kind", "id"), batch_size=2000)
            if version is None:
                previous = self.db.execute(
                    "select version from cursors where kind = ?", [kind]
                ).fetchone()
                version = None if previous is None else opaque_version(previous[0])
            self._set_cursor(kind, version, refreshed_at)
        return len(rows)

    def iter_objects(self, kind: str) -> Iterator[Json]:
        """The cached live objects of a kind one at a time (a large store never sits in
        memory as raw objects all at once)."""
        loads = json.loads
        with self._lock:
            cursor = self.db.conn.execute(
                "select data from objects where kind = ? and deleted = 0 order by version, id",
                [kind],
            )
            while batch := cursor.fetchmany(2000):
                for (data,) in batch:
                    yield loads(data)

    def objects_by_id(self, kind: str, ids: Iterable[str], *, deleted: bool = False) -> list[Json]:
        """The cached objects of a kind with these ids (`deleted`: those marked deleted too)."""
        rows = select_in(
            self.state,
            "select data from objects where kind = ? and id in ({})"
            + ("" if deleted else " and deleted = 0"),
            ids,
            [kind],
        )
        loads = json.loads
        return [loads(r[0]) for r in rows]

    def deleted_ids(self, kind: str) -> set[str]:
        """The ids of the cached objects of a kind a change feed returned as deleted."""
        with self._lock:
            rows = self.db.execute(
                "select id from objects where kind = ? and deleted = 1", [kind]
            ).fetchall()
        return {str(r[0]) for r in rows}

    def objects(self, kind: str) -> list[Json]:
        """The cached live (not deleted) objects of a kind, in version order."""
        with self._lock:
            rows = self.db.execute(
                "select data from objects where kind = ? and deleted = 0 order by version, id",
                [kind],
            ).fetchall()
        loads = json.loads
        return [loads(r[0]) for r in rows]

    def id_at(self, kind: str, version: str) -> str | None:
        """The id of the cached object (deleted ones included) that holds exactly `version`:
        the one the store's change feed must still show at or above it."""
        with self._lock:
            row = self.db.execute(
                "select id from objects where kind = ? and version = ? limit 1", [kind, version]
            ).fetchone()
        return None if row is None else str(row[0])

    def count(self, kind: str) -> int:
        with self._lock:
            row = self.db.execute(
                "select count(*) from objects where kind = ? and deleted = 0", [kind]
            ).fetchone()
        return int(row[0])

    def ledger_fingerprint(self) -> str:
        """A digest of the ledger's managed keys (with the values last applied) and uploaded
        images: it changes whenever they do. A read-only pass over those tables, for the plan
        memo (hashing 60,000 rows costs a fraction of re-planning them)."""
        digest = hashlib.sha256()
        with self._lock:
            for sql in (
                "select kind, key, remote_id, applied from managed order by kind, key",
                "select handle, sha256, image_id from images order by handle, sha256",
            ):
                cursor = self.db.conn.execute(sql)
                while batch := cursor.fetchmany(5000):
                    digest.update(repr(batch).encode())
                digest.update(b"|")
        return digest.hexdigest()

    def uploaded_images(self, handles: Iterable[str] | None = None) -> dict[str, dict[str, str]]:
        """handle -> sha256 -> image id of the images apply uploaded (table `images`): the
        store never gives back a file's bytes, so this is how the planner knows them. A family
        whose only rows are uploads sent with no answer yet (no image id) is present with no
        ids: the state knows its images, so they are not taken for a lost record.
        `handles`: of these families only (an incremental plan's)."""
        if handles is None:
            with self._lock:
                rows = self.db.execute("select handle, sha256, image_id from images").fetchall()
        else:
            rows = select_in(
                self.state,
                "select handle, sha256, image_id from images where handle in ({})",
                handles,
            )
        out: dict[str, dict[str, str]] = {}
        for handle, sha, image_id in rows:
            known = out.setdefault(handle, {})
            if image_id is not None:
                known[sha] = image_id
        return out

    def _set_cursor(self, kind: str, version: str | None, refreshed_at: str) -> None:
        self.db.table("cursors").upsert(
            {"kind": kind, "version": version, "refreshed_at": refreshed_at}, pk="kind"
        )

    @staticmethod
    def _row(kind: str, obj: Json) -> dict[str, Json]:
        return {
            "kind": kind,
            "id": str(obj["id"]),
            # The provider's version as it keeps it (X-Series: an integer; R-Series: ISO text):
            # the cache's read order and `id_at`'s key, never compared by the core.
            "version": obj.get("version") or 0,
            "deleted": 1 if obj.get("deleted_at") else 0,
            "data": _dumps(obj),
        }
