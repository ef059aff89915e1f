"""Saved plans (`catalog plan --out FILE`): the plan's JSON, written atomically, read back checked.

The file is the plan document of `reconciler.render.iter_json`: every change with each
field's before and after, the live version of every object the plan touches (so apply can
refuse a stale plan), the catalog digest and git commit, and the plan's own digest. It holds
no secret: a plan never contains the token, and the store is named by its label only.
"""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.atomic import write_atomic
from reconciler.errors import PlanFileError
from reconciler.model import FORMAT_VERSION, Json
from reconciler.plan import RENAMED_KINDS, Plan
from reconciler.render import iter_json, plan_digest


def write_plan(path: str | Path, plan: Plan) -> Path:
    """Write the plan to `path` atomically: a reader sees the old file or the new one, never
    half of one (temp file in the same directory, fsync, then rename over)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(target, (chunk.encode() for chunk in iter_json(plan)))


def read_plan(path: str | Path) -> Plan:
    """Read a saved plan, refusing one that is missing, corrupt, edited or too new."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanFileError(
            f"Plan file {source} does not exist: make one with `catalog plan --out {source}`."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanFileError(f"Plan file {source} cannot be read ({exc}).") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanFileError(
            f"Plan file {source} is not valid JSON (line {exc.lineno}, column {exc.colno}): "
            "it is damaged; make a new one with `catalog plan --out`."
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("format_version"), int):
        raise PlanFileError(
            f"Plan file {source} is not a lightspeed-catalog plan (no format_version)."
        )
    version = data["format_version"]
    if version < FORMAT_VERSION:
        raise PlanFileError(
            f"Plan file {source} was made by an older version of lightspeed-catalog: plan again "
            f"(catalog plan --out {source})."
        )
    if version > FORMAT_VERSION:
        raise PlanFileError(
            f"Plan file {source} was written by a newer lightspeed-catalog (format {version}; "
            f"this one reads up to {FORMAT_VERSION}): upgrade the tool or plan again with it."
        )
    older = _older_format_2(data)
    if older is not None:
        raise PlanFileError(
            f"Plan file {source} was made by an older version of lightspeed-catalog ({older}): "
            f"plan again (catalog plan --out {source})."
        )
    try:
        plan = Plan.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanFileError(
            f"Plan file {source} is incomplete or damaged ({type(exc).__name__}: {exc}); make "
            "a new one with `catalog plan --out`."
        ) from None
    recorded = data.get("plan_digest")
    if recorded is not None and recorded != plan_digest(plan):
        raise PlanFileError(
            f"Plan file {source} was changed after it was made (its digest does not match): "
            "apply only plans as `catalog plan --out` wrote them; plan again."
        )
    return plan


def _older_format_2(data: dict[str, Json]) -> str | None:
    """What marks a format-2 plan written by the release before opaque versions and kinds in
    catalog terms, or None. Its digest was taken over what it holds, so it cannot be read as
    today's plan (versions as text, kinds renamed) and still be checked: it is refused."""
    versions = data.get("live_versions")
    if isinstance(versions, dict) and any(isinstance(v, int) for v in versions.values()):
        return "its live versions are numbers"
    stack = list(data.get("changes") or [])
    while stack:
        change = stack.pop()
        if isinstance(change, dict):
            if change.get("kind") in RENAMED_KINDS:
                return f"it names kind {change['kind']}"
            stack.extend(change.get("children") or [])
    return None
