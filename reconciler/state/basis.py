"""What an incremental plan starts from (`reconciler.incremental`), kept in the state file.

Tables (migration m007): `touched` (every write to `objects`, `managed` and `images`, noted by
triggers: source table, kind, key), `basis_families` (each declared family as the last plan read
it: its file, digest and canonical data), `basis_rows` (live row id -> family handle),
`basis_skus` (SKU, declared or live -> family handle); the rest (`BasisMeta`) is one JSON value
in `store_meta`. Like the rest of the cache it only speeds planning up: anything missing or
unreadable and the plan is made in full.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.state import State
from reconciler.state.ledger import IN_CHUNK, select_in, state_lock, transaction

META_KEY = "plan_basis"
PLAN_KEY = "plan_basis_plan"
UNUSABLE_KEY = "plan_basis_unusable"  # the last full plan could not be one

Touch = tuple[str, str, str]  # (source table, kind, key)


@dataclass(frozen=True)
class BasisMeta:
    """The whole-catalog part of a basis: the inputs' key and the family memo's scope it was
    made under, the `touched` sequence it has seen, each catalog file's stat and facts and each
    image's stat and sha256 (a stat is None when it was too recent to trust), the catalog's
    head digest and raw settings, and the names' part of the plan (`planner.NamesPart`)."""

    key: str
    scope: str
    mark: int
    files: Mapping[str, tuple[list[int] | None, Any]]  # rel -> (stat, FileFacts JSON)
    images: Mapping[str, tuple[list[int] | None, str]]  # rel -> (stat, sha256)
    head: str
    settings: Mapping[str, Any]
    names: Any
    declared: int

    def to_text(self) -> str:
        return json.dumps(
            {
                "key": self.key,
                "scope": self.scope,
                "mark": self.mark,
                "files": self.files,
                "images": self.images,
                "head": self.head,
                "settings": self.settings,
                "names": self.names,
                "declared": self.declared,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @staticmethod
    def from_text(text: str) -> BasisMeta | None:
        try:
            data = json.loads(text)
            return BasisMeta(
                key=str(data["key"]),
                scope=str(data["scope"]),
                mark=int(data["mark"]),
                files={str(k): (v[0], v[1]) for k, v in data["files"].items()},
                images={str(k): (v[0], str(v[1])) for k, v in data["images"].items()},
                head=str(data["head"]),
                settings=dict(data["settings"]),
                names=data["names"],
                declared=int(data["declared"]),
            )
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return None


@dataclass(frozen=True)
class BasisFamily:
    file: str
    digest: str
    data: str  # canonical JSON (`model.product_record`)


class Basis:
    """Read and write one State's basis (thread-safe like the cache and the ledger)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.db = state.db
        self._lock = state_lock(state)

    # -- reading ---------------------------------------------------------------------------

    def meta(self) -> BasisMeta | None:
        text = self.meta_text()
        return None if text is None else BasisMeta.from_text(text)

    def meta_text(self) -> str | None:
        """The kept `BasisMeta` as stored: whether another plan moved the basis on is a
        comparison of this text, not a parse of it."""
        return self._meta(META_KEY)

    def plan(self) -> Any | None:
        """The plan the basis was last made with (JSON), when it was kept."""
        text = self._meta(PLAN_KEY)
        try:
            return None if text is None else json.loads(text)
        except ValueError:
            return None

    def mark(self) -> int:
        """The `touched` sequence now: what a plan starting now has seen."""
        with self._lock:
            row = self.db.execute("select coalesce(max(seq), 0) from touched").fetchone()
        return int(row[0])

    def touched(self, after: int, upto: int, *, limit: int) -> list[Touch] | None:
        """Writes noted after `after` up to `upto`, each (source, kind, key) once; None when
        there are more than `limit` notes (a full refresh, a large apply)."""
        with self._lock:
            rows = self.db.execute(
                "select source, kind, key from touched where seq > ? and seq <= ? limit ?",
                [after, upto, limit + 1],
            ).fetchall()
        if len(rows) > limit:
            return None
        return list(dict.fromkeys((str(s), str(k), str(key)) for s, k, key in rows))

    def families(self, handles: Collection[str]) -> dict[str, BasisFamily]:
        return {
            str(h): BasisFamily(str(f), str(d), str(data))
            for h, f, d, data in self._select(
                "select handle, file, digest, data from basis_families where handle in ({})",
                handles,
            )
        }

    def digests(self) -> dict[str, str]:
        """handle -> digest of every declared family."""
        with self._lock:
            rows = self.db.execute("select handle, digest from basis_families").fetchall()
        return {str(h): str(d) for h, d in rows}

    def rows_of(self, handles: Collection[str]) -> dict[str, str]:
        """live row id -> handle, for the rows of these families."""
        return {
            str(i): str(h)
            for i, h in self._select(
                "select id, handle from basis_rows where handle in ({})", handles
            )
        }

    def handles_of_rows(self, ids: Collection[str]) -> dict[str, str]:
        return {
            str(i): str(h)
            for i, h in self._select("select id, handle from basis_rows where id in ({})", ids)
        }

    def handles_of_skus(self, skus: Collection[str]) -> dict[str, str]:
        return {
            str(s): str(h)
            for s, h in self._select("select sku, handle from basis_skus where sku in ({})", skus)
        }

    # -- writing ---------------------------------------------------------------------------

    def write(
        self,
        meta: BasisMeta,
        *,
        plan: Any | None,
        families: Iterable[tuple[str, BasisFamily]],
        rows: Iterable[tuple[str, str]],
        skus: Iterable[tuple[str, str]],
        replacing: Collection[str] | None = None,
    ) -> None:
        """Keep `meta` and the plan, and the families, rows and SKUs given: in place of every
        one held (`replacing` None: a full basis) or of those of the `replacing` families only.
        Notes in `touched` up to `meta.mark` are dropped: the basis has seen them."""
        with transaction(self.state):
            if replacing is None:
                for table in ("basis_families", "basis_rows", "basis_skus"):
                    self.db.execute(f"delete from {table}")
            else:
                items = list(replacing)
                for table in ("basis_families", "basis_rows", "basis_skus"):
                    for start in range(0, len(items), IN_CHUNK):
                        chunk = items[start : start + IN_CHUNK]
                        self.db.execute(
                            f"delete from {table} where handle in ({', '.join('?' * len(chunk))})",
                            chunk,
                        )
            conn = self.db.conn
            conn.executemany(
                "insert or replace into basis_families (handle, file, digest, data) "
                "values (?, ?, ?, ?)",
                ((h, f.file, f.digest, f.data) for h, f in families),
            )
            conn.executemany("insert or replace into basis_rows (id, handle) values (?, ?)", rows)
            conn.executemany("insert or ignore into basis_skus (sku, handle) values (?, ?)", skus)
            self.db.execute("delete from touched where seq <= ?", [meta.mark])
            self.db.execute("delete from store_meta where key = ?", [UNUSABLE_KEY])
            values = [(META_KEY, meta.to_text())]
            if plan is not None:
                values.append((PLAN_KEY, json.dumps(plan, separators=(",", ":"))))
            else:
                self.db.execute("delete from store_meta where key = ?", [PLAN_KEY])
            conn.executemany("insert or replace into store_meta (key, value) values (?, ?)", values)

    def forget(self, *, unusable: bool = False) -> None:
        """Drop the basis: the next plan is made in full (and makes a new one). `unusable`: the
        last full plan could not be one (see `known`)."""
        with transaction(self.state):
            self.db.execute(
                "delete from store_meta where key in (?, ?, ?)", [META_KEY, PLAN_KEY, UNUSABLE_KEY]
            )
            if unusable:
                self.db.execute(
                    "insert into store_meta (key, value) values (?, '1')", [UNUSABLE_KEY]
                )

    def known(self) -> bool:
        """Whether a full plan has been made since this state file could keep a basis: a basis
        is kept, or that plan could not be one."""
        return self._meta(META_KEY) is not None or self._meta(UNUSABLE_KEY) is not None

    # -- helpers ---------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        with self._lock:
            row = self.db.execute("select value from store_meta where key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def _select(self, sql: str, keys: Collection[str]) -> list[tuple[Any, ...]]:
        return select_in(self.state, sql, keys)
