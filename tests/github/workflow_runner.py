"""Run our workflow files locally, step by step, the way a GitHub runner would.

Not a general Actions emulator: it does what our workflows use, and refuses anything else
(an unknown expression, context, function or action fails loudly), so a workflow change that
this cannot vouch for breaks the test instead of being skipped.

- Jobs run in file order, honouring `needs`, job `if:`, `strategy.matrix` (one run per value,
  each in a fresh workspace: a new runner) and job `outputs`.
- `run:` steps run with `bash --noprofile --norc -eo pipefail` (what `shell: bash` means) in the
  job's workspace, with GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files per step, GITHUB_EVENT_PATH,
  GITHUB_* coordinates, and the workflow, job and step `env:` with `${{ }}` evaluated.
- `${{ }}` expressions: contexts github, env, vars, secrets, inputs, matrix, steps, needs;
  functions always(), success(), failure(), cancelled(), fromJSON(); operators == != && || !.
  Environment-level `vars` and `secrets` override the repository's, as on GitHub.
- Actions are stand-ins: checkout clones the bare "origin" at the run's ref; setup-python is the
  running interpreter; upload/download-artifact copy into this run's artifact store.
- The step with id `install` (pip install of the package) is skipped: the package under test is
  already installed in this interpreter's environment, whose bin/ is first on PATH.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from gh_helpers import parse_github_output

BIN = Path(sys.executable).parent


@dataclass
class StepResult:
    id: str | None
    name: str
    outcome: str  # success | failure | skipped
    outputs: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0


@dataclass
class JobResult:
    job_id: str
    matrix: dict[str, Any]
    result: str  # success | failure | skipped
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)
    summary: str = ""
    workspace: Path | None = None

    def step(self, key: str) -> StepResult:
        for step in self.steps:
            if key in (step.id, step.name):
                return step
        raise KeyError(key)

    def log(self) -> str:
        return "\n".join(f"--- {s.name} [{s.outcome}]\n{s.stdout}{s.stderr}" for s in self.steps)


# --- expressions ---------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||[!().,\[\]])"
    r"|(?P<id>[A-Za-z_][A-Za-z0-9_-]*))"
)


class Expression:
    """A recursive-descent evaluator for the expression subset our workflows use."""

    def __init__(self, text: str, context: dict[str, Any], status: dict[str, bool]) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if not match or match.end() == pos:
                raise ValueError(f"cannot read expression {text!r} at {pos}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.i = 0
        self.context = context
        self.status = status

    def evaluate(self) -> Any:
        value = self._or()
        if self.i != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.i]!r}")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.tokens[self.i]
        if expected is not None and token[1] != expected:
            raise ValueError(f"expected {expected!r}, got {token[1]!r}")
        self.i += 1
        return token

    def _or(self) -> Any:
        value = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            value = value if truthy(value) else right
        return value

    def _and(self) -> Any:
        value = self._compare()
        while self._peek() == "&&":
            self._take()
            right = self._compare()
            value = right if truthy(value) else value
        return value

    def _compare(self) -> Any:
        left = self._unary()
        if self._peek() in ("==", "!="):
            op = self._take()[1]
            equal = loose_equal(left, self._unary())
            return equal if op == "==" else not equal
        return left

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not truthy(self._unary())
        return self._primary()

    def _primary(self) -> Any:
        kind, text = self._take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text) if "." in text else int(text)
        if text == "(":
            value = self._or()
            self._take(")")
            return value
        if kind != "id":
            raise ValueError(f"unexpected {text!r}")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self._peek() == "(":
            return self._call(text)
        if text not in self.context:
            raise ValueError(f"unknown context {text!r}")
        value: Any = self.context[text]
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                key: Any = self._take()[1]
            else:
                key = self._or()
                self._take("]")
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def _call(self, name: str) -> Any:
        self._take("(")
        args = []
        while self._peek() != ")":
            args.append(self._or())
            if self._peek() == ",":
                self._take()
        self._take(")")
        if name in ("always", "success", "failure", "cancelled"):
            return True if name == "always" else self.status[name]
        if name.lower() == "fromjson":
            return json.loads(args[0])
        raise ValueError(f"unsupported function {name}()")


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", [])


def loose_equal(a: Any, b: Any) -> bool:
    # GitHub compares strings case-insensitively and coerces a string to a number to compare
    # with a number.
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if (isinstance(a, int | float) and isinstance(b, str)) or (
        isinstance(b, int | float) and isinstance(a, str)
    ):
        try:
            return float(a) == float(b)
        except ValueError:
            return False
    return bool(a == b)


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


_INTERPOLATION = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def interpolate(value: Any, context: dict[str, Any], status: dict[str, bool]) -> Any:
    if not isinstance(value, str):
        return value
    whole = _INTERPOLATION.fullmatch(value.strip())
    if whole:
        return Expression(whole.group(1), context, status).evaluate()
    return _INTERPOLATION.sub(
        lambda m: as_text(Expression(m.group(1), context, status).evaluate()), value
    )


def condition(text: Any, context: dict[str, Any], status: dict[str, bool]) -> bool:
    if text is None:
        text = "success()"
    expr = str(text).strip()
    if expr.startswith("${{") and expr.endswith("}}"):
        expr = expr[3:-2]
    # Without a status function GitHub implies `success() && (...)`.
    if not re.search(r"\b(always|success|failure|cancelled)\(\)", expr):
        expr = f"success() && ({expr})"
    return truthy(Expression(expr, context, status).evaluate())


# --- the runner ----------------------------------------------------------------------------------


@dataclass
class LocalRunner:
    """One workflow run: its event, repository settings and artifact store."""

    root: Path  # scratch space for this run (workspaces, artifacts, runner files)
    origin: Path  # the bare repository standing in for GitHub's
    ref: str  # the branch the run checks out
    event_name: str
    event: dict[str, Any]
    variables: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    environments: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. GITHUB_API_URL of a fake
    run_id: str = "1"
    repository: str = "acme/catalog"
    github_token: str = "ghs_test_token"

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.artifacts = self.root / "artifacts"
        self.artifacts.mkdir(exist_ok=True)
        self.event_path = self.root / "event.json"
        self.event_path.write_text(json.dumps(self.event))
        self._jobs = 0
        self.sha = subprocess.run(
            ["git", "rev-parse", f"refs/heads/{self.ref}"],
            cwd=self.origin,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def run(self, workflow_file: Path) -> dict[str, list[JobResult]]:
        workflow = yaml.safe_load(workflow_file.read_text(encoding="utf-8"))
        results: dict[str, list[JobResult]] = {}
        for job_id, job in workflow["jobs"].items():
            needs = job.get("needs", [])
            needs = [needs] if isinstance(needs, str) else list(needs)
            missing = [n for n in needs if n not in results]
            assert not missing, f"job {job_id} needs {missing}, which come later in the file"
            needs_ctx = {
                n: {"result": aggregate(results[n]), "outputs": merged_outputs(results[n])}
                for n in needs
            }
            ok = all(v["result"] == "success" for v in needs_ctx.values())
            status = {"success": ok, "failure": not ok, "cancelled": False}
            context = self._context(workflow, needs=needs_ctx)
            if not condition(job.get("if"), context, status):
                results[job_id] = [JobResult(job_id, {}, "skipped")]
                continue
            combos = self._matrix(job, context, status)
            results[job_id] = [
                self._run_job(workflow, job_id, job, matrix, needs_ctx) for matrix in combos
            ]
        return results

    def _context(self, workflow: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "github": {
                "token": self.github_token,
                "event": self.event,
                "event_name": self.event_name,
                "repository": self.repository,
                "sha": self.sha,
                "ref": f"refs/heads/{self.ref}",
                "run_id": self.run_id,
            },
            "vars": dict(self.variables),
            "secrets": dict(self.secrets),
            "inputs": dict(self.inputs),
            "env": dict(workflow.get("env", {})),
            "matrix": {},
            "steps": {},
            "needs": {},
            **extra,
        }

    def _matrix(
        self, job: dict[str, Any], context: dict[str, Any], status: dict[str, bool]
    ) -> list[dict[str, Any]]:
        matrix = job.get("strategy", {}).get("matrix")
        if matrix is None:
            return [{}]
        axes = {k: interpolate(v, context, status) for k, v in matrix.items()}
        for name, values in axes.items():
            assert isinstance(values, list) and values, f"matrix {name} is {values!r}"
        keys = list(axes)
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes.values())]

    def _run_job(
        self,
        workflow: dict[str, Any],
        job_id: str,
        job: dict[str, Any],
        matrix: dict[str, Any],
        needs: dict[str, Any],
    ) -> JobResult:
        self._jobs += 1
        runner_dir = self.root / f"job{self._jobs}-{job_id}"
        workspace = runner_dir / "workspace"
        temp = runner_dir / "temp"
        workspace.mkdir(parents=True)
        temp.mkdir()
        context = self._context(workflow, matrix=matrix, needs=needs)
        environment = interpolate(job.get("environment"), context, {"success": True})
        if environment:
            scoped = self.environments.get(str(environment), {})
            context["vars"] = {**context["vars"], **scoped.get("vars", {})}
            context["secrets"] = {**context["secrets"], **scoped.get("secrets", {})}
        status = {"success": True, "failure": False, "cancelled": False}
        job_env = {
            k: as_text(interpolate(v, context, status)) for k, v in job.get("env", {}).items()
        }
        context["env"] = {**context["env"], **job_env}
        result = JobResult(job_id, matrix, "success", workspace=workspace)
        summaries: list[str] = []
        for index, step in enumerate(job["steps"]):
            name = step.get("name") or step.get("uses") or step["run"].splitlines()[0]
            step_status = {
                "success": result.result == "success",
                "failure": result.result == "failure",
                "cancelled": False,
            }
            if not condition(step.get("if"), context, step_status):
                outcome = StepResult(step.get("id"), name, "skipped")
            else:
                step_env = {
                    k: as_text(interpolate(v, context, step_status))
                    for k, v in step.get("env", {}).items()
                }
                env_ctx = {**context["env"], **step_env}
                files = runner_dir / f"step{index}"
                files.mkdir()
                output, summary = files / "output", files / "summary.md"
                output.write_text("")
                summary.write_text("")
                if "uses" in step:
                    with_ = {
                        k: as_text(interpolate(v, {**context, "env": env_ctx}, step_status))
                        for k, v in step.get("with", {}).items()
                    }
                    outcome = self._action(step, name, with_, workspace)
                elif step.get("id") == "install":
                    assert "pip install" in step["run"] and "$CATALOG_PACKAGE" in step["run"]
                    outcome = StepResult("install", name, "success")
                else:
                    env = self._process_env(workspace, temp, output, summary, env_ctx)
                    outcome = self._shell(step, name, env, workspace, files)
                outcome.outputs = parse_github_output(output.read_text())
                summaries.append(summary.read_text())
            result.steps.append(outcome)
            if step.get("id"):
                context["steps"][step["id"]] = {
                    "outcome": outcome.outcome,
                    "conclusion": outcome.outcome,
                    "outputs": outcome.outputs,
                }
            if outcome.outcome == "failure":
                result.result = "failure"
        result.summary = "".join(summaries)
        final = {"success": True, "failure": False, "cancelled": False}
        result.outputs = {
            k: as_text(interpolate(v, context, final)) for k, v in job.get("outputs", {}).items()
        }
        return result

    def _process_env(
        self, workspace: Path, temp: Path, output: Path, summary: Path, env: dict[str, str]
    ) -> dict[str, str]:
        # A runner's environment, built from scratch: nothing of the test process leaks in
        # (no LIGHTSPEED_* or CATALOG_* from the developer's shell).
        base = {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", str(temp)),
            "LANG": "C.UTF-8",
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": self.event_name,
            "GITHUB_EVENT_PATH": str(self.event_path),
            "GITHUB_REPOSITORY": self.repository,
            "GITHUB_RUN_ID": self.run_id,
            "GITHUB_SHA": self.sha,
            "GITHUB_REF": f"refs/heads/{self.ref}",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            "RUNNER_TEMP": str(temp),
        }
        return {**base, **self.extra_env, **env}

    def _shell(
        self, step: dict[str, Any], name: str, env: dict[str, str], cwd: Path, files: Path
    ) -> StepResult:
        script = files / "script.sh"
        script.write_text(step["run"])
        started = time.monotonic()
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        outcome = "success" if proc.returncode == 0 else "failure"
        return StepResult(
            step.get("id"),
            name,
            outcome,
            stdout=proc.stdout,
            stderr=proc.stderr,
            seconds=time.monotonic() - started,
        )

    def _action(
        self, step: dict[str, Any], name: str, with_: dict[str, str], workspace: Path
    ) -> StepResult:
        action = step["uses"].split("@")[0]
        if action == "actions/checkout":
            subprocess.run(
                ["git", "clone", "-q", "--branch", self.ref, str(self.origin), str(workspace)],
                check=True,
                capture_output=True,
            )
            return StepResult(step.get("id"), name, "success")
        if action == "actions/setup-python":
            assert with_.get("python-version") == "3.11"
            return StepResult(step.get("id"), name, "success")
        if action == "actions/upload-artifact":
            source = workspace / with_["path"]
            target = self.artifacts / with_["name"]
            if target.exists():  # artifact names are unique within a run (v4+ refuses)
                return StepResult(step.get("id"), name, "failure", stderr="artifact exists")
            if not source.exists():
                ok = with_.get("if-no-files-found") == "ignore"
                return StepResult(step.get("id"), name, "success" if ok else "failure")
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                target.mkdir()
                shutil.copy2(source, target / source.name)
            return StepResult(step.get("id"), name, "success")
        if action == "actions/download-artifact":
            dest = workspace / with_.get("path", ".")
            if with_.get("name"):
                shutil.copytree(self.artifacts / with_["name"], dest, dirs_exist_ok=True)
            else:
                for artifact in sorted(self.artifacts.iterdir()):
                    shutil.copytree(artifact, dest / artifact.name, dirs_exist_ok=True)
            return StepResult(step.get("id"), name, "success")
        raise AssertionError(f"no stand-in for action {action}")


def aggregate(jobs: list[JobResult]) -> str:
    results = {j.result for j in jobs}
    if "failure" in results:
        return "failure"
    if results == {"skipped"}:
        return "skipped"
    return "success"


def merged_outputs(jobs: list[JobResult]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for job in jobs:
        merged.update({k: v for k, v in job.outputs.items() if v})
    return merged
