"""`catalog apply` and guardrails, as people and CI run it: refused with nothing written unless
allowed (--allow, CATALOG_ALLOW, allow: in the YAML), and a saved plan bound to its settings."""

from __future__ import annotations

import json

from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State
from reconciler.state.ledger import Ledger

from .helpers import Cli, writes

TOTE = "    price: 29.00\n    supply_price: 9.40\n"
TOTE_TYPO = "    price: 2.90\n    supply_price: 0.94\n"  # the decimal point slipped


def slip_the_tote(cli: Cli, *, allow: str = "") -> None:
    path = cli.catalog / "accessories.yaml"
    text = path.read_text()
    assert text.count(TOTE) == 1
    path.write_text(text.replace(TOTE, TOTE_TYPO + (f"    allow: [{allow}]\n" if allow else "")))


def test_a_90_percent_drop_is_refused_with_nothing_written_until_allowed(
    cli: Cli, store: SandboxStore
) -> None:
    assert cli.run("apply", "--auto-approve").returncode == 0
    slip_the_tote(cli)
    store.reset_stats()
    refused = cli.run("apply", "--auto-approve")
    assert refused.returncode == 1
    assert writes(store) == 0
    error = refused.stderr.strip().splitlines()[-1]
    assert error == (
        "Error: The plan breaks 1 guardrail (price-jump): canvas-tote: price 29.00 -> 2.90 "
        "(-90%, more than 50%). Nothing was applied; fix the catalog, or if this is intended "
        "apply with --allow price-jump (or add allow: [price-jump] to the product)."
    )
    # The plan shown before refusing says it first, brackets and all.
    assert "! This plan breaks 1 guardrail (price-jump)" in refused.stderr
    assert "allow: [price-jump] on the product" in refused.stderr
    with State(cli.state) as state:
        [run] = [r for r in Ledger(state).runs() if r.outcome == "refused"]
    assert "price-jump" in json.dumps(run.counts)

    allowed = cli.run("apply", "--auto-approve", "--allow", "price-jump")
    assert allowed.returncode == 0, allowed.stderr
    assert cli.run("plan", "--detailed-exitcode").returncode == 0


def test_a_saved_plan_is_refused_then_applied_with_catalog_allow(
    cli: Cli, store: SandboxStore
) -> None:
    assert cli.run("apply", "--auto-approve").returncode == 0
    slip_the_tote(cli)
    saved = cli.tmp / "plan.json"
    made = cli.run("plan", "--out", str(saved), "--format", "json")
    assert made.returncode == 0, made.stderr
    [violation] = json.loads(made.stdout)["guardrails"]["violations"]
    assert (violation["rule"], violation["before"], violation["after"]) == (
        "price-jump",
        "29.00",
        "2.90",
    )
    store.reset_stats()
    assert cli.run("apply", str(saved)).returncode == 1
    assert writes(store) == 0
    cli.env["CATALOG_ALLOW"] = "price-jump margin"
    done = cli.run("apply", str(saved))
    assert done.returncode == 0, done.stderr
    assert writes(store) == 1


def test_a_saved_plan_is_stale_once_the_guardrail_settings_change(
    cli: Cli, store: SandboxStore
) -> None:
    assert cli.run("apply", "--auto-approve").returncode == 0
    slip_the_tote(cli)
    saved = cli.tmp / "plan.json"
    assert cli.run("plan", "--out", str(saved)).returncode == 0
    # Someone loosens the rule after the plan was reviewed: the plan's check no longer holds.
    settings = cli.catalog / "catalog.yaml"
    settings.write_text(
        settings.read_text().replace(
            "  prune: none", "  prune: none\n  guardrails:\n    price-jump: 95%", 1
        )
    )
    store.reset_stats()
    stale = cli.run("apply", str(saved), "--allow", "price-jump")
    assert stale.returncode == 1
    assert writes(store) == 0
    assert "the guardrail settings changed since the plan was made (price-jump 50% -> 95%)" in (
        stale.stderr
    )
    assert "is stale" in stale.stderr


def test_allow_in_the_yaml_is_an_intended_exception(cli: Cli, store: SandboxStore) -> None:
    assert cli.run("apply", "--auto-approve").returncode == 0
    slip_the_tote(cli, allow="price-jump")
    plan = cli.run("plan")
    assert "allowed by the product's allow: in the catalog" in plan.stdout
    done = cli.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stderr


def test_store_owned_fields_are_left_alone_and_history_says_so(
    cli: Cli, store: SandboxStore
) -> None:
    assert cli.run("apply", "--auto-approve").returncode == 0
    settings = cli.catalog / "catalog.yaml"
    settings.write_text(
        settings.read_text().replace(
            "  prune: none", "  prune: none\n  fields:\n    price: store\n    description: init", 1
        )
    )
    path = cli.catalog / "accessories.yaml"  # a price change the catalog no longer owns
    path.write_text(path.read_text().replace(TOTE, "    price: 2.90\n    supply_price: 9.40\n"))
    store.reset_stats()
    plan = cli.run("plan", "--detailed-exitcode", "--format", "json")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    doc = json.loads(plan.stdout)
    assert doc["field_owners"] == {"description": "init", "price": "store"}
    assert "2.90" not in plan.stdout
    history = cli.run("history")
    assert history.returncode == 0
    assert history.stdout.strip().splitlines()[-1] == (
        "Not the catalog's (settings.fields): description is set on create only; price is the "
        "store's; what the store does to them is not recorded here."
    )
    assert json.loads(cli.run("history", "--format", "json").stdout)["fields_not_owned"] == {
        "description": "init",
        "price": "store",
    }
