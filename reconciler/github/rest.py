"""GitHub's REST API over httpx with an injectable transport (tests use a fake API, never the
network): comments, issues and pull requests, upserted so a rerun edits instead of repeating;
and Actions secrets, sealed with the repository's (or environment's) public key."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import httpx

from reconciler.errors import ConfigError, GitHubError
from reconciler.github.text import (
    COMMENT_LIMIT,
    DRIFT_LABEL,
    PLAN_MARKER,
    DriftedField,
    RunInfo,
    drift_issue_body,
    drift_issue_title,
    drift_marker,
    drift_pr_branch,
    drift_pr_title,
)
from reconciler.model import Json

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

    # --- Actions secrets (a token that can write them: not the workflow's GITHUB_TOKEN) ---

    def _secrets_path(self, environment: str | None) -> str:
        if environment is None:
            return f"/repos/{self.repository}/actions/secrets"
        return f"/repos/{self.repository}/environments/{quote(environment, safe='')}/secrets"

    def set_secret(self, name: str, value: str, *, environment: str | None = None) -> None:
        """Create or update the Actions secret `name` of the repository, or of one of its
        environments: sealed (libsodium sealed box) with the public key GitHub hands out for
        it, so the value never travels or rests in the clear. The value is never logged."""
        base = self._secrets_path(environment)
        key = self._request("GET", f"{base}/public-key").json()
        if not isinstance(key, dict) or not key.get("key") or not key.get("key_id"):
            raise GitHubError(f"GitHub API GET {base}/public-key did not answer with a key.")
        self._request(
            "PUT",
            f"{base}/{name}",
            json_body={"encrypted_value": seal(str(key["key"]), value), "key_id": key["key_id"]},
        )

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


def seal(public_key: str, value: str) -> str:
    """`value` in a libsodium sealed box for `public_key` (base64, as GitHub gives it), in
    base64: only the holder of the private key (GitHub) can open it."""
    from nacl.public import PublicKey, SealedBox  # only `catalog ci keep-refresh-token` needs it

    box = SealedBox(PublicKey(base64.b64decode(public_key)))
    return base64.b64encode(box.encrypt(value.encode("utf-8"))).decode("ascii")


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


def _without_footer(body: str) -> str:
    return re.sub(r"\n*<sub>Last checked:.*</sub>\n?$", "", body.strip())
