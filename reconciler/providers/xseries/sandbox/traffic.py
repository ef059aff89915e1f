"""What happens to an X-Series request before the catalog sees it: counting, auth, rate
limiting and injected faults. The counting and the seeded fault draws are the sandboxes' shared
`SandboxTraffic` (providers/sandbox_traffic.py); this module adds X-Series' sliding-window rate
limit, its 401 and its error bodies.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from reconciler.providers.sandbox_traffic import Counts, FaultRates, SandboxTraffic, Verdict

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
class Faults(FaultRates):
    """Injected misbehaviour (`FaultRates`) and X-Series' sliding-window rate limit."""

    rate_limit: RateLimit | None = None

    def as_json(self) -> dict[str, Any]:
        limit = self.rate_limit
        return {
            **self.rates_json(),
            "rate_limit": None
            if limit is None
            else {"requests": limit.requests, "seconds": limit.seconds},
        }


class Traffic(SandboxTraffic[Faults, Counts]):
    LIMIT_FIELD = "rate_limit"

    def __init__(
        self,
        faults: Faults,
        *,
        seed: int | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._window: deque[float] = deque()
        super().__init__(faults, seed=seed, clock=clock, counts=Counts)

    def _restart_limit(self) -> None:
        self._window.clear()

    def admit(self, *, method: str, route: str, authorized: bool) -> Verdict:
        """Count the request and decide its fate, in the order a real edge would."""
        with self._lock:
            counts = self._counts
            counts.add(method, route)
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
            injection = self._inject(now, _SERVER_ERRORS)
            if injection.burst_until is not None:
                return _too_many(injection.burst_until, headers)
            if injection.error is not None:
                status, title, message = injection.error
                return Verdict(status, {"error": title, "message": message}, headers)
            return self._served(
                headers, drop_response=method in WRITE_METHODS and injection.timeout
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
