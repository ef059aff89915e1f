"""`python -m reconciler` and the `catalog` console script.

Ctrl-C exits 130 with one line at any moment: also during the imports before `main` installs
its own handling (click, rich and httpx take a few tenths of a second to import) and while
the interpreter shuts down after it. Only this module and `reconciler/__init__.py` (which
imports nothing) run before the handler is in place.
"""

import os
import signal
from types import FrameType


def _interrupted(signum: int = signal.SIGINT, frame: FrameType | None = None) -> None:
    # Nothing is open yet (or any more): leave at once, without a traceback.
    try:
        os.write(2, b"Interrupted.\n")
    finally:
        os._exit(130)


def run() -> None:
    signal.signal(signal.SIGINT, _interrupted)
    try:
        from reconciler.cli import main

        # From here a Ctrl-C unwinds normally, so the state file and the lock are released.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        main()
    except KeyboardInterrupt:  # one that arrived while main was already reporting
        _interrupted()
    finally:
        signal.signal(signal.SIGINT, _interrupted)


if __name__ == "__main__":
    run()
