"""A child process for the crash tests: apply `shop(N)` (tests/rseries/applying.py) against
the R-Series store at URL with the state file STATE, saying "Applied" on stderr once the first
write has finished, so the parent can kill it mid-apply.

    python -m tests.rseries.run_apply URL STATE N
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

from reconciler.apply import ApplyEvent
from reconciler.providers.rseries.client import client_from_environment
from reconciler.providers.rseries.sandbox import RSeriesStore
from reconciler.state import State
from tests.conftest import RSERIES_TOKEN

from .applying import Harness, shop


def main(url: str, state_path: str, families: int) -> int:
    said = False

    def on_event(event: ApplyEvent) -> None:
        nonlocal said
        if event.type == "progress" and not said:
            print("Applied the first write", file=sys.stderr, flush=True)
            said = True

    environ = {"LIGHTSPEED_BASE_URL": url, "LIGHTSPEED_TOKEN": RSERIES_TOKEN}
    token_file = Path(state_path).with_suffix(".tokens")
    with (
        client_from_environment(environ, token_file=token_file) as client,
        State(Path(state_path)) as state,
    ):
        # The store is served by the parent: the child has no handle on it.
        harness = Harness(cast(RSeriesStore, None), client, state)
        wanted = shop(families)
        plan, live = harness.plan(wanted)
        result = harness.apply_plan(plan, live, wanted, on_event=on_event)
        return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
