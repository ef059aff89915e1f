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

Invariant kept throughout: nothing here ever sees the Lightspeed access token, and the GitHub
token is only ever a request header. The one exception is deliberate: a rotated R-Series refresh
token is read from its token file and written, sealed, to an Actions secret, never shown.
"""

from reconciler.errors import GitError, GitHubError
from reconciler.github.rest import (
    Comment,
    GitHub,
    Issue,
    Upsert,
    UpsertResult,
    sync_drift_issue,
    sync_drift_pull_request,
    upsert_comment,
)
from reconciler.github.runner import (
    RESULT_JSON,
    Event,
    append_summary,
    read_results,
    rotated_refresh_token,
    settings_stores,
    store_platforms,
    write_outputs,
)
from reconciler.github.statebranch import (
    BOT_IDENTITY,
    GIT_FILE_LIMIT,
    STATE_BRANCH,
    STATE_BRANCH_README,
    STATE_FILE_NAME,
    StateBranch,
    push_catalog,
    snapshot_state,
)
from reconciler.github.text import (
    COMMENT_LIMIT,
    DRIFT_BRANCH_PREFIX,
    DRIFT_LABEL,
    NO_STORE_MESSAGE,
    PLAN_MARKER,
    STORE_KEY,
    SUMMARY_LIMIT,
    DriftedField,
    RunInfo,
    Status,
    StoreResult,
    allow_labels,
    apply_summary,
    check_store_key,
    drift_issue_body,
    drift_issue_title,
    drift_marker,
    drift_pr_body,
    drift_pr_branch,
    drift_pr_marker,
    drift_pr_title,
    drifted_fields,
    error_sentence,
    fit,
    headline,
    make_result,
    plan_comment,
    plan_summary,
    resolve_stores,
    status_from_exit_code,
    store_section,
    unallowed_violations,
    utf8_len,
)

__all__ = [
    "BOT_IDENTITY",
    "COMMENT_LIMIT",
    "DRIFT_BRANCH_PREFIX",
    "DRIFT_LABEL",
    "GIT_FILE_LIMIT",
    "NO_STORE_MESSAGE",
    "PLAN_MARKER",
    "RESULT_JSON",
    "STATE_BRANCH",
    "STATE_BRANCH_README",
    "STATE_FILE_NAME",
    "STORE_KEY",
    "SUMMARY_LIMIT",
    "Comment",
    "DriftedField",
    "Event",
    "GitError",
    "GitHub",
    "GitHubError",
    "Issue",
    "RunInfo",
    "StateBranch",
    "Status",
    "StoreResult",
    "Upsert",
    "UpsertResult",
    "allow_labels",
    "append_summary",
    "apply_summary",
    "check_store_key",
    "drift_issue_body",
    "drift_issue_title",
    "drift_marker",
    "drift_pr_body",
    "drift_pr_branch",
    "drift_pr_marker",
    "drift_pr_title",
    "drifted_fields",
    "error_sentence",
    "fit",
    "headline",
    "make_result",
    "plan_comment",
    "plan_summary",
    "push_catalog",
    "read_results",
    "resolve_stores",
    "rotated_refresh_token",
    "settings_stores",
    "snapshot_state",
    "status_from_exit_code",
    "store_platforms",
    "store_section",
    "sync_drift_issue",
    "sync_drift_pull_request",
    "unallowed_violations",
    "upsert_comment",
    "utf8_len",
    "write_outputs",
]
