"""Pure text for GitHub: the hidden markers that identify our comment, issues and pull
requests, fitting a body into GitHub's size limits without breaking its markdown, and composing
the pull-request comment, the job summary and the drift issue from plan results."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from reconciler import ownership
from reconciler.errors import ConfigError
from reconciler.guardrails import LABEL_PREFIX
from reconciler.model import Json
from reconciler.render import duration

# GitHub rejects an issue or comment body longer than this many characters (HTTP 422).
COMMENT_LIMIT = 65_536
# A step's job summary may be at most 1 MiB; past that GitHub drops it with an error annotation.
SUMMARY_LIMIT = 1_048_576

PLAN_MARKER = "<!-- lightspeed-catalog:plan -->"
DRIFT_LABEL = "catalog-drift"
DRIFT_BRANCH_PREFIX = "catalog-drift/"

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
    return _checked(
        lines,
        run,
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
    return _checked(
        lines, run, note="_More changes than fit here; the diff of this pull request has them all._"
    )


def _checked(lines: list[str], run: RunInfo, *, note: str) -> str:
    """A drift text with when it was last checked, cut to what GitHub takes (`note` says
    where the rest is)."""
    footer = run.footer()
    if footer:
        lines = [*lines, "", f"<sub>Last checked: {footer}.</sub>"]
    return fit("\n".join(lines) + "\n", limit=COMMENT_LIMIT, note=note)


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
