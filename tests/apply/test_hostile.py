"""Only what the store confirmed is applied (issue 12, point 1).

A hostile proxy answers every write with a shape that is not the API's documented success
(a redirect, an empty body where one is documented, HTML, cut-off or wrong-shaped JSON, no id):
apply must record nothing as applied, leave `managed` empty, exit 1 and say so in one sentence.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.errors import Unconfirmed
from reconciler.providers.xseries.client import Client
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State
from reconciler.state.ledger import Ledger

from .helpers import MANAGED_KINDS, TOKEN, Cli, Harness, shop, writes
from .hostile import MODES, hostile_proxy


def _one_sentence(text: str) -> bool:
    return "\n" not in text and "Traceback" not in text and text.rstrip().endswith(".")


@pytest.mark.parametrize("mode", MODES)
def test_no_write_counts_as_applied_unless_the_store_confirmed_it(
    store: SandboxStore, tmp_path: Path, mode: str
) -> None:
    with (
        hostile_proxy(store, mode) as url,
        Client(url, TOKEN, backoff_base=0.001, backoff_cap=0.005) as client,
        State(tmp_path / "state.db") as state,
    ):
        harness = Harness(store, client, state)
        store.reset_stats()
        plan, result = harness.apply(shop(1))
        assert plan.has_changes
        assert not result.ok
        counts = result.counts()
        assert counts["applied"] == 0, result.changes
        assert counts["failed"] >= 1
        for change in result.changes:
            if change.outcome == "failed":
                assert change.error and _one_sentence(change.error), change.error
        ledger = Ledger(state)
        assert all(not ledger.managed(k) for k in MANAGED_KINDS)
        rows = state.db.execute("select outcome, remote_id from changes").fetchall()
        assert rows and all(outcome != "applied" for outcome, _ in rows)
        # The creates' outcome is not known: their intents stay open for a lookup next time.
        assert ledger.pending_intents()
    assert writes(store) == 0  # nothing reached the store


def test_an_empty_200_to_a_product_put_is_the_documented_success(
    store: SandboxStore, client: Client
) -> None:
    """lightspeed-xseries.md §6.4: some stores answer a product PUT with an empty body; that stays a
    success. A product create answered the same way is not one."""
    ids = client.create_product({"name": "Mug", "sku": "MUG", "price_including_tax": 5})
    with hostile_proxy(store, "empty-200") as url, Client(url, TOKEN) as proxied:
        assert proxied.update_product(ids[0], details={"is_active": False}) is None
        with pytest.raises(Unconfirmed, match="not confirmed"):
            proxied.create_product({"name": "Cup", "sku": "CUP", "price_including_tax": 5})
        with pytest.raises(Unconfirmed, match="not confirmed"):
            proxied.create_brand("Acme")


def test_a_redirect_is_never_followed_nor_success(store: SandboxStore) -> None:
    with hostile_proxy(store, "redirect-307") as url, Client(url, TOKEN) as client:
        with pytest.raises(Unconfirmed, match=r"answered with 307 \(a redirect to https://login"):
            client.create_tag("summer")
        assert client.stats().requests == 1  # not followed, not retried


@pytest.mark.parametrize("mode", ["redirect-307", "html", "truncated", "missing-id"])
def test_cli_apply_behind_a_hostile_proxy_exits_1_in_one_sentence(
    store: SandboxStore, tmp_path: Path, mode: str
) -> None:
    with hostile_proxy(store, mode) as url:
        cli = Cli(tmp_path, url)
        done = cli.run("apply", "--auto-approve", "--format", "json")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: Apply was partial") and _one_sentence(last)
    result = json.loads(done.stdout)
    assert result["counts"]["applied"] == 0
    assert all(_one_sentence(c["error"]) for c in result["changes"] if c["outcome"] == "failed")
    with State(cli.state) as state:
        assert not state.db.execute(
            "select count(*) from changes where outcome = 'applied'"
        ).fetchone()[0]
        assert all(not Ledger(state).managed(k) for k in MANAGED_KINDS)
    assert writes(store) == 0
