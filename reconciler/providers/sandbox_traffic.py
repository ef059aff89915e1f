"""The traffic bookkeeping every platform's sandbox shares: fault rates, the verdict for one
request, request counts and the seeded fault draws. Each provider's `Traffic` subclasses
`SandboxTraffic` and keeps only its own rate-limit model, auth answer and error bodies.

Every decision is made under one lock from one seeded random generator, so a given seed and
request order always produce the same faults. It imports no provider."""

from __future__ import annotations

import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, TypeVar


@dataclass(frozen=True)
class FaultRates:
    """Injected misbehaviour. Rates are probabilities per request in [0, 1]."""

    fault_rate: float = 0.0
    timeout_rate: float = 0.0
    burst_429_rate: float = 0.0
    burst_seconds: float = 1.0
    latency_ms: int = 0

    def __post_init__(self) -> None:
        for name in ("fault_rate", "timeout_rate", "burst_429_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        if self.latency_ms < 0 or self.burst_seconds <= 0:
            raise ValueError("latency_ms must be >= 0 and burst_seconds > 0")

    def rates_json(self) -> dict[str, Any]:
        return {
            "fault_rate": self.fault_rate,
            "timeout_rate": self.timeout_rate,
            "burst_429_rate": self.burst_429_rate,
            "burst_seconds": self.burst_seconds,
            "latency_ms": self.latency_ms,
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
class Counts:
    total: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    by_route: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    faults_injected: int = 0

    def add(self, method: str, route: str) -> None:
        self.total += 1
        self.by_method[method] = self.by_method.get(method, 0) + 1
        key = f"{method} {route}"
        self.by_route[key] = self.by_route.get(key, 0) + 1

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": {
                "total": self.total,
                "by_method": dict(sorted(self.by_method.items())),
                "by_route": dict(sorted(self.by_route.items())),
            },
            "rate_limited": self.rate_limited,
            "faults_injected": self.faults_injected,
        }


E = TypeVar("E")
F = TypeVar("F", bound=FaultRates)
C = TypeVar("C", bound=Counts)


@dataclass(frozen=True)
class Injection(Generic[E]):
    """What the fault draws decided for one request that passed auth and the rate limit."""

    burst_until: float | None = None  # set: answer 429 until then
    error: E | None = None  # set: answer this injected server error
    timeout: bool = False  # a write's response is dropped


class SandboxTraffic(ABC, Generic[F, C]):
    """One per store. Subclasses name the `Faults` field holding their rate limit
    (`LIMIT_FIELD`) and forget that limit's state in `_restart_limit`."""

    LIMIT_FIELD: ClassVar[str]

    def __init__(
        self, faults: F, *, seed: int | None, clock: Callable[[], float], counts: Callable[[], C]
    ) -> None:
        self._lock = threading.Lock()
        self._faults = faults
        self._seed = seed
        self._rng = random.Random(seed)
        self._clock = clock
        self._new_counts = counts
        self._burst_until = 0.0
        self._counts = counts()

    @abstractmethod
    def _restart_limit(self) -> None:
        """Start the provider's own rate-limit model afresh (a window or a bucket)."""

    @property
    def faults(self) -> F:
        return self._faults

    def set_faults(self, **changes: Any) -> F:
        with self._lock:
            self._faults = replace(self._faults, **changes)
            if self.LIMIT_FIELD in changes:
                self._restart_limit()
            return self._faults

    def reset(self) -> None:
        """Forget the rate limit's state, any burst and the counts; restart the fault sequence."""
        with self._lock:
            self._restart_limit()
            self._burst_until = 0.0
            self._counts = self._new_counts()
            self._rng = random.Random(self._seed)

    def reset_stats(self) -> None:
        with self._lock:
            self._counts = self._new_counts()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self._counts.as_json()

    def record_dropped_response(self) -> None:
        with self._lock:
            self._counts.faults_injected += 1

    def _inject(self, now: float, errors: Sequence[E]) -> Injection[E]:
        """The fault draws for one request (under the lock), counting what they inject."""
        faults = self._faults
        # Draw every random number on every request, whatever the earlier outcome, so
        # changing one rate does not shift the sequence the other faults see.
        burst_draw, error_draw, timeout_draw = (self._rng.random() for _ in range(3))
        error = self._rng.choice(errors)
        if now < self._burst_until or burst_draw < faults.burst_429_rate:
            if now >= self._burst_until:
                self._burst_until = now + faults.burst_seconds
            self._counts.faults_injected += 1
            return Injection(burst_until=self._burst_until)
        if error_draw < faults.fault_rate:
            self._counts.faults_injected += 1
            return Injection(error=error)
        return Injection(timeout=timeout_draw < faults.timeout_rate)

    def _served(self, headers: dict[str, str], *, drop_response: bool) -> Verdict:
        """Hand the request to the store, after the configured latency."""
        return Verdict(
            headers=headers, latency=self._faults.latency_ms / 1000, drop_response=drop_response
        )


L = TypeVar("L")  # a platform's rate-limit model (X-Series: `RateLimit`, R-Series: `Bucket`)
_UNSET: Any = object()


class TrafficControl(ABC, Generic[F, L]):
    """The traffic half of a sandbox store's control surface (mirrors `/_sandbox/`): fault
    settings changed while running and read back, and the request counts. A store holds its
    `traffic` and says how its rate limit is read from text (`_limit`)."""

    traffic: SandboxTraffic[F, Any]

    @abstractmethod
    def _limit(self, value: L | str | None) -> L | None:
        """The rate limit a setting names (its text form parsed; None: no limit)."""

    def set_faults(
        self,
        *,
        fault_rate: float | None = None,
        timeout_rate: float | None = None,
        burst_429_rate: float | None = None,
        burst_seconds: float | None = None,
        latency_ms: int | None = None,
        rate_limit: L | str | None = _UNSET,
    ) -> F:
        """Change any fault setting while running; settings not given stay as they are."""
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("fault_rate", fault_rate),
                ("timeout_rate", timeout_rate),
                ("burst_429_rate", burst_429_rate),
                ("burst_seconds", burst_seconds),
                ("latency_ms", latency_ms),
            )
            if value is not None
        }
        if rate_limit is not _UNSET:
            changes[self.traffic.LIMIT_FIELD] = self._limit(rate_limit)
        return self.traffic.set_faults(**changes)

    @property
    def faults(self) -> F:
        return self.traffic.faults

    def stats(self) -> dict[str, Any]:
        return self.traffic.stats()

    def reset_stats(self) -> None:
        self.traffic.reset_stats()
