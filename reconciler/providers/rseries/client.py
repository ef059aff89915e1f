"""The Lightspeed R-Series client: the only R-Series module that talks to a store over HTTP.

Rules it keeps (lightspeed-rseries.md sections 1-5):

- Auth is `OAuth` (auth.py): bearer token, one refresh and one retry on 401, rotated refresh
  tokens stored atomically in their own file. The tokens never appear in a repr or a message:
  every message is scrubbed of every secret the flow knows.
- The account id is given, or discovered once from `GET /API/V3/Account.json` and cached.
- Answers are normalised as they arrive (`normalize`): every container is a list (absent or
  `""` -> [], one object -> [object]), every scalar is parsed from its string (ids and counts
  to int, money to Decimal, booleans to bool, times to datetime).
- Queries page by following `@attributes.next` verbatim until it is empty; cursors are never
  built here.
- Pacing is `BucketPacer` (pacing.py): each request's cost is reserved before sending so the
  bucket never overflows; a 429 makes every thread wait its `Retry-After`.
- 5xx answers and connection failures are retried with capped exponential backoff and full
  jitter when retrying is safe (reads, PUT, DELETE). A create or an image upload whose request
  may have reached the store raises `TransportError` ("outcome unknown") instead: nothing in
  R-Series is unique, so the caller must look the object up before sending it again.
- Every failure is one sentence naming the request and what to do.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from reconciler.errors import ApiError, ConfigError, TransportError
from reconciler.model import Json
from reconciler.providers.http import (
    Retries,
    gave_up,
    rate_limited,
    transport_failure,
)
from reconciler.providers.rseries.auth import OAuth, RefreshCredentials, TokenFile
from reconciler.providers.rseries.pacing import BucketPacer, request_cost
from reconciler.providers.rseries.target import API_BASE, TOKEN_URL

if TYPE_CHECKING:
    from reconciler.live import CatalogKeys, Live
    from reconciler.providers.base import RefreshMode, RefreshReport
    from reconciler.providers.rseries.refresh import StoreFacts
    from reconciler.state.cache import Cache

MAX_RETRY_AFTER = 600.0

# Nested containers and the key their rows sit under.
CONTAINERS: Mapping[str, str] = {
    "Prices": "ItemPrice",
    "ItemShops": "ItemShop",
    "ItemVendorNums": "ItemVendorNum",
    "ItemComponents": "ItemComponent",
    "CustomFieldValues": "CustomFieldValue",
    "Images": "Image",
    "Items": "Item",
    "Tags": "tag",
    "Addresses": "ContactAddress",
    "Phones": "ContactPhone",
    "Emails": "ContactEmail",
    "Websites": "ContactWebsite",
    "Reps": "VendorRep",
}
_INTS = frozenset(
    {
        "nodeDepth",
        "leftNode",
        "rightNode",
        "ordering",
        "size",
        "qoh",
        "backorder",
        "componentQoh",
        "componentBackorder",
        "reorderPoint",
        "reorderLevel",
        "modelYear",
        "count",
        "quantity",
    }
)
_MONEY = frozenset({"amount", "defaultCost", "avgCost"})
_BOOLS = frozenset(
    {
        "archived",
        "tax",
        "discountable",
        "serialized",
        "system",
        "updatePrice",
        "updateCost",
        "updateDescription",
        "shareSellThrough",
        "noEmail",
        "noPhone",
        "noMail",
        "isPublic",
        "canBeArchived",
    }
)
_TIMES = frozenset({"timeStamp", "createTime"})
_NOT_INTS = frozenset({"publicID"})


def _version() -> str:
    try:
        return metadata.version("lightspeed-catalog")
    except metadata.PackageNotFoundError:
        return "0"


DEFAULT_USER_AGENT = (
    f"lightspeed-catalog/{_version()} "
    f"(catalog-as-code reconciler for Lightspeed R-Series; httpx/{httpx.__version__})"
)


# -- normalisation -----------------------------------------------------------------------------


def rows(container: Json, key: str | None = None) -> list[Json]:
    """The single-vs-list quirk undone: absent, None or "" -> [], an object -> [object], an
    array -> itself. With `key`, the rows sit under `container[key]` (`{"Item": ...}`)."""
    if key is not None:
        container = container.get(key) if isinstance(container, dict) else None
    if container is None or container == "" or container == []:
        return []
    return list(container) if isinstance(container, list) else [container]


def scalar(key: str, value: str) -> Any:
    """One wire string parsed by what its field holds; unreadable values stay strings."""
    if key in _MONEY:
        try:
            return Decimal(value) if value != "" else Decimal(0)
        except InvalidOperation:
            return value
    if key in _BOOLS and value in {"true", "false"}:
        return value == "true"
    if key in _TIMES:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None if value == "" else value
    if (key in _INTS or (key.endswith("ID") and key not in _NOT_INTS)) and value.isdigit():
        return int(value)
    return value


def normalize(record: Json) -> Json:
    """A record in the client's shape: containers as lists of normalised rows (under the
    container's own name: `"Prices": [...]`), attribute values as lists, scalars parsed."""
    if not isinstance(record, dict):
        return record
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "@attributes":
            out[key] = value
        elif key in CONTAINERS:
            inner = value.get(CONTAINERS[key]) if isinstance(value, dict) else value
            out[key] = [normalize(r) if isinstance(r, dict) else r for r in rows(inner)]
        elif key.startswith("attribute") and key.endswith("Values"):
            out[key] = [str(v) for v in rows(value)]
        elif isinstance(value, dict):
            out[key] = normalize(value)
        elif isinstance(value, list):
            out[key] = [normalize(v) for v in value]
        elif isinstance(value, str):
            out[key] = scalar(key, value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class ClientStats:
    """What this client has cost so far."""

    requests: int = 0  # HTTP requests sent to the API (every attempt counts)
    retries: int = 0  # attempts repeated after a 5xx or a connection failure
    rate_limited: int = 0  # 429 answers drawn
    waits: int = 0  # times a thread slept (pacing, Retry-After, backoff)
    waited_seconds: float = 0.0
    cost: float = 0.0  # bucket units the store charged, from X-LS-API-Request-Cost


class RSeriesClient:
    """A thread-safe client for one R-Series account.

    `base_url` is the API host (`https://api.lightspeedapp.com`, or a sandbox's URL); paths
    `/API/V3/...` are appended. `transport` replaces the network (the sandbox in process);
    `sleep` and `clock` are seams for tests (`clock` is the pacer's monotonic clock).
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: OAuth,
        account_id: str | None = None,
        transport: httpx.BaseTransport | None = None,
        identity: str | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        pacer: BucketPacer | None = None,
        max_attempts: int = 5,
        max_rate_limited: int = 20,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            auth=auth,
            timeout=httpx.Timeout(timeout),
            headers={"Accept": "application/json", "User-Agent": user_agent},
            follow_redirects=False,
        )
        self._account_id = account_id
        self._identity = identity
        self._sleep = sleep
        self.pacer = pacer or BucketPacer(clock=clock)
        self._retries = Retries(
            max_attempts=max_attempts,
            max_rate_limited=max_rate_limited,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            rng=rng,
        )
        self._lock = threading.Lock()
        self._stats = ClientStats()

    def __repr__(self) -> str:  # never a token
        return f"RSeriesClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RSeriesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> ClientStats:
        with self._lock:
            return self._stats

    # -- as the provider's connection (`reconciler.providers.base.Connection`) -----------------

    platform = "rseries"

    @property
    def identity(self) -> str:
        """What the cache is bound to: the API host and account (never a token), or the
        embedded sandbox's file and birth."""
        return self._identity or f"rseries:{self.base_url}/{self.account_id()}"

    def refresh(
        self,
        cache: Cache,
        *,
        mode: RefreshMode = "auto",
        facts_ttl: float | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> RefreshReport:
        """Bring `cache` up to date through the `timeStamp` feed (`refresh.refresh`) and keep
        the bucket the store reported (size, drip rate) as the store's facts. R-Series has no
        tax-mode setting to re-read, so `facts_ttl` changes nothing."""
        from reconciler.providers.rseries.refresh import refresh, remember_bucket

        report = refresh(self, cache, mode=mode, on_progress=on_progress)
        bucket = self.pacer.stats()
        if bucket.known:
            remember_bucket(cache, size=bucket.size, drip_per_second=bucket.drip_per_second)
        return report

    def live(self, cache: Cache, /, *, keys: CatalogKeys | None = None) -> Live:
        """The cached account in the catalog's shape (no request); families keyed by `keys`
        (the catalog's and the ledger's names for them: R-Series keeps no handle)."""
        from reconciler.providers.rseries.refresh import load_live

        return load_live(cache, keys=keys)

    def families_of(
        self, cache: Cache, kind: str, ids: Collection[str], /
    ) -> Mapping[str, str] | None:
        """None: an R-Series family is keyed by what the catalog and the ledger call it
        (`CatalogKeys`), which a row alone does not say, so R-Series plans in full."""
        return None

    def live_of(self, cache: Cache, ids: Collection[str], /) -> Live | None:
        """None: R-Series plans in full (see `families_of`)."""
        return None

    def facts(self, cache: Cache, /) -> StoreFacts:
        """The bucket last reported (R-Series' published one until a store has answered)."""
        from reconciler.providers.rseries.refresh import store_facts

        return store_facts(cache)

    def rate_delay(self) -> float:
        """Seconds until the bucket has room for one more request of one unit (0: now)."""
        return self.pacer.delay(1.0)

    @contextmanager
    def metered(self) -> Iterator[None]:
        """The pacer books every request's cost before it is sent; nothing to switch."""
        yield

    def redact(self, text: str, /) -> str:
        """`text` without any secret this client knows."""
        return self._scrub(text)

    def image_url(self, image_id: str, /) -> tuple[str | None, str]:
        """An image's picture (`baseImageURL` + `publicID` + `.jpg`); R-Series stores an upload
        at once, so it is "ready" or "missing"."""
        found = self.read("Image", image_id)
        if not isinstance(found, dict) or not found.get("publicID"):
            return None, "missing"
        base = str(found.get("baseImageURL") or "")
        return f"{base}{found['publicID']}.jpg", "ready"

    def download(self, url: str, /) -> bytes:
        """An image's bytes from its CDN, sent without the token (it must never leave for a
        host that is not the API); retried like a read, outside the bucket."""
        attempts = 0
        while True:
            attempts += 1
            try:
                response = self._http.get(url, auth=None, headers={"Accept": "*/*"})
            except httpx.TransportError as exc:
                if self._retries.may_resend(exc, attempts, safe=True):
                    self._backoff(attempts)
                    continue
                raise ApiError(
                    self._scrub(f"Downloading the image {url} failed ({exc}); rerun later."),
                    method="GET",
                    path=url,
                ) from None
            if response.status_code >= 500 and self._retries.may_retry(attempts, safe=True):
                self._backoff(attempts)
                continue
            if response.status_code != 200:
                raise ApiError(
                    self._scrub(
                        f"Downloading the image {url} failed with {response.status_code}; "
                        "check that the image still exists in the store."
                    ),
                    status=response.status_code,
                    method="GET",
                    path=url,
                )
            return response.content

    def _count(self, **deltas: float) -> None:
        with self._lock:
            values = {k: getattr(self._stats, k) + v for k, v in deltas.items()}
            self._stats = replace(self._stats, **values)

    # -- account -----------------------------------------------------------------------------

    def account_id(self) -> str:
        """The account id: as given, else discovered once from `Account.json`."""
        with self._lock:
            known = self._account_id
        if known:
            return known
        body = self._request("GET", "/API/V3/Account.json", safe=True)
        accounts = rows(body, "Account")
        ids = [str(a.get("accountID")) for a in accounts if isinstance(a, dict)]
        if len(ids) != 1:
            raise ConfigError(
                f"The R-Series token reaches {len(ids)} accounts"
                + (f" ({', '.join(ids)})" if ids else "")
                + ": set LIGHTSPEED_ACCOUNT_ID to the one to manage."
            )
        with self._lock:
            self._account_id = ids[0]
        return ids[0]

    def path(self, resource: str, id: str | int | None = None, *tail: str) -> str:
        parts = [f"/API/V3/Account/{self.account_id()}/{resource}"]
        if id is not None:
            parts.append(str(id))
        parts += tail
        return "/".join(parts) + ".json"

    # -- reads -------------------------------------------------------------------------------

    def read(
        self, resource: str, id: str | int, *, load_relations: list[str] | None = None
    ) -> Json:
        """One record by id (archived ones too), normalised; None if there is none."""
        params = {"load_relations": json.dumps(load_relations)} if load_relations else None
        try:
            body = self._request("GET", self.path(resource, id), params=params, safe=True)
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        found = rows(body, resource)
        return normalize(found[0]) if found else None

    def iter_query(
        self,
        resource: str,
        params: Mapping[str, str] | None = None,
        *,
        load_relations: list[str] | None = None,
    ) -> Iterator[Json]:
        """Every matching record, normalised, page after page by following `next`."""
        query = dict(params or {})
        if load_relations:
            query["load_relations"] = json.dumps(load_relations)
        url = self.path(resource)
        body = self._request("GET", url, params=query, safe=True)
        seen: set[str] = set()
        while True:
            for record in rows(body, resource):
                yield normalize(record)
            attributes = body.get("@attributes") if isinstance(body, dict) else None
            following = str((attributes or {}).get("next") or "")
            if not following:
                return
            if following in seen:
                raise ApiError(
                    f"GET {url} paged back to a page it had already read ({following}); "
                    "the store's paging is broken: rerun later.",
                    method="GET",
                    path=url,
                )
            seen.add(following)
            body = self._request("GET", following, safe=True)

    def query(
        self,
        resource: str,
        params: Mapping[str, str] | None = None,
        *,
        load_relations: list[str] | None = None,
    ) -> list[Json]:
        return list(self.iter_query(resource, params, load_relations=load_relations))

    def count(self, resource: str, params: Mapping[str, str] | None = None) -> int:
        """`count=1`: how many records match (costs 10 units)."""
        body = self._request(
            "GET", self.path(resource), params={**(params or {}), "count": "1"}, safe=True
        )
        attributes = body.get("@attributes") if isinstance(body, dict) else None
        return int(str((attributes or {}).get("count") or "0"))

    # -- writes ------------------------------------------------------------------------------

    def create(self, resource: str, body: Mapping[str, Json]) -> Json:
        """POST the bare entity; the created record, normalised. Not retried when the outcome
        is unknown: raises TransportError, so the caller looks it up first."""
        answer = self._request("POST", self.path(resource), json=dict(body), safe=False)
        return _one(answer, resource)

    def update(self, resource: str, id: str | int, body: Mapping[str, Json]) -> Json:
        """PUT merges (omitted fields kept); idempotent, so retried."""
        answer = self._request("PUT", self.path(resource, id), json=dict(body), safe=True)
        return _one(answer, resource)

    def delete(self, resource: str, id: str | int) -> Json:
        """DELETE: archives an Item (zeroing its stock), ItemMatrix or Vendor; removes a
        Category, Tag or Image. Retried: doing it twice is doing it once."""
        answer = self._request("DELETE", self.path(resource, id), safe=True)
        return _one(answer, resource)

    def upload_image(
        self,
        owner: str,
        owner_id: str | int,
        *,
        filename: str,
        content: bytes,
        media_type: str,
        description: str = "",
        ordering: int = 0,
    ) -> Json:
        """Multipart upload to `Item/{id}/Image.json` or `ItemMatrix/{id}/Image.json`. The
        store does not de-duplicate: an unknown outcome raises TransportError."""
        answer = self._request(
            "POST",
            self.path(owner, owner_id, "Image"),
            data={"data": json.dumps({"description": description, "ordering": ordering})},
            files={"image": (filename, content, media_type)},
            safe=False,
        )
        return _one(answer, "Image")

    # -- the request loop --------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in self._auth.secrets():
            text = text.replace(secret, "***")
        return text

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Json = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, Any] | None = None,
        safe: bool,
    ) -> Json:
        shown = self._scrub(f"{method} {path}" + (f"?{urlencode(dict(params))}" if params else ""))
        split = urlsplit(path)
        cost = request_cost(
            method, split.path, {**dict(parse_qsl(split.query)), **(params or {})}, json
        )
        attempts = 0
        limited = 0
        while True:
            ticket = self.pacer.acquire(cost, self._nap)
            attempts += 1
            self._count(requests=1)
            try:
                response = self._http.request(
                    method, path, params=params, json=json, data=data, files=files
                )
            except httpx.TransportError as exc:
                self.pacer.cancel(ticket)
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
            self.pacer.observe(
                ticket,
                level_header=response.headers.get("X-LS-API-Bucket-Level"),
                drip_header=response.headers.get("X-LS-API-Drip-Rate"),
            )
            charged = _float(response.headers.get("X-LS-API-Request-Cost"))
            if charged:
                self._count(cost=charged)
            status = response.status_code
            if status == 429:
                limited += 1
                self.pacer.refused(self._retry_after(response, limited))
                self._count(rate_limited=1)
                if limited > self._retries.max_rate_limited:
                    raise ApiError(
                        rate_limited(shown, limited),
                        status=429,
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
                    self._scrub(f"{shown} failed with {status} {_message(response)}; {tail}"),
                    status=status,
                    method=method,
                    path=path,
                )
            if status >= 400:
                raise ApiError(
                    self._scrub(
                        f"{shown} was rejected with {status}: {_message(response)}"
                        + _hint(status, refreshed=self._auth.refreshes > 0)
                    ),
                    status=status,
                    body=_body(response),
                    method=method,
                    path=path,
                )
            body = _body(response)
            if body is None:
                raise ApiError(
                    f"{shown} answered {status} with a body that is not JSON; is "
                    f"{self.base_url} a Lightspeed R-Series API?",
                    status=status,
                    method=method,
                    path=path,
                )
            return body

    def _nap(self, seconds: float) -> None:
        self._count(waits=1, waited_seconds=seconds)
        self._sleep(seconds)

    def _backoff(self, attempt: int) -> None:
        self._count(retries=1)
        self._nap(self._retries.backoff(attempt))

    def _retry_after(self, response: httpx.Response, limited: int) -> float:
        """Seconds a 429 asks for (`Retry-After` is in seconds here), else a backoff."""
        seconds = _float(response.headers.get("Retry-After"))
        if seconds is not None and seconds >= 0:
            return min(seconds, MAX_RETRY_AFTER)
        return self._retries.fallback(limited)


def _one(answer: Json, resource: str) -> Json:
    found = rows(answer, resource)
    return normalize(found[0]) if found else None


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _body(response: httpx.Response) -> Json:
    # Errors come as JSON labelled text/html (recorded): parse the text whatever its type.
    if not response.content:
        return {}
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    """The store's own words: `message` (R-Series envelope) or the OAuth error's."""
    body = _body(response)
    if isinstance(body, dict):
        for key in ("message", "error_description", "hint", "error"):
            if body.get(key):
                return str(body[key]).rstrip(".") + "."
    return (response.reason_phrase or "no message") + "."


def _hint(status: int, *, refreshed: bool) -> str:
    if status == 401:
        if refreshed:
            return (
                " The access token was refused even after refreshing it: check "
                "LIGHTSPEED_CLIENT_ID, LIGHTSPEED_CLIENT_SECRET and LIGHTSPEED_REFRESH_TOKEN."
            )
        return (
            " Check LIGHTSPEED_TOKEN (missing, wrong or expired), or set the refresh "
            "credentials so it can be renewed."
        )
    if status == 403:
        return " The token lacks a scope (e.g. employee:inventory); issue one that has it."
    return ""


def client_from_environment(
    environ: Mapping[str, str],
    *,
    token_file: str | Path,
    transport: httpx.BaseTransport | None = None,
    **options: Any,
) -> RSeriesClient:
    """A client from `LIGHTSPEED_BASE_URL`, `LIGHTSPEED_TOKEN`, `LIGHTSPEED_ACCOUNT_ID` and the
    refresh trio. With a base URL (a sandbox), the token endpoint is on the same host."""
    base_url = environ.get("LIGHTSPEED_BASE_URL", "").strip().rstrip("/") or API_BASE
    token_url = TOKEN_URL if base_url == API_BASE else f"{base_url}/auth/oauth/token"
    trio = [
        environ.get(name, "").strip()
        for name in ("LIGHTSPEED_CLIENT_ID", "LIGHTSPEED_CLIENT_SECRET", "LIGHTSPEED_REFRESH_TOKEN")
    ]
    if any(trio) and not all(trio):
        raise ConfigError(
            "Set all of LIGHTSPEED_CLIENT_ID, LIGHTSPEED_CLIENT_SECRET and "
            "LIGHTSPEED_REFRESH_TOKEN to refresh R-Series tokens, or none of them."
        )
    refresh = RefreshCredentials(*trio) if all(trio) else None
    auth = OAuth(
        token_url=token_url,
        access_token=environ.get("LIGHTSPEED_TOKEN", "").strip() or None,
        refresh=refresh,
        token_file=TokenFile(token_file) if refresh is not None else None,
    )
    return RSeriesClient(
        base_url,
        auth=auth,
        account_id=environ.get("LIGHTSPEED_ACCOUNT_ID", "").strip() or None,
        transport=transport,
        **options,
    )
