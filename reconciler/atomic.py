"""Writing a file atomically: a reader sees the old file or the new one, never half of one.

The one writer every file this tool saves goes through (plans, imported catalog files, the
parse cache, pulled and merged YAML): a temporary file in the same folder, written, flushed and
fsynced, then renamed over the target; on any failure (Ctrl-C included) the temporary file goes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_atomic(path: Path, data: bytes | Iterable[bytes]) -> Path:
    """Write `data` (bytes, or chunks of them) to `path` atomically; returns `path`. The folder
    must exist."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(data, bytes):
                out.write(data)
            else:
                out.writelines(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
