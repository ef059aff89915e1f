"""The GitHub API side, against the fake: one comment updated in place, drift issues, errors."""

from __future__ import annotations

import pytest
from fake_github import FakeGitHub

from reconciler.errors import GitHubError
from reconciler.github import (
    COMMENT_LIMIT,
    DRIFT_LABEL,
    PLAN_MARKER,
    DriftedField,
    GitHub,
    RunInfo,
    Upsert,
    drift_marker,
    sync_drift_issue,
    upsert_comment,
)


def ours(fake: FakeGitHub, number: int = 7) -> list[dict[str, object]]:
    return [c for c in fake.comments_on(number) if str(c["body"]).startswith(PLAN_MARKER)]


# --- the plan comment --------------------------------------------------------------------------


def test_first_run_creates_the_comment(fake: FakeGitHub, gh: GitHub) -> None:
    outcome = upsert_comment(gh, 7, f"{PLAN_MARKER}\nplan one")
    assert outcome.outcome is Upsert.CREATED
    assert [c["body"] for c in ours(fake)] == [f"{PLAN_MARKER}\nplan one"]


def test_later_runs_update_the_same_comment_never_duplicate(fake: FakeGitHub, gh: GitHub) -> None:
    fake.add_comment(7, "Looks good to me")
    first = upsert_comment(gh, 7, f"{PLAN_MARKER}\nplan one")
    for n in range(2, 5):
        again = upsert_comment(gh, 7, f"{PLAN_MARKER}\nplan {n}")
        assert again.outcome is Upsert.UPDATED and again.number == first.number
    assert [c["body"] for c in ours(fake)] == [f"{PLAN_MARKER}\nplan 4"]
    assert len(fake.comments_on(7)) == 2  # the reviewer's comment is untouched


def test_an_unchanged_plan_costs_no_write(fake: FakeGitHub, gh: GitHub) -> None:
    upsert_comment(gh, 7, f"{PLAN_MARKER}\nsame")
    fake.requests.clear()
    outcome = upsert_comment(gh, 7, f"{PLAN_MARKER}\nsame")
    assert outcome.outcome is Upsert.UNCHANGED
    assert fake.writes() == []


def test_the_marker_is_added_when_missing(fake: FakeGitHub, gh: GitHub) -> None:
    upsert_comment(gh, 7, "plan without marker")
    upsert_comment(gh, 7, "plan without marker, again")
    assert [c["body"] for c in ours(fake)] == [f"{PLAN_MARKER}\nplan without marker, again"]


def test_a_comment_quoting_the_marker_is_not_ours(fake: FakeGitHub, gh: GitHub) -> None:
    quoted = fake.add_comment(7, f"> {PLAN_MARKER}\n> why does it say this?")
    upsert_comment(gh, 7, f"{PLAN_MARKER}\nplan")
    assert fake.comments[quoted]["body"].startswith("> ")
    assert len(ours(fake)) == 1


def test_duplicates_left_by_a_race_are_removed(fake: FakeGitHub, gh: GitHub) -> None:
    first = fake.add_comment(7, f"{PLAN_MARKER}\nold a", user="github-actions[bot]")
    fake.add_comment(7, f"{PLAN_MARKER}\nold b", user="github-actions[bot]")
    fake.add_comment(7, f"{PLAN_MARKER}\nold c", user="github-actions[bot]")
    outcome = upsert_comment(gh, 7, f"{PLAN_MARKER}\nnew")
    assert outcome.outcome is Upsert.UPDATED and outcome.removed_duplicates == 2
    assert [(c["id"], c["body"]) for c in ours(fake)] == [(first, f"{PLAN_MARKER}\nnew")]


def test_our_comment_is_found_past_the_first_page(fake: FakeGitHub, gh: GitHub) -> None:
    for i in range(150):
        fake.add_comment(7, f"chatter {i}")
    mine = fake.add_comment(7, f"{PLAN_MARKER}\nold", user="github-actions[bot]")
    outcome = upsert_comment(gh, 7, f"{PLAN_MARKER}\nnew")
    assert outcome.number == mine
    pages = [r for r in fake.requests if r == ("GET", "/repos/acme/catalog/issues/7/comments")]
    assert len(pages) == 2  # per_page=100: two pages, followed through the Link header
    assert len(ours(fake)) == 1


def test_a_body_over_the_limit_is_refused_before_any_request(fake: FakeGitHub, gh: GitHub) -> None:
    with pytest.raises(ValueError, match="limit"):
        upsert_comment(gh, 7, PLAN_MARKER + "x" * COMMENT_LIMIT)
    assert fake.requests == []


def test_the_fake_rejects_what_github_rejects(fake: FakeGitHub, gh: GitHub) -> None:
    # keeps the fake honest: GitHub answers 422 for a body over 65,536 characters
    with pytest.raises(GitHubError) as err:
        gh.create_comment(7, "x" * (COMMENT_LIMIT + 1))
    assert err.value.status == 422


# --- errors and retries ------------------------------------------------------------------------


def test_permission_error_names_the_fix_and_never_the_token(fake: FakeGitHub, gh: GitHub) -> None:
    fake.fail_next = [403]
    with pytest.raises(GitHubError) as err:
        upsert_comment(gh, 7, f"{PLAN_MARKER}\nplan")
    message = str(err.value)
    assert "403" in message and "pull-requests: write" in message
    assert fake.token not in message


def test_bad_token_is_401(fake: FakeGitHub) -> None:
    with (
        GitHub(
            token="wrong",
            repository=fake.repository,
            api_url=fake.base_url,
            transport=fake.transport(),
        ) as client,
        pytest.raises(GitHubError, match=r"401.*missing or expired"),
    ):
        client.comments(7)


def test_reads_are_retried_on_server_errors_creates_are_not(fake: FakeGitHub, gh: GitHub) -> None:
    fake.fail_next = [502, 503]
    assert gh.comments(7) == []  # two failures, then success
    fake.fail_next = [502]
    with pytest.raises(GitHubError, match="502"):
        gh.create_comment(7, "x")
    assert fake.comments_on(7) == []


def test_missing_token_or_repository_is_a_config_error() -> None:
    from reconciler.errors import ConfigError

    with pytest.raises(ConfigError, match="GITHUB_TOKEN"):
        GitHub(token="", repository="a/b")
    with pytest.raises(ConfigError, match="GITHUB_REPOSITORY"):
        GitHub(token="t", repository="not a repo")


# --- the drift issue ---------------------------------------------------------------------------

DRIFT = [DriftedField("variant", "TEE-S", "price", "29.00", "27.00")]
RUN = RunInfo(repository="acme/catalog", run_id="1")


def open_drift_issues(fake: FakeGitHub) -> list[dict[str, object]]:
    return [
        i
        for i in fake.issues.values()
        if i["state"] == "open" and str(i["body"]).startswith(drift_marker("acme"))
    ]


def test_drift_opens_one_issue_and_updates_it(fake: FakeGitHub, gh: GitHub) -> None:
    created = sync_drift_issue(gh, "acme", DRIFT, run=RUN)
    assert created.outcome is Upsert.CREATED
    (issue,) = open_drift_issues(fake)
    assert issue["title"] == "Catalog drift in store acme"
    assert [lb["name"] for lb in issue["labels"]] == [DRIFT_LABEL]  # type: ignore[attr-defined]
    assert "`29.00`" in str(issue["body"])

    more = [*DRIFT, DriftedField("product", "tee", "name", "Tee!", "Tee")]
    updated = sync_drift_issue(gh, "acme", more, run=RunInfo(repository="acme/catalog", run_id="2"))
    assert updated.outcome is Upsert.UPDATED and updated.number == created.number
    assert len(open_drift_issues(fake)) == 1
    assert "`Tee!`" in str(fake.issues[created.number or 0]["body"])


def test_same_drift_next_night_costs_no_write(fake: FakeGitHub, gh: GitHub) -> None:
    sync_drift_issue(gh, "acme", DRIFT, run=RUN)
    fake.requests.clear()
    # a new run id changes only the "last checked" footer: not worth a write
    again = sync_drift_issue(gh, "acme", DRIFT, run=RunInfo(repository="acme/catalog", run_id="2"))
    assert again.outcome is Upsert.UNCHANGED
    assert fake.writes() == []


def test_drift_gone_closes_the_issue_with_a_comment(fake: FakeGitHub, gh: GitHub) -> None:
    created = sync_drift_issue(gh, "acme", DRIFT, run=RUN)
    closed = sync_drift_issue(gh, "acme", [], run=RUN)
    assert closed.outcome is Upsert.CLOSED and closed.number == created.number
    issue = fake.issues[created.number or 0]
    assert issue["state"] == "closed" and issue["state_reason"] == "completed"
    assert "no drift" in str(fake.comments_on(created.number or 0)[0]["body"])
    # and the next drift opens a fresh issue rather than reviving the closed one
    reopened = sync_drift_issue(gh, "acme", DRIFT, run=RUN)
    assert reopened.outcome is Upsert.CREATED and reopened.number != created.number


def test_no_drift_and_no_issue_does_nothing(fake: FakeGitHub, gh: GitHub) -> None:
    assert sync_drift_issue(gh, "acme", [], run=RUN).outcome is Upsert.NONE
    assert fake.writes() == []


def test_each_store_has_its_own_issue(fake: FakeGitHub, gh: GitHub) -> None:
    sync_drift_issue(gh, "acme", DRIFT, run=RUN)
    sync_drift_issue(gh, "beta", DRIFT, run=RUN)
    sync_drift_issue(gh, "acme", [], run=RUN)
    still_open = [
        i for i in fake.issues.values() if i["state"] == "open" and "pull_request" not in i
    ]
    assert [i["title"] for i in still_open] == ["Catalog drift in store beta"]


def test_pull_requests_in_the_issue_list_are_ignored(fake: FakeGitHub, gh: GitHub) -> None:
    # the issues endpoint lists pull requests too; one that happens to carry the label and
    # marker must never be edited or closed as a drift issue
    fake.issues[7]["labels"] = [{"name": DRIFT_LABEL}]
    fake.issues[7]["body"] = drift_marker("acme")
    sync_drift_issue(gh, "acme", [], run=RUN)
    assert fake.issues[7]["state"] == "open"
