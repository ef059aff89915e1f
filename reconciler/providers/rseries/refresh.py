"""Refresh the live-object cache through R-Series' change feed, then read it back as `Live`.

The feed is the `timeStamp` filter (lightspeed-rseries.md §4). Cost model:
- first run, or `full`: every kind read whole once, `archived=true` (an archived item is an
  inactive product, not a missing one), the fed kinds sorted by `timeStamp`: a record edited
  while the pages are read moves behind the last page read and comes again (de-duplicated by
  id, the later copy wins), so the highest time stamp seen is a cursor that misses nothing;
- later runs (`auto`): one `timeStamp>=<highest seen>&sort=timeStamp&archived=true` query per
  fed kind (Item, ItemMatrix, Manufacturer, Vendor). `>=` because time stamps have one-second
  resolution: a record changed later in the second the last read saw is still found. The
  records of that second come back every time; one is news only when its content changed (a
  digest per record of that second is kept beside the cursor), so a no-op refresh is one
  request per kind (one page: more only when over 100 records share that last second);
- the blind spots are read whole, one request per 100 records, kept only if different: Category,
  Tag and Image (hard deletes leave no trace in a feed; Tag has no time stamp at all; an image
  added or removed does not move its item's time stamp) and ItemAttributeSet (no time stamp).
  A tag deleted from the store drops from every item's tags at once (normalize reads item tags
  through the Tag list), a category deleted leaves its items without a category.
So a no-op warm refresh costs 8 requests (9 on a client that still has to discover the account).
- `off`: no request at all; the caller says how old the cache is.

Cursors are the cache's per-kind versions: the highest `timeStamp` seen, in the one ISO 8601
form of `normalize.canonical_stamp` (so text order is time order); the feed asks for it as is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from reconciler.errors import ConfigError
from reconciler.live import CatalogKeys, Live
from reconciler.model import Json
from reconciler.providers.base import KindRefresh, RefreshMode, RefreshReport, store_identity
from reconciler.providers.rseries.client import RSeriesClient
from reconciler.providers.rseries.normalize import (
    NO_STAMP,
    canonical_stamp,
    normalize_live,
    trim,
)
from reconciler.providers.rseries.pacing import DEFAULT_DRIP, DEFAULT_SIZE
from reconciler.state.cache import Cache

FEED_KINDS = ("Item", "ItemMatrix", "Manufacturer", "Vendor")
LIST_KINDS = ("ItemAttributeSet", "Category", "Tag", "Image")
KINDS = FEED_KINDS + LIST_KINDS
# What normalizing reads beyond the record itself (each loaded relation costs a little more).
RELATIONS: Mapping[str, list[str]] = {
    "Item": ["ItemAttributes", "ItemVendorNums", "Tags"],
    "ItemMatrix": ["Tags"],
}
ARCHIVABLE = frozenset({"Item", "ItemMatrix", "Vendor"})


def feed_time(cursor: str) -> str:
    """A cursor (a canonical stamp) as the feed's filter value: `>=,2024-05-01T10:00:00+00:00`."""
    return ">=," + canonical_stamp(cursor)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _edge(objects: Iterable[Json], version: str) -> dict[str, str]:
    """The records of one second, id -> a digest of what the cache keeps of it."""
    return {
        str(o["id"]): hashlib.sha256(json.dumps(o, sort_keys=True).encode()).hexdigest()[:16]
        for o in objects
        if o["version"] == version
    }


def _edge_key(kind: str) -> str:
    return f"rseries_edge:{kind}"


def refresh(
    client: RSeriesClient,
    cache: Cache,
    *,
    mode: RefreshMode = "auto",
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_progress: Callable[[str], None] | None = None,
) -> RefreshReport:
    """Bring the cache up to date with the account (or not at all, with `off`)."""
    say = on_progress or (lambda _msg: None)
    before = client.stats().requests
    store_changed = cache.bind(store_identity(client))
    if mode == "off":
        cursors = cache.cursors()
        missing = [k for k in KINDS if k not in cursors]
        if missing:
            what = "it has never been read" if not cursors else f"{', '.join(missing)} missing"
            raise ConfigError(
                f"--refresh off needs a cache of this store, but {what}: run `catalog plan` "
                "without --refresh off first."
            )
        times = [t for _, t in cursors.values() if t]
        return RefreshReport(
            mode=mode,
            kinds=tuple(KindRefresh(k, "cached", 0, cache.count(k)) for k in KINDS),
            requests=client.stats().requests - before,
            refreshed_at=min(times) if times else None,
        )
    stamp = _iso(now())
    kinds: list[KindRefresh] = []
    changed = store_changed or mode == "full"
    for kind in FEED_KINDS:
        cursor = None if mode == "full" else cache.cursor(kind)
        params = {"sort": "timeStamp"}
        if kind in ARCHIVABLE:
            params["archived"] = "true"
        if cursor is None or cursor[0] is None:
            if kind == "Item":
                say(
                    "Reading every item from the store (the first plan against it, or "
                    "--refresh full; later plans ask only for what changed)"
                )
            objects = _read(client, kind, params)
            highest = max((str(o["version"]) for o in objects.values()), default=NO_STAMP)
            total = cache.replace(kind, objects.values(), version=highest, refreshed_at=stamp)
            cache.set_meta({_edge_key(kind): json.dumps(_edge(objects.values(), highest))})
            kinds.append(KindRefresh(kind, "full", len(objects), total))
            changed = True
            continue
        last = canonical_stamp(cursor[0])
        objects = _read(client, kind, {**params, "timeStamp": feed_time(last)})
        highest = max([last, *(str(o["version"]) for o in objects.values())])
        # The records of the last second read come back every time: news only if they
        # differ from what that second held then (edited again within the same second).
        seen = json.loads(cache.meta(_edge_key(kind)) or "{}")
        was = _edge(objects.values(), last)
        news = [
            o
            for o in objects.values()
            if str(o["version"]) > last or was.get(str(o["id"])) != seen.get(str(o["id"]))
        ]
        cache.merge(kind, news, version=highest, refreshed_at=stamp)
        cache.set_meta({_edge_key(kind): json.dumps(_edge(objects.values(), highest))})
        kinds.append(KindRefresh(kind, "changes", len(news), cache.count(kind)))
        changed |= bool(news)
    for kind in LIST_KINDS:
        listed = list(_read(client, kind, {}).values())
        changed |= cache.replace_if_changed(kind, listed, refreshed_at=stamp)
        kinds.append(KindRefresh(kind, "full", len(listed), len(listed)))
    if changed:
        cache.bump_generation()
    return RefreshReport(
        mode=mode,
        kinds=tuple(kinds),
        requests=client.stats().requests - before,
        refreshed_at=stamp,
        store_changed=store_changed,
        full=any(k.mode == "full" for k in kinds if k.kind in FEED_KINDS),
    )


def _read(client: RSeriesClient, kind: str, params: Mapping[str, str]) -> dict[str, Json]:
    """Every record the query matches, trimmed, by id (a later copy replaces an earlier one)."""
    found: dict[str, Json] = {}
    for record in client.iter_query(kind, params, load_relations=RELATIONS.get(kind)):
        obj = trim(kind, record)
        found.pop(str(obj["id"]), None)
        found[str(obj["id"])] = obj
    return found


def load_live(
    cache: Cache,
    *,
    keys: CatalogKeys | None = None,
    handles: Mapping[str, str] | None = None,
    tag_spellings: Iterable[str] = (),
) -> Live:
    """The cached account in the catalog's shape (see `normalize.normalize_live`): families
    keyed by `keys` (or the bare `handles`: sku -> handle), tags spelled as it spells them."""
    if keys is not None:
        handles = {**keys.handles, **(handles or {})}
        tag_spellings = [*keys.tags, *tag_spellings]
    return normalize_live(
        items=cache.iter_objects("Item"),
        matrices=cache.objects("ItemMatrix"),
        attribute_sets=cache.objects("ItemAttributeSet"),
        categories=cache.objects("Category"),
        manufacturers=cache.objects("Manufacturer"),
        vendors=cache.objects("Vendor"),
        tags=cache.objects("Tag"),
        images=cache.objects("Image"),
        handles=handles,
        family_names=keys.names if keys is not None else None,
        family_ids=keys.family_ids if keys is not None else None,
        tag_spellings=tag_spellings,
    )


@dataclass(frozen=True)
class StoreFacts:
    """The store beyond its objects: its leaky bucket, as the estimate reads it
    (`rate_limit` = the bucket's size in units, `window_seconds` = the time it takes to drain
    a full bucket, so size / window is the drip rate). Prices are kept without tax."""

    bucket_size: float = DEFAULT_SIZE
    drip_per_second: float = DEFAULT_DRIP
    tax_exclusive: bool = True

    @property
    def rate_limit(self) -> int:
        return max(1, round(self.bucket_size))

    @property
    def window_seconds(self) -> float:
        return self.rate_limit / self.drip_per_second


_BUCKET_KEY = "rseries_bucket"


def remember_bucket(cache: Cache, *, size: float, drip_per_second: float) -> None:
    """Keep the bucket the store last reported (written only when it changed)."""
    value = json.dumps({"size": size, "drip": drip_per_second})
    if cache.meta(_BUCKET_KEY) != value:
        cache.set_meta({_BUCKET_KEY: value})


def store_facts(cache: Cache) -> StoreFacts:
    """The facts cached by the last refresh; R-Series' published bucket when none reported
    one (a sandbox with its bucket off)."""
    raw = json.loads(cache.meta(_BUCKET_KEY) or "{}")
    try:
        size, drip = float(raw["size"]), float(raw["drip"])
    except (KeyError, TypeError, ValueError):
        return StoreFacts()
    if size <= 0 or drip <= 0:
        return StoreFacts()
    return StoreFacts(bucket_size=size, drip_per_second=drip)
