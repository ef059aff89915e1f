"""The apply lock: one holder at a time, stale holders taken over, never a manual unlock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from reconciler.errors import LockHeld
from reconciler.state import State
from reconciler.state.lock import ApplyLock, Holder, lock_events

ME = Holder(owner="alice", host="laptop-a", pid=os.getpid())


def test_second_holder_refused_with_who_and_since(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    first = ApplyLock(state, "store", holder=ME).acquire()
    other = ApplyLock(state, "store", holder=Holder("bob", "laptop-b", 4242))
    with pytest.raises(LockHeld) as raised:
        other.acquire()
    message = str(raised.value)
    assert "held by alice on host laptop-a" in message
    assert f"(pid {os.getpid()}) since {first.acquired_at}" in message
    assert "it expires at" in message
    first.release()
    other.acquire()  # free again
    other.release()
    assert [e["event"] for e in lock_events(state)] == ["release", "acquire", "release", "acquire"]


def test_expired_lock_is_taken_over_and_recorded(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    # A holder on another host that stopped renewing (its runner died) with a short expiry.
    gone = ApplyLock(state, "store", holder=Holder("ci", "runner-9", 1), ttl=1.0, renew_every=60)
    gone.acquire()
    with pytest.raises(LockHeld):
        ApplyLock(state, "store", holder=ME).acquire()
    time.sleep(1.05)
    taker = ApplyLock(state, "store", holder=ME).acquire()
    assert taker.took_over is not None and taker.took_over.host == "runner-9"
    takeover = lock_events(state)[1]
    assert takeover["event"] == "takeover"
    assert "runner-9" in str(takeover["detail"]) and "expiry" in str(takeover["detail"])
    # The old holder finds out at its next renewal and must stop writing.
    assert gone.renew() is False and gone.lost
    gone.release()  # does not free someone else's lock
    assert taker.info() is not None and taker.info().owner == "alice"  # type: ignore[union-attr]
    taker.release()
    assert taker.info() is None


def test_lock_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = Holder("ci", os.uname().nodename, child.pid)
    ApplyLock(state, "store", holder=dead, ttl=3600).acquire()
    taker = ApplyLock(state, "store").acquire()
    assert taker.took_over is not None and taker.took_over.pid == child.pid
    taker.release()


def test_renewal_keeps_a_live_holder(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    with ApplyLock(state, "store", holder=ME, ttl=0.4, renew_every=0.05) as lock:
        time.sleep(0.8)  # twice the ttl: only renewal keeps it held
        with pytest.raises(LockHeld):
            ApplyLock(state, "store", holder=Holder("bob", "laptop-b", 7)).acquire()
        assert lock.held
    assert ApplyLock(state, "store").info() is None


def test_locks_are_per_store(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    with ApplyLock(state, "store-a", holder=ME), ApplyLock(state, "store-b", holder=ME):
        pass


HOLD = textwrap.dedent(
    """
    import sys, time
    from reconciler.errors import LockHeld
    from reconciler.state import State
    from reconciler.state.lock import ApplyLock
    state = State(sys.argv[1])
    try:
        lock = ApplyLock(state, "store", ttl=30).acquire()
    except LockHeld as exc:
        print("refused", exc, flush=True)
        sys.exit(1)
    print("acquired", flush=True)
    time.sleep(float(sys.argv[2]))
    lock.release()
    print("released", flush=True)
    """
)


def _holder(path: Path, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_racing_never_both_hold(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    State(path).close()  # migrate once, so the racers only race for the lock
    racers = [_holder(path, 3.0) for _ in range(4)]
    outputs = [p.communicate(timeout=30) for p in racers]
    acquired = [out for out, _ in outputs if out.startswith("acquired")]
    refused = [out for out, _ in outputs if out.startswith("refused")]
    assert len(acquired) == 1, outputs
    assert len(refused) == 3, outputs
    assert all("lock is held by" in out for out in refused)


def test_sigkilled_holder_is_taken_over_without_unlock(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    State(path).close()
    victim = _holder(path, 60)
    assert victim.stdout is not None
    assert victim.stdout.readline().startswith("acquired")
    victim.kill()
    victim.wait(timeout=10)
    follower = _holder(path, 0)
    out, err = follower.communicate(timeout=30)
    assert out.splitlines() == ["acquired", "released"], err
    events = lock_events(State(path))
    assert any(e["event"] == "takeover" and e["pid"] != victim.pid for e in events)


def test_renewal_during_a_ledger_transaction_never_locks_the_file(tmp_path: Path) -> None:
    """The crash of issue 18: a ledger transaction reads, the renewal thread commits on its own
    connection, then the transaction writes. A deferred transaction fails at once there
    ("database is locked": its snapshot is stale); one that took the write lock up front makes
    the renewal wait for it instead."""
    from reconciler.state.ledger import Ledger

    state = State(tmp_path / "state.db")
    ledger = Ledger(state)
    intent = ledger.begin_intent(run_id=None, kind="product", key="tee", payload_digest="d")
    lock = ApplyLock(state, "store", holder=ME, renew_every=3600).acquire()
    renewed: list[bool] = []
    with ledger.transaction():
        assert [i.id for i in ledger.pending_intents()] == [intent]  # a read first
        renewal = threading.Thread(target=lambda: renewed.append(lock.renew()))
        renewal.start()
        renewal.join(timeout=0.5)  # the renewal commits now (deferred) or waits (immediate)
        ledger.finish_intent(intent, outcome="done", remote_id="r1")
    renewal.join(timeout=10)
    assert renewed == [True]
    assert not ledger.pending_intents()
    lock.release()
