"""The three renderings of one plan, read as a reviewer would."""

from __future__ import annotations

import dataclasses
import json
import re

from reconciler.plan import Action, Change, Estimate, FieldChange, Kind, Plan
from reconciler.render import duration, render_json, render_markdown, render_text

ESTIMATE = Estimate(requests=19, seconds=17.0, rate_limit=350, window_seconds=300.0)


def update(handle: str, *fields: FieldChange, children: tuple[Change, ...] = ()) -> Change:
    return Change(
        Kind.PRODUCT,
        handle,
        Action.UPDATE,
        fields,
        children,
        remote_id="0f8e9a2c-uuid",
        live_version="7",
        requests=1,
    )


def a_plan(changes: list[Change], **kwargs: object) -> Plan:
    return Plan(
        changes=tuple(changes),
        catalog_digest="d" * 64,
        store="acme",
        tax_exclusive=False,
        estimate=kwargs.pop("estimate", ESTIMATE),  # type: ignore[arg-type]
        git_commit="0123456789abcdef0123",
        created_at="2026-01-01T00:00:00+00:00",
        **kwargs,  # type: ignore[arg-type]
    )


def creates(n: int) -> list[Change]:
    return [
        Change(Kind.PRODUCT, f"new-{i}", Action.CREATE, (FieldChange("name", None, f"New {i}"),))
        for i in range(n)
    ]


def updates(n: int) -> list[Change]:
    return [update(f"p-{i:02}", FieldChange("price", "25.00", "27.00")) for i in range(n)]


def test_closing_line_is_the_contract_sentence() -> None:
    text = render_text(a_plan(creates(3) + updates(12)))
    assert text.splitlines()[-1] == (
        "Plan: 3 to create, 12 to update, 0 to deactivate. "
        "19 API requests, about 17 s at this store's rate limit."
    )


def test_an_empty_plan_says_so() -> None:
    text = render_text(a_plan([], unchanged=40, estimate=Estimate(0, 0.0, 350, 300.0)))
    assert text.splitlines()[-1].startswith("No changes. The store matches the catalog")


def test_grouped_by_family_with_only_the_changed_fields() -> None:
    variant = Change(
        Kind.VARIANT,
        "TEE-S",
        Action.UPDATE,
        (FieldChange("price", "25.00", "27.00", drift=True),),
        requests=1,
    )
    new = Change(
        Kind.VARIANT,
        "TEE-XL",
        Action.CREATE,
        (FieldChange("price", None, "29.00"), FieldChange("options", None, {"Size": "XL"})),
        requests=1,
    )
    text = render_text(
        a_plan(
            [update("classic-tee", FieldChange("tags", ["a"], ["a", "b"]), children=(variant, new))]
        )
    )
    lines = text.splitlines()
    i = lines.index("~ classic-tee: update")
    assert lines[i + 1 : i + 5] == [
        "    ~ tags a -> a, b",
        "    ~ variant TEE-S: price 25.00 -> 27.00",
        "        ! price: changed in the store since the last apply; applying overwrites that edit",
        "    + new variant TEE-XL: price 29.00, Size XL",
    ]


def test_no_api_words_ids_or_versions_in_human_renderings() -> None:
    plan = a_plan(creates(1) + updates(2))
    for text in (render_text(plan), render_markdown(plan)):
        assert "0f8e9a2c" not in text
        assert not re.search(r"price_(in|ex)cluding_tax|_id\b|remote|version", text)


def test_colour_only_when_asked() -> None:
    plan = a_plan(updates(1))
    assert "\x1b[" not in render_text(plan, color=False)
    assert "\x1b[33m~ p-00: update\x1b[0m" in render_text(plan, color=True)


def test_markdown_has_a_summary_table_and_one_section_per_family() -> None:
    md = render_markdown(a_plan(creates(1) + updates(2)))
    assert "| 🟢 to create | 1 |" in md and "| 🟡 to update | 2 |" in md
    assert md.count("<details>") == 3 and md.count("</details>") == 3
    assert "| ~ | product | price | `25.00` | `27.00` |" in md


def test_markdown_shows_html_and_pipes_as_text() -> None:
    md = render_markdown(
        a_plan([update("mug", FieldChange("description", "<p>a | b</p>", "<b>new</b>"))])
    )
    assert '`"<p>a \\| b</p>"`' in md
    assert '`"<b>new</b>"`' in md


def test_markdown_stays_under_the_comment_limit() -> None:
    many = [
        update(
            f"product-{i:05}",
            FieldChange("description", "x" * 70, "y" * 70),
            children=tuple(
                Change(
                    Kind.VARIANT,
                    f"SKU-{i}-{j}",
                    Action.UPDATE,
                    (FieldChange("price", "1.00", "2.00"),),
                )
                for j in range(5)
            ),
        )
        for i in range(2000)
    ]
    md = render_markdown(a_plan(many))
    assert len(md) <= 60_000
    match = re.search(r"\*\*(\d+) more changes not shown; see the plan artifact\*\*", md)
    assert match is not None
    shown = md.count("<details>")
    assert int(match.group(1)) == (2000 - shown) * 6  # each hidden family: itself + 5 variants


def test_markdown_marks_drift_for_reviewers() -> None:
    md = render_markdown(a_plan([update("mug", FieldChange("price", "9.00", "8.00", drift=True))]))
    assert "changed in the store since the last apply" in md
    assert "**Warning:** 1 field was changed in the store" in md


def test_json_is_one_document_with_format_version_and_digest() -> None:
    plan = a_plan(creates(1) + updates(1))
    doc = json.loads(render_json(plan))
    assert doc["format_version"] == 2
    assert doc["plan_digest"] == plan.digest()
    assert doc["estimate"] == {
        "requests": 19,
        "seconds": 17.0,
        "rate_limit": 350,
        "window_seconds": 300.0,
    }
    assert Plan.from_json(doc) == plan
    assert doc["changes"][1]["fields"] == [
        {"field": "price", "before": "25.00", "after": "27.00", "drift": False}
    ]


def test_streamed_json_and_digest_equal_the_plain_ones() -> None:
    from reconciler.render import plan_digest, plan_document

    plan = a_plan(
        creates(2) + updates(3) + [update("crème", FieldChange("name", "Crème", "Crème brûlée"))],
        notices=("a notice",),
        extra={"k": [1, 2]},
    )
    assert plan_digest(plan) == plan.digest()
    assert json.loads(render_json(plan)) == plan_document(plan)
    empty = a_plan([])
    assert plan_digest(empty) == empty.digest()
    assert json.loads(render_json(empty)) == plan_document(empty)


def test_streamed_json_is_byte_for_byte_the_indented_document() -> None:
    # The live versions are written and hashed one entry at a time (a 100,000-family plan
    # holds some 600,000); the bytes are those of the whole document encoded at once.
    from reconciler.render import plan_digest, plan_document

    variant = Change(Kind.VARIANT, "CRÈME-S", Action.UPDATE, remote_id="v", live_version="9")
    plans = [
        a_plan(
            [*updates(3), update("crème", FieldChange("name", "Crème", "Crème brûlée"))],
            extra={"k": [1, 2]},
        ),
        a_plan([update('a"b', children=(variant,))]),
        a_plan(creates(2)),  # no live versions at all
        a_plan([]),
    ]
    for plan in plans:
        whole = json.dumps(plan_document(plan), indent=2, ensure_ascii=False) + "\n"
        assert render_json(plan) == whole
        assert plan_digest(plan) == plan.digest()


# -- user text is printed literally (issue 18) -------------------------------------------------

HOSTILE = ["Mug :heart: Edition [red]", "[/]", "[bold]x[/bold]", "products.csv:100:", "*a* _b_"]


def hostile_plan() -> Plan:
    name = " ".join(HOSTILE)
    tag = Change(Kind.TAG, "[red]:heart:", Action.CREATE, (FieldChange("name", None, "[red]"),))
    product = Change(
        Kind.PRODUCT,
        "Mug-:heart:-[red]",
        Action.CREATE,
        (
            FieldChange("name", None, name),
            FieldChange("description", None, "[/] :smile: `code` \x1b[31mred"),
            FieldChange("tags", None, ["[red]:heart:"]),
        ),
    )
    return a_plan([tag, product], notices=(f"Mug-:heart:-[red]: {name}",))


def test_text_shows_user_text_as_written_and_control_characters_escaped() -> None:
    text = render_text(hostile_plan(), color=False)
    for s in HOSTILE:
        assert s in text
    assert "Mug-:heart:-[red]: new product" in text and "+ new tag [red]:heart:" in text
    assert "\x1b" not in text and "\\u001b[31mred" in text  # shown, never acted on


def test_markdown_puts_user_text_in_code_where_github_reads_it_literally() -> None:
    md = render_markdown(hostile_plan())
    assert "<code>Mug-:heart:-[red]</code>" in md
    assert "- 🟢 `new tag [red]:heart:`" in md
    # Notes (which quote names) are inline code too: no emoji, link or emphasis is made of them.
    assert "> - `Mug-:heart:-[red]: Mug :heart: Edition [red] [/]" in md
    # The description holds a backtick: the code span's fence is longer than any run in it.
    assert '`` "[/] :smile: `code` \\u001b[31mred" ``' in md
    assert "\x1b" not in md


def test_json_carries_user_text_exactly() -> None:
    doc = json.loads(render_json(hostile_plan()))
    product = next(c for c in doc["changes"] if c["kind"] == "product")
    assert product["key"] == "Mug-:heart:-[red]"
    assert product["fields"][0]["after"] == " ".join(HOSTILE)
    assert product["fields"][1]["after"] == "[/] :smile: `code` \x1b[31mred"


def test_duration_says_a_part_of_a_second_is_one_second() -> None:
    # One rule for the plan text and the pull-request headline (they disagreed once).
    assert duration(0.3) == "1 s"
    assert duration(0) == "0 s"
    assert duration(2.4) == "2 s"
    assert duration(120) == "2 min"


def test_costing_a_plan_copies_only_the_changes_it_charges() -> None:
    # A cold plan adopts every family at no cost: those changes are kept as they are, not
    # copied (100,000 families would exist twice); a charged change, or one whose child is,
    # is a new value with its requests.
    adopted = (Change(Kind.VARIANT, "F-1", Action.ADOPT),)
    free = Change(Kind.PRODUCT, "free", Action.ADOPT, children=adopted)
    child = Change(Kind.VARIANT, "P-1", Action.UPDATE, (FieldChange("price", "1.00", "2.00"),))
    paid = Change(Kind.PRODUCT, "paid", Action.UPDATE, children=(child,))
    plan = a_plan([free, paid])
    costed = plan.with_costs({id(child): 1}, ESTIMATE, notes={id(paid): "a note"})
    kept, charged = costed.changes
    assert kept is free
    assert charged is not paid and charged.note == "a note" and charged.requests == 0
    assert charged.children[0].requests == 1 and charged.children[0].fields == child.fields
    assert costed.changes == (
        free,
        dataclasses.replace(
            paid, note="a note", children=(dataclasses.replace(child, requests=1),)
        ),
    )
