"""The ledger: managed keys merge what was applied, history answers "who set this and from what"."""

from __future__ import annotations

from pathlib import Path

from reconciler.state import State
from reconciler.state.ledger import Adoption, Ledger


def _run(ledger: Ledger, commit: str) -> int:
    return ledger.start_run(
        store="sandbox",
        plan_digest=f"plan-{commit}",
        catalog_digest="c",
        git_commit=commit,
        actor="ci",
        host="runner",
    )


def test_managed_merges_fields_and_keeps_remote_id(tmp_path: Path) -> None:
    ledger = Ledger(State(tmp_path / "state.db"))
    ledger.record_managed("variant", "TEE-S", remote_id="id-1", applied={"price": "25.00"})
    ledger.record_managed("variant", "TEE-S", remote_id=None, applied={"barcode": "123"})
    got = ledger.managed("variant")["TEE-S"]
    assert got.remote_id == "id-1"
    assert got.applied == {"price": "25.00", "barcode": "123"}
    ledger.record_managed("variant", "TEE-S", remote_id="id-2", applied={"x": 1}, replace=True)
    assert ledger.last_applied("variant", "TEE-S") == {"x": 1}
    assert ledger.last_applied("variant", "NOPE") == {}
    assert ledger.managed("product") == {}
    ledger.forget_managed("variant", "TEE-S")
    assert ledger.managed("variant") == {}


def test_history_newest_first_with_commit_and_before(tmp_path: Path) -> None:
    ledger = Ledger(State(tmp_path / "state.db"))
    first = _run(ledger, "aaa111")
    ledger.record_change(
        first,
        kind="variant",
        key="TEE-S",
        action="create",
        fields=[{"field": "price", "before": None, "after": "25.00"}],
        remote_id="id-1",
        remote_version="5",
    )
    ledger.finish_run(first, outcome="applied", counts={"create": 1})
    second = _run(ledger, "bbb222")
    ledger.record_change(
        second,
        kind="variant",
        key="TEE-S",
        action="update",
        fields=[{"field": "price", "before": "25.00", "after": "27.00"}],
        remote_id="id-1",
        remote_version="9",
    )
    ledger.record_change(second, kind="variant", key="OTHER", action="update")
    ledger.finish_run(second, outcome="applied", counts={"update": 2})

    rows = ledger.history("TEE-S")
    assert [(r.git_commit, r.fields[0]["before"], r.fields[0]["after"]) for r in rows] == [
        ("bbb222", "25.00", "27.00"),
        ("aaa111", None, "25.00"),
    ]
    assert rows[0].remote_version == "9"
    assert len(ledger.history()) == 3
    assert [r.outcome for r in ledger.runs()] == ["applied", "applied"]
    assert ledger.runs()[0].counts == {"update": 2}


def test_history_of_a_simple_product_sku_and_a_name_case_insensitively(tmp_path: Path) -> None:
    ledger = Ledger(State(tmp_path / "state.db"))
    run = _run(ledger, "ccc333")
    ledger.record_managed("product", "gift-wrap", remote_id="g", applied={"sku": "GIFT-WRAP"})
    ledger.record_change(run, kind="product", key="gift-wrap", action="update")
    ledger.record_change(run, kind="brand", key="Acme", action="create")
    assert [r.key for r in ledger.history("GIFT-WRAP")] == ["gift-wrap"]
    assert [r.key for r in ledger.history("acme")] == ["Acme"]
    assert ledger.history("gift") == []


def test_intents_pending_until_finished_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    ledger = Ledger(State(path))
    a = ledger.begin_intent(run_id=None, kind="product", key="tee", payload_digest="d1")
    b = ledger.begin_intent(run_id=None, kind="brand", key="Acme", payload_digest="d2")
    ledger.finish_intent(a, outcome="done", remote_id="id-1")
    ledger.state.close()

    reopened = Ledger(State(path))  # a crash leaves pending intents behind
    assert [(i.id, i.key) for i in reopened.pending_intents()] == [(b, "Acme")]
    reopened.resolve_intents("brand", "Acme", outcome="done", remote_id="b-1")
    assert reopened.pending_intents() == []


def test_a_transaction_commits_its_writes_together_or_not_at_all(tmp_path: Path) -> None:
    # apply closes a create's intent and records its change in one transaction: a kill between
    # the two must not leave an object that no record calls ours (neither pending nor applied).
    path = tmp_path / "state.db"
    ledger = Ledger(State(path))
    run = _run(ledger, "aaa111")
    intent = ledger.begin_intent(run_id=run, kind="brand", key="Acme", payload_digest="d")
    onlooker = Ledger(State(path))  # another process's view of the file

    with ledger.transaction():
        ledger.finish_intent(intent, outcome="done", remote_id="b-1")
        assert [i.key for i in onlooker.pending_intents()] == ["Acme"]  # not committed yet
        fields = [{"field": "name", "before": None, "after": "Acme"}]
        ledger.record_change(run, kind="brand", key="Acme", action="create", fields=fields)
        assert onlooker.applied_by_plan("plan-aaa111") == {}
    assert onlooker.pending_intents() == []
    assert onlooker.applied_by_plan("plan-aaa111") == {("brand", "Acme"): {"name": "Acme"}}

    second = ledger.begin_intent(run_id=run, kind="tag", key="sale", payload_digest="d")
    try:
        with ledger.transaction():
            ledger.finish_intent(second, outcome="done", remote_id="t-1")
            raise KeyboardInterrupt  # killed before the change row was written
    except KeyboardInterrupt:
        pass
    assert [i.key for i in onlooker.pending_intents()] == ["sale"]  # still unknown, looked up


def test_adoptions_in_one_batch_record_what_one_by_one_records_would(tmp_path: Path) -> None:
    ledger = Ledger(State(tmp_path / "state.db"))
    run = _run(ledger, "abc")
    ledger.record_managed("variant", "TEE-S", remote_id="id-1", applied={"price": "9.00"})
    before = ledger.record_change(run, kind="brand", key="Acme", action="create")
    ids = ledger.record_adoptions(
        run,
        [
            Adoption("variant", "TEE-S", None, {"sku": "TEE-S"}),
            Adoption("product", "tee", "p1", {"sku": "TEE"}),
            Adoption("image", "tee/front.png", "i1", manage=False),
        ],
    )
    assert ids == [before + 1, before + 2, before + 3]
    assert ledger.managed("variant")["TEE-S"].remote_id == "id-1"  # None keeps the known id
    assert ledger.last_applied("variant", "TEE-S") == {"sku": "TEE-S"}  # replaced, not merged
    assert ledger.managed("product")["tee"].run_id == run
    assert ledger.managed("image") == {}
    rows = ledger.changes(run)
    assert [(r.kind, r.key, r.action, r.outcome, r.fields) for r in rows[1:]] == [
        ("variant", "TEE-S", "adopt", "applied", []),
        ("product", "tee", "adopt", "applied", []),
        ("image", "tee/front.png", "adopt", "applied", []),
    ]
    ledger.set_change_remotes([(ids[1], "p1", "7")])
    assert ledger.changes(run)[2].remote_version == "7"
    assert ledger.record_adoptions(run, []) == []
