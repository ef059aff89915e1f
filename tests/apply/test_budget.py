"""The client's window meter: never more than the store's limit in any window, and no idle
slot."""

from __future__ import annotations

from reconciler.client import RateWindow as WriteBudget


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
