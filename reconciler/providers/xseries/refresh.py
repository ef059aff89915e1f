"""Refresh the live-object cache through the store's change feed, then read it back as `Live`.

Cost model (the point of this module; lightspeed-xseries.md §3):
- first run, or `full`: every kind read whole, at the largest page size, following the pages
  the store returns (a store may cap pages lower than asked);
- later runs (`auto`): one `after=<highest version seen>&deleted=true` request per versioned
  kind (products, brands, suppliers, tags) that returns only what changed, deletions included;
  variant attributes (no paging) and product categories (paged by id, no versions) are re-read
  whole, one request each at the sizes stores have;
- the retailer (tax mode) is cached and re-read only when older than `retailer_ttl` or on `full`
  (`catalog apply` passes 0: it re-reads it before writing any price).
So a no-op warm plan costs 6 requests (7 when the retailer is re-read).
- `off`: no request at all; the caller says how old the cache is.

A store that went backwards (restored from a backup, reset, or replaced behind the same URL)
is noticed at no extra request: the products' incremental read starts one version early
(`after=<cursor - 1>`), so the product the cache saw last comes back too, unchanged, or under
a higher version if it changed since. When the store shows neither, its history no longer
holds what we read, and everything is read again with a notice. A different retailer id or
creation time says the same whenever the retailer is re-read.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from reconciler.errors import ConfigError
from reconciler.live import Live
from reconciler.model import Json
from reconciler.planner import DEFAULT_RATE_LIMIT, DEFAULT_WINDOW_SECONDS
from reconciler.providers.base import KindRefresh, RefreshMode, RefreshReport, store_identity
from reconciler.providers.xseries.client import FEED_PATHS, MAX_PAGE_SIZE, Client
from reconciler.providers.xseries.normalize import normalize_live, trim
from reconciler.state.cache import Cache

FEED_KINDS = tuple(FEED_PATHS)  # product, brand, supplier, tag
LIST_KINDS = ("variant_attribute", "product_category")
KINDS = FEED_KINDS + LIST_KINDS
RETAILER_TTL_SECONDS = 3600.0


@dataclass(frozen=True)
class StoreFacts:
    tax_exclusive: bool
    rate_limit: int
    retailer_name: str | None = None
    window_seconds: float = DEFAULT_WINDOW_SECONDS  # X-Series: 5 minutes


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class _Stream:
    """Objects of successive pages, remembering the highest version and the largest page."""

    def __init__(self, pages: Iterator[Any]) -> None:
        self.pages = pages
        self.max_version: int | None = None
        self.largest_page = 0
        self.received = 0

    def highest(self) -> str | None:
        """The kind's cursor for the cache: the highest version, as text (the core's cursors
        are opaque; X-Series reads its own back with `int`)."""
        return None if self.max_version is None else str(self.max_version)

    def __iter__(self) -> Iterator[Json]:
        for page in self.pages:
            self.largest_page = max(self.largest_page, len(page.items))
            self.received += len(page.items)
            if page.max_version is not None:
                self.max_version = max(self.max_version or 0, page.max_version)
            yield from page.items


def refresh(
    client: Client,
    cache: Cache,
    *,
    mode: RefreshMode = "auto",
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    retailer_ttl: float = RETAILER_TTL_SECONDS,
    page_size: int = MAX_PAGE_SIZE,
    on_progress: Callable[[str], None] | None = None,
) -> RefreshReport:
    """Bring the cache up to date with the store (or not at all, with `off`)."""
    say = on_progress or (lambda _msg: None)
    store_changed = cache.bind(store_identity(client))
    if mode == "off":
        cursors = cache.cursors()
        missing = [k for k in KINDS if k not in cursors] + (
            ["retailer"] if cache.meta("tax_exclusive") is None else []
        )
        if missing:
            what = "it has never been read" if cursors == {} else f"{', '.join(missing)} missing"
            raise ConfigError(
                f"--refresh off needs a cache of this store, but {what}: run `catalog plan` "
                "without --refresh off first."
            )
        times = [t for _, t in cursors.values() if t]
        return RefreshReport(
            mode=mode,
            kinds=tuple(KindRefresh(k, "cached", 0, cache.count(k)) for k in KINDS),
            requests=0,
            refreshed_at=min(times) if times else None,
        )
    before = client.stats().requests
    try:
        return _refresh(
            client,
            cache,
            mode=mode,
            now=now,
            retailer_ttl=retailer_ttl,
            page_size=page_size,
            say=say,
            store_changed=store_changed,
        )
    except _WentBack as back:
        say(
            f"The store's change feed no longer holds {back.kind} {back.object_id} (version "
            f"{back.version}, the last one read): it was restored, reset or replaced, so "
            "everything is read again"
        )
        _forget(cache, client)
        report = _refresh(
            client,
            cache,
            mode="full",
            now=now,
            retailer_ttl=retailer_ttl,
            page_size=page_size,
            say=say,
            store_changed=True,
        )
        return replace(report, requests=client.stats().requests - before)


class _WentBack(Exception):
    """The change feed no longer shows the object the cursor stands on."""

    def __init__(self, kind: str, object_id: str, version: int) -> None:
        super().__init__(kind, object_id, version)
        self.kind = kind
        self.object_id = object_id
        self.version = version


def _forget(cache: Cache, client: Client) -> None:
    url = cache.meta("store_url") or store_identity(client)
    cache.clear()
    cache.set_meta({"store_url": url})


def _refresh(
    client: Client,
    cache: Cache,
    *,
    mode: RefreshMode,
    now: Callable[[], datetime],
    retailer_ttl: float,
    page_size: int,
    say: Callable[[str], None],
    store_changed: bool,
) -> RefreshReport:
    before = client.stats().requests
    stamp = _iso(now())
    kinds: list[KindRefresh] = []
    # Did anything the planner reads change? Then the cache's generation moves on, and a plan
    # remembered for the old generation is no longer valid (see `Cache.plan_memo`).
    changed = store_changed or mode == "full"
    changed |= _retailer(client, cache, full=mode == "full", now=now(), ttl=retailer_ttl, say=say)
    for kind in FEED_KINDS:
        cursor = None if mode == "full" else cache.cursor(kind)
        cap_key = f"page_cap:{kind}"
        known_cap = int(cache.meta(cap_key) or 0)
        if cursor is None or cursor[0] is None:
            if kind == "product":
                say(
                    "Reading every product from the store (the first plan against it, or "
                    "--refresh full; later plans ask only for what changed)"
                )
            stream = _Stream(client.iter_pages(kind, page_size=page_size, known_page_cap=known_cap))
            total = cache.replace(
                kind, (trim(kind, o) for o in stream), version=stream.highest, refreshed_at=stamp
            )
            kinds.append(KindRefresh(kind, "full", stream.received, total))
            changed = True
        else:
            last = int(cursor[0])
            # Products only: the page that brings the anchor back is one object longer, and
            # a kind with as few objects as the longest page ever seen would then cost a
            # second page on every plan. Products are what a reset store loses first.
            anchor = cache.id_at(kind, str(last)) if kind == "product" and last > 0 else None
            stream = _Stream(
                client.iter_pages(
                    kind,
                    after=last - 1 if anchor is not None else last,
                    page_size=page_size,
                    deleted=True,
                    known_page_cap=known_cap,
                )
            )
            objects = list(stream)
            if anchor is not None:
                if not any(str(o.get("id")) == anchor for o in objects):
                    raise _WentBack(kind, anchor, last)
                # The anchor unchanged is no news: neither stored again nor counted.
                objects = [
                    o
                    for o in objects
                    if not (str(o.get("id")) == anchor and int(o.get("version") or 0) == last)
                ]
            cache.merge(
                kind,
                [trim(kind, o) for o in objects],
                # The cursor only moves forward (a feed of nothing new keeps it).
                version=str(max(last, stream.max_version or last)),
                refreshed_at=stamp,
            )
            kinds.append(KindRefresh(kind, "changes", len(objects), cache.count(kind)))
            changed |= bool(objects)
        if stream.largest_page > known_cap:
            cache.set_meta({cap_key: str(stream.largest_page)})
    # These two have no change feed: read whole (one request each), kept only if different.
    for kind, objects in (
        ("variant_attribute", client.variant_attributes()),
        ("product_category", client.product_categories(page_size=page_size)),
    ):
        # Trimmed to what planning reads before the cache sees them (and compares them).
        trimmed = [trim(kind, o) for o in objects]
        changed |= cache.replace_if_changed(kind, trimmed, refreshed_at=stamp)
        kinds.append(KindRefresh(kind, "full", len(objects), len(objects)))
    limit = client.stats().rate_limit
    if limit and str(limit) != cache.meta("rate_limit"):
        cache.set_meta({"rate_limit": str(limit)})
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


def _retailer(
    client: Client,
    cache: Cache,
    *,
    full: bool,
    now: datetime,
    ttl: float,
    say: Callable[[str], None],
) -> bool:
    """Re-read the retailer when the cached one is old; True when what planning reads of it
    (the tax mode, the store's identity) changed."""
    fetched_at = cache.meta("retailer_at")
    fresh = (
        fetched_at is not None
        and cache.meta("tax_exclusive") is not None
        and (now - datetime.fromisoformat(fetched_at)).total_seconds() < ttl
    )
    if fresh and not full:
        return False
    retailer = client.retailer()
    known_id = cache.meta("retailer_id")
    new_id = str(retailer.get("id") or "")
    known_born = cache.meta("retailer_created_at")
    born = str(retailer.get("created_at") or "")
    if (known_id and new_id and known_id != new_id) or (known_born and born and known_born != born):
        # Same address, different store (e.g. a sandbox that was reset): nothing cached holds.
        say("The store at this address is not the one cached; reading everything again")
        _forget(cache, client)
    tax_exclusive = "1" if retailer.get("tax_exclusive") else "0"
    changed = cache.meta("tax_exclusive") != tax_exclusive
    cache.set_meta(
        {
            "retailer_id": new_id,
            "retailer_created_at": born,
            "retailer_name": str(retailer.get("name") or retailer.get("domain_prefix") or ""),
            "tax_exclusive": tax_exclusive,
            "retailer_at": _iso(now),
        }
    )
    return changed


def families_of(cache: Cache, kind: str, ids: Collection[str]) -> dict[str, str] | None:
    """The handle each of these cached product rows has now, deleted ones included (a row
    without one belongs to no family); None for any other kind: names are read whole."""
    if kind != "product":
        return None
    return {
        str(r["id"]): str(r.get("handle") or "")
        for r in cache.objects_by_id(kind, ids, deleted=True)
    }


def store_facts(cache: Cache) -> StoreFacts:
    return StoreFacts(
        tax_exclusive=cache.meta("tax_exclusive") == "1",
        rate_limit=int(cache.meta("rate_limit") or DEFAULT_RATE_LIMIT),
        retailer_name=cache.meta("retailer_name") or None,
    )


def load_live(cache: Cache, *, rows: Collection[str] | None = None) -> Live:
    """The cached store in the catalog's shape (`rows`: as if it held only these product rows,
    with every name)."""
    facts = store_facts(cache)
    return normalize_live(
        products=cache.iter_objects("product")
        if rows is None
        else cache.objects_by_id("product", rows),
        brands=cache.objects("brand"),
        suppliers=cache.objects("supplier"),
        tags=cache.objects("tag"),
        attributes=cache.objects("variant_attribute"),
        categories=cache.objects("product_category"),
        tax_exclusive=facts.tax_exclusive,
        gone=cache.deleted_ids("brand") | cache.deleted_ids("supplier"),
    )
