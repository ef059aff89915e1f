"""State persistence in git: the SQLite state file kept on a dedicated branch, one commit per
apply, written with git plumbing so the checkout's working tree and index are untouched; and the
bot's pushes of a pulled catalog."""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import ConfigError, GitError, GitHubError
from reconciler.github.text import check_store_key
from reconciler.state import State

# GitHub refuses a pushed file over 100 MB and warns over 50 MB.
GIT_FILE_LIMIT = 100 * 1024 * 1024
STATE_BRANCH = "catalog-state"
STATE_FILE_NAME = "state.db"
BOT_IDENTITY = ("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")


def push_catalog(
    repo: Path,
    *,
    catalog_dir: str,
    branch: str,
    message: str,
    remote: str = "origin",
    identity: tuple[str, str] = BOT_IDENTITY,
) -> str | None:
    """Commit the checkout's catalog directory as it is now on top of HEAD and make `branch`
    on the remote point at that commit (replacing what it held: the branch is the bot's).

    Written with a private index, so the checkout's index and working tree are untouched.
    Returns the commit, or None when the catalog does not differ from HEAD (nothing pushed)."""
    with tempfile.TemporaryDirectory() as tmp:
        index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(repo, "read-tree", "HEAD", env=index)
        _git(repo, "add", "-A", "--", catalog_dir, env=index)
        tree = _git(repo, "write-tree", env=index).decode().strip()
    if tree == _git(repo, "rev-parse", "HEAD^{tree}").decode().strip():
        return None
    name, email = identity
    author = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
    commit = _git(repo, "commit-tree", tree, "-p", "HEAD", "-m", message, env=author)
    sha = commit.decode().strip()
    try:
        _git(repo, "push", "--quiet", "--force", remote, f"{sha}:refs/heads/{branch}")
    except GitError as exc:
        raise GitHubError(
            f"Could not push the pulled catalog to branch {branch} ({exc}); check that the job "
            "has `contents: write` and that the branch is not protected."
        ) from exc
    return sha


def _git(
    repo: Path, *args: str, env: Mapping[str, str] | None = None, input_: bytes | None = None
) -> bytes:
    """Run git in `repo`; its stdout, or `GitError` with the last line it said."""
    full_env = {**os.environ, **(env or {}), "GIT_TERMINAL_PROMPT": "0"}
    proc = subprocess.run(
        ["git", *args], cwd=repo, input=input_, capture_output=True, env=full_env, check=False
    )
    if proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace").strip()
        last = stderr.splitlines()[-1] if stderr else f"exit {proc.returncode}"
        raise GitError(f"git {args[0]} failed ({last}).", status=proc.returncode, stderr=stderr)
    return proc.stdout


# ---------------------------------------------------------------------------------------------
# State persistence on a git branch
# ---------------------------------------------------------------------------------------------

# What `git push` says when the branch moved since we fetched it.
_RACE_SIGNS = ("[rejected]", "fetch first", "non-fast-forward", "cannot lock ref", "stale info")

STATE_BRANCH_README = """\
# catalog-state

This branch is written by the catalog-apply workflow (lightspeed-catalog), one commit per apply.
Each `<store>/state.db` is the SQLite state file of one store: the cache of live objects, the
change-feed cursors and the ledger of every applied change. It holds no secrets.

Do not edit it by hand. Deleting it is safe: the next run does a full refresh from the store
(the live store is the truth), and only the history shown by `catalog history` starts over.
"""


@dataclass(frozen=True)
class StateBranch:
    """The state files of all stores, kept on one branch of the repository's remote.

    Why a branch: it survives runner loss (unlike a runner's disk), never expires (unlike the
    Actions cache or artifacts), is readable with plain git, and a push that is not a
    fast-forward is refused, so two writers can never silently overwrite each other.
    """

    repo: Path  # a git checkout whose `remote` is the repository
    branch: str = STATE_BRANCH
    remote: str = "origin"
    identity: tuple[str, str] = BOT_IDENTITY
    attempts: int = 5
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def _git(
        self, *args: str, env: Mapping[str, str] | None = None, input_: bytes | None = None
    ) -> bytes:
        return _git(self.repo, *args, env=env, input_=input_)

    def _path(self, store: str) -> str:
        return f"{check_store_key(store)}/{STATE_FILE_NAME}"

    def _require_remote(self) -> None:
        """A checkout without the remote (a fresh `git init`, a renamed remote) is said plainly,
        not as a failed `git ls-remote`."""
        try:
            self._git("remote", "get-url", self.remote)
        except GitError as exc:
            inside = "not a git repository" not in exc.stderr
            raise GitHubError(
                f"The git checkout at {self.repo} has no remote {self.remote!r}: add it (git "
                f"remote add {self.remote} URL) or pass --remote, then rerun."
                if inside
                else f"{self.repo} is not a git checkout: run this step in the repository's "
                "checkout (actions/checkout), then rerun."
            ) from exc

    def _fetch(self) -> str | None:
        """Fetch the branch; its head commit, or None when it does not exist yet."""
        self._require_remote()
        heads = self._git("ls-remote", "--heads", self.remote, f"refs/heads/{self.branch}")
        if not heads.strip():
            return None
        tracking = f"refs/remotes/{self.remote}/{self.branch}"
        # Only the tip: every commit holds a whole SQLite file, and a parent id is all a new
        # commit needs. (Pushing from a shallow clone is fine: the remote has the parent.)
        refspec = f"+refs/heads/{self.branch}:{tracking}"
        self._git("fetch", "--depth=1", "--no-tags", "--quiet", self.remote, refspec)
        return self._git("rev-parse", tracking).decode().strip()

    def pull(self, store: str, dest: Path) -> bool:
        """Write the store's saved state to `dest`. False (and `dest` untouched) when nothing
        was saved yet: the run then starts from an empty state and does a full refresh."""
        path = self._path(store)
        head = self._fetch()
        if head is None:
            return False
        try:
            self._git("cat-file", "-e", f"{head}:{path}")
        except GitError:
            return False
        data = self._git("cat-file", "blob", f"{head}:{path}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A leftover write-ahead log beside `dest` belongs to another database: SQLite would
        # replay it into this one.
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{dest}{suffix}").unlink(missing_ok=True)
        tmp = dest.with_name(dest.name + ".pulling")
        tmp.write_bytes(data)
        tmp.replace(dest)
        return True

    def push(self, store: str, snapshot: Path, *, message: str) -> str:
        """Commit `snapshot` as the store's state on top of the branch and push it; retried
        from a fresh fetch when another store's job pushed first. Returns the commit id."""
        size = snapshot.stat().st_size
        if size >= GIT_FILE_LIMIT:
            raise GitHubError(
                f"The state file for {store} is {size // (1024 * 1024)} MB, over GitHub's 100 MB "
                "file limit; keep it elsewhere (see docs/github.md)."
            )
        path = self._path(store)
        blob = self._git("hash-object", "-w", "--", str(snapshot)).decode().strip()
        name, email = self.identity
        author = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
        for attempt in range(1, self.attempts + 1):
            parent = self._fetch()
            with tempfile.TemporaryDirectory() as tmp:
                # A private index: the checkout's own index and working tree stay untouched.
                index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
                if parent:
                    self._git("read-tree", f"{parent}^{{tree}}", env=index)
                else:
                    self._git("read-tree", "--empty", env=index)
                    readme = self._git(
                        "hash-object", "-w", "--stdin", input_=STATE_BRANCH_README.encode()
                    )
                    self._git(
                        "update-index",
                        "--add",
                        "--cacheinfo",
                        f"100644,{readme.decode().strip()},README.md",
                        env=index,
                    )
                self._git(
                    "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=index
                )
                tree = self._git("write-tree", env=index).decode().strip()
            if parent and tree == self._git("rev-parse", f"{parent}^{{tree}}").decode().strip():
                return parent  # byte-identical state: nothing to commit
            args = ["commit-tree", tree, "-m", message]
            if parent:
                args[2:2] = ["-p", parent]
            commit = self._git(*args, env=author).decode().strip()
            try:
                self._git("push", "--quiet", self.remote, f"{commit}:refs/heads/{self.branch}")
                return commit
            except GitError as exc:
                # Only a lost race is worth retrying; a refusal (permissions, protection,
                # authentication) fails the same way every time.
                raced = any(s in exc.stderr for s in _RACE_SIGNS)
                if not raced or attempt == self.attempts:
                    raise GitHubError(
                        f"Could not push the state for {store} to branch {self.branch} after "
                        f"{attempt} attempts ({exc}); check that the job has "
                        "`contents: write` and that the branch is not protected."
                    ) from exc
                # Most likely another store's job pushed first: back off, refetch, rebuild.
                self.sleep(min(2.0**attempt, 20.0) * (0.5 + secrets.randbelow(100) / 100))
        raise AssertionError("unreachable")


def snapshot_state(src: Path, dest: Path) -> None:
    """A consistent, compact copy of a state file for committing.

    The state file runs in WAL mode, so the file alone may lack the latest commits;
    `VACUUM INTO` writes one self-contained database with everything committed, and drops
    free pages so the branch grows less per apply. It goes through `State`, the product's one
    SQLite edge, which also refuses a file from a newer version of the tool.
    """
    if not src.exists():
        raise ConfigError(
            f"There is no state file at {src} to save: run `catalog apply` first "
            "(with the same --state / CATALOG_STATE)."
        )
    dest.unlink(missing_ok=True)
    with State(src) as state:
        state.db.execute("VACUUM INTO ?", [str(dest)])
