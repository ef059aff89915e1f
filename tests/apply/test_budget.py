"""The client's window meter: never more than the store's limit in any window, and no idle
slot."""

from __future__ import annotations

from reconciler.providers.xseries.pacing import RateWindow as WriteBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_window_waits_until_the_oldest_write_expires() -> None:
    clock = Clock()
    budget = WriteBudget(3, 10.0, clock=clock)
    for _ in range(3):
        assert budget.delay() == 0.0
        budget.start()
    assert budget.delay() > 0  # all three in flight: wait for answers
    clock.now += 0.2
    budget.end(None)
    clock.now += 0.1
    budget.end(None)
    budget.end(None)
    assert abs(budget.delay() - 9.9) < 1e-9  # the first finished at +0.2, 10 s window
    clock.now += 9.9
    assert budget.delay() == 0.0


def test_foreign_requests_are_counted_then_re_estimated_from_the_store() -> None:
    clock = Clock()
    budget = WriteBudget(10, 10.0, foreign=9, clock=clock)  # the refresh spent nine
    assert budget.delay() == 0.0
    budget.start()
    assert budget.delay() > 0
    budget.end(remaining=9)  # the store's window holds only our write: nothing foreign
    assert budget.foreign == 0
    assert budget.delay() == 0.0


def test_every_request_counts_and_the_store_corrects_what_it_no_longer_holds() -> None:
    clock = Clock()
    window = WriteBudget(4, 10.0, clock=clock)
    for remaining in (3, 2, 1):  # three reads, answered one by one
        window.end(remaining, window.start())
        clock.now += 0.1
    last = window.start()
    assert window.delay() > 0  # the fourth is in flight: the window is full
    # Its answer says the store holds only it (the others fell out of the store's window
    # earlier than ours, e.g. a window that restarted): those three are let go.
    window.end(3, last)
    assert window.delay() == 0.0 and window.foreign == 0 and len(window.finished) == 1
    # A request started after an answer's is not taken for someone else's.
    early = window.start()
    clock.now += 0.01
    late = window.start()
    window.end(0, early)  # the store: full, holding the last one, `early`, and two others'
    assert window.foreign == 2
    window.end(None, late)
