"""`catalog history`: for a SKU, which commit set the price and what it was before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from reconciler.state import State
from reconciler.state.ledger import Ledger


def _catalog(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "--state", str(state), "history", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _seed(path: Path) -> None:
    ledger = Ledger(State(path))
    prices = [("1111111aaaa", None, "25.00"), ("2222222bbbb", "25.00", "27.00")]
    for commit, before, after in prices:
        run = ledger.start_run(
            store="s", plan_digest="p", catalog_digest="c", git_commit=commit, actor="ci", host="h"
        )
        ledger.record_change(
            run,
            kind="variant",
            key="TEE-S-BLK",
            action="create" if before is None else "update",
            fields=[{"field": "price", "before": before, "after": after}],
            remote_id="id-1",
            remote_version=str(run * 10),
        )
        ledger.finish_run(run, outcome="applied", counts={})
    ledger.state.close()


def test_history_text_and_json(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    _seed(state)
    text = _catalog("TEE-S-BLK", state=state)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "2222222bbbb" in lines[0] and "update variant TEE-S-BLK" in lines[0]
    assert lines[1].strip() == "price: 25.00 -> 27.00"
    assert "1111111aaaa" in lines[2] and lines[3].strip() == "price: (none) -> 25.00"

    doc = json.loads(_catalog("TEE-S-BLK", "--format", "json", state=state).stdout)
    assert doc["format_version"] == 2
    assert [(c["git_commit"], c["remote_version"]) for c in doc["changes"]] == [
        ("2222222bbbb", "20"),
        ("1111111aaaa", "10"),
    ]


def test_history_of_unknown_key_or_missing_state(tmp_path: Path) -> None:
    missing = _catalog("NOPE", "--format", "json", state=tmp_path / "none.db")
    assert missing.returncode == 0
    assert json.loads(missing.stdout)["changes"] == []
    assert not (tmp_path / "none.db").exists()  # reading history never creates a state file
    state = tmp_path / "state.db"
    _seed(state)
    none = _catalog("NOPE", state=state)
    assert none.returncode == 0 and none.stdout == ""
    assert "No applied changes recorded for NOPE" in none.stderr


def test_history_text_shows_store_text_literally() -> None:
    from reconciler.cli.history import render_text
    from reconciler.state.ledger import ChangeRecord

    row = ChangeRecord(
        id=1,
        run_id=1,
        kind="product",
        key="Mug-:heart:-[red]",
        action="update",
        fields=[{"field": "description", "before": "a\r\nb", "after": "\x1b[31mred [/]"}],
        remote_id=None,
        remote_version="3",
        outcome="applied",
        error=None,
        at="2026-01-01T00:00:00",
        git_commit=None,
        actor="ci",
        plan_digest=None,
    )
    text = render_text([row])
    assert "update product Mug-:heart:-[red]" in text
    assert "description: a\\x0d\\x0ab -> \\x1b[31mred [/]" in text
    assert "\x1b" not in text and "\r" not in text
