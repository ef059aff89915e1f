"""The glue between the `catalog` commands and GitHub Actions.

The workflows in `.github/workflows/` call `catalog ci ...` (reconciler/cli/ci.py), which is a
thin layer over this module. It has four parts, each small:

- Pure text: the hidden markers that identify our comment and issues, fitting a body into
  GitHub's size limits without breaking its markdown, and composing the pull-request comment,
  the job summary and the drift issue from plan results.
- Runner files: the event payload (`GITHUB_EVENT_PATH`), step outputs (`GITHUB_OUTPUT`) and the
  job summary (`GITHUB_STEP_SUMMARY`). Paths and values come in as parameters: nothing here reads
  `os.environ` (the CLI does, once).
- GitHub's REST API over httpx with an injectable transport, so tests use a fake API
  (`httpx.MockTransport` or a local server) and never the network.
- State persistence: the SQLite state file kept on a dedicated git branch, one commit per
  apply, written with git plumbing so the working tree and index of the checkout are untouched.

Invariant kept throughout: nothing here ever sees the Lightspeed token, and the GitHub token is
only ever a request header.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import yaml

from reconciler import ownership
from reconciler.errors import ConfigError, GitError, GitHubError, redact
from reconciler.guardrails import LABEL_PREFIX
from reconciler.model import Json
from reconciler.render import duration
from reconciler.state import State

# GitHub rejects an issue or comment body longer than this many characters (HTTP 422).
COMMENT_LIMIT = 65_536
# A step's job summary may be at most 1 MiB; past that GitHub drops it with an error annotation.
SUMMARY_LIMIT = 1_048_576
# GitHub refuses a pushed file over 100 MB and warns over 50 MB.
GIT_FILE_LIMIT = 100 * 1024 * 1024

PLAN_MARKER = "<!-- lightspeed-catalog:plan -->"
DRIFT_LABEL = "catalog-drift"
DRIFT_BRANCH_PREFIX = "catalog-drift/"
STATE_BRANCH = "catalog-state"
STATE_FILE_NAME = "state.db"
BOT_IDENTITY = ("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")

# A store key is a Lightspeed domain prefix (the part before .retail.lightspeed.app). It names
# a matrix job, a concurrency group, an environment and a path on the state branch, so it must
# be safe in all of them.
STORE_KEY = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def drift_marker(store: str) -> str:
    return f"<!-- lightspeed-catalog:drift store={store} -->"


def check_store_key(store: str) -> str:
    key = store.strip().lower()
    if not STORE_KEY.match(key):
        raise ConfigError(
            f"Store {store!r} is not a Lightspeed domain prefix: use lowercase letters, digits "
            "and dashes, e.g. 'acme' for acme.retail.lightspeed.app."
        )
    return key


# ---------------------------------------------------------------------------------------------
# Fitting text into GitHub's limits
# ---------------------------------------------------------------------------------------------


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _closers(text: str) -> str:
    """What to append so a cut-off markdown prefix still renders: open code fences and
    `<details>` blocks are closed, otherwise the note after them would render as code."""
    fence_open = False
    details = 0
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fence_open = not fence_open
        elif not fence_open:
            details += stripped.count("<details") - stripped.count("</details>")
    out = ""
    if fence_open:
        out += "```\n"
    out += "</details>\n" * max(details, 0)
    return out


def fit(text: str, *, limit: int, note: str, measure: Callable[[str], int] = len) -> str:
    """`text` unchanged if it fits in `limit` (as counted by `measure`); otherwise its longest
    whole-line prefix that fits together with closing fences/details and `note`.

    `measure` is `len` for comment and issue bodies (GitHub counts characters) and `utf8_len`
    for the job summary (GitHub counts bytes).
    """
    if measure(text) <= limit:
        return text
    tail_note = f"\n{note}\n"
    if measure(tail_note) > limit:
        raise ValueError("the truncation note alone is longer than the limit")
    lines = text.splitlines(keepends=True)
    # Cumulative sizes, then step back from the largest prefix that could fit; only a few
    # steps are ever needed because the closers are short.
    sizes: list[int] = []
    total = 0
    for line in lines:
        total += measure(line)
        sizes.append(total)
    budget = limit - measure(tail_note)
    count = 0
    while count < len(lines) and sizes[count] <= budget:
        count += 1
    while count > 0:
        prefix = "".join(lines[:count])
        if not prefix.endswith("\n"):
            prefix += "\n"
        candidate = prefix + _closers(prefix) + tail_note
        if measure(candidate) <= limit:
            return candidate
        count -= 1
    # Not even the first line fits: cut it by characters (a pathological single huge line).
    first = lines[0] if lines else ""
    keep = len(first)
    while keep > 0 and measure(first[:keep] + "\n" + tail_note) > limit:
        keep = keep * 3 // 4
    return (first[:keep] + "\n" if keep else "") + tail_note


# ---------------------------------------------------------------------------------------------
# Runner files: event payload, step outputs, job summary
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """The parts of the triggering event the glue needs (`GITHUB_EVENT_PATH`'s JSON)."""

    data: Mapping[str, Json]

    @staticmethod
    def load(path: str | Path) -> Event:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Cannot read the GitHub event file {path}: {exc}.") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"The GitHub event file {path} does not hold a JSON object.")
        return Event(data)

    @property
    def pull_request_number(self) -> int | None:
        pr = self.data.get("pull_request")
        if isinstance(pr, dict) and isinstance(pr.get("number"), int):
            return int(pr["number"])
        # issue_comment events on a pull request carry the number on the issue
        issue = self.data.get("issue")
        if (
            isinstance(issue, dict)
            and "pull_request" in issue
            and isinstance(issue.get("number"), int)
        ):
            return int(issue["number"])
        return None

    @property
    def is_fork_pull_request(self) -> bool:
        """A pull request from a fork: its GITHUB_TOKEN is read-only, so no comment can be
        posted and secrets are not passed."""
        pr = self.data.get("pull_request")
        if not isinstance(pr, dict):
            return False
        head = (pr.get("head") or {}).get("repo") or {}
        base = (pr.get("base") or {}).get("repo") or {}
        head_name, base_name = head.get("full_name"), base.get("full_name")
        return bool(head_name and base_name and head_name != base_name)

    @property
    def labels(self) -> list[str]:
        """The pull request's label names (what allows a guardrail in CI)."""
        pr = self.data.get("pull_request")
        items = pr.get("labels") if isinstance(pr, dict) else None
        return [str(x["name"]) for x in items or [] if isinstance(x, dict) and "name" in x]

    @property
    def head_sha(self) -> str | None:
        pr = self.data.get("pull_request")
        if isinstance(pr, dict):
            sha = (pr.get("head") or {}).get("sha")
            if isinstance(sha, str):
                return sha
        after = self.data.get("after")
        return after if isinstance(after, str) else None


def _output_line(name: str, value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
        raise ValueError(f"bad output name {name!r}")
    if "\n" not in value and "\r" not in value:
        return f"{name}={value}\n"
    # Multi-line values use GitHub's heredoc syntax with a delimiter the value cannot contain,
    # so a value can never inject another output.
    while True:
        delimiter = f"ghadelimiter_{secrets.token_hex(8)}"
        if delimiter not in value:
            break
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def write_outputs(path: str | Path | None, outputs: Mapping[str, str]) -> None:
    """Append step outputs to the `GITHUB_OUTPUT` file (no-op outside Actions: path None)."""
    if not path:
        return
    with open(path, "a", encoding="utf-8") as handle:
        for name, value in outputs.items():
            handle.write(_output_line(name, value))


def append_summary(path: str | Path | None, markdown: str, *, secrets: Iterable[str] = ()) -> str:
    """Append `markdown` to the job summary file, cut to what one step may add (1 MiB less what
    this step already wrote), without any of `secrets` or any Authorization value in it (the
    summary quotes files an earlier step wrote). Returns what was written."""
    if not path:
        return ""
    markdown = redact(markdown, secrets)
    target = Path(path)
    used = target.stat().st_size if target.exists() else 0
    text = markdown if markdown.endswith("\n") else markdown + "\n"
    room = SUMMARY_LIMIT - used
    note = "_The summary was cut here to fit GitHub's 1 MiB limit; see the artifacts._"
    if room <= utf8_len(note) + 2:
        return ""
    text = fit(text, limit=room, note=note, measure=utf8_len)
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(text)
    return text


@dataclass(frozen=True)
class RunInfo:
    """Where this run lives, for the links in comments and issues (all optional)."""

    server_url: str = "https://github.com"
    repository: str = ""
    run_id: str = ""
    sha: str = ""

    @staticmethod
    def from_environ(environ: Mapping[str, str]) -> RunInfo:
        return RunInfo(
            server_url=environ.get("GITHUB_SERVER_URL", "https://github.com"),
            repository=environ.get("GITHUB_REPOSITORY", ""),
            run_id=environ.get("GITHUB_RUN_ID", ""),
            sha=environ.get("GITHUB_SHA", ""),
        )

    @property
    def run_url(self) -> str:
        if not (self.repository and self.run_id):
            return ""
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"

    def footer(self, sha: str | None = None) -> str:
        parts = []
        commit = sha or self.sha
        if commit:
            parts.append(f"commit `{commit[:7]}`")
        if self.run_url:
            parts.append(f"[workflow run]({self.run_url})")
        return " · ".join(parts)


# ---------------------------------------------------------------------------------------------
# Plan results: what one store's plan job produced, and the texts made from them
# ---------------------------------------------------------------------------------------------


class Status(StrEnum):
    NO_CHANGES = "no-changes"
    CHANGES = "changes"
    ERROR = "error"


# The order a reader expects: what appears, what changes, what goes away.
_ACTION_WORDS = [
    ("create", "to create"),
    ("update", "to update"),
    ("adopt", "to adopt"),
    ("deactivate", "to deactivate"),
    ("delete", "to delete"),
]


def status_from_exit_code(code: int) -> Status:
    """`catalog plan --detailed-exitcode`: 0 no changes, 2 changes, anything else an error."""
    if code == 0:
        return Status.NO_CHANGES
    if code == 2:
        return Status.CHANGES
    return Status.ERROR


def headline(plan_json: Mapping[str, Json] | None) -> str:
    """ "2 to create, 1 to update (14 requests, about 3 s)" from a plan's JSON."""
    if not plan_json:
        return ""
    summary = plan_json.get("summary") or {}
    words = [f"{summary[action]} {text}" for action, text in _ACTION_WORDS if summary.get(action)]
    if not words:
        return ""
    estimate = plan_json.get("estimate") or {}
    requests, seconds = estimate.get("requests"), estimate.get("seconds")
    cost = ""
    if isinstance(requests, int):
        cost = f" ({requests} request{'s' if requests != 1 else ''}"
        if isinstance(seconds, int | float):
            cost += f", about {duration(float(seconds))}"
        cost += ")"
    return ", ".join(words) + cost


@dataclass(frozen=True)
class DriftedField:
    kind: str
    key: str
    field: str
    live: Json  # what the store has now (someone changed it there)
    catalog: Json  # what the catalog declares (what apply would write back)


def drifted_fields(plan_json: Mapping[str, Json]) -> list[DriftedField]:
    """Every field the plan marks `drift: true`, parents before their variants and images."""
    found: list[DriftedField] = []

    def walk(change: Mapping[str, Json]) -> None:
        for fc in change.get("fields") or []:
            if fc.get("drift"):
                found.append(
                    DriftedField(
                        kind=str(change.get("kind", "")),
                        key=str(change.get("key", "")),
                        field=str(fc.get("field", "")),
                        live=fc.get("before"),
                        catalog=fc.get("after"),
                    )
                )
        for child in change.get("children") or []:
            walk(child)

    for top in plan_json.get("changes") or []:
        walk(top)
    return found


@dataclass(frozen=True)
class StoreResult:
    """One store's plan as the plan job recorded it (`result.json` beside `plan.md`)."""

    store: str
    status: Status
    headline: str = ""
    markdown: str = ""  # the plan rendered by `catalog plan --format markdown`
    error: str = ""  # the command's error sentence when status is ERROR
    drift: int = 0  # how many fields drifted
    artifact: str = ""  # the artifact holding the saved and JSON plans
    guardrails: tuple[str, ...] = ()  # rules the plan breaks that nothing allows yet
    broken: int = 0  # how many changes break them

    def to_json(self) -> dict[str, Json]:
        return {
            "store": self.store,
            "status": str(self.status),
            "headline": self.headline,
            "error": self.error,
            "drift": self.drift,
            "artifact": self.artifact,
            "guardrails": list(self.guardrails),
            "broken": self.broken,
        }

    @staticmethod
    def from_json(data: Mapping[str, Json], *, markdown: str = "") -> StoreResult:
        return StoreResult(
            store=str(data["store"]),
            status=Status(data["status"]),
            headline=str(data.get("headline") or ""),
            markdown=markdown,
            error=str(data.get("error") or ""),
            drift=int(data.get("drift") or 0),
            artifact=str(data.get("artifact") or ""),
            guardrails=tuple(str(r) for r in data.get("guardrails") or ()),
            broken=int(data.get("broken") or 0),
        )


def make_result(
    *,
    store: str,
    exit_code: int,
    plan_json: Mapping[str, Json] | None,
    markdown: str,
    stderr: str,
    artifact: str = "",
) -> StoreResult:
    status = status_from_exit_code(exit_code)
    broken = unallowed_violations(plan_json) if status is Status.CHANGES else []
    error = ""
    if status is Status.ERROR:
        error = error_sentence(stderr) or f"catalog plan exited with code {exit_code}."
    return StoreResult(
        store=store,
        status=status,
        headline=headline(plan_json) if status is Status.CHANGES else "",
        markdown=markdown if status is not Status.ERROR else "",
        error=error,
        drift=len(drifted_fields(plan_json)) if plan_json else 0,
        artifact=artifact,
        guardrails=tuple(sorted({str(v.get("rule")) for v in broken})),
        broken=len(broken),
    )


def unallowed_violations(plan_json: Mapping[str, Json] | None) -> list[Mapping[str, Json]]:
    """The plan's guardrail violations that neither the catalog nor a label allows."""
    guarded = (plan_json or {}).get("guardrails") or {}
    return [
        v
        for v in guarded.get("violations") or []
        if isinstance(v, dict) and v.get("allowed") is None
    ]


def allow_labels(rules: Iterable[str]) -> str:
    return ", ".join(f"`{LABEL_PREFIX}{r}`" for r in rules)


def error_sentence(stderr: str) -> str:
    """The CLI's one-sentence error ("Error: ...") from a command's stderr, if any."""
    for line in reversed(stderr.splitlines()):
        if line.startswith("Error:"):
            return line.removeprefix("Error:").strip()
    return ""


RESULT_JSON = "result.json"  # what `catalog ci record` leaves beside the plan's markdown


def read_results(root: Path) -> list[StoreResult]:
    """Every recorded store result under `root` (one directory per downloaded artifact,
    `result.json` beside `plan.md`), by store. Unreadable ones are skipped: the comment then
    reports that store as having left no result."""
    results = []
    for path in sorted(root.rglob(RESULT_JSON)) if root.exists() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            markdown_path = path.parent / "plan.md"
            markdown = markdown_path.read_text(encoding="utf-8") if markdown_path.exists() else ""
            results.append(StoreResult.from_json(data, markdown=markdown))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(results, key=lambda r: r.store)


def _store_heading(result: StoreResult) -> str:
    if result.status is Status.NO_CHANGES:
        return f"### ✅ `{result.store}`: no changes\nThe store already matches the catalog."
    if result.status is Status.CHANGES:
        line = f"### 📝 `{result.store}`: {result.headline or 'changes'}"
        if result.broken:
            n = result.broken
            line += (
                f"\n> [!CAUTION]\n> {n} change{'s break' if n != 1 else ' breaks'} a guardrail "
                f"({', '.join(result.guardrails)}): merging applies nothing to this store "
                f"unless allowed. If it is intended, add the label "
                f"{allow_labels(result.guardrails)} to this pull request."
            )
        if result.drift:
            what = "1 field was" if result.drift == 1 else f"{result.drift} fields were"
            line += (
                f"\n> [!WARNING]\n> {what} changed in the store outside the catalog; "
                "applying overwrites them."
            )
        return line
    return f"### ❌ `{result.store}`: plan failed\n{result.error}"


def store_section(result: StoreResult, *, limit: int) -> str:
    """One store's part of the comment or summary, its plan cut to `limit` characters."""
    head = _store_heading(result) + "\n"
    if result.status is not Status.CHANGES or not result.markdown.strip():
        return head
    where = f" `{result.artifact}`" if result.artifact else ""
    note = (
        f"_The plan is too long for a comment and was cut here: the whole plan is in the job "
        f"summary and in the artifact{where}._"
    )
    room = max(
        limit - len(head) - len("\n<details open><summary>Plan</summary>\n\n\n</details>\n"), 200
    )
    markdown = result.markdown.strip()
    # The section has its own heading (the store's); the plan's own title would repeat it.
    first, _, rest = markdown.partition("\n")
    if first.startswith("#"):
        markdown = rest.strip()
    body = fit(markdown + "\n", limit=room, note=note)
    return f"{head}\n<details open><summary>Plan</summary>\n\n{body}\n</details>\n"


def plan_comment(
    results: Sequence[StoreResult],
    *,
    validation_failed: bool = False,
    validation_text: str = "",
    run: RunInfo | None = None,
    sha: str | None = None,
    expected: Sequence[str] | None = None,
    limit: int = COMMENT_LIMIT,
) -> str:
    """The one pull-request comment: the marker first (that is how the next run finds it), a
    line per store saying clearly whether anything changes, then each store's plan.

    `expected` are the stores the run meant to plan: one without a result (its job died before
    recording) is shown as failed rather than silently missing; an empty list means no store
    is configured.
    """
    run = run or RunInfo()
    if expected is not None:
        have = {r.store for r in results}
        missing = [
            StoreResult(
                store=store,
                status=Status.ERROR,
                error="The plan job left no result; see the workflow run.",
            )
            for store in expected
            if store not in have
        ]
        results = sorted([*results, *missing], key=lambda r: r.store)
    parts = [PLAN_MARKER, "## Catalog plan", ""]
    if validation_failed:
        parts += [
            "### ❌ The catalog is not valid",
            "Nothing was planned. Fix these problems and push again:",
            "",
            "```",
            fit(
                validation_text.strip() or "(see the workflow run)", limit=limit // 2, note="…"
            ).rstrip(),
            "```",
            "",
        ]
    elif expected is not None and not expected:
        parts += [NO_STORE_MESSAGE, ""]
    elif not results:
        parts += ["No plan was made: the workflow failed before planning; see the run.", ""]
    elif all(r.status is Status.NO_CHANGES for r in results):
        parts += ["**No changes.** Merging this pull request changes nothing in the store.", ""]
    footer = run.footer(sha)
    footer_text = f"\n---\n<sub>{footer}. Updated on every push.</sub>\n" if footer else ""
    head = "\n".join(parts) + "\n"
    sections = [_store_heading(r) + "\n" for r in results]
    fixed = len(head) + len(footer_text) + sum(len(s) + 1 for s in sections)
    # Share the room left among the stores that have a plan to show.
    showing = [r for r in results if r.status is Status.CHANGES and r.markdown.strip()]
    share = (limit - fixed - 64) // max(len(showing), 1)
    body = head + "\n".join(
        store_section(r, limit=share + len(_store_heading(r)) + 1) for r in results
    )
    text = body + footer_text
    # The shares are estimates; `fit` is the guarantee.
    return fit(text, limit=limit, note="_Cut to fit GitHub's comment limit; see the job summary._")


def plan_summary(result: StoreResult) -> str:
    """A store's plan for the job summary (the whole plan; the summary's own limit applies)."""
    return store_section(result, limit=SUMMARY_LIMIT - 1024) + "\n"


def apply_summary(
    store: str, exit_code: int, apply_json: Mapping[str, Json] | None, stderr: str
) -> str:
    """The job-summary lines for one store's apply (`catalog apply --format json`)."""
    counts = (apply_json or {}).get("counts") or {}
    applied, failed = int(counts.get("applied") or 0), int(counts.get("failed") or 0)
    requests = ((apply_json or {}).get("requests") or {}).get("total")
    cost = f" with {requests} requests" if isinstance(requests, int) else ""
    if exit_code == 0:
        return f"### ✅ Applied to `{store}`: {applied} change{'s' if applied != 1 else ''}{cost}\n"
    lines = [f"### ❌ Apply to `{store}` failed"]
    if apply_json:
        lines.append(f"{applied} applied, {failed} failed{cost}; see `catalog history`.")
        for change in apply_json.get("changes") or []:
            if change.get("outcome") == "failed":
                lines.append(f"- {change.get('kind')} `{change.get('key')}`: {change.get('error')}")
    sentence = error_sentence(stderr)
    if sentence:
        lines.append(sentence)
    return "\n".join(lines) + "\n"


def _cell(value: Json) -> str:
    if value is None:
        text = "(none)"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False)
    text = text.replace("|", "\\|").replace("\n", " ")
    if len(text) > 120:
        text = text[:117] + "…"
    return f"`{text}`" if text else '`""`'


def drift_issue_title(store: str) -> str:
    return f"Catalog drift in store {store}"


def drift_issue_body(
    store: str,
    fields: Sequence[DriftedField],
    *,
    run: RunInfo | None = None,
    not_owned: Mapping[str, str] | None = None,
) -> str:
    """`not_owned`: the plan's `field_owners` (settings.fields); the issue names them, since
    a change the store makes to them is never drift."""
    run = run or RunInfo()
    lines = [
        drift_marker(store),
        f"The nightly drift check found {len(fields)} field{'s' if len(fields) != 1 else ''} in "
        f"store `{store}` changed outside the catalog (in the store's back office or by "
        "another tool). The next apply would overwrite them with the catalog's values.",
        "",
        "Either put the store's value into the catalog (a pull request), or let the next apply "
        "restore the catalog's value. This issue closes itself when the drift is gone.",
        "",
        "| Object | Field | In the store | In the catalog |",
        "|---|---|---|---|",
    ]
    for f in fields:
        key = f.key.replace("|", "\\|")
        lines.append(f"| {f.kind} `{key}` | {f.field} | {_cell(f.live)} | {_cell(f.catalog)} |")
    if not_owned:
        lines += ["", f"Not checked for drift: {ownership.describe(dict(not_owned))}."]
    footer = run.footer()
    if footer:
        lines += ["", f"<sub>Last checked: {footer}.</sub>"]
    return fit(
        "\n".join(lines) + "\n",
        limit=COMMENT_LIMIT,
        note="_More drifted fields than fit in an issue; see the plan artifact of the run._",
    )


def drift_pr_marker(store: str) -> str:
    return f"<!-- lightspeed-catalog:drift-pr store={store} -->"


def drift_pr_branch(store: str) -> str:
    """The branch that carries one store's accepted drift (rewritten by every check)."""
    return f"{DRIFT_BRANCH_PREFIX}{check_store_key(store)}"


def drift_pr_title(store: str) -> str:
    return f"Accept the store's changes: {store}"


def drift_pr_body(store: str, pull_json: Mapping[str, Json], *, run: RunInfo | None = None) -> str:
    """The pull request's description: every value `catalog pull` wrote, with its file:line."""
    run = run or RunInfo()
    changes = list(pull_json.get("changes") or [])
    n = len(changes)
    lines = [
        drift_pr_marker(store),
        f"The nightly drift check found {n} value{'s' if n != 1 else ''} changed in store "
        f"`{store}` outside the catalog. This pull request writes the store's values into the "
        "catalog (`catalog pull`), so nothing is overwritten at the next apply.",
        "",
        "Merge it to keep the store's values; close it to let the next apply restore the "
        "catalog's. It is rewritten by each check (do not push to its branch) and closes itself "
        "when the drift is gone.",
        "",
        "| Where | Object | Field | Catalog had | Store has |",
        "|---|---|---|---|---|",
    ]
    for c in changes:
        where = f"{c.get('file', '')}:{c.get('line', '')}".replace("|", "\\|")
        key = str(c.get("key", "")).replace("|", "\\|")
        lines.append(
            f"| `{where}` | `{key}` | {c.get('field', '')} | {_cell(c.get('before'))} "
            f"| {_cell(c.get('after'))} |"
        )
    left = [s for s in pull_json.get("skipped") or [] if s.get("field")]
    refused = list(pull_json.get("refused") or [])
    if left or refused:
        lines += ["", "Not taken:", ""]
        lines += [f"- `{s.get('key', '')}` {s.get('field')}: {s.get('reason', '')}" for s in left]
        lines += [f"- {r.get('reason', '')}" for r in refused]
    footer = run.footer()
    if footer:
        lines += ["", f"<sub>Last checked: {footer}.</sub>"]
    return fit(
        "\n".join(lines) + "\n",
        limit=COMMENT_LIMIT,
        note="_More changes than fit here; the diff of this pull request has them all._",
    )


# ---------------------------------------------------------------------------------------------
# GitHub's REST API
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comment:
    id: int
    body: str


@dataclass(frozen=True)
class Issue:
    number: int
    title: str
    body: str
    state: str


_HINTS = {
    401: "the token is missing or expired",
    403: (
        "the workflow's token lacks a permission: give the job `pull-requests: write` for plan "
        "comments, `issues: write` for drift issues"
    ),
    404: "check GITHUB_REPOSITORY and that the token can see the repository",
    422: "GitHub rejected the content",
}

_IDEMPOTENT = {"GET", "PATCH", "PUT", "DELETE"}


class GitHub:
    """A small client for the endpoints the workflows need. `transport` is the test seam."""

    def __init__(
        self,
        *,
        token: str,
        repository: str,
        api_url: str = "https://api.github.com",
        transport: httpx.BaseTransport | None = None,
        retries: int = 2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not token:
            raise ConfigError(
                "GITHUB_TOKEN is not set: pass `GITHUB_TOKEN: ${{ github.token }}` to the step."
            )
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", repository or ""):
            raise ConfigError(
                f"GITHUB_REPOSITORY {repository!r} is not owner/name (GitHub Actions sets it)."
            )
        self.repository = repository
        self._retries = retries
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=api_url.rstrip("/"),
            transport=transport,
            timeout=30.0,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "lightspeed-catalog",
            },
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Json = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, json=json_body, params=params)
            except httpx.TransportError as exc:
                if method in _IDEMPOTENT and attempt < self._retries:
                    attempt += 1
                    self._sleep(2.0**attempt)
                    continue
                raise GitHubError(f"GitHub API {method} {path} failed: {exc}.") from exc
            # A create (POST) is not retried: it may have happened, and the next run's upsert
            # finds it by its marker anyway.
            if response.status_code >= 500 and method in _IDEMPOTENT and attempt < self._retries:
                attempt += 1
                self._sleep(2.0**attempt)
                continue
            if response.status_code >= 400:
                raise self._error(method, path, response)
            return response

    @staticmethod
    def _error(method: str, path: str, response: httpx.Response) -> GitHubError:
        try:
            message = str(response.json().get("message", ""))
        except ValueError:
            message = ""
        hint = _HINTS.get(response.status_code, "")
        text = f"GitHub API {method} {path} answered {response.status_code}"
        if message:
            text += f" ({message})"
        if hint:
            text += f": {hint}"
        return GitHubError(text + ".", status=response.status_code)

    def _paginate(self, path: str, params: Mapping[str, Any] | None = None) -> list[Json]:
        items: list[Json] = []
        url: str | None = path
        query: Mapping[str, Any] | None = {"per_page": 100, **(params or {})}
        while url:
            response = self._request("GET", url, params=query)
            page = response.json()
            if not isinstance(page, list):
                raise GitHubError(f"GitHub API GET {path} did not answer with a list.")
            items.extend(page)
            nxt = response.links.get("next", {}).get("url")
            url, query = (nxt, None) if nxt else (None, None)  # the next link carries the query
        return items

    # --- comments on issues and pull requests ---

    def comments(self, number: int) -> list[Comment]:
        raw = self._paginate(f"/repos/{self.repository}/issues/{number}/comments")
        return [Comment(id=int(c["id"]), body=str(c.get("body") or "")) for c in raw]

    def create_comment(self, number: int, body: str) -> Comment:
        data = self._request(
            "POST", f"/repos/{self.repository}/issues/{number}/comments", json_body={"body": body}
        ).json()
        return Comment(id=int(data["id"]), body=str(data.get("body") or ""))

    def update_comment(self, comment_id: int, body: str) -> Comment:
        data = self._request(
            "PATCH",
            f"/repos/{self.repository}/issues/comments/{comment_id}",
            json_body={"body": body},
        ).json()
        return Comment(id=int(data["id"]), body=str(data.get("body") or ""))

    def delete_comment(self, comment_id: int) -> None:
        self._request("DELETE", f"/repos/{self.repository}/issues/comments/{comment_id}")

    # --- issues ---

    def pull_request_labels(self, sha: str) -> list[str]:
        """Labels of the pull request that brought commit `sha` (the merged one first)."""
        pulls = self._paginate(f"/repos/{self.repository}/commits/{sha}/pulls")
        merged = [p for p in pulls if isinstance(p, dict) and p.get("merged_at")]
        for pr in merged or [p for p in pulls if isinstance(p, dict)]:
            return [str(x["name"]) for x in pr.get("labels") or [] if isinstance(x, dict)]
        return []

    def open_issues(self, *, label: str) -> list[Issue]:
        raw = self._paginate(f"/repos/{self.repository}/issues", {"state": "open", "labels": label})
        # The issues endpoint also lists pull requests; they carry a `pull_request` key.
        return [_issue(i) for i in raw if "pull_request" not in i]

    def create_issue(self, *, title: str, body: str, labels: Sequence[str]) -> Issue:
        data = self._request(
            "POST",
            f"/repos/{self.repository}/issues",
            json_body={"title": title, "body": body, "labels": list(labels)},
        ).json()
        return _issue(data)

    def update_issue(self, number: int, **changes: Json) -> Issue:
        data = self._request(
            "PATCH", f"/repos/{self.repository}/issues/{number}", json_body=changes
        ).json()
        return _issue(data)

    # --- pull requests ---

    def open_pulls(self, *, head: str) -> list[Issue]:
        """Open pull requests from branch `head` of this repository."""
        owner = self.repository.split("/", 1)[0]
        raw = self._paginate(
            f"/repos/{self.repository}/pulls", {"state": "open", "head": f"{owner}:{head}"}
        )
        return [_issue(p) for p in raw]

    def create_pull(self, *, title: str, body: str, head: str, base: str) -> Issue:
        data = self._request(
            "POST",
            f"/repos/{self.repository}/pulls",
            json_body={"title": title, "body": body, "head": head, "base": base},
        ).json()
        return _issue(data)

    def update_pull(self, number: int, **changes: Json) -> Issue:
        data = self._request(
            "PATCH", f"/repos/{self.repository}/pulls/{number}", json_body=changes
        ).json()
        return _issue(data)


def _issue(data: Mapping[str, Json]) -> Issue:
    return Issue(
        number=int(data["number"]),
        title=str(data.get("title") or ""),
        body=str(data.get("body") or ""),
        state=str(data.get("state") or "open"),
    )


class Upsert(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    CLOSED = "closed"
    NONE = "none"  # nothing to do (no drift and no open issue)


@dataclass(frozen=True)
class UpsertResult:
    outcome: Upsert
    number: int | None = None  # the comment id or issue number
    removed_duplicates: int = 0


def upsert_comment(
    gh: GitHub, number: int, body: str, *, marker: str = PLAN_MARKER
) -> UpsertResult:
    """Keep exactly one comment starting with `marker` on issue/PR `number`, with `body`.

    The first such comment is updated in place (not at all when its body is already `body`:
    every avoided call counts), a missing one is created, and any extra ones (left by a run
    that raced or an older version) are deleted so reviewers see one plan, not a stack.
    """
    if not body.startswith(marker):
        body = f"{marker}\n{body}"
    if len(body) > COMMENT_LIMIT:
        raise ValueError("comment body is over GitHub's limit; fit() it first")
    # Only a comment that *starts* with the marker is ours: one quoting it starts with "> ".
    ours = [c for c in gh.comments(number) if c.body.startswith(marker)]
    if not ours:
        created = gh.create_comment(number, body)
        return UpsertResult(Upsert.CREATED, created.id)
    keep, extra = ours[0], ours[1:]
    for duplicate in extra:
        gh.delete_comment(duplicate.id)
    if keep.body == body:
        return UpsertResult(Upsert.UNCHANGED, keep.id, len(extra))
    gh.update_comment(keep.id, body)
    return UpsertResult(Upsert.UPDATED, keep.id, len(extra))


def sync_drift_issue(
    gh: GitHub,
    store: str,
    fields: Sequence[DriftedField],
    *,
    run: RunInfo | None = None,
    not_owned: Mapping[str, str] | None = None,
) -> UpsertResult:
    """One open issue per store while it has drift: open it, keep its table current, and close
    it (with a comment saying why) once a check finds no drift."""
    marker = drift_marker(store)
    mine = [i for i in gh.open_issues(label=DRIFT_LABEL) if i.body.startswith(marker)]
    if not fields:
        if not mine:
            return UpsertResult(Upsert.NONE)
        for issue in mine:
            where = (run or RunInfo()).footer()
            gh.create_comment(
                issue.number,
                "The drift check found no drift any more"
                + (f" ({where})" if where else "")
                + "; closing.",
            )
            gh.update_issue(issue.number, state="closed", state_reason="completed")
        return UpsertResult(Upsert.CLOSED, mine[0].number)
    body = drift_issue_body(store, fields, run=run, not_owned=not_owned)
    if not mine:
        created = gh.create_issue(title=drift_issue_title(store), body=body, labels=[DRIFT_LABEL])
        return UpsertResult(Upsert.CREATED, created.number)
    keep = mine[0]
    for duplicate in mine[1:]:
        gh.update_issue(duplicate.number, state="closed", state_reason="not_planned")
    # Compare without the "last checked" footer, which changes on every run: an unchanged
    # table needs no write.
    if _without_footer(keep.body) == _without_footer(body):
        return UpsertResult(Upsert.UNCHANGED, keep.number, len(mine) - 1)
    gh.update_issue(keep.number, body=body)
    return UpsertResult(Upsert.UPDATED, keep.number, len(mine) - 1)


def sync_drift_pull_request(
    gh: GitHub,
    store: str,
    *,
    pushed: bool,
    base: str,
    body: str = "",
    run: RunInfo | None = None,
) -> UpsertResult:
    """One open pull request per store while `catalog pull` has something to accept.

    `pushed`: the store's drift branch now holds the pulled catalog (see `push_catalog`); the
    pull request is opened, or its description brought up to date. Otherwise any open one is
    closed with a comment saying why."""
    branch = drift_pr_branch(store)
    mine = gh.open_pulls(head=branch)
    if not pushed:
        if not mine:
            return UpsertResult(Upsert.NONE)
        where = (run or RunInfo()).footer()
        for pull in mine:
            gh.create_comment(
                pull.number,
                "The drift check found nothing left to accept"
                + (f" ({where})" if where else "")
                + "; closing.",
            )
            gh.update_pull(pull.number, state="closed")
        return UpsertResult(Upsert.CLOSED, mine[0].number)
    if not mine:
        created = gh.create_pull(title=drift_pr_title(store), body=body, head=branch, base=base)
        return UpsertResult(Upsert.CREATED, created.number)
    keep = mine[0]
    if _without_footer(keep.body) == _without_footer(body):
        return UpsertResult(Upsert.UNCHANGED, keep.number)
    gh.update_pull(keep.number, body=body)
    return UpsertResult(Upsert.UPDATED, keep.number)


def push_catalog(
    repo: Path,
    *,
    catalog_dir: str,
    branch: str,
    message: str,
    remote: str = "origin",
    identity: tuple[str, str] = BOT_IDENTITY,
) -> str | None:
    """Commit the checkout's catalog directory as it is now on top of HEAD and make `branch`
    on the remote point at that commit (replacing what it held: the branch is the bot's).

    Written with a private index, so the checkout's index and working tree are untouched.
    Returns the commit, or None when the catalog does not differ from HEAD (nothing pushed)."""
    with tempfile.TemporaryDirectory() as tmp:
        index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(repo, "read-tree", "HEAD", env=index)
        _git(repo, "add", "-A", "--", catalog_dir, env=index)
        tree = _git(repo, "write-tree", env=index).decode().strip()
    if tree == _git(repo, "rev-parse", "HEAD^{tree}").decode().strip():
        return None
    name, email = identity
    author = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
    commit = _git(repo, "commit-tree", tree, "-p", "HEAD", "-m", message, env=author)
    sha = commit.decode().strip()
    try:
        _git(repo, "push", "--quiet", "--force", remote, f"{sha}:refs/heads/{branch}")
    except GitError as exc:
        raise GitHubError(
            f"Could not push the pulled catalog to branch {branch} ({exc}); check that the job "
            "has `contents: write` and that the branch is not protected."
        ) from exc
    return sha


def _git(
    repo: Path, *args: str, env: Mapping[str, str] | None = None, input_: bytes | None = None
) -> bytes:
    """Run git in `repo`; its stdout, or `GitError` with the last line it said."""
    full_env = {**os.environ, **(env or {}), "GIT_TERMINAL_PROMPT": "0"}
    proc = subprocess.run(
        ["git", *args], cwd=repo, input=input_, capture_output=True, env=full_env, check=False
    )
    if proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace").strip()
        last = stderr.splitlines()[-1] if stderr else f"exit {proc.returncode}"
        raise GitError(f"git {args[0]} failed ({last}).", status=proc.returncode, stderr=stderr)
    return proc.stdout


def _without_footer(body: str) -> str:
    return re.sub(r"\n*<sub>Last checked:.*</sub>\n?$", "", body.strip())


# ---------------------------------------------------------------------------------------------
# Which stores: the matrix
# ---------------------------------------------------------------------------------------------


def settings_stores(catalog_dir: Path) -> list[str]:
    """`settings.stores` from `<catalog>/catalog.yaml`, read directly: this runs before (and
    independently of) validation, to build the job matrix, and needs nothing else."""
    path = catalog_dir / "catalog.yaml"
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML ({exc}); run `catalog validate`.") from exc
    settings = data.get("settings") if isinstance(data, dict) else None
    stores = settings.get("stores") if isinstance(settings, dict) else None
    if stores is None:
        return []
    if not isinstance(stores, list) or not all(isinstance(s, str) for s in stores):
        raise ConfigError(f"{path}: settings.stores must be a list of store domain prefixes.")
    return list(stores)


NO_STORE_MESSAGE = (
    "No store is configured: set the repository variable LIGHTSPEED_STORE to the store's "
    "domain prefix (Settings > Secrets and variables > Actions > Variables), or list "
    "settings.stores in catalog/catalog.yaml."
)


def resolve_stores(*, explicit: str, from_settings: Iterable[str], variable: str) -> list[str]:
    """The stores to run for: a workflow input wins, then `settings.stores`, then the
    repository variable LIGHTSPEED_STORE. Deduplicated, order kept."""
    if explicit.strip():
        raw = re.split(r"[\s,]+", explicit.strip())
    else:
        raw = list(from_settings) or ([variable] if variable.strip() else [])
    stores: list[str] = []
    for item in raw:
        if item.strip():
            key = check_store_key(item)
            if key not in stores:
                stores.append(key)
    if not stores:
        raise ConfigError(NO_STORE_MESSAGE)
    return stores


# ---------------------------------------------------------------------------------------------
# State persistence on a git branch
# ---------------------------------------------------------------------------------------------

# What `git push` says when the branch moved since we fetched it.
_RACE_SIGNS = ("[rejected]", "fetch first", "non-fast-forward", "cannot lock ref", "stale info")

STATE_BRANCH_README = """\
# catalog-state

This branch is written by the catalog-apply workflow (lightspeed-catalog), one commit per apply.
Each `<store>/state.db` is the SQLite state file of one store: the cache of live objects, the
change-feed cursors and the ledger of every applied change. It holds no secrets.

Do not edit it by hand. Deleting it is safe: the next run does a full refresh from the store
(the live store is the truth), and only the history shown by `catalog history` starts over.
"""


@dataclass(frozen=True)
class StateBranch:
    """The state files of all stores, kept on one branch of the repository's remote.

    Why a branch: it survives runner loss (unlike a runner's disk), never expires (unlike the
    Actions cache or artifacts), is readable with plain git, and a push that is not a
    fast-forward is refused, so two writers can never silently overwrite each other.
    """

    repo: Path  # a git checkout whose `remote` is the repository
    branch: str = STATE_BRANCH
    remote: str = "origin"
    identity: tuple[str, str] = BOT_IDENTITY
    attempts: int = 5
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def _git(
        self, *args: str, env: Mapping[str, str] | None = None, input_: bytes | None = None
    ) -> bytes:
        return _git(self.repo, *args, env=env, input_=input_)

    def _path(self, store: str) -> str:
        return f"{check_store_key(store)}/{STATE_FILE_NAME}"

    def _require_remote(self) -> None:
        """A checkout without the remote (a fresh `git init`, a renamed remote) is said plainly,
        not as a failed `git ls-remote`."""
        try:
            self._git("remote", "get-url", self.remote)
        except GitError as exc:
            inside = "not a git repository" not in exc.stderr
            raise GitHubError(
                f"The git checkout at {self.repo} has no remote {self.remote!r}: add it (git "
                f"remote add {self.remote} URL) or pass --remote, then rerun."
                if inside
                else f"{self.repo} is not a git checkout: run this step in the repository's "
                "checkout (actions/checkout), then rerun."
            ) from exc

    def _fetch(self) -> str | None:
        """Fetch the branch; its head commit, or None when it does not exist yet."""
        self._require_remote()
        heads = self._git("ls-remote", "--heads", self.remote, f"refs/heads/{self.branch}")
        if not heads.strip():
            return None
        tracking = f"refs/remotes/{self.remote}/{self.branch}"
        # Only the tip: every commit holds a whole SQLite file, and a parent id is all a new
        # commit needs. (Pushing from a shallow clone is fine: the remote has the parent.)
        refspec = f"+refs/heads/{self.branch}:{tracking}"
        self._git("fetch", "--depth=1", "--no-tags", "--quiet", self.remote, refspec)
        return self._git("rev-parse", tracking).decode().strip()

    def pull(self, store: str, dest: Path) -> bool:
        """Write the store's saved state to `dest`. False (and `dest` untouched) when nothing
        was saved yet: the run then starts from an empty state and does a full refresh."""
        path = self._path(store)
        head = self._fetch()
        if head is None:
            return False
        try:
            self._git("cat-file", "-e", f"{head}:{path}")
        except GitError:
            return False
        data = self._git("cat-file", "blob", f"{head}:{path}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A leftover write-ahead log beside `dest` belongs to another database: SQLite would
        # replay it into this one.
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{dest}{suffix}").unlink(missing_ok=True)
        tmp = dest.with_name(dest.name + ".pulling")
        tmp.write_bytes(data)
        tmp.replace(dest)
        return True

    def push(self, store: str, snapshot: Path, *, message: str) -> str:
        """Commit `snapshot` as the store's state on top of the branch and push it; retried
        from a fresh fetch when another store's job pushed first. Returns the commit id."""
        size = snapshot.stat().st_size
        if size >= GIT_FILE_LIMIT:
            raise GitHubError(
                f"The state file for {store} is {size // (1024 * 1024)} MB, over GitHub's 100 MB "
                "file limit; keep it elsewhere (see docs/github.md)."
            )
        path = self._path(store)
        blob = self._git("hash-object", "-w", "--", str(snapshot)).decode().strip()
        name, email = self.identity
        author = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
        for attempt in range(1, self.attempts + 1):
            parent = self._fetch()
            with tempfile.TemporaryDirectory() as tmp:
                # A private index: the checkout's own index and working tree stay untouched.
                index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
                if parent:
                    self._git("read-tree", f"{parent}^{{tree}}", env=index)
                else:
                    self._git("read-tree", "--empty", env=index)
                    readme = self._git(
                        "hash-object", "-w", "--stdin", input_=STATE_BRANCH_README.encode()
                    )
                    self._git(
                        "update-index",
                        "--add",
                        "--cacheinfo",
                        f"100644,{readme.decode().strip()},README.md",
                        env=index,
                    )
                self._git(
                    "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=index
                )
                tree = self._git("write-tree", env=index).decode().strip()
            if parent and tree == self._git("rev-parse", f"{parent}^{{tree}}").decode().strip():
                return parent  # byte-identical state: nothing to commit
            args = ["commit-tree", tree, "-m", message]
            if parent:
                args[2:2] = ["-p", parent]
            commit = self._git(*args, env=author).decode().strip()
            try:
                self._git("push", "--quiet", self.remote, f"{commit}:refs/heads/{self.branch}")
                return commit
            except GitError as exc:
                # Only a lost race is worth retrying; a refusal (permissions, protection,
                # authentication) fails the same way every time.
                raced = any(s in exc.stderr for s in _RACE_SIGNS)
                if not raced or attempt == self.attempts:
                    raise GitHubError(
                        f"Could not push the state for {store} to branch {self.branch} after "
                        f"{attempt} attempts ({exc}); check that the job has "
                        "`contents: write` and that the branch is not protected."
                    ) from exc
                # Most likely another store's job pushed first: back off, refetch, rebuild.
                self.sleep(min(2.0**attempt, 20.0) * (0.5 + secrets.randbelow(100) / 100))
        raise AssertionError("unreachable")


def snapshot_state(src: Path, dest: Path) -> None:
    """A consistent, compact copy of a state file for committing.

    The state file runs in WAL mode, so the file alone may lack the latest commits;
    `VACUUM INTO` writes one self-contained database with everything committed, and drops
    free pages so the branch grows less per apply. It goes through `State`, the product's one
    SQLite edge, which also refuses a file from a newer version of the tool.
    """
    if not src.exists():
        raise ConfigError(
            f"There is no state file at {src} to save: run `catalog apply` first "
            "(with the same --state / CATALOG_STATE)."
        )
    dest.unlink(missing_ok=True)
    with State(src) as state:
        state.db.execute("VACUUM INTO ?", [str(dest)])
