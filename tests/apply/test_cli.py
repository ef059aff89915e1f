"""`catalog apply` as people and CI run it: a real process, the sandbox over a real socket."""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import subprocess
from pathlib import Path

import httpx

from reconciler.api import git_commit
from reconciler.planfile import read_plan, write_plan
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State
from reconciler.state.ledger import Ledger
from reconciler.state.lock import lock_events

from .helpers import TOKEN, Cli, writes


def test_apply_the_example_catalog_then_plan_is_empty(cli: Cli, store: SandboxStore) -> None:
    planned = json.loads(cli.run("plan", "--format", "json").stdout)
    store.reset_stats()
    done = cli.run("apply", "--auto-approve", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["outcome"] == "applied" and report["counts"]["failed"] == 0
    assert writes(store) == planned["estimate"]["requests"] == report["requests"]["writes"]
    images = store.stats()["requests"]["by_route"]
    assert images.get("POST /api/2.0/products/{id}/actions/image_upload", 0) > 0
    again = cli.run("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    store.reset_stats()
    rerun = cli.run("apply", "--auto-approve")
    assert rerun.returncode == 0 and "No changes" in rerun.stdout
    assert writes(store) == 0  # not even an image is sent again


def test_without_a_terminal_apply_needs_auto_approve(cli: Cli, store: SandboxStore) -> None:
    refused = cli.run("apply")
    assert refused.returncode == 1
    assert "--auto-approve" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert writes(store) == 0


def test_a_stale_saved_plan_is_refused_and_changes_nothing(cli: Cli, store: SandboxStore) -> None:
    assert cli.run("apply", "--auto-approve").returncode == 0
    yaml = cli.catalog / "apparel.yaml"
    yaml.write_text(yaml.read_text().replace("price: 25.00", "price: 26.00", 1))
    saved = cli.tmp / "plan.json"
    made = cli.run("plan", "--out", str(saved))
    assert made.returncode == 0, made.stderr
    plan = json.loads(saved.read_text())
    touched = next(c for c in plan["changes"] if c["kind"] == "product")
    assert touched["remote_id"]
    # Someone edits that product in the store after the plan was reviewed.
    with httpx.Client(base_url=cli.env["LIGHTSPEED_BASE_URL"]) as http:
        answer = http.put(
            f"/api/2.1/products/{touched['remote_id']}",
            json={"common": {"description": "<p>Edited in the back office</p>"}},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert answer.status_code == 200
    store.reset_stats()
    refused = cli.run("apply", str(saved))
    assert refused.returncode == 1
    assert "stale" in refused.stderr and f'product "{touched["key"]}"' in refused.stderr
    assert writes(store) == 0
    with State(cli.state) as state:
        assert Ledger(state).runs()[0].outcome == "refused"
    # A fresh plan applies fine.
    fresh = cli.tmp / "fresh.json"
    assert cli.run("plan", "--out", str(fresh)).returncode == 0
    done = cli.run("apply", str(fresh))
    assert done.returncode == 0, done.stderr


def _on_a_terminal(cli: Cli, answer: str) -> tuple[int, str]:
    """`catalog apply` with a pseudo-terminal as stdin, answering its question."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        cli.argv("apply"),
        env=cli.env,
        stdin=child,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(child)
    os.write(main, answer.encode() + b"\n")
    _, err = proc.communicate(timeout=90)
    os.close(main)
    return proc.returncode, err


def test_on_a_terminal_apply_shows_the_plan_and_asks(cli: Cli, store: SandboxStore) -> None:
    code, err = _on_a_terminal(cli, "n")
    assert code == 1 and "Apply these changes?" in err and "Apply cancelled" in err
    assert "Plan:" in err  # the plan was shown before the question
    assert writes(store) == 0
    code, err = _on_a_terminal(cli, "y")
    assert code == 0, err
    assert writes(store) > 0


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=t@example.com", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_ledger_names_the_commit_and_says_when_the_catalog_was_not_it(
    cli: Cli, store: SandboxStore
) -> None:
    _git(cli.tmp, "init", "-q")
    _git(cli.tmp, "add", "catalog")
    _git(cli.tmp, "commit", "-q", "-m", "catalog")
    head = _git(cli.tmp, "rev-parse", "HEAD")
    assert cli.run("apply", "--auto-approve").returncode == 0
    accessories = cli.catalog / "accessories.yaml"
    accessories.write_text(accessories.read_text().replace("price: 29.00", "price: 31.00", 1))
    edited = cli.run("apply", "--auto-approve")  # an uncommitted edit
    assert edited.returncode == 0, edited.stderr
    runs = Ledger(State(cli.state)).runs()
    assert [r.git_commit for r in runs if r.outcome == "applied"] == [f"{head}-dirty", head]


def test_the_state_directory_inside_the_catalog_does_not_make_it_dirty(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "catalog.yaml").write_text("settings: {}\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "catalog")
    head = _git(tmp_path, "rev-parse", "HEAD")
    (catalog / ".catalog").mkdir()
    (catalog / ".catalog" / "state.db").write_bytes(b"state")
    assert git_commit(catalog, state_dir=catalog / ".catalog") == head
    (catalog / "new.yaml").write_text("products: []\n")  # a file not committed yet
    assert git_commit(catalog, state_dir=catalog / ".catalog") == f"{head}-dirty"
    assert git_commit(tmp_path.parent / "nowhere") is None


def test_apply_reads_the_tax_mode_again_before_writing_a_price(
    cli: Cli, store: SandboxStore
) -> None:
    saved = cli.tmp / "plan.json"
    assert cli.run("plan", "--out", str(saved)).returncode == 0  # the retailer is now cached
    store.tax_exclusive = True  # switched in the back office within the cache's hour
    stale = cli.run("apply", str(saved))
    assert stale.returncode == 1 and "tax mode changed" in stale.stderr, stale.stderr
    assert writes(store) == 0
    done = cli.run("apply", "--auto-approve")
    assert done.returncode == 0, done.stderr
    with httpx.Client(base_url=cli.env["LIGHTSPEED_BASE_URL"]) as http:
        rows = http.get(
            "/api/2.0/products",
            params={"sku": "TOTE-NAT"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ).json()["data"]
    assert rows and rows[0]["price_excluding_tax"] == 29.0  # the catalog's price, as exclusive
    assert cli.run("plan", "--detailed-exitcode").returncode == 0


def test_an_invalid_catalog_is_refused_before_the_state_file_is_touched(
    cli: Cli, store: SandboxStore
) -> None:
    saved = cli.tmp / "plan.json"
    assert cli.run("plan", "--out", str(saved)).returncode == 0
    saved_state = cli.state.read_bytes()
    cli.state.unlink()
    (cli.catalog / "broken.yaml").write_text("products:\n  - {1: x}\n", encoding="utf-8")
    for args in (("apply", "--auto-approve"), ("apply", str(saved))):
        refused = cli.run(*args)
        assert refused.returncode == 1, refused.stderr
        assert "broken.yaml:2:5" in refused.stderr
        assert not cli.state.exists()  # no state file, so no lock event or ledger run either
    cli.state.write_bytes(saved_state)
    with State(cli.state) as state:
        before = (Ledger(state).runs(), lock_events(state))
    refused = cli.run("apply", str(saved))
    assert refused.returncode == 1
    with State(cli.state) as state:
        assert (Ledger(state).runs(), lock_events(state)) == before
    assert writes(store) == 0


def test_a_saved_plan_made_for_another_platform_is_refused(cli: Cli, store: SandboxStore) -> None:
    saved = cli.tmp / "plan.json"
    made = cli.run("plan", "--out", str(saved))
    assert made.returncode == 0, made.stderr
    plan = read_plan(saved)
    assert plan.provider == "xseries"
    write_plan(saved, dataclasses.replace(plan, provider="rseries"))
    store.reset_stats()
    refused = cli.run("apply", str(saved))
    assert refused.returncode == 1
    assert "it was made for a rseries store, not xseries" in refused.stderr
    assert writes(store) == 0
