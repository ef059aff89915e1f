"""The runner's files: the event payload (`GITHUB_EVENT_PATH`), step outputs (`GITHUB_OUTPUT`),
the job summary (`GITHUB_STEP_SUMMARY`) and the per-store results the matrix jobs leave. Paths
and values come in as parameters: nothing here reads `os.environ` (the CLI does, once)."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from reconciler.errors import ConfigError, redact
from reconciler.github.text import SUMMARY_LIMIT, StoreResult, fit, utf8_len
from reconciler.model import Json

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


# ---------------------------------------------------------------------------------------------
# Which stores: the matrix
# ---------------------------------------------------------------------------------------------


def settings_stores(catalog_dir: Path) -> list[str]:
    """The store names of `settings.stores` in `<catalog>/catalog.yaml` (each entry's platform
    prefix left out: `rseries:boutique` is the store `boutique`), read directly: this runs
    before (and independently of) validation, to build the job matrix, and needs nothing else."""
    return list(store_platforms(catalog_dir))


def store_platforms(catalog_dir: Path) -> dict[str, str | None]:
    """Store name -> the platform its `settings.stores` entry names (`rseries:boutique`), or
    None when it names none (X-Series unless LIGHTSPEED_PLATFORM says otherwise)."""
    path = catalog_dir / "catalog.yaml"
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML ({exc}); run `catalog validate`.") from exc
    settings = data.get("settings") if isinstance(data, dict) else None
    stores = settings.get("stores") if isinstance(settings, dict) else None
    if stores is None:
        return {}
    if not isinstance(stores, list) or not all(isinstance(s, str) for s in stores):
        raise ConfigError(
            f"{path}: settings.stores must be a list of store names (domain prefixes), each "
            "optionally after its platform, e.g. [acme, rseries:boutique]."
        )
    out: dict[str, str | None] = {}
    for entry in stores:
        platform, _, name = entry.rpartition(":")
        out.setdefault(name, platform.strip().lower() or None)
    return out


# ---------------------------------------------------------------------------------------------
# R-Series: a refresh token rotated during the run
# ---------------------------------------------------------------------------------------------


def rotated_refresh_token(token_file: Path, configured: str) -> str | None:
    """The refresh token this run rotated to, or None when it did not rotate.

    R-Series refresh tokens rotate on every refresh and the old one dies once the new access
    token is used, so a run that refreshed leaves the only working refresh token in its token
    file (a JSON object: `refresh_token`, and `seed`, the configured token the chain started
    from). A file from another chain (`seed` is not the configured token) is not this run's.
    """
    try:
        data = json.loads(token_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"The R-Series token file {token_file} is unreadable ({type(exc).__name__}); the "
            "rotated refresh token in it cannot be saved."
        ) from None
    if not isinstance(data, dict):
        return None
    newest, seed = str(data.get("refresh_token") or ""), str(data.get("seed") or "")
    if not newest or not configured or newest == configured or seed != configured:
        return None
    return newest
