"""Pacing for R-Series' leaky bucket (lightspeed-rseries.md section 5). Pure: no I/O.

`request_cost` prices a request as the docs do (since 2026-03-17): 1 per request, `POST|PUT
Category` 10, `count=1` 10, +0.1 per loaded to-one relation and +0.2 per to-many relation
(doubled on queries), +0.5 per nested entity in a body.

`BucketPacer` keeps an estimate of the bucket's level and books each request's cost before it
is sent, so the level never goes over the size: a request that would overflow waits until
enough has drained. Every answer's `X-LS-API-Bucket-Level` (used/size) and
`X-LS-API-Drip-Rate` correct the estimate; a 429 blocks every sender for its `Retry-After`.
One pacer is shared by all threads using one client.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.plan import Estimate

DEFAULT_SIZE = 90.0
DEFAULT_DRIP = 1.0
# Relations that load many rows; the rest load one (section 5 prices them differently).
TO_MANY = frozenset(
    {
        "ItemShops",
        "ItemVendorNums",
        "ItemComponents",
        "Images",
        "Items",
        "Tags",
        "TagRelations",
        "CustomFieldValues",
        "ItemPrices",
    }
)


def request_cost(method: str, path: str, params: Mapping[str, Any] | None, body: object) -> float:
    """What a request costs in bucket units. `path` ends in `/{Resource}.json` or
    `/{Resource}/{id}.json`; `body` is the JSON body (None for none)."""
    params = params or {}
    parts = path.removesuffix(".json").rstrip("/").split("/")
    single = len(parts) >= 2 and parts[-1].isdigit()
    resource = parts[-2] if single else parts[-1]
    if method in {"POST", "PUT"} and resource == "Category":
        return 10.0
    if method == "GET" and str(params.get("count", "")) == "1":
        return 10.0
    cost = 1.0
    if method == "GET":
        cost += _relations_cost(params.get("load_relations")) * (1 if single else 2)
    if method in {"POST", "PUT"}:
        cost += 0.5 * _nested_entities(body)
    return round(cost, 3)


def _relations_cost(raw: object) -> float:
    if not raw:
        return 0.0
    if raw == "all":
        # Unknown in advance; the answer's X-LS-API-Request-Cost corrects the estimate.
        return 1.0
    try:
        names = json.loads(str(raw))
    except ValueError:
        return 0.0
    if not isinstance(names, list):
        return 0.0
    return sum(0.2 if name in TO_MANY else 0.1 for name in set(map(str, names)))


def _nested_entities(body: object, depth: int = 0) -> int:
    """Objects below the top level of a body that carry a value of their own."""
    if isinstance(body, list):
        return sum(_nested_entities(v, depth) for v in body)
    if not isinstance(body, dict):
        return 0
    own = depth > 0 and any(not isinstance(v, dict | list) for v in body.values())
    return int(own) + sum(_nested_entities(v, depth + 1) for v in body.values())


def parse_level(header: str | None) -> tuple[float, float] | None:
    """`X-LS-API-Bucket-Level: 92.57/90` -> (92.57, 90.0); None if absent or unreadable."""
    if not header:
        return None
    used, sep, size = header.partition("/")
    try:
        level, capacity = float(used), float(size)
    except ValueError:
        return None
    if not sep or capacity <= 0 or level < 0:
        return None
    return level, capacity


@dataclass(frozen=True)
class PacerStats:
    waits: int = 0
    waited_seconds: float = 0.0
    level: float = 0.0
    size: float = DEFAULT_SIZE
    drip_per_second: float = DEFAULT_DRIP
    known: bool = False  # has the store reported its bucket yet?


class BucketPacer:
    """A thread-safe estimate of one (account, client) bucket.

    The estimate is the store's last reported level, drained at the drip rate since, plus the
    cost of every request not answered yet when it reported (the store may not have counted
    them: threads' requests reach it in any order); a report older than the one in use (answers
    that crossed on the way back) is not taken. A request goes out only when its cost fits
    under the size; otherwise its thread sleeps until enough has drained and looks again. Until
    the store has reported its bucket (`known`), requests go out at once: a store without the
    headers (a sandbox with the limit off) is not paced on a guess.
    """

    def __init__(
        self,
        *,
        size: float = DEFAULT_SIZE,
        drip_per_second: float = DEFAULT_DRIP,
        clock: Callable[[], float] = time.monotonic,
        margin: float = 0.05,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._size = size
        self._drip = drip_per_second
        self._margin = margin  # units kept free below the size, for rounding in the headers
        self._level = 0.0  # the estimated level at time `_at`
        self._at = clock()
        self._blocked_until = 0.0
        self._in_flight: dict[int, float] = {}  # ticket -> cost, sent and not yet answered
        self._tickets = 0
        self._reported = 0  # the newest ticket whose answer set the level
        self._known = False
        self._waits = 0
        self._waited = 0.0

    def stats(self) -> PacerStats:
        with self._lock:
            return PacerStats(
                waits=self._waits,
                waited_seconds=round(self._waited, 6),
                level=round(self._level_at(self._clock()), 6),
                size=self._size,
                drip_per_second=self._drip,
                known=self._known,
            )

    def _level_at(self, when: float) -> float:
        return max(0.0, self._level - self._drip * max(0.0, when - self._at))

    def delay(self, cost: float) -> float:
        """Seconds until a request of `cost` may go out (0: now). Books nothing."""
        with self._lock:
            return self._delay(cost, self._clock())

    def _delay(self, cost: float, now: float) -> float:
        wait = max(0.0, self._blocked_until - now)
        if not self._known:
            return wait
        level = self._level_at(now + wait)
        room = self._size - self._margin
        # The tolerance keeps float noise from asking for a wait too small for a clock to see.
        if level + cost > room + 1e-6:
            # A request bigger than the bucket waits for an empty one: it is then the
            # overflowing request the store still serves.
            wait += min(level + cost - room, level) / self._drip
        return wait

    def acquire(self, cost: float, sleep: Callable[[float], None]) -> int:
        """Wait (through `sleep`) until `cost` fits, book it, and return the request's ticket
        for `observe` or `cancel`."""
        while True:
            with self._lock:
                now = self._clock()
                wait = self._delay(cost, now)
                if wait <= 0:
                    self._level = self._level_at(now) + cost
                    self._at = now
                    self._tickets += 1
                    self._in_flight[self._tickets] = cost
                    return self._tickets
                self._waits += 1
                self._waited += wait
            sleep(wait)

    def observe(
        self,
        ticket: int,
        *,
        level_header: str | None,
        drip_header: str | None,
    ) -> None:
        """The answer to `ticket` came back: take the store's word for the level (plus what was
        sent after it and is still unanswered), the size and the drip rate."""
        with self._lock:
            self._in_flight.pop(ticket, None)
            if drip_header:
                try:
                    drip = float(drip_header)
                except ValueError:
                    drip = 0.0
                if drip > 0:
                    self._drip = drip
            parsed = parse_level(level_header)
            if parsed is None:
                return
            observed, size = parsed
            self._size = size
            self._known = True
            if ticket < self._reported:
                # Answers crossed on the way back: a later request's report is already in,
                # and this older one may lack what that one counted. Keep the fresher.
                return
            self._reported = ticket
            # Every request still unanswered may not be in this report (threads' requests
            # reach the store in any order): count them all until their own answers say.
            pending = sum(self._in_flight.values())
            self._level, self._at = observed + pending, self._clock()

    def refused(self, retry_after: float) -> None:
        """A 429: nobody sends before `retry_after` seconds from now; the bucket is full."""
        with self._lock:
            now = self._clock()
            self._blocked_until = max(self._blocked_until, now + max(retry_after, 0.0))
            self._level = max(self._level_at(now), self._size)
            self._at = now

    def cancel(self, ticket: int) -> None:
        """The request never got an answer: forget it (its cost stays in the estimate)."""
        with self._lock:
            self._in_flight.pop(ticket, None)


def bucket_estimate(requests: int, cost: float, *, size: float, window_seconds: float) -> Estimate:
    """What `requests` costing `cost` units take under a leaky bucket of `size` units that a
    full one drains in `window_seconds`: a full bucket's worth goes out at once, the rest at
    the drip rate, so (cost - size) / drip seconds when positive. Optimistic on purpose (an
    empty bucket at the start), unlike X-Series' window estimate: the bucket refills in
    `window_seconds`, a short wait before an apply."""
    drip = size / window_seconds
    cost = round(cost, 3)
    return Estimate(
        requests=requests,
        seconds=round(max(0.0, (cost - size) / drip), 1),
        rate_limit=max(1, round(size)),
        window_seconds=window_seconds,
        units=cost,
    )
