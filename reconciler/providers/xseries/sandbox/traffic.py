"""What happens to a request before the catalog sees it: counting, auth, rate limiting and
injected faults. One `Traffic` per store; every decision is made under one lock from one seeded
random generator, so a given seed and request order always produce the same faults.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from typing import Any

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SERVER_ERRORS = (
    (500, "Internal Server Error", "Something went wrong (injected by the sandbox)"),
    (502, "Bad Gateway", "The upstream service did not answer (injected by the sandbox)"),
    (
        503,
        "Service Unavailable",
        "The service is temporarily unavailable (injected by the sandbox)",
    ),
)


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` requests in any sliding window of `seconds` seconds."""

    requests: int
    seconds: float

    def __post_init__(self) -> None:
        if self.requests < 1 or self.seconds <= 0:
            raise ValueError(
                "a rate limit needs at least 1 request per a positive number of seconds"
            )

    @classmethod
    def xseries(cls, registers: int = 1) -> RateLimit:
        """X-Series' published limit: 300 per register plus 50, per 5 minutes."""
        return cls(300 * registers + 50, 300.0)

    @classmethod
    def parse(cls, text: str, *, registers: int = 1) -> RateLimit | None:
        """`xseries`, `off`, or `N/SECONDS` (e.g. `20/1.5`); `off` gives None."""
        spec = text.strip().lower()
        if spec == "off":
            return None
        if spec == "xseries":
            return cls.xseries(registers)
        match = re.fullmatch(r"(\d+)\s*/\s*(\d+(?:\.\d+)?)", spec)
        if match is None:
            raise ValueError(f"rate limit must be xseries, off or N/SECONDS, not {text!r}")
        return cls(int(match.group(1)), float(match.group(2)))


@dataclass(frozen=True)
class Faults:
    """Injected misbehaviour. Rates are probabilities per request in [0, 1]."""

    fault_rate: float = 0.0
    timeout_rate: float = 0.0
    burst_429_rate: float = 0.0
    burst_seconds: float = 1.0
    latency_ms: int = 0
    rate_limit: RateLimit | None = None

    def __post_init__(self) -> None:
        for name in ("fault_rate", "timeout_rate", "burst_429_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        if self.latency_ms < 0 or self.burst_seconds <= 0:
            raise ValueError("latency_ms must be >= 0 and burst_seconds > 0")

    def as_json(self) -> dict[str, Any]:
        limit = self.rate_limit
        return {
            "fault_rate": self.fault_rate,
            "timeout_rate": self.timeout_rate,
            "burst_429_rate": self.burst_429_rate,
            "burst_seconds": self.burst_seconds,
            "latency_ms": self.latency_ms,
            "rate_limit": None
            if limit is None
            else {"requests": limit.requests, "seconds": limit.seconds},
        }


@dataclass(frozen=True)
class Verdict:
    """The decision for one request. `status` None means: hand it to the store."""

    status: int | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    latency: float = 0.0
    drop_response: bool = False


@dataclass
class _Counts:
    total: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    by_route: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    faults_injected: int = 0


class Traffic:
    def __init__(
        self,
        faults: Faults,
        *,
        seed: int | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._faults = faults
        self._seed = seed
        self._rng = random.Random(seed)
        self._clock = clock
        self._window: deque[float] = deque()
        self._burst_until = 0.0
        self._counts = _Counts()

    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, **changes: Any) -> Faults:
        with self._lock:
            self._faults = replace(self._faults, **changes)
            if "rate_limit" in changes:
                self._window.clear()
            return self._faults

    def reset(self) -> None:
        """Forget the rate-limit window, any burst and the counts; restart the fault sequence."""
        with self._lock:
            self._window.clear()
            self._burst_until = 0.0
            self._counts = _Counts()
            self._rng = random.Random(self._seed)

    def reset_stats(self) -> None:
        with self._lock:
            self._counts = _Counts()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counts = self._counts
            return {
                "requests": {
                    "total": counts.total,
                    "by_method": dict(sorted(counts.by_method.items())),
                    "by_route": dict(sorted(counts.by_route.items())),
                },
                "rate_limited": counts.rate_limited,
                "faults_injected": counts.faults_injected,
            }

    def record_dropped_response(self) -> None:
        with self._lock:
            self._counts.faults_injected += 1

    def admit(self, *, method: str, route: str, authorized: bool) -> Verdict:
        """Count the request and decide its fate, in the order a real edge would."""
        with self._lock:
            counts = self._counts
            counts.total += 1
            counts.by_method[method] = counts.by_method.get(method, 0) + 1
            key = f"{method} {route}"
            counts.by_route[key] = counts.by_route.get(key, 0) + 1
            faults = self._faults
            now = self._clock()
            headers = self._limit_headers(now)
            if not authorized:
                return Verdict(
                    401,
                    {"error": "Unauthorized", "message": "Missing or invalid bearer token"},
                    headers,
                )
            limit = faults.rate_limit
            if limit is not None and len(self._window) >= limit.requests:
                counts.rate_limited += 1
                return _too_many(self._window[0] + limit.seconds, headers)
            if limit is not None:
                self._window.append(now)
                headers = self._limit_headers(now)
            # Draw every random number on every request, whatever the earlier outcome, so
            # changing one rate does not shift the sequence the other faults see.
            burst_draw, error_draw, timeout_draw = (self._rng.random() for _ in range(3))
            error = self._rng.choice(_SERVER_ERRORS)
            if now < self._burst_until or burst_draw < faults.burst_429_rate:
                if now >= self._burst_until:
                    self._burst_until = now + faults.burst_seconds
                counts.faults_injected += 1
                return _too_many(self._burst_until, headers)
            if error_draw < faults.fault_rate:
                counts.faults_injected += 1
                status, title, message = error
                return Verdict(status, {"error": title, "message": message}, headers)
            return Verdict(
                headers=headers,
                latency=faults.latency_ms / 1000,
                drop_response=method in WRITE_METHODS and timeout_draw < faults.timeout_rate,
            )

    def _limit_headers(self, now: float) -> dict[str, str]:
        limit = self._faults.rate_limit
        if limit is None:
            return {}
        while self._window and self._window[0] <= now - limit.seconds:
            self._window.popleft()
        remaining = max(limit.requests - len(self._window), 0)
        return {"X-RateLimit-Limit": str(limit.requests), "X-RateLimit-Remaining": str(remaining)}


def http_date(epoch: float) -> str:
    """RFC 1123 date. Rounded up: the header has whole seconds and must not promise too early."""
    return formatdate(math.ceil(epoch), usegmt=True)


def _too_many(retry_at: float, headers: dict[str, str]) -> Verdict:
    date = http_date(retry_at)
    return Verdict(
        429,
        {"error": "Too Many Requests", "message": "Rate limiting enforced", "retry-after": date},
        {**headers, "Retry-After": date},
    )
