"""The pure text side of the glue: limits, outputs, the comment, the drift table, the matrix."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from gh_helpers import parse_github_output
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.api import make_plan
from reconciler.errors import ConfigError
from reconciler.github import (
    COMMENT_LIMIT,
    PLAN_MARKER,
    SUMMARY_LIMIT,
    Event,
    RunInfo,
    Status,
    StoreResult,
    append_summary,
    drift_issue_body,
    drifted_fields,
    error_sentence,
    fit,
    headline,
    make_result,
    plan_comment,
    resolve_stores,
    settings_stores,
    utf8_len,
    write_outputs,
)
from reconciler.model import Catalog, Product, Rule
from reconciler.plan import Plan
from reconciler.providers.xseries.normalize import normalize_live
from reconciler.render import render_json, render_markdown

NOTE = "_cut_"


def plan_json(
    *changes: dict[str, object], summary: dict[str, int] | None = None
) -> dict[str, object]:
    return {
        "format_version": 1,
        "summary": summary or {},
        "estimate": {"requests": 14, "seconds": 2.4, "rate_limit": 350, "window_seconds": 300},
        "changes": list(changes),
    }


def product(
    key: str, *fields: dict[str, object], children: list[dict[str, object]] | None = None
) -> dict[str, object]:
    return {
        "kind": "product",
        "key": key,
        "action": "update",
        "fields": list(fields),
        "children": children or [],
    }


def fc(name: str, before: object, after: object, *, drift: bool = False) -> dict[str, object]:
    return {"field": name, "before": before, "after": after, "drift": drift}


# --- fit ---------------------------------------------------------------------------------------


def test_fit_leaves_a_body_that_fits_alone() -> None:
    assert fit("short\n", limit=10, note=NOTE) == "short\n"


def test_fit_cuts_at_a_line_and_ends_with_the_note() -> None:
    text = "".join(f"line {i}\n" for i in range(1000))
    out = fit(text, limit=500, note=NOTE)
    assert len(out) <= 500
    assert out.endswith(f"\n{NOTE}\n")
    body = out.removesuffix(f"\n{NOTE}\n")
    assert text.startswith(body)
    assert body.endswith("\n")


def test_fit_closes_an_open_code_fence_and_details() -> None:
    text = (
        "<details><summary>x</summary>\n\n```diff\n"
        + "".join(f"- {i}\n" for i in range(500))
        + "```\n</details>\n"
    )
    out = fit(text, limit=300, note=NOTE)
    assert len(out) <= 300
    assert out.count("```") % 2 == 0
    assert out.count("<details>") == out.count("</details>")
    # the note comes after the closers, so it renders as text, not inside the code block
    assert out.index(NOTE) > out.rindex("```")


def test_fit_counts_bytes_for_the_summary() -> None:
    text = "é" * 2000 + "\n" + "ü" * 2000 + "\n"
    out = fit(text, limit=3000, note=NOTE, measure=utf8_len)
    assert utf8_len(out) <= 3000
    assert len(out) < 3000  # in characters it would have kept more


def test_fit_cuts_one_huge_line() -> None:
    out = fit("x" * 100_000, limit=1000, note=NOTE)
    assert len(out) <= 1000 and out.endswith(NOTE + "\n") and out.startswith("x")


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(
        st.sampled_from(["```", "<details>", "</details>", "a", "ün", "x" * 80, ""]), max_size=80
    ),
    limit=st.integers(min_value=len(NOTE) + 60, max_value=3000),
)
def test_fit_never_exceeds_the_limit(lines: list[str], limit: int) -> None:
    text = "\n".join(lines) + "\n"
    for measure in (len, utf8_len):
        out = fit(text, limit=limit, note=NOTE, measure=measure)
        assert measure(out) <= limit
        if measure(text) <= limit:
            assert out == text


# --- runner files ------------------------------------------------------------------------------


def test_outputs_round_trip_through_the_runner_format(tmp_path: Path) -> None:
    path = tmp_path / "output"
    write_outputs(path, {"stores": '["a","b"]', "count": "2"})
    write_outputs(path, {"body": "line 1\nname=injected\nline 3"})
    parsed = parse_github_output(path.read_text())
    assert parsed == {"stores": '["a","b"]', "count": "2", "body": "line 1\nname=injected\nline 3"}


def test_outputs_are_skipped_outside_actions() -> None:
    write_outputs(None, {"a": "b"})  # no file, no error


def test_summary_appends_and_respects_one_mebibyte(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    append_summary(path, "# first")
    append_summary(path, "second\n")
    assert path.read_text() == "# first\nsecond\n"
    append_summary(path, "".join(f"row {i} ü\n" for i in range(200_000)))
    assert path.stat().st_size <= SUMMARY_LIMIT
    assert "1 MiB" in path.read_text()[-200:]


def test_event_of_a_pull_request(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text(
        json.dumps(
            {
                "pull_request": {
                    "number": 12,
                    "head": {"sha": "abc123", "repo": {"full_name": "fork/catalog"}},
                    "base": {"repo": {"full_name": "acme/catalog"}},
                }
            }
        )
    )
    event = Event.load(path)
    assert event.pull_request_number == 12
    assert event.head_sha == "abc123"
    assert event.is_fork_pull_request


def test_event_of_a_push_has_no_pull_request(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"after": "def456", "ref": "refs/heads/main"}))
    event = Event.load(path)
    assert event.pull_request_number is None and not event.is_fork_pull_request
    assert event.head_sha == "def456"


def test_unreadable_event_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "e.json").write_text("[1, 2]")
    with pytest.raises(ConfigError):
        Event.load(tmp_path / "e.json")
    with pytest.raises(ConfigError):
        Event.load(tmp_path / "missing.json")


# --- plan results ------------------------------------------------------------------------------


def test_headline_counts_in_reading_order_with_cost() -> None:
    doc = plan_json(summary={"update": 3, "create": 1})
    assert headline(doc) == "1 to create, 3 to update (14 requests, about 2 s)"
    assert headline(plan_json()) == ""
    short = {**doc, "estimate": {"requests": 1, "seconds": 0.3}}
    assert headline(short) == "1 to create, 3 to update (1 request, about 1 s)"


def test_drifted_fields_walk_variants_too() -> None:
    doc = plan_json(
        product(
            "classic-tee",
            fc("name", "Tee", "Classic Tee", drift=True),
            fc("description", None, "<p>x</p>"),
            children=[
                {
                    "kind": "variant",
                    "key": "TEE-S",
                    "fields": [fc("price", "29.00", "27.00", drift=True)],
                }
            ],
        )
    )
    found = drifted_fields(doc)
    assert [(d.kind, d.key, d.field, d.live, d.catalog) for d in found] == [
        ("product", "classic-tee", "name", "Tee", "Classic Tee"),
        ("variant", "TEE-S", "price", "29.00", "27.00"),
    ]


def test_make_result_by_exit_code() -> None:
    doc = plan_json(product("a", fc("price", "1.00", "2.00", drift=True)), summary={"update": 1})
    changed = make_result(store="acme", exit_code=2, plan_json=doc, markdown="plan", stderr="")
    assert (
        changed.status is Status.CHANGES
        and changed.drift == 1
        and changed.headline.startswith("1 to update")
    )
    same = make_result(store="acme", exit_code=0, plan_json=plan_json(), markdown="", stderr="")
    assert same.status is Status.NO_CHANGES
    failed = make_result(
        store="acme",
        exit_code=1,
        plan_json=None,
        markdown="",
        stderr="Refreshing...\nError: LIGHTSPEED_TOKEN is not set: export a token.\n",
    )
    assert failed.status is Status.ERROR
    assert failed.error == "LIGHTSPEED_TOKEN is not set: export a token."
    assert make_result(store="a", exit_code=70, plan_json=None, markdown="", stderr="").error


def test_error_sentence_takes_the_last_error_line() -> None:
    assert error_sentence("x\nError: first\nError: second\n") == "second"
    assert error_sentence("no errors") == ""


# --- the comment -------------------------------------------------------------------------------


def result(store: str, status: Status, markdown: str = "", **kw: object) -> StoreResult:
    return StoreResult(store=store, status=status, markdown=markdown, **kw)  # type: ignore[arg-type]


def test_comment_starts_with_the_marker_and_says_no_changes_clearly() -> None:
    body = plan_comment(
        [result("acme", Status.NO_CHANGES)],
        run=RunInfo(repository="o/r", run_id="9"),
        sha="abcdef1234",
    )
    assert body.startswith(PLAN_MARKER + "\n")
    assert "**No changes.**" in body
    assert "`acme`: no changes" in body
    assert "https://github.com/o/r/actions/runs/9" in body and "`abcdef1`" in body


def test_comment_shows_each_store_and_failures() -> None:
    body = plan_comment(
        [
            result(
                "acme",
                Status.CHANGES,
                "| price | 25.00 -> 27.00 |\n",
                headline="1 to update",
                drift=2,
            ),
            result("beta", Status.ERROR, error="The store answered 401."),
            result("gamma", Status.NO_CHANGES),
        ]
    )
    assert "No changes.**" not in body
    assert "`acme`: 1 to update" in body and "25.00 -> 27.00" in body
    assert "2 fields were changed in the store outside the catalog" in body
    assert "`beta`: plan failed" in body and "The store answered 401." in body
    assert "`gamma`: no changes" in body


def test_comment_on_invalid_catalog_shows_the_problems() -> None:
    body = plan_comment(
        [], validation_failed=True, validation_text="catalog/a.yaml:3:5: price is not a number"
    )
    assert "not valid" in body and "catalog/a.yaml:3:5: price is not a number" in body
    assert body.count("```") == 2


def test_comment_fits_the_limit_with_many_huge_plans() -> None:
    huge = "".join(f"| product-{i} | price | 1.00 -> 2.00 |\n" for i in range(20_000))
    results = [
        result(
            f"store-{n}",
            Status.CHANGES,
            huge,
            headline="20000 to update",
            artifact=f"plan-store-{n}",
        )
        for n in range(3)
    ]
    body = plan_comment(results)
    assert len(body) <= COMMENT_LIMIT
    assert body.startswith(PLAN_MARKER)
    for n in range(3):
        # every store keeps its heading and a fair share of its plan, with a pointer to the rest
        assert f"`store-{n}`: 20000 to update" in body
        assert f"artifact `plan-store-{n}`" in body
    assert body.count("```") % 2 == 0 and body.count("<details") == body.count("</details>")


# --- the drift issue ---------------------------------------------------------------------------


def test_drift_issue_body_tables_and_escapes() -> None:
    doc = plan_json(
        product(
            "a|b", fc("name", "X | Y", "Z", drift=True), fc("tags", ["a"], ["a", "b"], drift=True)
        )
    )
    body = drift_issue_body("acme", drifted_fields(doc), run=RunInfo(repository="o/r", run_id="3"))
    assert body.startswith("<!-- lightspeed-catalog:drift store=acme -->")
    assert "found 2 fields" in body
    assert "| product `a\\|b` | name | `X \\| Y` | `Z` |" in body
    assert '| tags | `["a"]` | `["a", "b"]` |' in body
    assert re.search(r"<sub>Last checked: .*runs/3", body)


# --- which stores ------------------------------------------------------------------------------


def test_stores_precedence_and_dedupe() -> None:
    assert resolve_stores(explicit="beta, acme beta", from_settings=["x"], variable="y") == [
        "beta",
        "acme",
    ]
    assert resolve_stores(explicit="", from_settings=["Acme", "b2"], variable="y") == ["acme", "b2"]
    assert resolve_stores(explicit="", from_settings=[], variable="solo") == ["solo"]


def test_stores_none_or_invalid_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="LIGHTSPEED_STORE"):
        resolve_stores(explicit="", from_settings=[], variable="")
    with pytest.raises(ConfigError, match="domain prefix"):
        resolve_stores(explicit="acme.retail.lightspeed.app", from_settings=[], variable="")
    with pytest.raises(ConfigError, match="domain prefix"):
        resolve_stores(explicit="", from_settings=["../etc"], variable="")


def test_settings_stores_from_catalog_yaml(tmp_path: Path) -> None:
    assert settings_stores(tmp_path) == []
    (tmp_path / "catalog.yaml").write_text("settings:\n  prune: none\n  stores: [acme, beta]\n")
    assert settings_stores(tmp_path) == ["acme", "beta"]
    (tmp_path / "catalog.yaml").write_text("settings:\n  stores: acme\n")
    with pytest.raises(ConfigError, match="list"):
        settings_stores(tmp_path)


def test_the_plans_own_title_is_not_repeated_under_the_store_heading() -> None:
    body = plan_comment(
        [
            result(
                "acme",
                Status.CHANGES,
                "### Catalog plan\n\n**Plan: 1 to update.**\n",
                headline="1 to update",
            )
        ]
    )
    assert "### Catalog plan" not in body and "**Plan: 1 to update.**" in body


# --- guardrails in the comment -------------------------------------------------------------------


def _tote_plan(price: str, *, allow: tuple[Rule, ...] = ()) -> Plan:
    """A real plan: the catalog changes the tote's price in a store that sells it at 29.00."""
    row = {
        "id": "p1",
        "handle": "canvas-tote",
        "name": "Canvas Tote",
        "sku": "TOTE-NAT",
        "is_active": True,
        "has_variants": False,
        "price_including_tax": 29.0,
        "price_excluding_tax": 25.21739,
        "supply_price": 0.5,
        "version": 3,
        "variant_options": [],
        "tag_ids": [],
        "product_codes": [],
    }
    live = normalize_live(
        products=[row],
        brands=[],
        suppliers=[],
        tags=[],
        attributes=[],
        categories=[],
        tax_exclusive=False,
    )
    tote = Product("canvas-tote", "Canvas Tote", sku="TOTE-NAT", price=Decimal(price))
    return make_plan(Catalog.build(products=[tote]), live, store="acme", allow=allow)


def test_a_comment_on_a_90_percent_price_drop_shows_the_violation_first() -> None:
    plan = _tote_plan("2.90")
    result = make_result(
        store="acme",
        exit_code=2,
        plan_json=json.loads(render_json(plan)),
        markdown=render_markdown(plan),
        stderr="",
    )
    assert result.guardrails == ("price-jump",) and result.broken == 1
    comment = plan_comment([result])
    heading = comment.index("### 📝 `acme`")
    caution = comment.index("[!CAUTION]", heading)
    label = comment.index("`catalog:allow-price-jump`", heading)
    table = comment.index("| price-jump | `canvas-tote` | price | `29.00` | `2.90` | -90%")
    assert heading < caution < label < table < comment.index("| Action | Count |")
    # What a round trip through result.json (the comment job) keeps.
    again = StoreResult.from_json(result.to_json(), markdown=result.markdown)
    assert plan_comment([again]) == comment


def test_a_comment_on_an_allowed_or_small_change_has_no_caution() -> None:
    small = _tote_plan("30.00")
    result = make_result(
        store="acme",
        exit_code=2,
        plan_json=json.loads(render_json(small)),
        markdown=render_markdown(small),
        stderr="",
    )
    assert "CAUTION" not in plan_comment([result])
    allowed = _tote_plan("2.90", allow=(Rule.PRICE_JUMP,))
    result = make_result(
        store="acme",
        exit_code=2,
        plan_json=json.loads(render_json(allowed)),
        markdown=render_markdown(allowed),
        stderr="",
    )
    comment = plan_comment([result])
    assert result.broken == 0 and "allowed by --allow" in comment and "CAUTION" not in comment
