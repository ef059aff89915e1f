"""What happens to an R-Series request before the store sees it: counting, OAuth bearer checks,
the leaky bucket, and injected faults (lightspeed-rseries.md sections 2 and 5).

One `Traffic` per store; the counting and the seeded fault draws are the sandboxes' shared
`SandboxTraffic` (providers/sandbox_traffic.py), this module adds the bucket. The OAuth token
endpoint's bookkeeping (`Tokens`) lives here too: which access tokens are valid and which
refresh tokens a rotation has not yet retired.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.providers.sandbox_traffic import Counts, FaultRates, SandboxTraffic, Verdict

WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})
_SERVER_ERRORS = (
    (500, "Internal Server Error"),
    (502, "Bad Gateway"),
    (503, "Service Unavailable"),
)


def error_body(status: int, http_message: str, message: str, error_class: str) -> dict[str, str]:
    """The R-Series error envelope: every value a string, as recorded."""
    return {
        "httpCode": str(status),
        "httpMessage": http_message,
        "message": message,
        "errorClass": error_class,
    }


@dataclass(frozen=True)
class Bucket:
    """A leaky bucket: `size` units, draining `drip_per_second` units a second."""

    size: float
    drip_per_second: float

    def __post_init__(self) -> None:
        if self.size <= 0 or self.drip_per_second <= 0:
            raise ValueError("a bucket needs a positive size and a positive drip rate")

    @classmethod
    def rseries(cls, registers: int = 1) -> Bucket:
        """R-Series' published bucket: 90 (+10 per extra register), 1/s (+0.5 per register)."""
        extra = max(registers, 1) - 1
        return cls(90.0 + 10.0 * extra, 1.0 + 0.5 * extra)

    @classmethod
    def parse(cls, text: str, *, registers: int = 1) -> Bucket | None:
        """`rseries`, `off`, or `SIZE/DRIPS_PER_SECOND` (e.g. `90/1`); `off` gives None."""
        spec = text.strip().lower()
        if spec == "off":
            return None
        if spec == "rseries":
            return cls.rseries(registers)
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)", spec)
        if match is None:
            raise ValueError(
                f"rate limit must be rseries, off or SIZE/DRIPS_PER_SECOND, not {text!r}"
            )
        return cls(float(match.group(1)), float(match.group(2)))


@dataclass(frozen=True)
class Faults(FaultRates):
    """Injected misbehaviour (`FaultRates`) and R-Series' leaky bucket."""

    bucket: Bucket | None = None

    def as_json(self) -> dict[str, Any]:
        bucket = self.bucket
        return {
            **self.rates_json(),
            "rate_limit": None
            if bucket is None
            else {"size": bucket.size, "drip_per_second": bucket.drip_per_second},
        }


@dataclass
class _Counts(Counts):
    cost: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {**super().as_json(), "cost": round(self.cost, 3)}


def _number(value: float) -> str:
    """A bucket figure as the headers write it: `92.57`, `90`, `0.2`."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


class Traffic(SandboxTraffic[Faults, _Counts]):
    LIMIT_FIELD = "bucket"

    def __init__(
        self,
        faults: Faults,
        *,
        seed: int | None,
        account_id: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(faults, seed=seed, clock=clock, counts=_Counts)
        self._account_id = account_id
        self._level = 0.0
        self._level_at = clock()

    def _restart_limit(self) -> None:
        self._level, self._level_at = 0.0, self._clock()

    def count(self, *, method: str, route: str) -> None:
        """Count a request that no rule applies to (the OAuth token endpoint)."""
        with self._lock:
            self._counts.add(method, route)

    def _drained(self, now: float) -> float:
        bucket = self._faults.bucket
        if bucket is None:
            return 0.0
        return max(0.0, self._level - bucket.drip_per_second * (now - self._level_at))

    def _headers(self, level: float, cost: float) -> dict[str, str]:
        headers = {"X-LS-Acct-Id": self._account_id}
        bucket = self._faults.bucket
        if bucket is not None:
            headers["X-LS-API-Bucket-Level"] = f"{_number(level)}/{_number(bucket.size)}"
            headers["X-LS-API-Drip-Rate"] = _number(bucket.drip_per_second)
            headers["X-LS-API-Request-Cost"] = _number(cost)
        return headers

    def admit(self, *, method: str, route: str, cost: float, authorized: bool) -> Verdict:
        """Count the request and decide its fate, in the order a real edge would.

        The bucket admits a request while its level is below the size, even when the request
        takes it over (the overflowing request is served, section 5); until it drains below
        the size again every request gets 429 with `Retry-After` in whole seconds.
        """
        with self._lock:
            self._counts.add(method, route)
            faults = self._faults
            now = self._clock()
            level = self._drained(now)
            if not authorized:
                return Verdict(
                    401,
                    {
                        "error": "access_denied",
                        "error_description": "The resource owner or authorization server "
                        "denied the request.",
                        "hint": "Access token could not be verified",
                        "message": "The resource owner or authorization server denied the request.",
                    },
                    {**self._headers(level, 0.0), "WWW-Authenticate": "Bearer"},
                )
            bucket = faults.bucket
            if bucket is not None and level >= bucket.size:
                self._counts.rate_limited += 1
                wait = max(1, math.ceil((level - bucket.size) / bucket.drip_per_second + 1e-9))
                return _too_many(wait, "bucket", self._headers(level, 0.0))
            if bucket is not None:
                level += cost
                self._level, self._level_at = level, now
            self._counts.cost += cost
            headers = self._headers(level, cost)
            injection = self._inject(now, _SERVER_ERRORS)
            if injection.burst_until is not None:
                wait = max(1, math.ceil(injection.burst_until - now))
                return _too_many(wait, "burst", headers)
            if injection.error is not None:
                status, title = injection.error
                message = f"{title} (injected by the sandbox)."
                return Verdict(status, error_body(status, title, message, "Exception"), headers)
            return self._served(
                headers, drop_response=method in WRITE_METHODS and injection.timeout
            )


def _too_many(wait: int, kind: str, headers: dict[str, str]) -> Verdict:
    return Verdict(
        429,
        error_body(429, "Too Many Requests", "Rate limit exceeded.", "Exception"),
        {**headers, "Retry-After": str(wait), "X-LS-API-RateLimit-Type": kind},
    )


class Tokens:
    """OAuth 2 as the sandbox imitates it (section 2, [choice] where the docs are silent).

    The token given at start-up is valid until expired on purpose. A refresh returns a new
    access token and a new refresh token; the refresh token it was made from keeps working
    until the new access token is first used, then dies (rotation since 2026-01-15).
    """

    def __init__(
        self,
        *,
        access_token: str,
        refresh_token: str,
        client_id: str,
        client_secret: str,
        expires_in: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self._clock = clock
        self._initial = (access_token, refresh_token)
        self._access: dict[str, float] = {}
        self._refresh: set[str] = set()
        self._retires: dict[str, set[str]] = {}
        self.reset()

    @property
    def initial_refresh_token(self) -> str:
        """The refresh token the store started with (what `sandbox serve` prints)."""
        return self._initial[1]

    def reset(self) -> None:
        with self._lock:
            access, refresh = self._initial
            self._access = {access: math.inf}
            self._refresh = {refresh}
            self._retires = {}

    def check(self, authorization: str | None) -> bool:
        """Is this `Authorization` header a live bearer token? Using a fresh access token
        retires the refresh token it was made from."""
        if not authorization or not authorization.startswith("Bearer "):
            return False
        token = authorization.removeprefix("Bearer ").strip()
        with self._lock:
            expiry = self._access.get(token)
            if expiry is None or expiry <= self._clock():
                return False
            for old in self._retires.pop(token, set()):
                self._refresh.discard(old)
            return True

    def expire_access_tokens(self) -> None:
        """Every access token stops working at once (a test's way to make one expire)."""
        with self._lock:
            self._access = dict.fromkeys(self._access, -math.inf)

    def grant(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """`POST /auth/oauth/token`: the answer's status and body."""
        grant_type = form.get("grant_type", "")
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return 401, {
                "error": "invalid_client",
                "error_description": "Client authentication failed",
                "message": "Client authentication failed",
            }
        if grant_type != "refresh_token":
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "The authorization grant type is not supported by the "
                "authorization server.",
                "hint": "The sandbox issues tokens by refresh_token only.",
            }
        old = form.get("refresh_token", "")
        with self._lock:
            if old not in self._refresh:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "The refresh token is invalid.",
                    "hint": "Token has been revoked",
                    "message": "The refresh token is invalid.",
                }
            access = "sandbox-access-" + secrets.token_hex(16)
            refresh = "sandbox-refresh-" + secrets.token_hex(16)
            self._access[access] = self._clock() + self.expires_in
            self._refresh.add(refresh)
            self._retires[access] = {old}
        return 200, {
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "access_token": access,
            "refresh_token": refresh,
        }
