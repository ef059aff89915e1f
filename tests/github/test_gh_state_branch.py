"""The state file kept on a git branch: restored, saved as one commit per apply, race-safe."""

from __future__ import annotations

import sqlite3
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from gh_helpers import git

from reconciler.errors import ConfigError, GitHubError
from reconciler.github import STATE_BRANCH, StateBranch, snapshot_state
from reconciler.state import State

Clone = Callable[[str], Path]


def branch(repo: Path, **kw: object) -> StateBranch:
    return StateBranch(repo=repo, sleep=lambda _s: None, **kw)  # type: ignore[arg-type]


def commits_on_branch(origin: Path) -> list[str]:
    return git(origin, "log", "--format=%s", STATE_BRANCH).splitlines()


def test_nothing_saved_yet_restores_nothing(clone_of: Clone, tmp_path: Path) -> None:
    runner = clone_of("runner")
    dest = tmp_path / "state.db"
    assert branch(runner).pull("acme", dest) is False
    assert not dest.exists()


def test_push_then_pull_on_another_runner(clone_of: Clone, origin: Path, tmp_path: Path) -> None:
    first = clone_of("runner1")
    saved = tmp_path / "saved.db"
    saved.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)
    commit = branch(first).push("acme", saved, message="acme: state after apply of abc")
    assert commits_on_branch(origin) == ["acme: state after apply of abc"]
    tree = git(origin, "ls-tree", "-r", "--name-only", STATE_BRANCH).splitlines()
    assert tree == ["README.md", "acme/state.db"]
    assert git(origin, "log", "-1", "--format=%an", STATE_BRANCH) == "github-actions[bot]"

    second = clone_of("runner2")
    dest = tmp_path / "restored" / "state.db"
    assert branch(second).pull("acme", dest) is True
    assert dest.read_bytes() == saved.read_bytes()
    assert commit == git(origin, "rev-parse", STATE_BRANCH)
    # the checkout itself is untouched: no new branch checked out, clean tree, same HEAD
    assert git(second, "status", "--porcelain") == ""
    assert git(second, "rev-parse", "--abbrev-ref", "HEAD") == "main"


def test_one_commit_per_apply_and_none_when_identical(
    clone_of: Clone, origin: Path, tmp_path: Path
) -> None:
    runner = clone_of("runner")
    saved = tmp_path / "saved.db"
    for n in range(3):
        saved.write_bytes(f"state {n}".encode())
        branch(runner).push("acme", saved, message=f"apply {n}")
    head = git(origin, "rev-parse", STATE_BRANCH)
    assert branch(runner).push("acme", saved, message="apply again") == head
    assert commits_on_branch(origin) == ["apply 2", "apply 1", "apply 0"]


def test_stores_keep_separate_files(clone_of: Clone, origin: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    a.write_bytes(b"acme state")
    b.write_bytes(b"beta state")
    branch(clone_of("r1")).push("acme", a, message="acme")
    branch(clone_of("r2")).push("beta", b, message="beta")
    reader = clone_of("r3")
    assert branch(reader).pull("acme", tmp_path / "ra.db")
    assert branch(reader).pull("beta", tmp_path / "rb.db")
    assert (tmp_path / "ra.db").read_bytes() == b"acme state"
    assert (tmp_path / "rb.db").read_bytes() == b"beta state"
    assert branch(reader).pull("gamma", tmp_path / "rc.db") is False


def test_a_lost_race_is_retried_on_top_of_the_winner(
    clone_of: Clone, origin: Path, tmp_path: Path
) -> None:
    """Two stores' apply jobs save at the same moment: the one whose push is refused
    refetches and commits on top, so neither state is lost."""
    loser, winner = clone_of("loser"), clone_of("winner")
    (tmp_path / "b.db").write_bytes(b"beta state")
    (tmp_path / "a.db").write_bytes(b"acme state")
    # The loser's pre-push hook lets the winner push first, once: exactly the window between
    # the loser's fetch and its push.
    marker = tmp_path / "raced"
    push_beta = (
        "from pathlib import Path; from reconciler.github import StateBranch; "
        f"StateBranch(repo=Path('.')).push('beta', Path('{tmp_path / 'b.db'}'), message='beta')"
    )
    hook = loser / ".git" / "hooks" / "pre-push"
    hook.write_text(
        "#!/bin/sh\n"
        f'if [ ! -e "{marker}" ]; then touch "{marker}"; '
        f'cd "{winner}" && unset GIT_DIR GIT_INDEX_FILE && '
        f'"{sys.executable}" -c "{push_beta}" >&2; fi\n'
    )
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    sleeps: list[float] = []
    StateBranch(repo=loser, sleep=sleeps.append).push("acme", tmp_path / "a.db", message="acme")
    assert marker.exists() and len(sleeps) == 1  # it did lose once, and retried
    assert commits_on_branch(origin) == ["acme", "beta"]
    files = git(origin, "ls-tree", "-r", "--name-only", STATE_BRANCH).splitlines()
    assert files == ["README.md", "acme/state.db", "beta/state.db"]


def test_a_refused_push_is_not_retried_and_says_why(
    clone_of: Clone, origin: Path, tmp_path: Path
) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch hook declined' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "a.db").write_bytes(b"x")
    sleeps: list[float] = []
    with pytest.raises(GitHubError, match="contents: write"):
        StateBranch(repo=clone_of("r"), sleep=sleeps.append).push(
            "acme", tmp_path / "a.db", message="m"
        )
    assert sleeps == []


def test_pull_removes_a_stale_write_ahead_log(clone_of: Clone, tmp_path: Path) -> None:
    saved = tmp_path / "saved.db"
    saved.write_bytes(b"saved")
    runner = clone_of("r")
    branch(runner).push("acme", saved, message="m")
    dest = tmp_path / "state.db"
    Path(f"{dest}-wal").write_bytes(b"from another database")
    assert branch(runner).pull("acme", dest)
    assert not Path(f"{dest}-wal").exists()


def test_store_key_guards_the_path(clone_of: Clone, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        branch(clone_of("r")).pull("../../etc", tmp_path / "x.db")


def test_git_failures_are_one_sentence(tmp_path: Path) -> None:
    not_a_repo = tmp_path / "plain"
    not_a_repo.mkdir()
    with pytest.raises(GitHubError, match=r"plain is not a git checkout: run this step in"):
        branch(not_a_repo).pull("acme", tmp_path / "x.db")


def test_snapshot_carries_what_is_only_in_the_write_ahead_log(tmp_path: Path) -> None:
    src, dest = tmp_path / "state.db", tmp_path / "snap.db"
    state = State(src)
    try:
        state.db["probe"].insert({"id": 1, "note": "committed, not yet checkpointed"})
        assert Path(f"{src}-wal").stat().st_size > 0  # the row lives in the WAL for now
        snapshot_state(src, dest)
    finally:
        state.close()
    conn = sqlite3.connect(dest)
    try:
        assert conn.execute("select note from probe").fetchall() == [
            ("committed, not yet checkpointed",)
        ]
    finally:
        conn.close()


def test_snapshot_of_a_missing_state_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="catalog apply"):
        snapshot_state(tmp_path / "none.db", tmp_path / "snap.db")
    assert not (tmp_path / "none.db").exists()  # and none was created by asking


def test_a_runner_fetches_only_the_latest_state(
    clone_of: Clone, origin: Path, tmp_path: Path
) -> None:
    """Every commit on the branch holds a whole SQLite file: a run must not download them all."""
    writer = clone_of("writer")
    saved = tmp_path / "saved.db"
    for n in range(3):
        saved.write_bytes(f"state {n}".encode() * 1000)
        branch(writer).push("acme", saved, message=f"apply {n}")
    reader = clone_of("reader")
    assert branch(reader).pull("acme", tmp_path / "got.db")
    assert (tmp_path / "got.db").read_bytes() == saved.read_bytes()
    assert git(reader, "rev-list", "--count", f"origin/{STATE_BRANCH}") == "1"
    # and a shallow runner can still push on top
    saved.write_bytes(b"state 3")
    branch(reader).push("acme", saved, message="apply 3")
    assert commits_on_branch(origin) == ["apply 3", "apply 2", "apply 1", "apply 0"]
