"""Failures of the machine, not of the catalog, end in one sentence and exit 1; Ctrl-C exits
130 at any moment (issue 12, point 10). Run as processes: the exit code and what reaches
stderr are what matter."""

from __future__ import annotations

import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.cli import interrupted_inside
from reconciler.providers.asgi import serve_in_thread
from reconciler.providers.xseries.sandbox import SandboxStore
from reconciler.state import State, state_failure
from reconciler.state.cache import Cache

from .helpers import TOKEN

EXAMPLE = Path(__file__).resolve().parents[2] / "catalog"


def _env(url: str | None, token: str = TOKEN) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTSPEED_", "CATALOG_"))}
    env["NO_COLOR"] = "1"
    if url is not None:
        env.update(LIGHTSPEED_BASE_URL=url, LIGHTSPEED_TOKEN=token)
    return env


def _catalog(
    tmp: Path, *args: str, env: dict[str, str], **kw: object
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "reconciler", "--catalog", str(EXAMPLE), *args]
    done: subprocess.CompletedProcess[str] = subprocess.run(
        argv,
        env=env,
        cwd=tmp,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kw,  # type: ignore[call-overload]
    )
    return done


def _one_sentence(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and last.endswith("."), done.stderr
    assert "unexpected" not in last, last
    for word in words:
        assert word in last, last
    return last


@pytest.fixture
def url(store: SandboxStore) -> Iterator[str]:
    with serve_in_thread(store) as base:
        yield base


def test_read_only_state_file(tmp_path: Path, url: str) -> None:
    state = tmp_path / "state.db"
    assert _catalog(tmp_path, "--state", str(state), "plan", env=_env(url)).returncode == 0
    state.chmod(0o444)
    done = _catalog(tmp_path, "--state", str(state), "plan", env=_env(url))
    _one_sentence(done, str(state), "read-only", "chmod u+w")


def test_corrupt_state_file(tmp_path: Path, url: str) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(8192))
    _one_sentence(
        _catalog(tmp_path, "--state", str(garbage), "plan", env=_env(url)),
        str(garbage),
        "move it aside",
    )
    # A real state file cut in half: SQLite notices only part-way through the run.
    state = tmp_path / "state.db"
    assert _catalog(tmp_path, "--state", str(state), "plan", env=_env(url)).returncode == 0
    data = state.read_bytes()
    for extra in tmp_path.glob("state.db-*"):
        extra.unlink()
    state.write_bytes(data[: len(data) // 2])
    done = _catalog(tmp_path, "--state", str(state), "plan", env=_env(url))
    _one_sentence(done, str(state))


def test_locked_state_file_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with State(path):
        pass
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with State(path, busy_seconds=0.05) as state, pytest.raises(sqlite3.Error) as caught:
            Cache(state).set_meta({"x": "1"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    message = str(state_failure(caught.value, str(path)))
    assert message.startswith(f"State file {path} is locked by another process")
    assert message.endswith("then rerun.") and "move it aside" not in message


def _limit_file_size(size: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return apply


@pytest.mark.parametrize("limit", [4096, 96 * 1024])
def test_full_disk_while_writing_the_state_file(tmp_path: Path, url: str, limit: int) -> None:
    """`ulimit -f`: every write past the limit fails with EFBIG, as on a full disk."""
    state = tmp_path / "state.db"
    done = _catalog(
        tmp_path,
        "--state",
        str(state),
        "plan",
        env=_env(url),
        preexec_fn=_limit_file_size(limit),
    )
    last = _one_sentence(done, "disk is full or a file-size limit")
    assert "move it aside" not in last


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("LIGHTSPEED_BASE_URL", "http://[::1", ["LIGHTSPEED_BASE_URL", "not a valid"]),
        ("LIGHTSPEED_BASE_URL", "http://host:port", ["LIGHTSPEED_BASE_URL", "not a valid"]),
        ("LIGHTSPEED_TOKEN", "t\u00f6ken-abc", ["LIGHTSPEED_TOKEN", "non-ASCII"]),
        ("LIGHTSPEED_TOKEN", "abc\ndef", ["LIGHTSPEED_TOKEN", "line break"]),
        ("LIGHTSPEED_TOKEN", "abc\tdef", ["LIGHTSPEED_TOKEN", "line break"]),
    ],
)
def test_bad_environment(tmp_path: Path, variable: str, value: str, words: list[str]) -> None:
    env = _env("http://127.0.0.1:9")
    env[variable] = value
    done = _catalog(tmp_path, "--state", str(tmp_path / "s.db"), "plan", env=env)
    last = _one_sentence(done, *words)
    if variable == "LIGHTSPEED_TOKEN":
        assert value not in done.stderr and "abc" not in last


def test_state_pull_without_an_origin_remote(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    done = _catalog(repo, "ci", "state", "pull", "--store", "acme", env=_env(None))
    _one_sentence(done, "no remote 'origin'", "git remote add origin")
    bare = tmp_path / "not-a-repo"
    bare.mkdir()
    done = _catalog(bare, "ci", "state", "pull", "--store", "acme", env=_env(None))
    _one_sentence(done, "not a git checkout")


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that accepts connections and never answers: a command waits on it for as long
    as the test likes."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


@pytest.mark.parametrize("delay", [0.01, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 0.45, 0.7, 1.2])
@pytest.mark.parametrize("how", ["module", "script"])
def test_ctrl_c_at_any_moment_exits_130(
    tmp_path: Path, silent_url: str, delay: float, how: str
) -> None:
    """Ctrl-C from the moment our code runs (the interpreter's own start-up, `site` and .pth
    files, is Python's: nothing of ours has run yet). `-X importtime` says when `reconciler`
    is imported; the delays then fall in the heavy imports before `main`, and after."""
    script = Path(sys.executable).with_name("catalog")
    head = [sys.executable, "-X", "importtime"]
    head += ["-m", "reconciler"] if how == "module" else [str(script)]
    ours = "reconciler" if how == "module" else "reconciler.__main__"
    proc = subprocess.Popen(
        [*head, "--catalog", str(EXAMPLE), "--state", str(tmp_path / "s.db"), "plan"],
        env=_env(silent_url),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    while True:
        line = proc.stderr.readline()
        assert line, "".join(seen)
        seen.append(line)
        if line.rstrip().endswith(f"| {ours}"):
            break
    time.sleep(delay)
    assert proc.poll() is None  # still importing, or waiting on the silent server
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    err = "".join(line for line in rest.splitlines(keepends=True) if "import time:" not in line)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1] == "Interrupted.", err


def test_an_interrupt_wrapped_by_python_or_a_library_still_counts_as_ctrl_c() -> None:
    """Python 3.11 wraps a KeyboardInterrupt raised in `__set_name__` (a class being built
    while a lazy import runs) in a RuntimeError: `main` must still exit 130, not report an
    unexpected error."""

    class Interrupts:
        def __set_name__(self, owner: type, name: str) -> None:
            raise KeyboardInterrupt

    try:
        type("Built", (), {"field": Interrupts()})
    except KeyboardInterrupt as bare:  # Python 3.12+: raised as it is
        wrapped: BaseException = bare
    except RuntimeError as error:
        wrapped = error
    assert interrupted_inside(wrapped)
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise OSError("read failed") from interrupt
    except OSError as chained:
        assert interrupted_inside(chained)
    assert not interrupted_inside(RuntimeError("boom"))
