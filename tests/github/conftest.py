"""Fixtures for the GitHub glue: a fake API (`fake`), a client on it (`gh`), git remotes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_github import FakeGitHub
from gh_helpers import git

from reconciler.github import GitHub


@pytest.fixture
def fake() -> FakeGitHub:
    api = FakeGitHub()
    api.add_pull_request(7)
    return api


@pytest.fixture
def gh(fake: FakeGitHub) -> Iterator[GitHub]:
    client = GitHub(
        token=fake.token,
        repository=fake.repository,
        api_url=fake.base_url,
        transport=fake.transport(),
        sleep=lambda _seconds: None,
    )
    yield client
    client.close()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare repository standing in for the GitHub remote, with one commit on main."""
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    seed = tmp_path / "seed"
    subprocess.run(["git", "clone", "-q", str(bare), str(seed)], check=True)
    (seed / "README.md").write_text("catalog repo\n")
    git(seed, "add", "README.md")
    git(seed, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init")
    git(seed, "push", "-q", "origin", "HEAD:main")
    return bare


@pytest.fixture
def clone_of(tmp_path: Path, origin: Path):  # type: ignore[no-untyped-def]
    """Make a fresh clone of `origin` (a runner's checkout) by name."""

    def make(name: str) -> Path:
        path = tmp_path / name
        subprocess.run(["git", "clone", "-q", str(origin), str(path)], check=True)
        return path

    return make
