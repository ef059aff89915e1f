"""Small helpers shared by the GitHub glue tests (a module with a name no other test dir uses)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def parse_github_output(text: str) -> dict[str, str]:
    """Read a GITHUB_OUTPUT file the way the runner does (name=value and heredoc blocks)."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value: list[str] = []
            i += 1
            while lines[i] != delimiter:
                value.append(lines[i])
                i += 1
            out[name] = "\n".join(value)
        else:
            name, value_text = line.split("=", 1)
            out[name] = value_text
        i += 1
    return out
