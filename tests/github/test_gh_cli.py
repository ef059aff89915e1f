"""`catalog ci ...` as the workflows call it: environment in, runner files and API calls out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fake_github import FakeGitHub
from gh_helpers import git, parse_github_output

from reconciler.cli import cli
from reconciler.errors import CatalogError, ConfigError
from reconciler.github import DRIFT_LABEL, NO_STORE_MESSAGE, PLAN_MARKER


@pytest.fixture
def runner_env(tmp_path: Path) -> dict[str, str]:
    """What a GitHub runner sets for a step: files for outputs and summary, run coordinates."""
    (tmp_path / "output").write_text("")
    (tmp_path / "summary.md").write_text("")
    return {
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_REPOSITORY": "acme/catalog",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_SHA": "0123456789abcdef",
        "GITHUB_SERVER_URL": "https://github.com",
        "LIGHTSPEED_STORE": "",
        "CATALOG_STORES": "",
    }


@pytest.fixture
def run(runner_env: dict[str, str]) -> Callable[..., Result]:
    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), env={**runner_env, **(env or {})})

    return invoke


@pytest.fixture
def served(fake: FakeGitHub) -> Iterator[dict[str, str]]:
    with fake.serve() as url:
        yield {"GITHUB_API_URL": url, "GITHUB_TOKEN": fake.token}


def outputs(runner_env: dict[str, str]) -> dict[str, str]:
    return parse_github_output(Path(runner_env["GITHUB_OUTPUT"]).read_text())


def summary(runner_env: dict[str, str]) -> str:
    return Path(runner_env["GITHUB_STEP_SUMMARY"]).read_text()


def write_event(tmp_path: Path, **pull_request: object) -> Path:
    path = tmp_path / "event.json"
    pr = {
        "number": 7,
        "head": {"sha": "feedface00", "repo": {"full_name": "acme/catalog"}},
        "base": {"repo": {"full_name": "acme/catalog"}},
        **pull_request,
    }
    path.write_text(json.dumps({"action": "synchronize", "pull_request": pr}))
    return path


def plan_dir(
    tmp_path: Path, store: str, *, markdown: str, plan: dict[str, object] | None, stderr: str = ""
) -> Path:
    directory = tmp_path / "results" / f"plan-{store}"
    directory.mkdir(parents=True)
    (directory / "plan.md").write_text(markdown)
    if plan is not None:
        (directory / "plan.json").write_text(json.dumps(plan))
    (directory / "plan.err").write_text(stderr)
    return directory


CHANGES = {
    "format_version": 1,
    "summary": {"update": 1},
    "estimate": {"requests": 2, "seconds": 0.4},
    "changes": [
        {
            "kind": "variant",
            "key": "TEE-S",
            "action": "update",
            "fields": [{"field": "price", "before": "25.00", "after": "27.00", "drift": True}],
        }
    ],
}


# --- stores ------------------------------------------------------------------------------------


def test_stores_from_settings(
    run: Callable[..., Result], runner_env: dict[str, str], tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "catalog.yaml").write_text("settings:\n  stores: [acme, beta]\n")
    result = run("--catalog", str(catalog), "ci", "stores", env={"LIGHTSPEED_STORE": "ignored"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == ["acme", "beta"]
    assert outputs(runner_env) == {"stores": '["acme", "beta"]', "count": "2"}


def test_stores_from_the_variable_or_the_input(run: Callable[..., Result], tmp_path: Path) -> None:
    empty = tmp_path / "catalog"
    empty.mkdir()
    assert json.loads(
        run("--catalog", str(empty), "ci", "stores", env={"LIGHTSPEED_STORE": "solo"}).stdout
    ) == ["solo"]
    assert json.loads(run("--catalog", str(empty), "ci", "stores", "--stores", "x,y").stdout) == [
        "x",
        "y",
    ]
    missing = run("--catalog", str(empty), "ci", "stores")
    assert isinstance(missing.exception, ConfigError)


# --- record ------------------------------------------------------------------------------------


def test_record_writes_result_summary_and_outputs(
    run: Callable[..., Result], runner_env: dict[str, str], tmp_path: Path
) -> None:
    directory = plan_dir(
        tmp_path, "acme", markdown="| TEE-S | price | 25.00 -> 27.00 |\n", plan=CHANGES
    )
    result = run(
        "ci",
        "record",
        "--store",
        "acme",
        "--exit-code",
        "2",
        "--dir",
        str(directory),
        "--artifact",
        "plan-acme",
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((directory / "result.json").read_text())
    assert saved["status"] == "changes" and saved["drift"] == 1 and saved["artifact"] == "plan-acme"
    assert outputs(runner_env) == {"status": "changes", "has_changes": "true", "drift": "1"}
    assert "`acme`: 1 to update" in summary(runner_env) and "25.00 -> 27.00" in summary(runner_env)


def test_record_of_no_changes(
    run: Callable[..., Result], runner_env: dict[str, str], tmp_path: Path
) -> None:
    directory = plan_dir(
        tmp_path, "acme", markdown="No changes.\n", plan={"summary": {}, "changes": []}
    )
    assert (
        run(
            "ci", "record", "--store", "acme", "--exit-code", "0", "--dir", str(directory)
        ).exit_code
        == 0
    )
    assert outputs(runner_env)["has_changes"] == "false"
    assert "`acme`: no changes" in summary(runner_env)


def test_record_of_a_failed_plan_fails_the_step_but_keeps_the_result(
    run: Callable[..., Result], runner_env: dict[str, str], tmp_path: Path
) -> None:
    directory = plan_dir(
        tmp_path,
        "acme",
        markdown="",
        plan=None,
        stderr="Error: The store answered 401: check LIGHTSPEED_TOKEN.\n",
    )
    result = run("ci", "record", "--store", "acme", "--exit-code", "1", "--dir", str(directory))
    assert isinstance(result.exception, CatalogError)
    assert "check LIGHTSPEED_TOKEN" in str(result.exception)
    assert json.loads((directory / "result.json").read_text())["status"] == "error"
    assert "plan failed" in summary(runner_env)


# --- comment -----------------------------------------------------------------------------------


def test_comment_posts_once_and_updates_on_the_next_push(
    run: Callable[..., Result], fake: FakeGitHub, served: dict[str, str], tmp_path: Path
) -> None:
    directory = plan_dir(
        tmp_path, "acme", markdown="| TEE-S | price | 25.00 -> 27.00 |\n", plan=CHANGES
    )
    assert (
        run(
            "ci", "record", "--store", "acme", "--exit-code", "2", "--dir", str(directory)
        ).exit_code
        == 0
    )
    env = {**served, "GITHUB_EVENT_PATH": str(write_event(tmp_path))}
    first = run(
        "ci",
        "comment",
        "--results",
        str(tmp_path / "results"),
        "--validation-outcome",
        "success",
        env=env,
    )
    assert first.exit_code == 0, first.output
    (posted,) = fake.comments_on(7)
    assert posted["body"].startswith(PLAN_MARKER) and "25.00 -> 27.00" in posted["body"]
    assert "`feedfac`" in posted["body"]  # the PR head commit, not the merge commit

    # next push: the plan says no changes now; the same comment changes, none is added
    (directory / "plan.md").write_text("No changes.\n")
    (directory / "plan.json").write_text(json.dumps({"summary": {}, "changes": []}))
    assert (
        run(
            "ci", "record", "--store", "acme", "--exit-code", "0", "--dir", str(directory)
        ).exit_code
        == 0
    )
    second = run("ci", "comment", "--results", str(tmp_path / "results"), env=env)
    assert second.exit_code == 0, second.output
    (updated,) = fake.comments_on(7)
    assert updated["id"] == posted["id"]
    assert "**No changes.**" in updated["body"]


def test_comment_on_invalid_catalog(
    run: Callable[..., Result], fake: FakeGitHub, served: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "validate.txt").write_text("catalog/tees.yaml:4:12: price -3 is negative\n")
    env = {**served, "GITHUB_EVENT_PATH": str(write_event(tmp_path))}
    result = run(
        "ci",
        "comment",
        "--results",
        str(tmp_path / "nothing"),
        "--validation",
        str(tmp_path / "validate.txt"),
        "--validation-outcome",
        "failure",
        env=env,
    )
    assert result.exit_code == 0, result.output
    (posted,) = fake.comments_on(7)
    assert "not valid" in posted["body"] and "price -3 is negative" in posted["body"]


def test_comment_dry_run_prints_and_posts_nothing(
    run: Callable[..., Result], fake: FakeGitHub, tmp_path: Path
) -> None:
    plan_dir(tmp_path, "acme", markdown="", plan=None)
    (tmp_path / "results" / "plan-acme" / "result.json").write_text(
        json.dumps({"store": "acme", "status": "no-changes"})
    )
    result = run(
        "ci",
        "comment",
        "--results",
        str(tmp_path / "results"),
        "--dry-run",
        "--body-out",
        str(tmp_path / "body.md"),
    )
    assert result.exit_code == 0
    assert result.stdout.startswith(PLAN_MARKER)
    assert (tmp_path / "body.md").read_text() == result.stdout
    assert fake.requests == []


def test_comment_from_a_fork_warns_instead_of_failing(
    run: Callable[..., Result],
    runner_env: dict[str, str],
    fake: FakeGitHub,
    served: dict[str, str],
    tmp_path: Path,
) -> None:
    fake.fail_next = [403]
    event = write_event(tmp_path, head={"sha": "abc", "repo": {"full_name": "someone/catalog"}})
    result = run(
        "ci",
        "comment",
        "--results",
        str(tmp_path / "none"),
        env={**served, "GITHUB_EVENT_PATH": str(event)},
    )
    assert result.exit_code == 0, result.output
    assert "::warning::" in result.stdout
    assert PLAN_MARKER in summary(runner_env)


def test_comment_without_a_pull_request_is_a_config_error(
    run: Callable[..., Result], served: dict[str, str], tmp_path: Path
) -> None:
    event = tmp_path / "push.json"
    event.write_text(json.dumps({"after": "abc"}))
    result = run(
        "ci", "comment", "--results", str(tmp_path), env={**served, "GITHUB_EVENT_PATH": str(event)}
    )
    assert isinstance(result.exception, ConfigError)


# --- drift -------------------------------------------------------------------------------------


def test_drift_opens_then_closes_the_issue(
    run: Callable[..., Result],
    runner_env: dict[str, str],
    fake: FakeGitHub,
    served: dict[str, str],
    tmp_path: Path,
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(CHANGES))
    opened = run(
        "ci", "drift", "--store", "acme", "--plan", str(plan), "--exit-code", "2", env=served
    )
    assert opened.exit_code == 0, opened.output
    (issue,) = [i for i in fake.issues.values() if "pull_request" not in i]
    assert issue["state"] == "open" and issue["labels"] == [{"name": DRIFT_LABEL}]
    assert outputs(runner_env)["drift"] == "1"

    plan.write_text(json.dumps({"summary": {}, "changes": []}))
    closed = run(
        "ci", "drift", "--store", "acme", "--plan", str(plan), "--exit-code", "0", env=served
    )
    assert closed.exit_code == 0, closed.output
    assert issue["state"] == "closed"
    assert "No drift in `acme`" in summary(runner_env)


def test_a_failed_plan_never_closes_a_drift_issue(
    run: Callable[..., Result], fake: FakeGitHub, served: dict[str, str], tmp_path: Path
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(CHANGES))
    run("ci", "drift", "--store", "acme", "--plan", str(plan), "--exit-code", "2", env=served)
    plan.write_text("")
    failed = run(
        "ci", "drift", "--store", "acme", "--plan", str(plan), "--exit-code", "1", env=served
    )
    assert isinstance(failed.exception, CatalogError)
    (issue,) = [i for i in fake.issues.values() if "pull_request" not in i]
    assert issue["state"] == "open"


def test_a_failed_plan_or_pull_never_closes_the_drift_pull_request(
    run: Callable[..., Result], fake: FakeGitHub, served: dict[str, str], tmp_path: Path
) -> None:
    fake.issues[8] = {
        "number": 8,
        "title": "Accept the store's changes: acme",
        "body": "",
        "state": "open",
        "labels": [],
        "head": {"ref": "catalog-drift/acme"},
        "base": {"ref": "main"},
        "pull_request": {"url": "..."},
    }
    directory = tmp_path / "drift-acme"
    directory.mkdir()
    (directory / "plan.exit").write_text("1\n")
    failed = run("ci", "drift-pr", "--store", "acme", "--dir", str(directory), env=served)
    assert isinstance(failed.exception, CatalogError)
    assert "could not plan (exit 1)" in str(failed.exception)
    (directory / "plan.exit").write_text("2\n")
    (directory / "pull.exit").write_text("1\n")
    failed = run("ci", "drift-pr", "--store", "acme", "--dir", str(directory), env=served)
    assert isinstance(failed.exception, CatalogError)
    assert "`catalog pull` failed for store acme (exit 1)" in str(failed.exception)
    assert fake.issues[8]["state"] == "open" and fake.writes() == []


# --- state -------------------------------------------------------------------------------------


def test_state_pull_and_push_through_the_cli(
    run: Callable[..., Result],
    runner_env: dict[str, str],
    clone_of: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reconciler.state import State

    first = clone_of("runner1")
    monkeypatch.chdir(first)
    state_path = ".catalog/state/acme.db"
    nothing = run("--state", state_path, "ci", "state", "pull", "--store", "acme")
    assert nothing.exit_code == 0 and "full refresh" in nothing.stderr
    assert outputs(runner_env)["restored"] == "false"
    with State(first / state_path) as state:
        state.db["probe"].insert({"id": 1})
    pushed = run("--state", state_path, "ci", "state", "push", "--store", "acme")
    assert pushed.exit_code == 0, pushed.output
    assert not (first / ".catalog/state/acme.db.snapshot").exists()

    second = clone_of("runner2")
    monkeypatch.chdir(second)
    restored = run("--state", state_path, "ci", "state", "pull", "--store", "acme")
    assert restored.exit_code == 0, restored.output
    with State(second / state_path) as state:
        assert list(state.db["probe"].rows) == [{"id": 1}]
    message = git(second, "log", "-1", "--format=%B", "origin/catalog-state")
    assert "acme: state after apply of 0123456789ab" in message
    assert "actions/runs/4242" in message


# --- apply -------------------------------------------------------------------------------------

APPLIED = {
    "format_version": 1,
    "outcome": "partial",
    "counts": {"applied": 3, "failed": 1, "skipped": 0},
    "requests": {"planned": 5, "writes": 4, "total": 9, "rate_limited": 0},
    "changes": [
        {"kind": "product", "key": "tee", "outcome": "failed", "error": "422: name is taken"},
        {"kind": "product", "key": "cap", "outcome": "applied", "error": None},
    ],
}


def test_record_apply_success(
    run: Callable[..., Result], runner_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "apply.json").write_text(
        json.dumps({**APPLIED, "outcome": "applied", "counts": {"applied": 4, "failed": 0}})
    )
    result = run(
        "ci", "record-apply", "--store", "acme", "--exit-code", "0", "--dir", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert "Applied to `acme`: 4 changes with 9 requests" in summary(runner_env)


def test_record_apply_failure_lists_what_failed_and_fails_the_step(
    run: Callable[..., Result], runner_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "apply.json").write_text(json.dumps(APPLIED))
    (tmp_path / "apply.err").write_text("Error: 1 change failed; rerun catalog plan.\n")
    result = run(
        "ci", "record-apply", "--store", "acme", "--exit-code", "1", "--dir", str(tmp_path)
    )
    assert isinstance(result.exception, CatalogError)
    text = summary(runner_env)
    assert "Apply to `acme` failed" in text and "3 applied, 1 failed" in text
    assert "product `tee`: 422: name is taken" in text and "`cap`" not in text
    assert "rerun catalog plan" in text


def test_state_push_missing_ok(
    run: Callable[..., Result], clone_of: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(clone_of("runner"))
    assert (
        run(
            "--state", "none.db", "ci", "state", "push", "--store", "acme", "--missing-ok"
        ).exit_code
        == 0
    )
    refused = run("--state", "none.db", "ci", "state", "push", "--store", "acme")
    assert isinstance(refused.exception, ConfigError)


def test_stores_allow_none_warns_and_prints_an_empty_list(
    run: Callable[..., Result], runner_env: dict[str, str], tmp_path: Path
) -> None:
    result = run("--catalog", str(tmp_path), "ci", "stores", "--allow-none")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"::warning::{NO_STORE_MESSAGE}", "[]"]
    assert outputs(runner_env)["stores"] == "[]"
    # a bad store name is still an error, not "none configured"
    bad = run("--catalog", str(tmp_path), "ci", "stores", "--allow-none", "--stores", "a.b")
    assert isinstance(bad.exception, ConfigError)


def test_comment_reports_a_store_without_result_and_no_store_configured(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    directory = plan_dir(tmp_path, "acme", markdown="No changes.\n", plan={"summary": {}})
    assert (
        run(
            "ci", "record", "--store", "acme", "--exit-code", "0", "--dir", str(directory)
        ).exit_code
        == 0
    )
    results = str(tmp_path / "results")
    both = run(
        "ci", "comment", "--results", results, "--expected-stores", '["acme", "beta"]', "--dry-run"
    )
    assert "`acme`: no changes" in both.stdout
    assert "`beta`: plan failed" in both.stdout and "left no result" in both.stdout
    none = run(
        "ci",
        "comment",
        "--results",
        str(tmp_path / "empty"),
        "--expected-stores",
        "[]",
        "--dry-run",
    )
    assert NO_STORE_MESSAGE in none.stdout
    bad = run("ci", "comment", "--results", results, "--expected-stores", "acme", "--dry-run")
    assert isinstance(bad.exception, ConfigError)


# --- show-plan and the docs ----------------------------------------------------------------------


def test_show_plan_renders_a_saved_plan_and_refuses_a_damaged_one(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    from reconciler.plan import Estimate, Plan
    from reconciler.planfile import write_plan
    from reconciler.render import render_json, render_markdown

    saved = Plan(
        changes=(),
        catalog_digest="abc",
        store="acme",
        tax_exclusive=False,
        estimate=Estimate(requests=0, seconds=0.0, rate_limit=350, window_seconds=300.0),
    )
    path = write_plan(tmp_path / "plan.saved.json", saved)
    shown = run("ci", "show-plan", str(path))
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == render_json(saved)
    assert run("ci", "show-plan", str(path), "--format", "markdown").stdout == render_markdown(
        saved
    )
    path.write_text(path.read_text().replace('"acme"', '"other"'))  # edited: digest mismatch
    assert isinstance(run("ci", "show-plan", str(path)).exception, CatalogError)


def test_every_ci_command_has_help_and_is_in_the_docs() -> None:
    import click

    from reconciler.cli.ci import ci

    docs = (Path(__file__).resolve().parents[2] / "docs" / "github.md").read_text()

    def leaves(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
        found = []
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                found += leaves(command, f"{prefix} {name}")
            else:
                found.append((f"{prefix} {name}", command))
        return found

    for path, command in leaves(ci, "catalog ci"):
        assert command.help and len(command.help) > 20, path
        assert f"`{path}" in docs, path


def test_a_damaged_result_counts_as_no_result(run: Callable[..., Result], tmp_path: Path) -> None:
    from reconciler.github import read_results

    good = plan_dir(tmp_path, "acme", markdown="No changes.\n", plan={"summary": {}})
    assert (
        run("ci", "record", "--store", "acme", "--exit-code", "0", "--dir", str(good)).exit_code
        == 0
    )
    bad = plan_dir(tmp_path, "beta", markdown="", plan=None)
    (bad / "result.json").write_text('{"store": "beta", "status": "half')
    assert [r.store for r in read_results(tmp_path / "results")] == ["acme"]
    both = run(
        "ci",
        "comment",
        "--results",
        str(tmp_path / "results"),
        "--expected-stores",
        '["acme", "beta"]',
        "--dry-run",
    )
    assert "`beta`: plan failed" in both.stdout and "left no result" in both.stdout


# --- guardrails --------------------------------------------------------------------------------


def test_allow_reads_the_labels_of_the_pull_request_event(
    run: Callable[..., Result], runner_env: dict[str, str], tmp_path: Path
) -> None:
    labels = [{"name": "catalog:allow-price-jump"}, {"name": "catalog:allow-nope"}, {"name": "x"}]
    event = write_event(tmp_path, labels=labels)
    result = run("ci", "allow", env={"GITHUB_EVENT_PATH": str(event)})
    assert result.exit_code == 0, result.output
    assert outputs(runner_env) == {"rules": "price-jump"}
    write_event(tmp_path, labels=[])
    run("ci", "allow", env={"GITHUB_EVENT_PATH": str(event)})
    assert outputs(runner_env)["rules"] == ""


def test_allow_on_a_push_asks_for_the_merged_pull_requests_labels(
    run: Callable[..., Result],
    runner_env: dict[str, str],
    fake: FakeGitHub,
    served: dict[str, str],
    tmp_path: Path,
) -> None:
    fake.add_pull_request(
        9, labels=("catalog:allow-removals", "catalog:allow-margin"), merge_sha="cafe01"
    )
    push = tmp_path / "push.json"
    push.write_text(json.dumps({"after": "cafe01"}))
    env = {**served, "GITHUB_EVENT_PATH": str(push), "GITHUB_SHA": "cafe01"}
    result = run("ci", "allow", env=env)
    assert result.exit_code == 0, result.output
    assert outputs(runner_env) == {"rules": "margin removals"}
    assert ("GET", "/repos/acme/catalog/commits/cafe01/pulls") in fake.requests
    run("ci", "allow", env={**env, "GITHUB_SHA": "0000"})  # a push without a pull request
    assert outputs(runner_env)["rules"] == ""
    fake.fail_next = [404]  # the labels cannot be read: nothing is allowed, the step goes on
    unreadable = run("ci", "allow", env=env)
    assert unreadable.exit_code == 0 and "::warning::Could not read" in unreadable.stdout
    assert outputs(runner_env)["rules"] == ""


def test_drift_issue_names_the_fields_that_are_not_the_catalogs(
    run: Callable[..., Result], fake: FakeGitHub, served: dict[str, str], tmp_path: Path
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps({**CHANGES, "field_owners": {"description": "store", "tags": "init"}})
    )
    result = run(
        "ci", "drift", "--store", "acme", "--plan", str(plan), "--exit-code", "2", env=served
    )
    assert result.exit_code == 0, result.output
    (issue,) = [i for i in fake.issues.values() if "pull_request" not in i]
    assert (
        "Not checked for drift: description is the store's; tags is set on create only."
        in issue["body"]
    )
