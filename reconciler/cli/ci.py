"""`catalog ci ...`: the steps the GitHub workflows run, so they hold no long inline shell.

Each subcommand reads what GitHub Actions provides (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY,
GITHUB_EVENT_PATH, GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL, ...) from the environment
once, here, and calls `reconciler.github`. Outside Actions they still work: outputs and
summaries are skipped when their files are not set, and `comment --dry-run` prints the body.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from reconciler.cli.common import Context, env_secrets, format_option
from reconciler.errors import CatalogError, ConfigError, GitHubError, redact, redact_json
from reconciler.github import (
    DRIFT_LABEL,
    NO_STORE_MESSAGE,
    PLAN_MARKER,
    RESULT_JSON,
    STATE_BRANCH,
    Event,
    GitHub,
    RunInfo,
    StateBranch,
    Status,
    append_summary,
    apply_summary,
    check_store_key,
    drift_pr_body,
    drift_pr_branch,
    drifted_fields,
    make_result,
    plan_comment,
    plan_summary,
    push_catalog,
    read_results,
    resolve_stores,
    rotated_refresh_token,
    settings_stores,
    snapshot_state,
    sync_drift_issue,
    sync_drift_pull_request,
    upsert_comment,
    write_outputs,
)
from reconciler.guardrails import rules_from_labels
from reconciler.planfile import read_plan
from reconciler.render import render_json, render_markdown, render_text

# The files one store's job leaves in its directory (and uploads as an artifact).
PLAN_MARKDOWN = "plan.md"
PLAN_JSON = "plan.json"
PLAN_STDERR = "plan.err"
APPLY_JSON = "apply.json"
APPLY_STDERR = "apply.err"


def _note(message: str) -> None:
    click.echo(redact(message, env_secrets(os.environ)), err=True)


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _read_json(path: Path) -> Any:
    if not path.exists() or not path.read_text(encoding="utf-8").strip():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}).") from exc


def _github(ctx: Context) -> GitHub:
    env = ctx.environ
    return GitHub(
        token=env.get("GITHUB_TOKEN", ""),
        repository=env.get("GITHUB_REPOSITORY", ""),
        api_url=env.get("GITHUB_API_URL", "https://api.github.com"),
    )


@click.group("ci")
def ci() -> None:
    """Steps for GitHub Actions: the workflows in .github/workflows call these.

    See docs/github.md for the workflows, the secrets and variables they need, and how the
    state file is kept between runs.
    """


@ci.command("stores")
@click.option(
    "--stores",
    "explicit",
    default="",
    envvar="CATALOG_STORES",
    help="Stores to run for (comma or space separated); overrides settings.stores.",
)
@click.option(
    "--allow-none",
    is_flag=True,
    help="With no store configured, print [] and a warning instead of failing.",
)
@click.pass_obj
def stores(ctx: Context, explicit: str, allow_none: bool) -> None:
    """Print the stores to run for as a JSON list, and set the step output `stores`.

    A workflow input wins, then settings.stores in catalog/catalog.yaml, then the
    LIGHTSPEED_STORE variable.
    """
    try:
        found = resolve_stores(
            explicit=explicit,
            from_settings=settings_stores(ctx.catalog_dir),
            variable=ctx.environ.get("LIGHTSPEED_STORE", ""),
        )
    except ConfigError as exc:
        if not allow_none or str(exc) != NO_STORE_MESSAGE:
            raise
        # An annotation on the run: visible, yet the workflows of a repository that has not
        # been set up yet (like this project's own) do not fail.
        click.echo(f"::warning::{exc}")
        found = []
    doc = json.dumps(found)
    write_outputs(ctx.environ.get("GITHUB_OUTPUT"), {"stores": doc, "count": str(len(found))})
    click.echo(doc)


@ci.group("state")
def state() -> None:
    """Restore and save the state file on a git branch (one commit per apply)."""


def _branch_options(func: Any) -> Any:
    func = click.option(
        "--remote", default="origin", show_default=True, help="Git remote holding the branch."
    )(func)
    func = click.option(
        "--branch",
        default=STATE_BRANCH,
        show_default=True,
        envvar="CATALOG_STATE_BRANCH",
        help="Branch that keeps the state files.",
    )(func)
    func = click.option("--store", required=True, help="Store domain prefix (the state's key).")(
        func
    )
    return func


@state.command("pull")
@_branch_options
@click.pass_obj
def state_pull(ctx: Context, store: str, branch: str, remote: str) -> None:
    """Restore the store's state file (to --state) from the state branch.

    When none was saved yet, nothing is written and the run starts with an empty state: the
    plan then does a full refresh from the store, which costs requests but is never wrong.
    """
    key = check_store_key(store)
    found = StateBranch(repo=Path.cwd(), branch=branch, remote=remote).pull(key, ctx.state_path)
    write_outputs(ctx.environ.get("GITHUB_OUTPUT"), {"restored": "true" if found else "false"})
    if found:
        _note(f"Restored the state of {key} from branch {branch} to {ctx.state_path}.")
    else:
        _note(
            f"No saved state for {key} on branch {branch}: starting empty; "
            "this run does a full refresh from the store."
        )


@state.command("push")
@_branch_options
@click.option("--message", default="", help="Commit message (default names the store and commit).")
@click.option(
    "--missing-ok",
    is_flag=True,
    help="Do nothing when there is no state file (the run failed before making one).",
)
@click.pass_obj
def state_push(
    ctx: Context, store: str, branch: str, remote: str, message: str, missing_ok: bool
) -> None:
    """Save the store's state file (from --state) as one commit on the state branch."""
    key = check_store_key(store)
    if missing_ok and not ctx.state_path.exists():
        _note(f"No state file at {ctx.state_path}: nothing to save for {key}.")
        return
    run = RunInfo.from_environ(ctx.environ)
    if not message:
        message = f"{key}: state after apply of {run.sha[:12] or 'a local run'}"
        if run.run_url:
            message += f"\n\n{run.run_url}"
    snapshot = ctx.state_path.with_name(ctx.state_path.name + ".snapshot")
    try:
        snapshot_state(ctx.state_path, snapshot)
        commit = StateBranch(repo=Path.cwd(), branch=branch, remote=remote).push(
            key, snapshot, message=message
        )
    finally:
        snapshot.unlink(missing_ok=True)
    write_outputs(ctx.environ.get("GITHUB_OUTPUT"), {"commit": commit})
    _note(f"Saved the state of {key} to branch {branch} ({commit[:12]}).")


@ci.command("record")
@click.option("--store", required=True, help="Store domain prefix the plan was made for.")
@click.option(
    "--exit-code",
    type=int,
    required=True,
    help="Exit code of `catalog plan --detailed-exitcode` (0 no changes, 2 changes, 1 error).",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help=f"Directory with {PLAN_MARKDOWN}, {PLAN_JSON} and {PLAN_STDERR}; {RESULT_JSON} is "
    "written there.",
)
@click.option("--artifact", default="", help="Name of the artifact the directory is uploaded as.")
@click.pass_obj
def record(ctx: Context, store: str, exit_code: int, directory: Path, artifact: str) -> None:
    """Record one store's plan: result.json for the comment job, the job summary, and the
    step outputs `status`, `has_changes` and `drift`. Fails when the plan failed."""
    key = check_store_key(store)
    plan_json = _read_json(directory / PLAN_JSON)
    result = make_result(
        store=key,
        exit_code=exit_code,
        plan_json=plan_json if isinstance(plan_json, dict) else None,
        markdown=_read_text(directory / PLAN_MARKDOWN),
        stderr=_read_text(directory / PLAN_STDERR),
        artifact=artifact,
    )
    directory.mkdir(parents=True, exist_ok=True)
    found = redact_json(result.to_json(), env_secrets(ctx.environ))
    (directory / RESULT_JSON).write_text(json.dumps(found, indent=2) + "\n")
    append_summary(
        ctx.environ.get("GITHUB_STEP_SUMMARY"),
        plan_summary(result),
        secrets=env_secrets(ctx.environ),
    )
    write_outputs(
        ctx.environ.get("GITHUB_OUTPUT"),
        {
            "status": str(result.status),
            "has_changes": "true" if result.status is Status.CHANGES else "false",
            "drift": str(result.drift),
        },
    )
    if result.status is Status.ERROR:
        raise CatalogError(f"The plan for store {key} failed: {result.error}")
    _note(f"{key}: {result.headline or str(result.status)}")


@ci.command("record-apply")
@click.option("--store", required=True, help="Store domain prefix the apply was for.")
@click.option("--exit-code", type=int, required=True, help="Exit code of `catalog apply`.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help=f"Directory with {APPLY_JSON} (`catalog apply --format json`) and {APPLY_STDERR}.",
)
@click.pass_obj
def record_apply(ctx: Context, store: str, exit_code: int, directory: Path) -> None:
    """Write one store's apply outcome to the job summary; fail when the apply failed."""
    key = check_store_key(store)
    report = _read_json(directory / APPLY_JSON)
    stderr = _read_text(directory / APPLY_STDERR)
    text = apply_summary(key, exit_code, report if isinstance(report, dict) else None, stderr)
    append_summary(ctx.environ.get("GITHUB_STEP_SUMMARY"), text, secrets=env_secrets(ctx.environ))
    _note(text.removeprefix("### ").strip())
    if exit_code != 0:
        raise CatalogError(f"The apply to store {key} failed (exit {exit_code}); see the summary.")


@ci.command("show-plan")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=Path))
@format_option("text", "markdown", "json", default="json", help="Rendering of the saved plan.")
def show_plan(plan_file: Path, fmt: str) -> None:
    """Print a saved plan (`catalog plan --out`) again, without asking the store anything.

    The workflows use it for the JSON plan artifact beside the markdown one, so one refresh
    serves both. The file is checked as `catalog apply` checks it (digest, format version).
    """
    saved = read_plan(plan_file)
    if fmt == "json":
        sys.stdout.write(render_json(saved))
    elif fmt == "markdown":
        sys.stdout.write(render_markdown(saved))
    else:
        sys.stdout.write(render_text(saved))


def _expected(text: str) -> list[str] | None:
    if not text.strip():
        return None  # not given, or the stores job did not get that far
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"--expected-stores {text!r} is not a JSON list ({exc}).") from exc
    if not isinstance(data, list) or not all(isinstance(s, str) for s in data):
        raise ConfigError(f"--expected-stores {text!r} is not a JSON list of store names.")
    return data


@ci.command("comment")
@click.option(
    "--results",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory holding the stores' plan directories (the downloaded artifacts).",
)
@click.option(
    "--validation",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output of `catalog validate`, shown when validation failed.",
)
@click.option(
    "--validation-outcome",
    type=click.Choice(["success", "failure", "cancelled", "skipped", ""]),
    default="",
    help="The validate step's outcome (steps.<id>.outcome).",
)
@click.option(
    "--expected-stores",
    default="",
    help="JSON list of the stores the run planned for (the stores job's output); a store "
    "without a result is reported as failed, and [] as no store configured.",
)
@click.option("--pr", "pr_number", type=int, help="Pull request number (default: from the event).")
@click.option(
    "--body-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the comment body to this file.",
)
@click.option("--dry-run", is_flag=True, help="Print the body instead of posting it.")
@click.pass_obj
def comment(
    ctx: Context,
    results: Path,
    validation: Path | None,
    validation_outcome: str,
    expected_stores: str,
    pr_number: int | None,
    body_out: Path | None,
    dry_run: bool,
) -> None:
    """Post the plans of all stores as ONE pull-request comment, updated in place.

    The comment starts with a hidden marker; the next run finds it and edits it instead of
    adding another, and removes any duplicate.
    """
    env = ctx.environ
    event_path = env.get("GITHUB_EVENT_PATH", "")
    event = Event.load(event_path) if event_path else None
    body = plan_comment(
        read_results(results),
        validation_failed=validation_outcome == "failure",
        validation_text=_read_text(validation) if validation else "",
        run=RunInfo.from_environ(env),
        sha=event.head_sha if event else None,
        expected=_expected(expected_stores),
    )
    if body_out:
        body_out.write_text(body, encoding="utf-8")
    if dry_run:
        sys.stdout.write(body)
        return
    number = pr_number or (event.pull_request_number if event else None)
    if number is None:
        raise ConfigError(
            "No pull request to comment on: run this on a pull_request event or pass --pr."
        )
    try:
        with _github(ctx) as gh:
            outcome = upsert_comment(gh, number, body, marker=PLAN_MARKER)
    except GitHubError as exc:
        # A pull request from a fork gets a read-only token: say so, keep the check green
        # (the plan itself is in the job summary).
        if exc.status == 403 and event is not None and event.is_fork_pull_request:
            click.echo(
                "::warning::Pull requests from forks get a read-only token, so the plan was not "
                "posted as a comment; it is in the job summary.",
            )
            append_summary(env.get("GITHUB_STEP_SUMMARY"), body, secrets=env_secrets(env))
            return
        raise
    write_outputs(env.get("GITHUB_OUTPUT"), {"comment_id": str(outcome.number or "")})
    extra = (
        f", removed {outcome.removed_duplicates} duplicate(s)" if outcome.removed_duplicates else ""
    )
    _note(f"Plan comment on #{number}: {outcome.outcome}{extra}.")


@ci.command("allow")
@click.option(
    "--sha",
    default="",
    help="On a push: the commit whose pull request's labels count (default: GITHUB_SHA).",
)
@click.pass_obj
def allow(ctx: Context, sha: str) -> None:
    """Guardrails a pull request's labels allow (catalog:allow-price-jump, ...), as the step
    output `rules` (space-separated, for CATALOG_ALLOW).

    On a pull_request event the labels come from the event; on a push (the merge) from the
    pull request that brought the commit, through the API (the job needs `pull-requests:
    read`). Without a pull request, or when its labels cannot be read, nothing is allowed.
    """
    env = ctx.environ
    event = Event.load(env["GITHUB_EVENT_PATH"]) if env.get("GITHUB_EVENT_PATH") else None
    if event is not None and event.pull_request_number is not None:
        labels = event.labels
    else:
        commit = sha or env.get("GITHUB_SHA", "")
        if not commit:
            raise ConfigError("catalog ci allow needs --sha or GITHUB_SHA on a push.")
        try:
            with _github(ctx) as gh:
                labels = gh.pull_request_labels(commit)
        except GitHubError as exc:
            # Allowing nothing is the safe side: a plan that breaks no guardrail still applies.
            click.echo(
                f"::warning::Could not read the pull request's labels ({exc}); no guardrail "
                "is allowed by a label in this run."
            )
            labels = []
    rules = rules_from_labels(labels)
    write_outputs(env.get("GITHUB_OUTPUT"), {"rules": " ".join(str(r) for r in rules)})
    if rules:
        _note(
            "Guardrails allowed by pull-request labels: " + ", ".join(str(r) for r in rules) + "."
        )
    else:
        _note("No pull-request label allows a guardrail.")


@ci.command("drift")
@click.option("--store", required=True, help="Store domain prefix the plan was made for.")
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The plan as JSON (`catalog plan --format json`).",
)
@click.option(
    "--exit-code",
    type=int,
    default=0,
    show_default=True,
    help="Exit code of `catalog plan --detailed-exitcode`; on an error the issue is left as is.",
)
@click.pass_obj
def drift(ctx: Context, store: str, plan_path: Path, exit_code: int) -> None:
    """Open, update or close the store's drift issue from a plan's `drift: true` fields.

    One issue per store, labelled catalog-drift and found by a hidden marker. A failed plan
    proves nothing about drift, so it never closes an issue.
    """
    key = check_store_key(store)
    if exit_code not in (0, 2):
        raise CatalogError(
            f"The drift check for store {key} could not plan (exit {exit_code}); "
            "its drift issue was left unchanged."
        )
    plan_json = _read_json(plan_path)
    if not isinstance(plan_json, dict):
        raise ConfigError(f"{plan_path} holds no plan: run `catalog plan --format json` first.")
    fields = drifted_fields(plan_json)
    with _github(ctx) as gh:
        outcome = sync_drift_issue(
            gh,
            key,
            fields,
            run=RunInfo.from_environ(ctx.environ),
            not_owned=plan_json.get("field_owners") or {},
        )
    count = len(fields)
    summary = (
        f"### Drift in `{key}`: {count} field{'s' if count != 1 else ''} "
        f"(issue {outcome.outcome}{f' #{outcome.number}' if outcome.number else ''}, "
        f"label `{DRIFT_LABEL}`)\n"
        if count
        else f"### No drift in `{key}`\n"
    )
    append_summary(
        ctx.environ.get("GITHUB_STEP_SUMMARY"), summary, secrets=env_secrets(ctx.environ)
    )
    write_outputs(
        ctx.environ.get("GITHUB_OUTPUT"),
        {"drift": str(count), "issue": str(outcome.number or ""), "outcome": str(outcome.outcome)},
    )
    _note(summary.removeprefix("### ").strip())


@ci.command("drift-pr")
@click.option("--store", required=True, help="Store domain prefix the drift check ran for.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The drift job's directory: plan.exit, and after `catalog pull` pull.json, pull.exit "
    "and the pulled catalog in pulled/.",
)
@click.option(
    "--base",
    default="",
    help="Branch the pull request merges into (default: the branch this run checked out).",
)
@click.pass_obj
def drift_pr(ctx: Context, store: str, directory: Path, base: str) -> None:
    """Open, update or close the store's pull request that accepts its drift.

    Puts the catalog `catalog pull` wrote (DIR/pulled) in place of the checkout's, commits it
    on top of the checked-out commit, pushes it to the branch catalog-drift/STORE (rewritten
    each time) and keeps one pull request from that branch; with nothing to accept, closes
    it. A failed plan or pull proves nothing, so the pull request is then left as it is.
    """
    key = check_store_key(store)
    plan_exit = _read_text(directory / "plan.exit").strip()
    if plan_exit not in ("0", "2"):
        raise CatalogError(
            f"The drift check for store {key} could not plan (exit {plan_exit or 'unknown'}); "
            "its drift pull request was left unchanged."
        )
    pull_json = _read_json(directory / "pull.json") if plan_exit == "2" else None
    if plan_exit == "2" and not isinstance(pull_json, dict):
        pull_exit = _read_text(directory / "pull.exit").strip() or "unknown"
        raise CatalogError(
            f"`catalog pull` failed for store {key} (exit {pull_exit}); its drift pull request "
            "was left unchanged."
        )
    run = RunInfo.from_environ(ctx.environ)
    pushed = None
    count = 0
    if isinstance(pull_json, dict) and pull_json.get("files"):
        count = len(pull_json.get("changes") or [])
        shutil.rmtree(ctx.catalog_dir)
        shutil.copytree(directory / "pulled", ctx.catalog_dir)
        pushed = push_catalog(
            Path.cwd(),
            catalog_dir=str(ctx.catalog_dir),
            branch=drift_pr_branch(key),
            message=f"Accept the store's values for {count} catalog field"
            f"{'s' if count != 1 else ''} ({key})",
        )
    target = base or ctx.environ.get("GITHUB_REF_NAME", "") or "main"
    body = drift_pr_body(key, pull_json, run=run) if pushed and isinstance(pull_json, dict) else ""
    with _github(ctx) as gh:
        outcome = sync_drift_pull_request(
            gh, key, pushed=pushed is not None, base=target, body=body, run=run
        )
    number = f" #{outcome.number}" if outcome.number else ""
    summary = (
        f"### Drift in `{key}`: pull request{number} {outcome.outcome} with {count} value"
        f"{'s' if count != 1 else ''} from the store\n"
        if pushed
        else f"### Nothing to accept from `{key}` (pull request: {outcome.outcome})\n"
    )
    append_summary(ctx.environ.get("GITHUB_STEP_SUMMARY"), summary)
    write_outputs(
        ctx.environ.get("GITHUB_OUTPUT"),
        {"pull-request": str(outcome.number or ""), "outcome": str(outcome.outcome)},
    )
    _note(summary.removeprefix("### ").strip())


# The Actions secret a rotated R-Series refresh token is written back to, and the token that
# may write it (GITHUB_TOKEN cannot write secrets).
REFRESH_SECRET = "LIGHTSPEED_REFRESH_TOKEN"
SECRETS_TOKEN = "CATALOG_SECRETS_TOKEN"
# Where the R-Series provider keeps rotated tokens when LIGHTSPEED_TOKEN_FILE is not set.
TOKEN_FILE_NAME = "rseries-tokens.json"


@ci.command("keep-refresh-token")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="LIGHTSPEED_TOKEN_FILE",
    default=None,
    help=f"The R-Series token file (default: {TOKEN_FILE_NAME} beside --state).",
)
@click.option(
    "--environment",
    default=None,
    help="Update the secret of this GitHub environment (the store's); default: the "
    "repository's secret.",
)
@click.pass_obj
def keep_refresh_token(ctx: Context, token_file: Path | None, environment: str | None) -> None:
    """After an R-Series run: save a rotated refresh token to the LIGHTSPEED_REFRESH_TOKEN secret.

    R-Series refresh tokens rotate, and the old one stops working once the new one is used,
    so a run that refreshed must hand the new one to the next run. It is sealed with the
    secret's public key and written through GitHub's REST API with CATALOG_SECRETS_TOKEN (a
    fine-grained token allowed to write secrets; docs/github.md). Nothing is done when the
    token did not rotate. The token is never printed.
    """
    path = token_file or ctx.state_path.parent / TOKEN_FILE_NAME
    newest = rotated_refresh_token(path, ctx.environ.get(REFRESH_SECRET, "").strip())
    outputs = ctx.environ.get("GITHUB_OUTPUT")
    if newest is None:
        write_outputs(outputs, {"rotated": "false"})
        _note("The R-Series refresh token did not rotate in this run: nothing to save.")
        return
    where = f"environment {environment!r}" if environment else "the repository"
    token = ctx.environ.get(SECRETS_TOKEN, "").strip()
    if not token:
        raise ConfigError(
            f"The R-Series refresh token rotated in this run but {SECRETS_TOKEN} is not set, so "
            f"the new one cannot be saved to {REFRESH_SECRET} of {where} and the old one no "
            f"longer works: add a fine-grained token that may write secrets as {SECRETS_TOKEN} "
            "(docs/github.md), then authorize the app again and set the new refresh token."
        )
    github = GitHub(
        token=token,
        repository=ctx.environ.get("GITHUB_REPOSITORY", ""),
        api_url=ctx.environ.get("GITHUB_API_URL", "https://api.github.com"),
    )
    with github:
        try:
            github.set_secret(REFRESH_SECRET, newest, environment=environment)
        except GitHubError as exc:
            if exc.status not in (401, 403, 404):
                raise
            raise GitHubError(
                f"Saving the rotated R-Series refresh token to {REFRESH_SECRET} of {where} was "
                f"refused ({exc.status}): give {SECRETS_TOKEN} write access to this "
                "repository's secrets (fine-grained: Secrets, and Environments for environment "
                "secrets, read and write), then authorize the app again and set the new refresh "
                "token.",
                status=exc.status,
            ) from None
    write_outputs(outputs, {"rotated": "true"})
    _note(f"Saved the rotated R-Series refresh token to {REFRESH_SECRET} of {where}.")
