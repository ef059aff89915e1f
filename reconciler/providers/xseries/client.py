"""The Lightspeed X-Series client: the only module that talks to a store over HTTP.

Rules it keeps (lightspeed-xseries.md §3-6):

- Every call carries the bearer token, a descriptive User-Agent and a timeout. The token lives
  only in the httpx client's headers: it is never in a repr, an exception message or a log line.
- Pacing: once the store has told its limit (`X-RateLimit-Limit`), every request this client
  sends, reads and look-ups as much as writes, is counted in a sliding window as long as the
  store's (`RateWindow`), and a request starts only when the window has room; requests the
  store counted that this client did not send are estimated from `X-RateLimit-Remaining`. When
  few are left, requests are also spaced at the sustained rate. So an apply draws no 429 at
  the real limit.
- A 429 makes *every* thread sharing this client wait until the HTTP-date `Retry-After`.
- 5xx answers and connection failures are retried with capped exponential backoff and full
  jitter, but only when retrying is safe: reads and idempotent writes (PUT, DELETE, image
  upload, which the store de-duplicates). A create whose request may have reached the store
  (timeout, dropped connection, 5xx) raises `TransportError` ("outcome unknown") instead, so the
  caller looks the object up before sending it again (design invariant 6).
- Other 4xx answers are never retried: they raise `ApiError` naming the request and quoting the
  store's message.

The client is safe to share between threads: httpx.Client is, and the pacer and the counters
are guarded by one lock.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from reconciler.providers.http import (
    Retries,
    gave_up,
    rate_limited,
    transport_failure,
)
from reconciler.providers.xseries.pacing import RateWindow

if TYPE_CHECKING:
    from reconciler.live import CatalogKeys, Live
    from reconciler.providers.base import RefreshMode, RefreshReport
    from reconciler.providers.xseries.refresh import StoreFacts
    from reconciler.state.cache import Cache

from reconciler.errors import ApiError, TransportError, Unconfirmed, redact, redact_json
from reconciler.model import Json
from reconciler.planner import DEFAULT_RATE_LIMIT, DEFAULT_WINDOW_SECONDS

# The largest page the sandbox serves; a real store may return fewer per page, which the paging
# loop follows (it never assumes the size it asked for).
MAX_PAGE_SIZE = 10_000
# The store's window and its published limit until it tells its own through X-RateLimit-Limit
# are the planner's estimate defaults (`reconciler.planner`): one definition of each.
MAX_PACE_SECONDS = 5.0

# Kinds read through the version-paged change feed (lightspeed-xseries.md §3) and their paths.
FEED_PATHS: Mapping[str, str] = {
    "product": "/api/2.0/products",
    "brand": "/api/2.0/brands",
    "supplier": "/api/2.0/suppliers",
    "tag": "/api/2.0/tags",
}


def _version() -> str:
    try:
        return metadata.version("lightspeed-catalog")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0"


DEFAULT_USER_AGENT = (
    f"lightspeed-catalog/{_version()} "
    f"(catalog-as-code reconciler for Lightspeed X-Series; httpx/{httpx.__version__})"
)


@dataclass(frozen=True)
class Page:
    """One page of a version-paged list: objects in version order and the page's highest version."""

    items: list[Json]
    max_version: int | None


@dataclass(frozen=True)
class ClientStats:
    """What this client has cost so far; the apply progress and the benchmark read it."""

    requests: int = 0  # HTTP requests sent (every attempt counts)
    retries: int = 0  # attempts repeated after a 5xx or a connection failure
    rate_limited: int = 0  # 429 answers drawn
    waits: int = 0  # times a thread slept for pacing, Retry-After or backoff
    waited_seconds: float = 0.0
    rate_limit: int | None = None  # X-RateLimit-Limit as last reported by the store
    rate_remaining: int | None = None  # X-RateLimit-Remaining as last reported


class Client:
    """A thread-safe client for one store.

    `transport` replaces the network (the sandbox's in-process transport in tests and in the
    embedded mode); `sleep` and `clock` (wall-clock epoch seconds, what Retry-After dates are
    compared with) are seams for tests; `rng` draws the backoff jitter. `rate_window` is the
    length of the store's rate-limit window (X-Series: 5 minutes); the store's headers give the
    limit and what is left of it, not the window. `identity` names the store for caches
    (default: the base URL).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        max_attempts: int = 5,
        max_rate_limited: int = 20,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        rng: random.Random | None = None,
        pace_below: float = 0.1,
        rate_window: float = DEFAULT_WINDOW_SECONDS,
        identity: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Kept only to take it out of what a server may echo back (`redact`).
        self._secrets = (token,)
        # What caches are keyed by: the base URL, unless the caller knows the store better
        # (the embedded sandbox lives at one fake URL whatever file backs it).
        self.identity = identity or self.base_url
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": user_agent,
            },
            follow_redirects=False,
        )
        self._sleep = sleep
        self._clock = clock
        self._retries = Retries(
            max_attempts=max_attempts,
            max_rate_limited=max_rate_limited,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            rng=rng,
        )
        self._pace_below = pace_below
        self._rate_window = rate_window
        # Spacing by X-RateLimit-Remaining. A caller that meters its own requests against the
        # window (apply's write budget) turns it off while it runs: near a full window the
        # spacing would stretch every later window to the sustained rate.
        self.pace_by_remaining = True
        self._lock = threading.Lock()
        self._blocked_until = 0.0  # epoch seconds before which no thread may send (429)
        self._next_slot = 0.0  # earliest start of the next paced request
        self._stats = ClientStats()
        # Every request of the store's window, once the store has told its limit.
        self._meter: RateWindow | None = None

    def rate_delay(self) -> float:
        """Seconds until the store's window has room for one more request (0: now, or no
        limit known). Apply starts a step only then, instead of parking a thread."""
        with self._lock:
            return self._meter.delay() if self._meter is not None else 0.0

    def __repr__(self) -> str:  # never the token
        return f"Client(base_url={self.base_url!r})"

    def redact(self, text: str) -> str:
        """`text` without this client's token or any Authorization value in it."""
        return redact(text, self._secrets)

    def _redacted(self, exc: ApiError) -> ApiError:
        # A server may quote the request's Authorization header in its error body; the
        # message and the body kept on the error must not carry it any further.
        exc.args = (self.redact(str(exc)),)
        exc.body = redact_json(exc.body, self._secrets)
        return exc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- as the provider's connection (`reconciler.providers.base.Connection`) -----------------

    platform = "xseries"

    def refresh(
        self,
        cache: Cache,
        *,
        mode: RefreshMode = "auto",
        facts_ttl: float | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> RefreshReport:
        """Bring `cache` up to date through the version feed (see `refresh.refresh`);
        `facts_ttl`: how old the cached retailer (its tax mode) may be."""
        from reconciler.providers.xseries.refresh import RETAILER_TTL_SECONDS, refresh

        ttl = RETAILER_TTL_SECONDS if facts_ttl is None else facts_ttl
        return refresh(self, cache, mode=mode, retailer_ttl=ttl, on_progress=on_progress)

    def live(self, cache: Cache, /, *, keys: CatalogKeys | None = None) -> Live:
        """The cached store in the catalog's shape (no request). `keys` are not needed: an
        X-Series family has its own handle."""
        from reconciler.providers.xseries.refresh import load_live

        return load_live(cache)

    def families_of(
        self, cache: Cache, kind: str, ids: Collection[str], /
    ) -> Mapping[str, str] | None:
        """The handle each cached product row now has (no request); None for any other kind."""
        from reconciler.providers.xseries.refresh import families_of

        return families_of(cache, kind, ids)

    def live_of(self, cache: Cache, ids: Collection[str], /) -> Live | None:
        """`live` of just these cached product rows (no request)."""
        from reconciler.providers.xseries.refresh import load_live

        return load_live(cache, rows=ids)

    def facts(self, cache: Cache, /) -> StoreFacts:
        """The cached retailer facts: tax mode, rate limit (no request)."""
        from reconciler.providers.xseries.refresh import store_facts

        return store_facts(cache)

    @contextmanager
    def metered(self) -> Iterator[None]:
        """While apply starts its steps by `rate_delay` (this client meters every request of
        the store's window), requests are not also spaced out near the window's end: that
        would only stretch every later window to the sustained rate."""
        paced = self.pace_by_remaining
        self.pace_by_remaining = paced and self.stats().rate_limit is None
        try:
            yield
        finally:
            self.pace_by_remaining = paced

    def image_url(self, image_id: str, /) -> tuple[str | None, str]:
        """Where an image's bytes are (None while the store has none yet) and its status."""
        meta = self.get_image(image_id) or {}
        url = meta.get("url") or (meta.get("sizes") or {}).get("original")
        return (str(url) if url else None), str(meta.get("status", "unknown"))

    # -- counters ----------------------------------------------------------------------------

    def stats(self) -> ClientStats:
        """A snapshot of the counters (safe to read while other threads send)."""
        with self._lock:
            return self._stats

    def _count(self, **deltas: float) -> None:
        with self._lock:
            values = {k: getattr(self._stats, k) + v for k, v in deltas.items()}
            self._stats = _replace(self._stats, **values)

    # -- reads -------------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Json:
        """GET any API path (e.g. `/api/2.0/products/{id}`) and return the parsed body, which
        is always a JSON object (anything else is not the API speaking: ApiError)."""
        body = self._request("GET", path, params=params, safe=True, empty_ok=False)
        if not isinstance(body, dict):
            raise self._unconfirmed("GET", path, 200, "a JSON object")
        return body

    def list_page(
        self,
        kind: str,
        *,
        after: int | None = None,
        page_size: int = MAX_PAGE_SIZE,
        deleted: bool = False,
    ) -> Page:
        """One page of a version-paged list (`product`, `brand`, `supplier`, `tag`)."""
        params: dict[str, Any] = {"page_size": page_size}
        if after is not None:
            params["after"] = after
        if deleted:
            params["deleted"] = "true"
        body = self.get(FEED_PATHS[kind], params)
        items = list(body.get("data") or [])
        version = body.get("version") or {}
        max_version = version.get("max")
        if max_version is None and items:
            max_version = max(int(o.get("version") or 0) for o in items)
        return Page(items=items, max_version=None if max_version is None else int(max_version))

    def iter_pages(
        self,
        kind: str,
        *,
        after: int | None = None,
        page_size: int = MAX_PAGE_SIZE,
        deleted: bool = False,
        known_page_cap: int = 0,
    ) -> Iterator[Page]:
        """Every page from `after` on, following each page's `version.max`.

        The loop stops on an empty page, or earlier on a page shorter than both the size asked
        for and `known_page_cap`, the most this endpoint has ever returned in one page: a store
        that once answered with N objects caps pages at N or more, so fewer means the end.
        (Without that knowledge one empty page confirms the end.)
        """
        cap = known_page_cap
        while True:
            page = self.list_page(kind, after=after, page_size=page_size, deleted=deleted)
            if not page.items:
                return
            yield page
            if page.max_version is None or (after is not None and page.max_version <= after):
                return  # a store that does not advance would loop forever
            after = page.max_version
            if len(page.items) < min(page_size, cap):
                return
            cap = max(cap, len(page.items))

    def variant_attributes(self, *, deleted: bool = False) -> list[Json]:
        """All variant attributes (this endpoint has no paging)."""
        body = self.get("/api/2.0/variant_attributes", {"deleted": "true"} if deleted else None)
        return list(body.get("data") or [])

    def product_categories(self, *, page_size: int = MAX_PAGE_SIZE) -> list[Json]:
        """All product categories, following the endpoint's own id-based paging."""
        out: list[Json] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"page_size": page_size}
            if after:
                params["after"] = after
            body = self.get("/api/2.0/product_categories", params)
            data = body.get("data") or {}
            out.extend(data.get("categories") or [])
            info = body.get("page_info") or {}
            last_seen = info.get("last_seen")
            if not info.get("has_next") or not last_seen or last_seen == after:
                return out
            after = str(last_seen)

    def retailer(self) -> Json:
        """The store's settings, among them `tax_exclusive`."""
        return self.get("/api/2.0/retailer").get("data") or {}

    def products_by_sku(self, sku: str) -> list[Json]:
        """The live product rows holding this SKU (the look-up before re-sending a create)."""
        return list(self.get("/api/2.0/products", {"sku": sku}).get("data") or [])

    def get_product(self, product_id: str) -> Json:
        return self.get(f"/api/2.0/products/{product_id}").get("data")

    def get_image(self, image_id: str) -> Json:
        return self.get(f"/api/2.0/product_images/{image_id}").get("data")

    # -- writes ------------------------------------------------------------------------------

    def create_product(self, body: Mapping[str, Json]) -> list[str]:
        """POST /2.0/products: a simple product or a whole family in one call; ids parent first.

        Not retried when the outcome is unknown: raises TransportError instead.
        """
        path = "/api/2.0/products"
        data = _data(self._request("POST", path, json=body, safe=False))
        if not isinstance(data, list) or not data or not all(_is_id(i) for i in data):
            raise self._unconfirmed("POST", path, None, "the new product ids")
        return [str(i) for i in data]

    def update_product(
        self,
        product_id: str,
        *,
        common: Mapping[str, Json] | None = None,
        details: Mapping[str, Json] | None = None,
    ) -> Json:
        """PUT /2.1/products/{id}: `common` for the whole family, `details` for this row.

        Idempotent, so retried. Some stores answer with an empty body (lightspeed-xseries.md §6.4):
        that gives None and counts as done; any other body must be the documented `{"data": {...}}`.
        """
        body: dict[str, Json] = {}
        if common:
            body["common"] = dict(common)
        if details:
            body["details"] = dict(details)
        path = f"/api/2.1/products/{product_id}"
        answer = self._request("PUT", path, json=body, safe=True, empty_ok=True)
        if answer is None:
            return None
        data = _data(answer)
        if not isinstance(data, dict):
            raise self._unconfirmed("PUT", path, None, "the updated product")
        return data

    def add_variant(self, *, common: Mapping[str, Json], details: Mapping[str, Json]) -> Json:
        """POST /2.1/products: one new variant in an existing family (not retried blindly)."""
        body = {"common": dict(common), "details": dict(details)}
        path = "/api/2.1/products"
        data = _data(self._request("POST", path, json=body, safe=False))
        if not isinstance(data, dict) or not (
            _is_id(data.get("id")) or _is_id(data.get("product_id"))
        ):
            raise self._unconfirmed("POST", path, None, "the new variant's id")
        return data

    def delete_product(self, product_id: str, *, whole_family: bool = False) -> None:
        path = f"/api/2.0/products/{product_id}" + ("/all" if whole_family else "")
        self._request("DELETE", path, safe=True, empty_ok=True)  # 200, no body documented

    def create_brand(self, name: str, description: str | None = None) -> str:
        return self._create_named("/api/2.0/brands", name, description)

    def update_brand(self, brand_id: str, body: Mapping[str, Json]) -> Json:
        return self._update_named(f"/api/2.0/brands/{brand_id}", body)

    def create_supplier(self, name: str, description: str | None = None) -> str:
        return self._create_named("/api/2.0/suppliers", name, description)

    def update_supplier(self, supplier_id: str, body: Mapping[str, Json]) -> Json:
        return self._update_named(f"/api/2.0/suppliers/{supplier_id}", body)

    def create_tag(self, name: str) -> str:
        return self._create_named("/api/2.0/tags", name, None)

    def create_variant_attribute(self, name: str) -> Json:
        """POST /variant_attributes -> the created attribute `{id, name, ...}` (201)."""
        body = {"name": name}
        path = "/api/2.0/variant_attributes"
        data = _data(self._request("POST", path, json=body, safe=False))
        if not isinstance(data, dict) or not _is_id(data.get("id")):
            raise self._unconfirmed("POST", path, None, "the new attribute's id")
        return data

    def bulk_categories(self, categories: Sequence[Mapping[str, Json]]) -> list[Json]:
        """POST /product_categories/bulk: create (and update) many categories in one call.

        Entries may reference each other through `payload_id` / `payload_parent_category_id`.
        """
        body = {"categories": [dict(c) for c in categories]}
        path = "/api/2.0/product_categories/bulk"
        data = _data(self._request("POST", path, json=body, safe=False))
        if not isinstance(data, list) or not all(
            isinstance(e, dict) and _is_id(e.get("id")) for e in data
        ):
            raise self._unconfirmed("POST", path, None, "the categories it saved")
        return data

    def delete_categories(self, category_ids: Sequence[str]) -> None:
        """DELETE /product_categories/bulk: these categories and everything under them."""
        path = "/api/2.0/product_categories/bulk"
        body = {"category_ids": list(category_ids)}
        if not isinstance(self._request("DELETE", path, json=body, safe=True), dict):
            raise self._unconfirmed("DELETE", path, None, "a JSON object")

    def upload_image(
        self, product_id: str, *, filename: str, content: bytes, media_type: str
    ) -> Json:
        """Upload one family image (multipart, field `image`) -> `{id, status, position, ...}`.

        Retried like an idempotent call: the store reuses an image when the very same file is
        uploaded to the same product again (lightspeed-xseries.md §7).
        """
        path = f"/api/2.0/products/{product_id}/actions/image_upload"
        files = {"image": (filename, content, media_type)}
        data = _data(self._request("POST", path, files=files, safe=True))
        if not isinstance(data, dict) or not _is_id(data.get("id")):
            raise self._unconfirmed("POST", path, None, "the uploaded image's id")
        return data

    def set_image_position(self, image_id: str, position: int) -> Json:
        body = {"position": position}
        path = f"/api/2.0/product_images/{image_id}"
        data = _data(self._request("PUT", path, json=body, safe=True))
        if not isinstance(data, dict):
            raise self._unconfirmed("PUT", path, None, "the moved image")
        return data

    def delete_image(self, image_id: str) -> None:
        # 204 without a body, as documented.
        self._request("DELETE", f"/api/2.0/product_images/{image_id}", safe=True, empty_ok=True)

    def delete_named(self, kind: str, object_id: str) -> None:
        """DELETE a brand, supplier or tag (`kind` as in FEED_PATHS); 200 with a JSON body."""
        path = f"{FEED_PATHS[kind]}/{object_id}"
        if not isinstance(self._request("DELETE", path, safe=True), dict):
            raise self._unconfirmed("DELETE", path, None, "a JSON object")

    def download(self, url: str) -> bytes:
        """The bytes of an image URL the store reported (its CDN), retried like a read.

        Sent without the token: image URLs are public and may be on another host, and the
        token must never leave for a host that is not the store's API. Not an API request,
        so it neither counts against nor waits for the rate limit.
        """
        try:
            return self._download(url)
        except ApiError as exc:
            raise self._redacted(exc) from None

    def _download(self, url: str) -> bytes:
        attempts = 0
        while True:
            attempts += 1
            request = self._http.build_request("GET", url)
            del request.headers["Authorization"]
            request.headers["Accept"] = "*/*"
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                if self._retries.may_retry(attempts):
                    self._backoff(attempts)
                    continue
                raise TransportError(
                    f"Downloading image {url} failed ({type(exc).__name__}) after {attempts} "
                    "attempts; check the network and rerun.",
                    method="GET",
                    path=url,
                ) from None
            if response.status_code >= 500 and self._retries.may_retry(attempts):
                self._backoff(attempts)
                continue
            if response.status_code >= 400:
                raise ApiError(
                    f"Downloading image {url} failed with {response.status_code}; "
                    "rerun later, or import without it.",
                    status=response.status_code,
                    method="GET",
                    path=url,
                )
            return response.content

    def _create_named(self, path: str, name: str, description: str | None) -> str:
        body: dict[str, Json] = {"name": name}
        if description is not None:
            body["description"] = description
        data = _data(self._request("POST", path, json=body, safe=False))
        new_id = data.get("id") if isinstance(data, dict) else data
        if not _is_id(new_id):
            raise self._unconfirmed("POST", path, None, "the new object's id")
        return str(new_id)

    def _update_named(self, path: str, body: Mapping[str, Json]) -> Json:
        # Each kind answers in its own published shape: `{"data": {"id"}}`, `{"id"}` or
        # `{"data": "<id>"}`; all of them name the object.
        answer = self._request("PUT", path, json=body, safe=True)
        data = _data(answer)
        found = data.get("id") if isinstance(data, dict) else data
        if found is None and isinstance(answer, dict):
            found = answer.get("id")
        if not _is_id(found):
            raise self._unconfirmed("PUT", path, None, "the updated object's id")
        return answer

    def _unconfirmed(self, method: str, path: str, status: int | None, what: str) -> Unconfirmed:
        """The store answered, but not in the documented shape: nothing counts as done."""
        return Unconfirmed(
            f"{method} {path} was not confirmed: the answer"
            + (f" ({status})" if status else "")
            + f" lacks {what}, so nothing is recorded as applied; check that {self.base_url} "
            "is the Lightspeed X-Series API itself (not a proxy or a login page), then rerun.",
            status=status,
            method=method,
            path=path,
        )

    # -- the request loop --------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Json = None,
        files: Mapping[str, Any] | None = None,
        safe: bool,
        empty_ok: bool = False,
    ) -> Json:
        """Send one API request with pacing, 429 waits and (when `safe`) retries.

        Returns the parsed JSON body. Only a 2xx answer is an answer: a redirect is never
        followed nor taken for success. An empty body is None where the endpoint documents
        none (`empty_ok`) and an ApiError everywhere else. Errors never carry the token.
        """
        try:
            return self._send(
                method, path, params=params, json=json, files=files, safe=safe, empty_ok=empty_ok
            )
        except ApiError as exc:
            raise self._redacted(exc) from None

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        json: Json,
        files: Mapping[str, Any] | None,
        safe: bool,
        empty_ok: bool,
    ) -> Json:
        shown = f"{method} {path}" + (f"?{urlencode(dict(params))}" if params else "")
        attempts = 0
        limited = 0
        while True:
            ticket = self._wait_turn()
            attempts += 1
            self._count(requests=1)
            response: httpx.Response | None = None
            if ticket is not None:
                with self._lock:
                    if self._meter is not None:
                        self._meter.sent(ticket)
            try:
                response = self._http.request(method, path, params=params, json=json, files=files)
            except httpx.TransportError as exc:
                # Never connected: retrying is safe even for a create. Sent but unanswered:
                # for a create the store may have committed it.
                if self._retries.may_resend(exc, attempts, safe=safe):
                    self._backoff(attempts)
                    continue
                raise transport_failure(
                    exc,
                    shown=shown,
                    base_url=self.base_url,
                    attempts=attempts,
                    safe=safe,
                    method=method,
                    path=path,
                ) from None
            finally:
                self._note_limits(response, ticket)
            status = response.status_code
            if status == 429:
                limited += 1
                # Every thread waits from now on; only then is the 429 counted (stats readers
                # may rely on a counted 429 being in force).
                self._block_until(self._retry_at(response, limited))
                self._count(rate_limited=1)
                if limited > self._retries.max_rate_limited:
                    raise ApiError(
                        rate_limited(shown, limited),
                        status=429,
                        body=_body(response),
                        method=method,
                        path=path,
                    )
                attempts -= 1  # a 429 was never processed: it does not use up a retry
                continue
            if status >= 500:
                if self._retries.may_retry(attempts, safe=safe):
                    self._backoff(attempts)
                    continue
                cls = ApiError if safe else TransportError
                tail = gave_up(attempts, safe=safe)
                raise cls(
                    f"{shown} failed with {status} {_store_message(response)}; {tail}",
                    status=status,
                    body=_body(response),
                    method=method,
                    path=path,
                )
            if status >= 400:
                raise ApiError(
                    f"{shown} was rejected with {status}: {_store_message(response)}"
                    + _hint(status),
                    status=status,
                    body=_body(response),
                    method=method,
                    path=path,
                )
            if not 200 <= status < 300:
                where = response.headers.get("Location")
                raise Unconfirmed(
                    f"{shown} was answered with {status}"
                    + (f" (a redirect to {where})" if where else "")
                    + " instead of the API's own answer, so nothing counts as done; point "
                    "LIGHTSPEED_BASE_URL or LIGHTSPEED_STORE at the API itself and rerun.",
                    status=status,
                    method=method,
                    path=path,
                )
            if not response.content:
                if empty_ok:
                    return None
                raise self._unconfirmed(method, path, status, "the body the API documents")
            try:
                return response.json()
            except ValueError:
                raise Unconfirmed(
                    f"{shown} answered {status} with a body that is not complete JSON, so "
                    f"nothing counts as done; check that {self.base_url} is a Lightspeed "
                    "X-Series API and rerun.",
                    status=status,
                    method=method,
                    path=path,
                ) from None

    def _wait_turn(self) -> int | None:
        """Sleep until this thread may send: after any Retry-After, when the store's window
        has room (every request counted), and at the paced rate. Returns the request's ticket
        in the window meter, if there is one."""
        while True:
            with self._lock:
                now = self._clock()
                start = max(self._blocked_until, self._next_slot)
                if start <= now:
                    room = self._meter.delay() if self._meter is not None else 0.0
                    if room <= 0:
                        self._reserve_slot(now)
                        return self._meter.start() if self._meter is not None else None
                    start = now + room
                delay = start - now
            self._nap(delay)

    def _reserve_slot(self, now: float) -> None:
        # Called under the lock. Near the end of the window, space requests at the sustained
        # rate (window / limit) so the store's budget lasts instead of ending in 429s.
        if self._pacing():
            self._next_slot = now + self._pace_interval()
        else:
            self._next_slot = now

    def _pace_interval(self) -> float:
        # The sustained rate; capped because pacing only smooths (429 waits are the backstop)
        # and a store with an odd limit must not make every request wait minutes.
        limit = self._stats.rate_limit or DEFAULT_RATE_LIMIT
        return min(MAX_PACE_SECONDS, self._rate_window / limit)

    def _pacing(self) -> bool:
        # Called under the lock: is the store's window nearly spent?
        limit, remaining = self._stats.rate_limit, self._stats.rate_remaining
        return bool(
            self.pace_by_remaining
            and limit
            and remaining is not None
            and remaining < max(1, limit * self._pace_below)
        )

    def _nap(self, seconds: float) -> None:
        self._count(waits=1, waited_seconds=seconds)
        self._sleep(seconds)

    def _backoff(self, attempt: int) -> None:
        self._count(retries=1)
        self._nap(self._retries.backoff(attempt))

    def _block_until(self, when: float) -> None:
        with self._lock:
            self._blocked_until = max(self._blocked_until, when)

    def _retry_at(self, response: httpx.Response, limited: int) -> float:
        """When a 429 lets us try again: the Retry-After date (or seconds), else a backoff."""
        now = self._clock()
        header = response.headers.get("Retry-After")
        if header is None:
            body = _body(response)
            header = body.get("retry-after") if isinstance(body, dict) else None
        if header:
            text = str(header).strip()
            if text.isdigit():
                return now + min(int(text), 2 * DEFAULT_WINDOW_SECONDS)
            try:
                when = float(parsedate_to_datetime(text).timestamp())
            except (TypeError, ValueError, IndexError):
                pass
            else:
                # Never trust a date absurdly far away; never busy-loop on one in the past.
                return min(max(when, now + 0.05), now + 2 * DEFAULT_WINDOW_SECONDS)
        return now + self._retries.fallback(limited)

    def _note_limits(self, response: httpx.Response | None, ticket: int | None) -> None:
        """After every request, answered or not: free its place in flight, and learn the
        store's limit and what is left of its window."""
        limit = _int_header(response, "X-RateLimit-Limit") if response is not None else None
        remaining = _int_header(response, "X-RateLimit-Remaining") if response is not None else None
        with self._lock:
            if self._meter is not None:
                self._meter.end(remaining, ticket)
            elif limit is not None:
                # The first answer that tells the limit: from now on every request is metered,
                # this one already among those the store counted.
                self._meter = RateWindow(limit, self._rate_window, clock=self._clock)
                self._meter.end(remaining, self._meter.start())
            if limit is None and remaining is None:
                return
            self._stats = _replace(
                self._stats,
                rate_limit=limit if limit is not None else self._stats.rate_limit,
                rate_remaining=remaining,
            )
            if self._pacing():
                # The very next request already waits its turn, not only the one after it.
                self._next_slot = max(self._next_slot, self._clock() + self._pace_interval())


def _replace(stats: ClientStats, **values: Any) -> ClientStats:
    return ClientStats(**{**stats.__dict__, **values})


def _data(answer: Json) -> Json:
    """The `data` of a `{"data": ...}` envelope, or None for any other shape."""
    return answer.get("data") if isinstance(answer, dict) else None


def _is_id(value: object) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool) and str(value) != ""


def _int_header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _body(response: httpx.Response) -> Json:
    try:
        return response.json()
    except ValueError:
        return None


def _store_message(response: httpx.Response) -> str:
    """The store's own words for an error: `message`, else `error`, else the reason phrase."""
    body = _body(response)
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("error", "message") if body.get(k)]
        fields = body.get("fields")
        if isinstance(fields, dict) and fields:
            parts.append("; ".join(f"{k}: {v}" for k, v in sorted(fields.items())))
        if parts:
            return " - ".join(dict.fromkeys(parts))
    return response.reason_phrase or "no message"


def _hint(status: int) -> str:
    if status == 401:
        return " (check LIGHTSPEED_TOKEN: it is missing, wrong or expired)."
    if status == 403:
        return " (the token lacks a scope such as products:write; issue one that has it)."
    return "."
