"""X-Series pacing on apply's side: how many steps run at once under the store's rate-limit
window, and the window itself (`RateWindow`), which the client meters every request by."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from reconciler.plan import Estimate


def default_parallelism(estimate: Estimate) -> int:
    """Enough threads to spend a window's budget well within the window.

    A write takes roughly 0.15-0.5 s; with `limit / window` requests allowed per second, about
    that many in flight keep the pipe full, and the client's window meter stops them at the limit.
    Bounded to 4..16: fewer wastes a small window, more only crowds the store.
    """
    per_second = estimate.rate_limit / max(estimate.window_seconds, 1.0)
    return max(4, min(16, math.ceil(per_second)))


class RateWindow:
    """At most `limit` requests in any `window` seconds, the way X-Series counts them: every
    request, reads and look-ups as much as writes.

    A request holds a slot from its start until `window` seconds after its answer: the store
    counted it somewhere in between, so a slot is never reused too early. Each answer's
    `X-RateLimit-Remaining` corrects the count: requests the store holds that this meter did
    not see (another app, a run before this one) become `foreign`, and requests of ours the
    store no longer holds (it let them go first) are let go. Not thread-safe by itself: the
    client calls it under its lock.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        foreign: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = max(1, limit)
        self.window = window
        self.clock = clock
        self.foreign = max(0, foreign)
        self.in_flight: dict[int, float] = {}  # ticket -> start time
        self.finished: deque[tuple[float, float]] = deque()  # (start, answer), oldest first
        self._tickets = 0

    def _expire(self, now: float) -> None:
        while self.finished and self.finished[0][1] <= now - self.window:
            self.finished.popleft()

    def delay(self) -> float:
        """Seconds until one more request may start (0: now)."""
        now = self.clock()
        self._expire(now)
        excess = len(self.in_flight) + len(self.finished) + self.foreign - self.limit
        if excess < 0:
            return 0.0
        if excess >= len(self.finished):  # nothing of ours expires soon: wait for answers
            return _TICK
        return max(_TICK, self.finished[excess][1] + self.window - now)

    def start(self) -> int:
        """A request is about to be sent; returns its ticket for `sent` and `end`."""
        self._tickets += 1
        self.in_flight[self._tickets] = self.clock()
        return self._tickets

    def sent(self, ticket: int) -> None:
        """The request goes out now: its place in the order the store sees them."""
        if ticket in self.in_flight:
            self.in_flight[ticket] = self.clock()

    def end(self, remaining: int | None, ticket: int | None = None) -> None:
        """A request was answered (or failed); `remaining` is what its answer said is left.

        Only what the answer surely reflects is compared with it, so the count is never
        corrected below the store's (which would draw a 429); it may stay above it by the
        requests in flight, until the next answer.
        """
        now = self.clock()
        if ticket is not None:
            started = self.in_flight.pop(ticket, now)
        else:
            # A caller that does not track tickets: one of those in flight ended, and its
            # answer is taken to count all of them.
            if self.in_flight:
                self.in_flight.pop(next(iter(self.in_flight)))
            started = now
        self._expire(now)
        if remaining is not None:
            counted = self.limit - remaining  # what the store's window held at this request
            # Ours it surely counted: this one, and those answered before this one was sent
            # (one sent earlier but still unanswered may have reached the store after it).
            sure = 1 + sum(1 for _, answered in self.finished if answered <= started)
            surplus = sure - counted
            while surplus > 0 and self.finished and self.finished[0][1] <= started:
                # The store already let some of ours go (its window began earlier than ours):
                # the oldest. Whichever leaves the store first, ours never drops below its count.
                self.finished.popleft()
                surplus -= 1
            # Whatever else it holds is someone else's. Ours sent before this one reached the
            # store before it too (requests are stamped as they go out), so they are not
            # taken for someone else's: counting them twice would waste a slot each.
            earlier = 1 + sum(1 for t in self.in_flight.values() if t <= started)
            earlier += sum(1 for sent, _ in self.finished if sent <= started)
            self.foreign = max(0, counted - earlier)
        self.finished.append((started, now))


_TICK = 0.01
