"""Saved plans: written atomically, read back equal, refused when missing, damaged or too new."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.errors import PlanFileError
from reconciler.model import FORMAT_VERSION
from reconciler.plan import Plan
from reconciler.planfile import read_plan, write_plan

from .test_render import a_plan, creates, updates


def test_round_trip(tmp_path: Path) -> None:
    plan = a_plan(creates(2) + updates(3))
    path = write_plan(tmp_path / "plans" / "plan.json", plan)
    assert read_plan(path) == plan
    doc = json.loads(path.read_text())
    assert doc["live_versions"] == {f"product:p-{i:02}": "7" for i in range(3)}
    assert doc["catalog_digest"] == "d" * 64 and doc["git_commit"] == "0123456789abcdef0123"


def test_written_atomically_over_an_old_plan(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text("old")
    write_plan(path, a_plan(updates(1)))
    assert read_plan(path).changes[0].key == "p-00"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]  # no temp file left behind


def test_missing(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="does not exist: make one with `catalog plan --out"):
        read_plan(tmp_path / "nope.json")


def test_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text('{"format_version": 1, "changes": [')
    with pytest.raises(PlanFileError, match="not valid JSON"):
        read_plan(path)
    path.write_text('{"hello": 1}')
    with pytest.raises(PlanFileError, match="not a lightspeed-catalog plan"):
        read_plan(path)
    path.write_text(json.dumps({"format_version": FORMAT_VERSION, "changes": []}))
    with pytest.raises(PlanFileError, match="incomplete or damaged"):
        read_plan(path)


def test_newer_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(path, a_plan(updates(1)))
    doc = json.loads(path.read_text())
    doc["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanFileError, match="newer lightspeed-catalog"):
        read_plan(path)


def test_an_edited_plan_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(path, a_plan(updates(1)))
    doc = json.loads(path.read_text())
    doc["changes"][0]["fields"][0]["after"] = "0.01"
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanFileError, match="changed after it was made"):
        read_plan(path)


def test_reads_what_the_json_rendering_prints(tmp_path: Path) -> None:
    from reconciler.render import render_json

    plan = a_plan(creates(1))
    path = tmp_path / "p.json"
    path.write_text(render_json(plan))
    assert read_plan(path) == plan
    assert isinstance(read_plan(path), Plan)


def test_an_older_format_is_refused_with_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(path, a_plan(updates(1)))
    doc = json.loads(path.read_text())
    assert doc["provider"] == "xseries"
    doc["format_version"] = 1
    doc.pop("provider")
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanFileError) as refused:
        read_plan(path)
    assert str(refused.value) == (
        f"Plan file {path} was made by an older version of lightspeed-catalog: plan again "
        f"(catalog plan --out {path})."
    )


def test_the_provider_survives_the_json_round_trip() -> None:
    plan = a_plan(updates(1))
    assert Plan.from_json(plan.to_json()).provider == "xseries"
    other = Plan.from_json({**plan.to_json(), "provider": "rseries"})
    assert other.provider == "rseries" and other.digest() != plan.digest()
