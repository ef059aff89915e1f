"""`python -m bench [NAME] [options]`: run one benchmark, or all of them.

Each benchmark is a module `bench/<name>_bench.py` with `main(argv: list[str]) -> int`, found by
name, so adding one (plan, apply) needs no change here. `./run bench` runs them all with their
defaults; `python -m bench validate --help` shows one benchmark's options.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path

SUFFIX = "_bench"


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        m.name.removesuffix(SUFFIX)
        for m in pkgutil.iter_modules([str(here)])
        if m.name.endswith(SUFFIX)
    )


def _entry(name: str) -> Callable[[list[str]], int]:
    module = importlib.import_module(f"bench.{name}{SUFFIX}")
    entry: Callable[[list[str]], int] = module.main
    return entry


def main(argv: list[str]) -> int:
    names = available()
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("\nbenchmarks: " + ", ".join(names))
        return 0
    if argv and not argv[0].startswith("-"):
        name, rest = argv[0], argv[1:]
        if name not in names:
            print(f"no benchmark named {name!r}; available: {', '.join(names)}", file=sys.stderr)
            return 64
        return _entry(name)(rest)
    worst = 0
    for name in names:
        print(f"== {name} ==", flush=True)
        worst = max(worst, _entry(name)(list(argv)))
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
