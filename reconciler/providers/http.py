"""The HTTP retry policy every provider's client shares (issue 13): which failures may be
retried, capped exponential backoff with full jitter, the wait after a 429 that named none,
and the one-sentence messages for giving up. Each client keeps its own pacing and its own
reading of `Retry-After` (seconds on R-Series, a date or seconds on X-Series). It imports no
provider."""

from __future__ import annotations

import random
import threading

import httpx

from reconciler.errors import TransportError

# Failures before the request reached the store: retrying is safe even for a create.
CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
OUTCOME_UNKNOWN = "the outcome is unknown: look the object up before sending it again."


class Retries:
    """How often a client tries one request and how long it waits between tries."""

    def __init__(
        self,
        *,
        max_attempts: int,
        max_rate_limited: int,
        backoff_base: float,
        backoff_cap: float,
        rng: random.Random | None,
    ) -> None:
        self.max_attempts = max(1, max_attempts)
        self.max_rate_limited = max_rate_limited
        self._base = backoff_base
        self._cap = backoff_cap
        self._rng = rng or random.Random()
        self._lock = threading.Lock()

    def may_retry(self, attempts: int, *, safe: bool = True) -> bool:
        """After `attempts` tries, may a request that is safe (or not) to repeat go again?"""
        return safe and attempts < self.max_attempts

    def may_resend(self, exc: httpx.TransportError, attempts: int, *, safe: bool) -> bool:
        """After a try that got no answer: one that never reached the store may always go
        again; one that was sent only when repeating it is safe."""
        return self.may_retry(attempts, safe=safe or isinstance(exc, CONNECT_ERRORS))

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed try number `attempt`."""
        ceiling = min(self._cap, self._base * 2.0 ** (attempt - 1))
        with self._lock:
            return self._rng.uniform(0, ceiling)  # full jitter: threads do not retry in step

    def fallback(self, limited: int) -> float:
        """Seconds to wait after the `limited`-th 429 in a row that named no wait."""
        return min(self._cap, self._base * 2.0**limited)


def connect_failure(shown: str, base_url: str, attempts: int, exc: Exception) -> str:
    return (
        f"{shown} failed: could not connect to {base_url} after {attempts} attempts "
        f"({type(exc).__name__}); check the store address and the network, then rerun."
    )


def gave_up(attempts: int, *, safe: bool) -> str:
    """How a message about a failed request ends: retried in vain, or outcome unknown."""
    return f"gave up after {attempts} attempts; rerun later." if safe else OUTCOME_UNKNOWN


def no_answer(shown: str, attempts: int, exc: Exception, *, safe: bool) -> str:
    return f"{shown} got no answer ({type(exc).__name__}); " + gave_up(attempts, safe=safe)


def rate_limited(shown: str, limited: int) -> str:
    return (
        f"{shown} was refused by the store's rate limit {limited} times in a row; wait a few "
        "minutes and rerun."
    )


def transport_failure(
    exc: httpx.TransportError,
    *,
    shown: str,
    base_url: str,
    attempts: int,
    safe: bool,
    method: str,
    path: str,
) -> TransportError:
    """The error for a request given up without an answer: never connected, or sent and
    unanswered (then, for a create, the store may have committed it)."""
    if isinstance(exc, CONNECT_ERRORS):
        text = connect_failure(shown, base_url, attempts, exc)
    else:
        text = no_answer(shown, attempts, exc, safe=safe)
    return TransportError(text, method=method, path=path)
