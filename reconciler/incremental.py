"""Plans that cost what changed (issue 15): a plan made from the last plan's basis and what
changed since, instead of from every file and every live row again.

After a full plan, its *basis* is kept in the state file (`reconciler.state.basis`): each
catalog file's stat and facts (`catalog.FileFacts`), each image's stat and sha256, each declared
family's digest and canonical data, which live rows and SKUs belong to which family, the names'
part of the plan, and the point it had reached in `touched` (where triggers note every write to
the cached store, the managed keys and the uploaded images, whatever code made it). Each
family's result is in the family memo (`planner.FamilyMemo`).

The next plan (`plan`) then:
1. stats every catalog file and image; reads again only the files whose stat changed, and
   checks each on its own (`catalog.check_changed_file`), item by item when only some of its
   products' text changed (`catalog.check_changed_items`); the checks across files read only
   what its `signature` digests, so when that and its head are unchanged they would find what
   they found before (nothing), and only its products' own values changed;
2. reads what was written since the basis from `touched`: the families of changed live rows
   (the provider says which, `Connection.families_of`), of changed managed keys and images;
3. computes those families again, with only their live rows read (`Connection.live_of`), and
   replays every other family's remembered result (`planner.Replay`).
Whatever it cannot prove unchanged that way (a file added, removed or restructured, a name or
setting changed, an image changed, a name in the store changed, a family that reads other
families, something to prune, more changed than a fifth of the catalog, a damaged basis), it
answers None and the plan is made in full, which then records a new basis. The property test
(tests/plan/test_incremental.py) holds it to the plan made from scratch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.catalog import (
    ChangedFile,
    FileFacts,
    Report,
    catalog_files,
    check_changed_file,
    check_changed_items,
    plain_file,
    product_from_data,
    settings_from_data,
)
from reconciler.limits import Limits
from reconciler.live import Live
from reconciler.model import (
    Catalog,
    Product,
    catalog_to_data,
    combined_digest,
    head_digest,
    product_digest,
    product_record,
)
from reconciler.plan import Kind, Plan
from reconciler.planner import FamilyMemo, FamilyResult, NamesPart, Replay
from reconciler.providers.base import Connection
from reconciler.rules import MAX_IMAGE_BYTES
from reconciler.state import State
from reconciler.state.basis import Basis, BasisFamily, BasisMeta
from reconciler.state.cache import Cache
from reconciler.state.ledger import select_in

# A file or image changed this recently may change again within the same mtime tick and keep
# its stat: its stat is not kept, so the next plan compares its bytes instead.
RACY_NS = 3_000_000_000
# More notes than this since the basis (a full refresh, a large apply): plan in full.
MAX_TOUCHED = 50_000
# More than this share of the families to compute again (and more than `MIN_DIRTY`): a full
# plan costs about the same.
MAX_DIRTY_SHARE = 0.2
MIN_DIRTY = 50

Stat = list[int] | None
# (catalog, live, replay, memo, catalog digest) -> the costed plan (`reconciler.api.make_plan`)
MakePlan = Callable[[Catalog, Live, Replay, FamilyMemo, str], Plan]


def stat_of(path: Path, now_ns: int) -> Stat:
    """(size, mtime, inode, ctime) of a file, or None when it is missing or too recent to trust."""
    try:
        st = path.stat()
    except OSError:
        return None
    if now_ns - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_NS:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def stats(directory: Path, rels: Iterable[str]) -> dict[str, Stat]:
    now = time.time_ns()
    return {rel: stat_of(directory / rel, now) for rel in rels}


def catalog_rels(directory: Path) -> list[str]:
    return [p.relative_to(directory).as_posix() for p in catalog_files(directory)]


def _sha256_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


# -- recording a basis after a full plan -----------------------------------------------------


@dataclass(frozen=True)
class Records:
    """Each product's digest (`model.product_digest`), worked out once for the catalog's digest,
    the family memo's keys and the basis (which writes each product's canonical JSON again as
    it goes, rather than hold every one: at 100,000 families they are 100 MB)."""

    by_handle: Mapping[str, str]
    head: str

    @staticmethod
    def of(catalog: Catalog) -> Records:
        return Records(
            {p.handle: product_digest(p) for p in catalog.products}, head_digest(catalog)
        )

    def digest(self) -> str:
        return combined_digest(self.head, self.by_handle.items())

    def digests(self) -> Mapping[str, str]:
        return self.by_handle


def record_full(
    state: State,
    *,
    directory: Path,
    key: str,
    memo: FamilyMemo,
    file_stats: Mapping[str, Stat],
    report: Report,
    records: Records,
    live: Live,
    plan: Plan,
    mark: int,
    keep_plan: bool,
) -> None:
    """Keep the basis of a full plan just made; forget any basis when this plan cannot be one
    (a family that read other families, something to prune: the next plan is made in full)."""
    basis = Basis(state)
    catalog = report.catalog
    assert catalog is not None
    declared = [p.handle for p in catalog.products]
    remembered = memo.fresh.keys() | memo.reused
    if memo.names is None or memo.gone or any(h not in remembered for h in declared):
        basis.forget(unusable=True)
        return
    files: dict[str, tuple[Stat, Any]] = {}
    where: dict[str, str] = {}
    for facts in report.facts:
        files[facts.rel] = (file_stats.get(facts.rel), facts.to_json())
        for handle in facts.handles:
            where[handle] = facts.rel
    image_stats = stats(directory, report.image_hashes)
    meta = BasisMeta(
        key=key,
        scope=memo.scope,
        mark=mark,
        files=files,
        images={rel: (image_stats[rel], sha) for rel, sha in report.image_hashes.items()},
        head=records.head,
        settings=catalog_to_data(Catalog(settings=catalog.settings))["settings"],
        names=memo.names.to_json(),
        declared=len(declared),
    )
    products = {p.handle: p for p in catalog.products}
    basis.write(
        meta,
        plan=plan.to_json() if keep_plan else None,
        families=(
            (p.handle, BasisFamily(where.get(p.handle, ""), digest, text))
            for p in catalog.products
            for text, digest in (product_record(p),)
        ),
        rows=_rows(live, declared),
        skus=_skus(products.values(), live),
    )


def _rows(live: Live, handles: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(live row id, handle) of these families' rows."""
    for handle in handles:
        found = live.products.get(handle)
        if found is None:
            continue
        ids = {row.id for row in found.rows.values()}
        if found.remote_id:
            ids.add(found.remote_id)
        yield from ((i, handle) for i in sorted(ids) if i)


def _skus(products: Iterable[Product], live: Live) -> Iterator[tuple[str, str]]:
    """(SKU, handle) of these families' declared and live SKUs (a SKU two families name is
    kept for the first: `Basis.write` ignores a repeat)."""
    for p in products:
        for v in p.sellables():
            yield v.sku, p.handle
        found = live.products.get(p.handle)
        for sku in found.rows if found is not None else ():
            yield sku, p.handle


# -- planning from the basis -----------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """An incremental plan, with how many families it compared again (of how many declared)
    and how many catalog files it read again."""

    plan: Plan
    compared: int
    declared: int
    files_read: int

    def summary(self) -> str:
        files = f"{self.files_read} changed file{'' if self.files_read == 1 else 's'} read"
        return (
            f"Compared {self.compared:,} of {self.declared:,} families again ({files}); the "
            "others are unchanged since the last plan."
        )


class _NotIncremental(Exception):
    """What changed is more than the basis can answer: plan in full."""


@dataclass
class _Catalogue:
    """What the files say now, as far as they were read again."""

    files: dict[str, tuple[Stat, Any]]
    images: dict[str, tuple[Stat, str]]
    changed: dict[str, tuple[Product, str, str, str]] = field(default_factory=dict)
    read: int = 0  # files whose bytes changed
    # handle -> (product, canonical JSON, digest, file) for families whose digest changed


@dataclass(frozen=True)
class Prepared:
    """The catalog side of an incremental plan, read before the store is (so a catalog with a
    problem is still refused before any request: it makes `prepare` answer None)."""

    text: str  # the basis as stored when read
    meta: BasisMeta
    catalogue: _Catalogue


def prepare(state: State, *, directory: Path, key: str, limits: Limits | None) -> Prepared | None:
    """The catalog files against the basis made under the same inputs (`key`); None when the
    plan must be made in full."""
    basis = Basis(state)
    text = basis.meta_text()
    meta = None if text is None else BasisMeta.from_text(text)
    if text is None or meta is None or meta.key != key:
        return None
    try:
        return Prepared(text, meta, _read_catalog(basis, meta, directory, limits))
    except _NotIncremental:
        return None


@dataclass(frozen=True)
class Hooks:
    """What `finish` asks of the shell (`reconciler.api.build_plan`): `make` plans and costs
    (`api.make_plan`), `scope_of` gives the family memo's scope, `keep_plan` whether a plan is
    small enough to keep whole, `stamp` dates a kept plan replayed as it is (None: it cannot
    be, the store's rate limit changed)."""

    make: MakePlan
    scope_of: Callable[[Catalog, Live], str]
    keep_plan: Callable[[Plan], bool]
    stamp: Callable[[Plan], Plan | None]


def finish(
    prepared: Prepared, state: State, cache: Cache, client: Connection, hooks: Hooks
) -> Outcome | None:
    """The plan from the basis, the catalog as `prepare` read it and what the store and the
    ledger wrote since, with the basis brought up to it; None when it must be made in full."""
    try:
        return _plan(prepared, state, cache, client, hooks)
    except _NotIncremental:
        return None


def _plan(
    prepared: Prepared, state: State, cache: Cache, client: Connection, hooks: Hooks
) -> Outcome:
    basis, meta, catalogue = Basis(state), prepared.meta, prepared.catalogue
    if basis.meta_text() != prepared.text:
        raise _NotIncremental  # another plan moved the basis on since `prepare`
    mark = basis.mark()  # before anything is read: what is written later is seen next time
    touches = basis.touched(meta.mark, mark, limit=MAX_TOUCHED)
    if touches is None:
        raise _NotIncremental
    declared = sorted(
        h for _, facts in meta.files.values() for h in FileFacts.from_json(facts).handles
    )
    declared_set = set(declared)
    store_dirty, row_ids = _store_changes(basis, cache, client, touches)
    # A family the catalog does not declare changed: it matters only if it is to be pruned.
    if select_in(
        state,
        "select key from managed where kind = ? and key in ({})",
        store_dirty - declared_set,
        [str(Kind.PRODUCT)],
    ):
        raise _NotIncremental
    dirty = (set(catalogue.changed) | store_dirty) & declared_set
    if _too_many(dirty, declared):
        raise _NotIncremental
    if not dirty and not touches and not catalogue.changed:
        stamped = None
        kept = basis.plan()
        # A damaged kept plan is made again below.
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            stamped = hooks.stamp(Plan.from_json(kept)) if kept is not None else None
        if stamped is not None and _same_files(meta, catalogue):
            return Outcome(stamped, 0, len(declared), catalogue.read)

    if cache.meta("family_memo_scope") != meta.scope:
        raise _NotIncremental
    known = cache.family_memo_known(meta.scope)
    # Families with a change not applied yet (their entries are the long ones): each is
    # replayed with its product and live rows read, so many of them make a full plan cheaper.
    if _too_many(dirty | known.deferred(), declared):
        raise _NotIncremental
    results: dict[str, FamilyResult] = {}
    for handle in declared:
        text = None if handle in dirty else known.entry(handle)
        result = None if text is None else FamilyResult.from_entry(text)
        if result is None:
            dirty.add(handle)
        else:
            results[handle] = result
    if _too_many(dirty, declared):
        raise _NotIncremental
    pending = {h for h, r in results.items() if r.change is not None}
    needed = dirty | pending

    held = basis.families(needed)
    products: dict[str, Product] = {}
    for handle in needed:
        if handle in catalogue.changed:
            products[handle] = catalogue.changed[handle][0]
        elif handle in held:
            products[handle] = product_from_data(json.loads(held[handle].data))
        else:
            raise _NotIncremental
    rows = set(basis.rows_of(needed)) | {i for i, h in row_ids.items() if h in needed}
    live = client.live_of(cache, rows)
    if live is None:
        raise _NotIncremental
    settings = settings_from_data(meta.settings)
    part = Catalog.build(products=list(products.values()), settings=settings)
    if hooks.scope_of(part, live) != meta.scope:
        raise _NotIncremental

    digests = basis.digests()
    for handle, (_, _, digest, _) in catalogue.changed.items():
        digests[handle] = digest
    memo = FamilyMemo(
        meta.scope, known=known, digests={h: d for h, d in digests.items() if h in needed}
    )
    replay = Replay(
        handles=declared,
        results={h: r for h, r in results.items() if h not in dirty},
        names=NamesPart.from_json(meta.names),
    )
    new_plan = hooks.make(part, live, replay, memo, combined_digest(meta.head, digests.items()))
    if any(h not in memo.fresh and h not in memo.reused for h in dirty):
        raise _NotIncremental  # a family that reads other families: only a full plan can

    # Only the families planned again are written (and any of them not remembered, dropped).
    cache.remember_families(
        meta.scope, memo.fresh, keep=memo.reused, known=[h for h in dirty if h in known]
    )
    families: list[tuple[str, BasisFamily]] = []
    for handle in sorted(dirty):
        if handle in catalogue.changed:
            _, text, digest, rel = catalogue.changed[handle]
            families.append((handle, BasisFamily(rel, digest, text)))
        else:
            families.append((handle, held[handle]))
    basis.write(
        dataclasses.replace(meta, mark=mark, files=catalogue.files, images=catalogue.images),
        plan=new_plan.to_json() if hooks.keep_plan(new_plan) else None,
        families=families,
        rows=_rows(live, sorted(dirty)),
        skus=_skus([products[h] for h in sorted(dirty)], live),
        replacing=dirty,
    )
    return Outcome(new_plan, len(dirty), len(declared), catalogue.read)


def _too_many(dirty: Collection[str], declared: Collection[str]) -> bool:
    return len(dirty) > max(MIN_DIRTY, MAX_DIRTY_SHARE * len(declared))


def _same_files(meta: BasisMeta, catalogue: _Catalogue) -> bool:
    return {r: f[1] for r, f in catalogue.files.items()} == {r: f[1] for r, f in meta.files.items()}


def _read_catalog(
    basis: Basis, meta: BasisMeta, directory: Path, limits: Limits | None
) -> _Catalogue:
    """The catalog files and images as they are now, against the basis: only files whose stat
    changed are read, and only those whose bytes changed are checked and parsed again."""
    rels = catalog_rels(directory)
    if set(rels) != set(meta.files):
        raise _NotIncremental  # a file added or removed
    now = stats(directory, rels)
    root = directory.resolve()
    files: dict[str, tuple[Stat, Any]] = {}
    catalogue = _Catalogue(files=files, images={})
    for rel in rels:
        stat, facts_json = meta.files[rel]
        if stat is not None and now[rel] == stat:
            files[rel] = (stat, facts_json)
            continue
        facts = FileFacts.from_json(facts_json)
        if not plain_file(directory / rel, root):
            raise _NotIncremental  # a link out of the directory, a FIFO, too large: refused
        try:
            raw = (directory / rel).read_bytes()
        except OSError:
            raise _NotIncremental from None
        if hashlib.sha256(raw).hexdigest() == facts.sha256:
            files[rel] = (now[rel], facts_json)
            continue
        catalogue.read += 1
        items = check_changed_items(
            directory, rel, raw, facts, settings=meta.settings, limits=limits
        )
        if items is not None:
            new_facts, products = items
        else:
            changed = check_changed_file(directory, rel, settings=meta.settings, limits=limits)
            if changed is None or not _same_shape(changed, facts):
                raise _NotIncremental
            new_facts, products = changed.facts, {p.handle: p for p in changed.products}
        files[rel] = (now[rel], new_facts.to_json())
        _changed_products(basis, products, rel, catalogue)
    catalogue.images = _read_images(meta, directory, catalogue)
    return catalogue


def _same_shape(changed: ChangedFile, before: FileFacts) -> bool:
    """Whether only the file's products' own values changed (see `FileFacts`)."""
    now = changed.facts
    return (now.head, now.signature, now.handles) == (before.head, before.signature, before.handles)


def _changed_products(
    basis: Basis, products: Mapping[str, Product], rel: str, catalogue: _Catalogue
) -> None:
    held = basis.families(products)
    for p in products.values():
        text, digest = product_record(p)
        before = held.get(p.handle)
        if before is None:
            raise _NotIncremental
        if digest != before.digest:
            catalogue.changed[p.handle] = (p, text, digest, rel)


def _read_images(
    meta: BasisMeta, directory: Path, catalogue: _Catalogue
) -> dict[str, tuple[Stat, str]]:
    """Every image the basis knows, unchanged (else plan in full), and the new ones the changed
    files name."""
    images = dict(meta.images)
    now = stats(directory, images)
    root = directory.resolve()
    for rel, (stat, sha) in meta.images.items():
        if stat is not None and now[rel] == stat:
            continue
        if not plain_file(directory / rel, root, max_bytes=MAX_IMAGE_BYTES):
            raise _NotIncremental  # a link out of the directory, a FIFO: refused
        if _sha256_file(directory / rel) != sha:
            raise _NotIncremental  # an image's bytes changed: every product naming it did
        images[rel] = (now[rel], sha)
    for p, _, _, _ in catalogue.changed.values():
        for image in p.images or ():
            if image.path not in images:
                images[image.path] = (stat_of(directory / image.path, time.time_ns()), image.sha256)
            elif images[image.path][1] != image.sha256:
                raise _NotIncremental
    return images


def _store_changes(
    basis: Basis, cache: Cache, client: Connection, touches: Collection[tuple[str, str, str]]
) -> tuple[set[str], dict[str, str]]:
    """The families the writes since the basis touched (declared or not), and the touched
    live rows' ids with the family each now belongs to."""
    by_kind: dict[str, list[str]] = {}
    skus: list[str] = []
    handles: set[str] = set()
    for source, kind, key in touches:
        if source == "objects":
            by_kind.setdefault(kind, []).append(key)
        elif source == "images" or kind == str(Kind.PRODUCT):
            handles.add(key)
        elif kind == str(Kind.VARIANT):
            skus.append(key)
        else:
            raise _NotIncremental  # a managed name: the names' part is planned in full
    row_ids: dict[str, str] = {}
    for kind, ids in by_kind.items():
        now = client.families_of(cache, kind, ids)
        if now is None:
            raise _NotIncremental
        row_ids.update(now)
        handles.update(h for h in now.values() if h)
        handles.update(basis.handles_of_rows(ids).values())
    if skus:
        owners = basis.handles_of_skus(skus)
        if len(owners) < len(set(skus)):
            raise _NotIncremental  # a managed SKU no family held: plan in full
        handles.update(owners.values())
    return handles, row_ids
