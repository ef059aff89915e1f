"""The one atomic writer: a failure midway leaves the old file whole and no temporary file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.atomic import write_atomic


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    write_atomic(target, b"old")

    def chunks() -> Iterator[bytes]:
        yield b"new, half"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, chunks())
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]
    assert write_atomic(target, [b"new", b"er"]).read_bytes() == b"newer"
